#!/usr/bin/env python3
"""Runs the async_socket benchmark and prints a Markdown table of medians.

The library's programs are written the way users write them (bench/bench_async_socket.c: an
execution engine passed to create, receives sized to the bytes expected, the server's next
receive posted from its send callback, the client's inside its receive callback before the next
send), and the targets of issue 12 apply to those rows. The "tls" scenario runs the library's TLS
layer against a hand-written non-blocking OpenSSL loop, both pinned to the same TLS 1.3 suite
(BENCH_TLS_CIPHERSUITES, default TLS_AES_256_GCM_SHA384), and the loop once more with
SSL_OP_ENABLE_KTLS.

The three implementations of every scenario (this library, a hand-written single-threaded epoll
loop, libuv) run interleaved, A B C, B C A, C A B, ..., for several rounds; the table shows the
median of each figure, the ratios library/epoll-loop and library/libuv, and PASS/FAIL against the
targets of the issue. Syscalls per ping-pong round trip come from separate short runs under
`strace -f -c` of each implementation (2N minus N round trips, divided by N) (skipped with a note when strace is missing). The table is
also written to BUILD_DIR/results.md.

usage: python3 bench/run_bench.py BUILD_DIR [--rounds N] [--duration-ms N] [--warmup-ms N]
           [--scenarios pp1,pp100,pp16k,stream,idle,tls] [--pairs N] [--strace-roundtrips N]
           [--no-strace] [--lib-workers 1,2]
Environment defaults: BENCH_ROUNDS (3), BENCH_DURATION_MS (2000), BENCH_WARMUP_MS (300).
Python 3 standard library only.
"""

import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIB = "async_socket"
EPOLL = "epoll"
LIBUV = "libuv"
BINARIES = {LIB: "bench_async_socket", EPOLL: "bench_epoll", LIBUV: "bench_libuv"}
COLUMN_TITLES = {LIB: "async_socket", EPOLL: "epoll loop", LIBUV: "libuv"}

SCENARIOS = ["pp1", "pp100", "pp16k", "stream", "idle", "tls"]
# The TLS scenario has programs of its own: the library's TLS layer and a hand-written OpenSSL
# loop (no libuv column); the loop runs once more with SSL_OP_ENABLE_KTLS (BENCH_TLS_KTLS=1).
TLS_BINARIES = {LIB: "bench_tls_async_socket", EPOLL: "bench_tls_epoll"}
KTLS = "epoll-ktls"
PING_PONG = ["pp1", "pp100", "pp16k"]
SCENARIO_TITLES = {
    "pp1": "ping-pong 1 × 64 B",
    "pp100": "ping-pong 100 × 64 B",
    "pp16k": "ping-pong 1 × 16 KiB",
    "stream": "streaming 4 × 64 KiB outstanding",
    "idle": "idle pairs, 1 byte each way",
    "tls": "TLS 1.3 full duplex, 4 × 64 KiB outstanding each way",
}
RUN_TIMEOUT_S = 180


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"{name} must be an integer, got {value!r}")


def parse_args():
    parser = argparse.ArgumentParser(description="Run the async_socket benchmark (library vs epoll loop vs libuv).")
    parser.add_argument("build_dir", help="CMake build directory containing the bench programs (e.g. build/bench)")
    parser.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 3), help="interleaved rounds (default 3, env BENCH_ROUNDS)")
    parser.add_argument("--duration-ms", type=int, default=env_int("BENCH_DURATION_MS", 2000),
                        help="measured phase of each timed run (default 2000, env BENCH_DURATION_MS)")
    parser.add_argument("--warmup-ms", type=int, default=env_int("BENCH_WARMUP_MS", 300),
                        help="warm-up before the measured phase (default 300, env BENCH_WARMUP_MS)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--pairs", type=int, default=10000, help="idle scenario: connected pairs requested (default 10000)")
    parser.add_argument("--strace-roundtrips", type=int, default=10000,
                        help="syscalls per round trip = (syscalls of a 2N run - syscalls of an N run) / N under strace -f -c (default N = 10000)")
    parser.add_argument("--no-strace", action="store_true", help="skip the syscall count")
    parser.add_argument("--lib-workers", default="",
                        help="also run the library with these worker counts (ASYNC_SOCKET_WORKERS), e.g. 1,2; extra columns, not used for the targets")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r}")
    if args.rounds < 1 or args.duration_ms < 1 or args.warmup_ms < 0:
        parser.error("rounds and duration must be positive")
    args.lib_workers = [int(w) for w in args.lib_workers.split(",") if w.strip()]
    return args


def find_binary(build_dir, name):
    for candidate in (os.path.join(build_dir, "bench", name), os.path.join(build_dir, name)):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    sys.exit(f"run_bench.py: {name} not found under {build_dir} (configure with -DASYNC_SOCKET_BENCH=ON and build)")


def parse_bench_line(output):
    for line in output.splitlines():
        if line.startswith("BENCH "):
            fields = {}
            for token in shlex.split(line[len("BENCH "):]):
                key, _, value = token.partition("=")
                fields[key] = value
            return fields
    return None


def run_one(binary, scenario, args, env_extra):
    command = [binary, scenario]
    if scenario == "idle":
        command += ["--pairs", str(args.pairs)]
    else:
        command += ["--duration-ms", str(args.duration_ms), "--warmup-ms", str(args.warmup_ms)]
    env = dict(os.environ)
    env.update(env_extra)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": "0", "error": f"timed out after {RUN_TIMEOUT_S} s"}
    fields = parse_bench_line(completed.stdout)
    if fields is None:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        return {"ok": "0", "error": f"exit {completed.returncode}, no BENCH line: {' | '.join(tail)}"}
    if completed.returncode != 0:
        fields["ok"] = "0"
        fields.setdefault("error", f"exit {completed.returncode}")
    return fields


def strace_total(binary, scenario, roundtrips, env_extra):
    """Total syscalls of one `SCENARIO --roundtrips N` run, and the per-syscall counts."""
    env = dict(os.environ)
    env.update(env_extra)
    with tempfile.NamedTemporaryFile(prefix="bench_strace_", suffix=".txt", delete=False) as handle:
        path = handle.name
    try:
        completed = subprocess.run(["strace", "-f", "-c", "-o", path, binary, scenario, "--roundtrips", str(roundtrips)],
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
        fields = parse_bench_line(completed.stdout)
        if completed.returncode != 0 or fields is None or fields.get("ok") != "1":
            raise RuntimeError(f"strace run failed (exit {completed.returncode}): {completed.stderr.strip()[-200:]}")
        counts = {}
        total = None
        with open(path, encoding="utf-8", errors="replace") as report:
            for line in report:
                parts = line.split()
                if len(parts) < 5 or not re.match(r"^\d+(\.\d+)?$", parts[0]):
                    continue
                name = parts[-1]
                calls = int(parts[3])
                if name == "total":
                    total = calls
                else:
                    counts[name] = calls
        if total is None:
            total = sum(counts.values())
        return total, counts
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def median_of(runs, key):
    values = []
    for run in runs:
        if run.get("ok") == "1" and key in run:
            try:
                values.append(float(run[key]))
            except ValueError:
                pass
    return statistics.median(values) if values else None


def fmt(value, decimals=0):
    if value is None:
        return "n/a"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(value):
    return "n/a" if value is None else f"{value:.2f}"


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def machine_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = os.cpu_count()
    try:
        nproc = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Machine: {nproc} CPUs (nproc), {cpu}, Linux {platform.release()}; date {now}."


def main():
    args = parse_args()
    started = time.monotonic()
    binaries = {impl: find_binary(args.build_dir, name) for impl, name in BINARIES.items()}

    # The implementations: the three, plus the library at other worker counts if asked.
    impls = [(LIB, binaries[LIB], {}), (EPOLL, binaries[EPOLL], {}), (LIBUV, binaries[LIBUV], {})]
    for workers in args.lib_workers:
        impls.append((f"{LIB}-w{workers}", binaries[LIB], {"ASYNC_SOCKET_WORKERS": str(workers)}))
    names = [name for name, _, _ in impls]
    tls_impls = []
    if "tls" in args.scenarios:
        tls_binaries = {impl: find_binary(args.build_dir, name) for impl, name in TLS_BINARIES.items()}
        tls_impls = [(name, tls_binaries[LIB] if name.startswith(LIB) else tls_binaries[EPOLL], env_extra)
                     for name, _, env_extra in impls if name != LIBUV]
        tls_impls.append((KTLS, tls_binaries[EPOLL], {"BENCH_TLS_KTLS": "1"}))

    results = {(scenario, name): [] for scenario in args.scenarios for name in names + [KTLS]}
    log = sys.stderr
    print(f"run_bench: {args.rounds} rounds x {len(args.scenarios)} scenarios x {len(impls)} implementations, "
          f"{args.duration_ms} ms measured + {args.warmup_ms} ms warm-up per timed run", file=log)
    for round_index in range(args.rounds):
        for scenario_index, scenario in enumerate(args.scenarios):
            runnable = tls_impls if scenario == "tls" else impls
            shift = (round_index + scenario_index) % len(runnable)
            order = runnable[shift:] + runnable[:shift]
            for name, binary, env_extra in order:
                fields = run_one(binary, scenario, args, env_extra)
                results[(scenario, name)].append(fields)
                if fields.get("ok") != "1":
                    summary = "FAILED: " + fields.get("error", "?")
                elif scenario == "idle":
                    summary = f"{fields.get('bytes_per_socket')} B/socket, wake {fields.get('wake_ms')} ms"
                elif scenario in ("stream", "tls"):
                    summary = f"{fields.get('mb_per_s')} MB/s"
                else:
                    summary = f"{fields.get('ops_per_s')} rt/s, p50 {fields.get('p50_us')} us"
                print(f"  round {round_index + 1}/{args.rounds} {scenario:7s} {name:16s} {summary}", file=log)

    # Syscalls per ping-pong round trip, per ping-pong pattern: (run with 2N round trips - run
    # with N) / N.
    syscalls = {}  # (scenario, impl) -> (per round trip, {call: per round trip})
    syscall_note = ""
    pp_scenarios = [s for s in args.scenarios if s in PING_PONG]
    if args.no_strace:
        syscall_note = "syscalls per round trip: skipped (--no-strace)."
    elif shutil.which("strace") is None:
        syscall_note = "syscalls per round trip: skipped, strace is not installed."
    else:
        for scenario in pp_scenarios:
            for name, binary, env_extra in impls:
                try:
                    # Two runs, N and 2N round trips: the difference holds N round trips and none
                    # of the fixed cost of setting up, starting, stopping and tearing down.
                    base_total, base_counts = strace_total(binary, scenario, args.strace_roundtrips, env_extra)
                    total, counts = strace_total(binary, scenario, 2 * args.strace_roundtrips, env_extra)
                    per_call = {k: (counts.get(k, 0) - base_counts.get(k, 0)) / args.strace_roundtrips
                                for k in set(counts) | set(base_counts)}
                    syscalls[(scenario, name)] = ((total - base_total) / args.strace_roundtrips, per_call)
                    print(f"  strace {scenario:6s} {name:16s} {syscalls[(scenario, name)][0]:.2f} syscalls/round trip", file=log)
                except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as error:
                    syscall_note = f"syscalls per round trip: strace failed for {scenario} {name}: {error}"
                    print(f"  strace {scenario} {name}: {error}", file=log)

    # ---- the table ----
    def med(scenario, name, key):
        return median_of(results.get((scenario, name), []), key)

    def all_ok(scenario, name):
        runs = results.get((scenario, name), [])
        return bool(runs) and all(run.get("ok") == "1" for run in runs)

    extra_names = names[3:]
    header = ["scenario", "figure"] + [COLUMN_TITLES[LIB], COLUMN_TITLES[EPOLL], COLUMN_TITLES[LIBUV]] + \
             [f"async_socket {n.split('-w')[1]} worker(s)" for n in extra_names] + \
             ["lib/epoll", "lib/libuv", "target", "result"]
    rows = []
    targets = []  # (description, passed)

    current_title = [""]

    def add_row(scenario_title, figure, values, r_epoll=None, r_libuv=None, target="", passed=None, decimals=0):
        if scenario_title:
            current_title[0] = scenario_title
        cells = [scenario_title, figure] + [fmt(v, decimals) if not isinstance(v, str) else v for v in values]
        cells += [fmt_ratio(r_epoll), fmt_ratio(r_libuv), target]
        cells.append("" if passed is None else ("PASS" if passed else "FAIL"))
        rows.append(cells)
        if passed is not None:
            targets.append((f"{current_title[0]}: {figure} {target}", passed))

    def values_of(scenario, key):
        return [med(scenario, name, key) for name in names]

    alloc_max = {name: None for name in names}

    def note_allocs(scenario):
        for name in names:
            runs = [float(r["allocs_per_op"]) for r in results.get((scenario, name), []) if r.get("ok") == "1" and "allocs_per_op" in r]
            if runs:
                worst = max(runs)
                alloc_max[name] = worst if alloc_max[name] is None else max(alloc_max[name], worst)

    # issue 12's targets, for the users' patterns that bench_async_socket.c is written in
    pp_targets = {
        "pp1": (0.95, 1.25, "≥ 0.95 × epoll and ≥ 1.25 × libuv"),
        "pp100": (1.30, None, "≥ 1.30 × epoll"),
        "pp16k": (0.95, None, "≥ 0.95 × epoll"),
    }
    for scenario in args.scenarios:
        title = SCENARIO_TITLES[scenario]
        if scenario in pp_targets:
            rts = values_of(scenario, "ops_per_s")
            r_e = ratio(rts[0], rts[1])
            r_u = ratio(rts[0], rts[2])
            need_e, need_u, text = pp_targets[scenario]
            passed = r_e is not None and r_e >= need_e and all_ok(scenario, LIB)
            if need_u is not None:
                passed = passed and r_u is not None and r_u >= need_u
            add_row(title, "round trips/s", rts, r_e, r_u, text, passed)
            p50 = values_of(scenario, "p50_us")
            p99 = values_of(scenario, "p99_us")
            add_row("", "latency p50 (µs)", p50, ratio(p50[0], p50[1]), ratio(p50[0], p50[2]), decimals=1)
            add_row("", "latency p99 (µs)", p99, ratio(p99[0], p99[1]), ratio(p99[0], p99[2]), decimals=1)
            mbs = values_of(scenario, "mb_per_s")
            add_row("", "MB/s (both directions)", mbs, ratio(mbs[0], mbs[1]), ratio(mbs[0], mbs[2]), decimals=1)
            cpu = values_of(scenario, "cpu_pct")
            add_row("", "process CPU %", cpu, ratio(cpu[0], cpu[1]), ratio(cpu[0], cpu[2]))
            allocs = values_of(scenario, "allocs_per_op")
            add_row("", "heap allocations / round trip", allocs, decimals=3)
            waits = values_of(scenario, "buffer_waits")
            if any(w is not None for w in waits):
                add_row("", "sends held back: buffer's send from 4 messages ago not yet called back", waits)
            note_allocs(scenario)
        elif scenario == "stream":
            mbs = values_of(scenario, "mb_per_s")
            r_e = ratio(mbs[0], mbs[1])
            intact = all_ok(scenario, LIB)
            add_row(title, "MB/s", mbs, r_e, ratio(mbs[0], mbs[2]), "≥ 1.00 × epoll, data intact",
                    r_e is not None and r_e >= 1.00 and intact, decimals=0)
            add_row("", "data intact (all runs)", ["yes" if all_ok(scenario, n) else "NO" for n in names])
            cpu = values_of(scenario, "cpu_pct")
            add_row("", "process CPU %", cpu, ratio(cpu[0], cpu[1]), ratio(cpu[0], cpu[2]))
            allocs = values_of(scenario, "allocs_per_op")
            add_row("", "heap allocations / 64 KiB send", allocs, decimals=3)
            note_allocs(scenario)
        elif scenario == "idle":
            sockets = med(scenario, LIB, "sockets") or med(scenario, EPOLL, "sockets")
            pairs_title = f"{title} ({fmt((sockets or 0) / 2)} pairs, {fmt(sockets)} sockets)"
            mem = values_of(scenario, "bytes_per_socket")
            add_row(pairs_title, "memory per idle socket, receive pending, engine passed (B)", mem, None, None, "≤ 128 B",
                    mem[0] is not None and mem[0] <= 128 and all_ok(scenario, LIB))
            add_row("", "heap bytes requested per socket (allocations)",
                    [None if b is None else f"{b:,.0f} ({a:.1f})" for b, a in zip(values_of(scenario, "heap_bytes_per_socket"),
                                                                           values_of(scenario, "heap_allocs_per_socket"))])
            wake = values_of(scenario, "wake_ms")
            r_e = ratio(wake[0], wake[1])
            add_row("", "wake all sockets (ms)", wake, r_e, ratio(wake[0], wake[2]), "≤ 1.00 × epoll",
                    r_e is not None and r_e <= 1.0 and all_ok(scenario, LIB), decimals=1)
            allocs = values_of(scenario, "allocs_per_op")
            add_row("", "heap allocations / socket wake (rounds 2+)", allocs, decimals=3)
            note_allocs(scenario)

        elif scenario == "tls":
            mbs = values_of(scenario, "mb_per_s")
            r_e = ratio(mbs[0], mbs[1])
            intact = all_ok(scenario, LIB)
            add_row(title, "MB/s each way", mbs, r_e, None, "≥ 1.00 × OpenSSL loop, data intact",
                    r_e is not None and r_e >= 1.00 and intact, decimals=0)
            add_row("", "data intact (all runs)", ["yes" if all_ok(scenario, n) else ("n/a" if n == LIBUV else "NO") for n in names])
            cpu = values_of(scenario, "cpu_pct")
            add_row("", "process CPU %", cpu, ratio(cpu[0], cpu[1]))
            ktls_runs = [r for r in results.get((scenario, KTLS), []) if r.get("ok") == "1"]
            ktls_mbs = median_of(ktls_runs, "mb_per_s")
            engaged = "yes" if ktls_runs and all(r.get("ktls_send") == "1" and r.get("ktls_recv") == "1" for r in ktls_runs) else "no"
            add_row("", f"OpenSSL loop with SSL_OP_ENABLE_KTLS: MB/s each way (kernel TLS engaged: {engaged})",
                    [None, ktls_mbs, None] + [None] * (len(names) - 3), ratio(mbs[0], ktls_mbs), None, decimals=0)
            ciphers = sorted({r.get("cipher", "?") for n in names for r in results.get((scenario, n), []) if r.get("ok") == "1"})
            add_row("", "cipher suite (pinned in both)", [", ".join(ciphers)] + [""] * (len(names) - 1))
            allocs = values_of(scenario, "allocs_per_op")
            add_row("", "heap allocations / 64 KiB received", allocs, decimals=3)

    if any(v is not None for v in alloc_max.values()):
        worst = [alloc_max[name] for name in names]
        add_row("all of the above", "heap allocations per operation, steady state (worst run)", worst, None, None, "0",
                worst[0] is not None and worst[0] == 0, decimals=3)
    for scenario in pp_scenarios:
        per_rt = [syscalls[(scenario, name)][0] if (scenario, name) in syscalls else None for name in names]
        if all(v is None for v in per_rt):
            continue
        r_e = ratio(per_rt[0], per_rt[1])
        add_row(SCENARIO_TITLES[scenario], f"syscalls per round trip (strace -f -c, {2 * args.strace_roundtrips:,} − {args.strace_roundtrips:,} round trips)",
                per_rt, r_e, ratio(per_rt[0], per_rt[2]), "≤ epoll loop",
                per_rt[0] is not None and per_rt[1] is not None and per_rt[0] <= per_rt[1] + 0.01, decimals=2)

    lines = []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    passed_count = sum(1 for _, ok in targets if ok)
    lines.append(f"Targets met: {passed_count} of {len(targets)}" +
                 ("" if passed_count == len(targets) else " (failing: " + "; ".join(d for d, ok in targets if not ok) + ")"))
    lines.append("")
    if syscalls:
        lines.append("Syscalls per ping-pong round trip, by call:")
        for scenario in pp_scenarios:
            for name in names:
                if (scenario, name) in syscalls:
                    total, by_call = syscalls[(scenario, name)]
                    breakdown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(by_call.items(), key=lambda kv: -kv[1]) if v >= 0.0005)
                    lines.append(f"- {scenario} {name}: {total:.3f} ({breakdown})")
        lines.append("")
    if syscalls:
        lines.append("Syscalls are compared at 0.01 per round trip: below that, the difference of the two runs holds one-off "
                     "calls whose number varies from run to run (a worker thread's first malloc creating its arena, futex "
                     "wake-ups at start and stop), not a cost per round trip.")
        lines.append("")
    if syscall_note:
        lines.append(syscall_note)
        lines.append("")
    failures = [(scenario, name, run.get("error", "?")) for (scenario, name), runs in results.items() for run in runs if run.get("ok") != "1"]
    for scenario, name, error in failures:
        lines.append(f"Run failed: {scenario} {name}: {error}")
    if failures:
        lines.append("")
    workers = os.environ.get("ASYNC_SOCKET_WORKERS") or "default (completion_port_default_worker_count(): one per CPU)"
    congestion = os.environ.get("BENCH_TCP_CONGESTION") or "cubic"
    if congestion == "system":
        congestion = "the system default (" + read_text("/proc/sys/net/ipv4/tcp_congestion_control") + ")"
    lines.append(f"Medians of {args.rounds} interleaved rounds; timed runs {args.duration_ms} ms after {args.warmup_ms} ms warm-up. "
                 f"Library worker threads: {workers}. TCP congestion control: {congestion} (BENCH_TCP_CONGESTION). "
                 f"Ratios are library ÷ other (for latency, wake time and syscalls lower is better).")
    requested_pairs = args.pairs
    idle_runs = [r for (s, _), runs in results.items() if s == "idle" for r in runs if r.get("ok") == "1"]
    if idle_runs:
        pairs = int(float(idle_runs[0].get("pairs", "0")))
        if pairs < requested_pairs:
            lines.append(f"Idle: {requested_pairs:,} pairs requested; RLIMIT_NOFILE (hard limit) allows {pairs:,} pairs ({2 * pairs:,} sockets).")
    lines.append(machine_line())
    elapsed = time.monotonic() - started
    lines.append(f"Command: python3 bench/run_bench.py {' '.join(sys.argv[1:])} (make bench runs it with the defaults); "
                 f"run time {elapsed:.0f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    try:
        with open(os.path.join(args.build_dir, "results.md"), "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as error:
        print(f"run_bench.py: could not write results.md: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
