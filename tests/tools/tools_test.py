#!/usr/bin/env python3
"""End-to-end tests of asock-echo and asock-load, one case per run (each is its own ctest entry).

Usage: tools_test.py ASOCK_ECHO ASOCK_LOAD CASE

Servers listen on 127.0.0.1 only. Every child process gets a timeout and is killed if it
overstays; a case fails with a message and exit status 1. Python 3 standard library only.
"""

import json
import os
import pty
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

LISTEN_RE = re.compile(r"^asock-echo: listening on 127\.0\.0\.1:(\d+)$")
SUMMARY_RE = re.compile(r"^asock-echo: stopped: (\d+) connections, (\d+) bytes echoed$")


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, timeout=30):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


class EchoServer:
    """asock-echo on 127.0.0.1 port 0; reads the port from its first line."""

    def __init__(self, echo, *extra):
        self.process = subprocess.Popen([echo, "--port", "0", "--bind", "127.0.0.1", *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().rstrip("\n")
        match = LISTEN_RE.match(line)
        if match is None:
            self.kill()
            raise Failure("asock-echo printed %r instead of its listening address" % line)
        self.port = int(match.group(1))

    def stop(self, signal_number=signal.SIGTERM, timeout=15):
        """Sends the signal; returns (exit code, rest of stdout, stderr)."""
        self.process.send_signal(signal_number)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("asock-echo did not stop within %d s of signal %d" % (timeout, signal_number))
        return self.process.returncode, out, err

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


# ---- cases ----

def help_exits_0(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_020
    for tool in (echo, load):
        result = run([tool, "--help"])
        check(result.returncode == 0, "%s --help exited %d" % (tool, result.returncode))
        check(result.stdout.startswith("usage: "), "%s --help does not start with usage:" % tool)
        check("exit codes: 0" in result.stdout and "2 bad flags" in result.stdout,
              "%s --help does not document the exit codes" % tool)
        check(result.stderr == "", "%s --help wrote to stderr: %r" % (tool, result.stderr))


def bad_flags_exit_2_with_one_line(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_021
    # Tests_SRS_ASOCK_TOOLS_01_005
    cases = [
        (echo, [], "--port"),
        (echo, ["--port"], "--port"),
        (echo, ["--port", "65536"], "--port"),
        (echo, ["--port", "-1"], "--port"),
        (echo, ["--port", "12x"], "--port"),
        (echo, ["--port", "0", "--workers", "0"], "--workers"),
        (echo, ["--port", "0", "--workers", "65"], "--workers"),
        (echo, ["--port", "0", "--frobnicate"], "--frobnicate"),
        (load, [], "--port"),
        (load, ["--port", "0"], "--port"),
        (load, ["--port", "7", "--conns", "0"], "--conns"),
        (load, ["--port", "7", "--conns", "1000001"], "--conns"),
        (load, ["--port", "7", "--size", "0"], "--size"),
        (load, ["--port", "7", "--size", "16777217"], "--size"),
        (load, ["--port", "7", "--seconds", "0"], "--seconds"),
        (load, ["--port", "7", "--seconds", "abc"], "--seconds"),
        (load, ["--port", "7", "--seconds"], "--seconds"),
        (load, ["--port", "7", "--jsn"], "--jsn"),
        (load, ["--port", "7", "--conns", "1000", "--size", "1000000"], "--size"),
    ]
    for tool, argv, flag in cases:
        result = run([tool, *argv], timeout=10)
        where = "%s %s" % (tool, " ".join(argv))
        check(result.returncode == 2, "%s exited %d, expected 2" % (where, result.returncode))
        lines = result.stderr.splitlines()
        check(len(lines) == 1, "%s wrote %d lines to stderr, expected 1: %r" % (where, len(lines), result.stderr))
        check(flag in lines[0], "%s: the error line does not name %s: %r" % (where, flag, lines[0]))
        check(result.stdout == "", "%s wrote to stdout: %r" % (where, result.stdout))


def echo_and_load_round_trip(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_001
    # Tests_SRS_ASOCK_TOOLS_01_002
    # Tests_SRS_ASOCK_TOOLS_01_003
    # Tests_SRS_ASOCK_TOOLS_01_004
    # Tests_SRS_ASOCK_TOOLS_01_010
    # Tests_SRS_ASOCK_TOOLS_01_011
    # Tests_SRS_ASOCK_TOOLS_01_013
    # Tests_SRS_ASOCK_TOOLS_01_015
    server = EchoServer(echo, "--workers", "2")
    try:
        # The server echoes exactly what a plain client sends, in order.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as plain:
            message = bytes(range(256)) * 64
            plain.sendall(message)
            back = b""
            while len(back) < len(message):
                chunk = plain.recv(65536)
                check(chunk, "the echo closed after %d of %d bytes" % (len(back), len(message)))
                back += chunk
            check(back == message, "the echo returned different bytes")
        plain_bytes = len(message)

        started = time.monotonic()
        result = run([load, "--host", "127.0.0.1", "--port", str(server.port), "--conns", "3",
                      "--size", "1000", "--seconds", "1", "--json"], timeout=30)
        elapsed = time.monotonic() - started
        check(result.returncode == 0, "asock-load exited %d: %s" % (result.returncode, result.stderr))
        lines = result.stdout.splitlines()
        # Not a terminal: no progress line, only the JSON object.
        # Tests_SRS_ASOCK_TOOLS_01_014
        check(len(lines) == 1, "asock-load --json printed %d lines: %r" % (len(lines), result.stdout))
        report = json.loads(lines[0])
        for key in ("round_trips", "round_trips_per_s", "mb_per_s", "latency_us", "errors", "mismatches", "seconds"):
            check(key in report, "the JSON has no %r: %r" % (key, report))
        check(report["round_trips"] > 0, "no round trip: %r" % report)
        check(report["errors"] == 0 and report["mismatches"] == 0, "errors: %r" % report)
        check(report["conns"] == 3 and report["size"] == 1000 and report["port"] == server.port, "echoed options wrong: %r" % report)
        latency = report["latency_us"]
        check(0 < latency["p50"] <= latency["p99"] <= latency["p999"], "latency percentiles out of order: %r" % latency)
        check(0.9 <= report["seconds"] < 10 and elapsed < 20, "ran %.2f s (reported %r), asked for 1" % (elapsed, report["seconds"]))

        # A larger message than the echo's buffer, several connections, the table output.
        # Tests_SRS_ASOCK_TOOLS_01_012
        table = run([load, "--port", str(server.port), "--conns", "2", "--size", "200000", "--seconds", "0.5"], timeout=30)
        check(table.returncode == 0, "asock-load (table) exited %d: %s" % (table.returncode, table.stderr))
        for label in ("round trips/s", "MB/s", "latency p50", "latency p99", "latency p999", "errors"):
            check(re.search(r"^\s+%s\s" % re.escape(label), table.stdout, re.M), "no %r row in %r" % (label, table.stdout))
        table_trips = int(re.search(r"^\s+round trips\s+(\d+)$", table.stdout, re.M).group(1))
        check(table_trips > 0, "no round trip in the table run")

        code, out, err = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    check(code == 0, "asock-echo exited %d after SIGTERM: %s" % (code, err))
    lines = out.splitlines()
    check(len(lines) == 1, "asock-echo printed %r after the address, expected one summary line" % out)
    match = SUMMARY_RE.match(lines[0])
    check(match is not None, "the summary line is %r" % lines[0])
    connections, echoed = int(match.group(1)), int(match.group(2))
    check(connections == 1 + 3 + 2, "the summary counts %d connections, expected 6" % connections)
    expected = plain_bytes + report["round_trips"] * 1000 + table_trips * 200000
    check(echoed == expected, "the summary counts %d bytes echoed, expected %d" % (echoed, expected))

    # SIGINT stops it the same way.
    server = EchoServer(echo)
    try:
        code, out, err = server.stop(signal.SIGINT)
    finally:
        server.kill()
    check(code == 0 and SUMMARY_RE.match(out.strip()) is not None, "after SIGINT: exit %d, %r" % (code, out))


def load_progress_only_on_a_terminal(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_014
    # Tests_SRS_ASOCK_TOOLS_01_012
    server = EchoServer(echo)
    try:
        master, slave = pty.openpty()
        process = subprocess.Popen([load, "--port", str(server.port), "--seconds", "2.5"],
                                   stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        output = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's other end closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        os.close(master)
        code = process.wait(timeout=30)
        err = process.stderr.read().decode()
        process.stderr.close()
        server.stop()
    finally:
        server.kill()
    text = output.decode(errors="replace").replace("\r\n", "\n")
    check(code == 0, "asock-load on a terminal exited %d: %s" % (code, err))
    progress = re.findall(r"^\s*\d+\.\d s\s+\d+ round trips/s\s+[\d.]+ MB/s\s+errors 0$", text, re.M)
    check(len(progress) == 2, "expected 2 progress lines in 2.5 s, got %d: %r" % (len(progress), text))
    check("latency p999" in text, "no table after the progress lines: %r" % text)


def run_script_prints_the_table(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_030
    bin_dir = os.path.dirname(os.path.abspath(echo))
    check(os.path.dirname(os.path.abspath(load)) == bin_dir, "the tools are in different directories")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "run_echo_load.sh")
    result = run(["sh", script, bin_dir, "--conns", "2", "--seconds", "0.5"], timeout=40)
    check(result.returncode == 0, "run_echo_load.sh exited %d: %s" % (result.returncode, result.stderr))
    lines = result.stdout.splitlines()
    check(len(lines) >= 3 and LISTEN_RE.match(lines[0]), "no listening line first: %r" % result.stdout)
    check(re.search(r"^\s+errors\s+0$", result.stdout, re.M), "no errors row of 0: %r" % result.stdout)
    check(SUMMARY_RE.match(lines[-1]), "the echo summary is not last: %r" % result.stdout)
    # A failing asock-load (here, a bad flag) makes the script fail.
    bad = run(["sh", script, bin_dir, "--conns", "0"], timeout=40)
    check(bad.returncode != 0, "run_echo_load.sh passed with a failing asock-load")


class CorruptingEcho:
    """A plain echo server on 127.0.0.1 for one connection that flips the byte at one stream
    offset, to show that asock-load checks what comes back."""

    def __init__(self, corrupt_offset):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.corrupt_offset = corrupt_offset
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(20)
            offset = 0
            while True:
                try:
                    data = bytearray(connection.recv(65536))
                except OSError:
                    return
                if not data:
                    return
                if offset <= self.corrupt_offset < offset + len(data):
                    data[self.corrupt_offset - offset] ^= 0x5A
                offset += len(data)
                try:
                    connection.sendall(data)
                except OSError:
                    return

    def close(self):
        self.listener.close()
        self.thread.join(timeout=20)


def load_detects_a_corrupted_byte(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_011
    # Tests_SRS_ASOCK_TOOLS_01_015
    del echo
    server = CorruptingEcho(1000)
    try:
        result = run([load, "--port", str(server.port), "--size", "100", "--seconds", "5", "--json"], timeout=30)
    finally:
        server.close()
    check(result.returncode == 1, "asock-load exited %d after a corrupted byte" % result.returncode)
    report = json.loads(result.stdout)
    # Messages 0..9 (stream bytes 0..999) came back right; message 10 holds the flipped byte.
    check(report["round_trips"] == 10, "expected 10 round trips before the mismatch: %r" % report)
    check(report["mismatches"] == 1 and report["errors"] == 1, "the mismatch was not counted: %r" % report)
    check("byte 1000 of the stream" in result.stderr, "the mismatch is not reported at offset 1000: %r" % result.stderr)
    check(report["seconds"] < 4, "the run went on after its only connection failed: %r" % report)


def echo_stops_cleanly_under_load(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_004
    # Tests_SRS_ASOCK_TOOLS_01_015
    server = EchoServer(echo)
    try:
        process = subprocess.Popen([load, "--port", str(server.port), "--conns", "8", "--size", "3000",
                                    "--seconds", "10", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the 8 connections are made in milliseconds; then they run
        code, out, err = server.stop(signal.SIGTERM)
        load_out, load_err = process.communicate(timeout=30)
    finally:
        server.kill()
    check(code == 0, "asock-echo exited %d when stopped under load: %s" % (code, err))
    match = SUMMARY_RE.match(out.strip())
    check(match is not None and int(match.group(1)) == 8, "summary after a stop under load: %r" % out)
    check(process.returncode == 1, "asock-load exited %d when the server went away" % process.returncode)
    report = json.loads(load_out)
    check(report["errors"] == 8 and report["mismatches"] == 0, "each connection should fail once: %r" % report)
    check("server closed" in load_err, "no explanation of the failure: %r" % load_err)
    check(int(match.group(2)) >= report["round_trips"] * 3000, "the echo counts fewer bytes than came back")


def echo_survives_running_out_of_fds(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_007
    del load
    limit = 24

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    process = subprocess.Popen([echo, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=low_fd_limit)
    clients = []
    try:
        match = LISTEN_RE.match(process.stdout.readline().rstrip("\n"))
        check(match is not None, "asock-echo did not start with %d fds" % limit)
        port = int(match.group(1))
        # More connections than the server has fds: the kernel queues them, accept fails (EMFILE).
        for _ in range(limit + 8):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        check(process.poll() is None, "asock-echo exited when it ran out of fds")
        for client in clients:
            client.close()
        clients = []
        # With the fds back, a new connection is served.
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                    client.sendall(b"still here")
                    check(client.recv(64) == b"still here", "no echo after running out of fds")
                break
            except (socket.timeout, ConnectionError):
                check(time.monotonic() < deadline, "no echo within 10 s after the fds came back")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        for client in clients:
            client.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    check(process.returncode == 0, "asock-echo exited %d: %s" % (process.returncode, err[-2000:]))
    check(SUMMARY_RE.match(out.strip()) is not None, "no summary: %r" % out)
    # It backs off between attempts instead of spinning: a few error lines a second at most.
    accept_errors = err.count("accept on fd")
    check(accept_errors < 40, "%d accept error lines: the server spins on EMFILE" % accept_errors)


def echo_serves_established_connections_while_out_of_fds(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_008
    del load
    limit = 32

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    process = subprocess.Popen([echo, "--port", "0", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=low_fd_limit)
    clients = []
    try:
        match = LISTEN_RE.match(process.stdout.readline().rstrip("\n"))
        check(match is not None, "asock-echo did not start with %d fds" % limit)
        port = int(match.group(1))
        established = socket.create_connection(("127.0.0.1", port), timeout=5)
        clients.append(established)
        established.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        established.sendall(b"x" * 100)
        check(len(established.recv(100)) > 0, "no echo before running out of fds")
        for _ in range(limit + 8):  # more than the server has fds: accept fails with EMFILE
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.3)
        times = []
        for _ in range(21):
            start = time.monotonic()
            established.sendall(b"y" * 100)
            got = b""
            while len(got) < 100:
                data = established.recv(100 - len(got))
                check(data, "the established connection closed while the server was out of fds")
                got += data
            times.append(time.monotonic() - start)
        median = sorted(times)[len(times) // 2]
        # a back-off that sleeps in a callback holds the one worker ~100 ms at a time
        check(median < 0.02, "median echo %.1f ms while out of fds: a worker is blocked" % (median * 1000))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        for client in clients:
            client.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    check(process.returncode == 0, "asock-echo exited %d: %s" % (process.returncode, err[-2000:]))
    pauses = err.count("pausing accepts")
    check(1 <= pauses <= 3, "%d pause lines (one per pause expected): %r" % (pauses, err[-1000:]))


def load_names_the_real_cause_of_a_failed_connect(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_017
    # Tests_SRS_ASYNC_SOCKET_LINUX_99_178
    del echo
    result = run([load, "--host", "no-such-host.invalid", "--port", "7", "--seconds", "0.2"], timeout=30)
    check(result.returncode == 1, "an unresolvable host: exit %d" % result.returncode)
    check("cannot resolve host 'no-such-host.invalid'" in result.stderr, "no resolve error: %r" % result.stderr)
    check("No route to host" not in result.stderr, "a name that does not resolve reads as a route: %r" % result.stderr)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run([load, "--port", str(port), "--seconds", "0.2"], timeout=30)
    check(time.monotonic() - started < 3, "a refused connect took %.1f s" % (time.monotonic() - started))
    check(result.returncode == 1, "a refused connect: exit %d" % result.returncode)
    check("Connection refused" in result.stderr, "the refusal is not named: %r" % result.stderr)
    check("within" not in result.stderr, "an immediate refusal reads as a timeout: %r" % result.stderr)


# Tests_SRS_ASYNC_SOCKET_LISTENER_01_012: hundreds of connects queue behind full 16-accept batches;
# a lost rerun leaves some never accepted and their round trips never complete.
def load_goes_to_the_fd_limit_and_says_when_it_caps(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_016
    conns = 400  # above the 256 soft limit the run starts with

    def soft_limit(soft, hard):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    server = EchoServer(echo)
    try:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        check(hard == resource.RLIM_INFINITY or hard >= conns + 64, "the hard fd limit %d is too low for this test" % hard)
        # a soft limit below the need is raised: every connection is made
        result = subprocess.run([load, "--port", str(server.port), "--conns", str(conns), "--seconds", "0.5", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                                preexec_fn=soft_limit(256, hard))
        check(result.returncode == 0, "asock-load --conns %d exited %d: %s" % (conns, result.returncode, result.stderr[-500:]))
        check(json.loads(result.stdout)["conns"] == conns, "the run did not get %d connections: %s" % (conns, result.stdout))
        # a hard limit below the need caps the run, with a line that says so
        result = subprocess.run([load, "--port", str(server.port), "--conns", str(conns), "--seconds", "0.5", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                                preexec_fn=soft_limit(200, 200))
        check(result.returncode == 0, "asock-load capped exited %d: %s" % (result.returncode, result.stderr[-500:]))
        check("caps --conns %d at 168" % conns in result.stderr, "no line about the cap: %r" % result.stderr)
        check(json.loads(result.stdout)["conns"] == 168, "the capped run: %s" % result.stdout)
    finally:
        server.stop()


def load_fails_when_nothing_listens(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_015
    del echo
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run([load, "--port", str(port), "--seconds", "0.5", "--json"], timeout=30)
    check(result.returncode == 1, "asock-load against a closed port exited %d" % result.returncode)
    check("cannot connect" in result.stderr, "no connect error on stderr: %r" % result.stderr)
    check(result.stdout == "", "asock-load printed a result without a connection: %r" % result.stdout)


def echo_cannot_listen_on_a_port_in_use(echo, load):
    # Tests_SRS_ASOCK_TOOLS_01_006
    del load
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run([echo, "--port", str(port)], timeout=30)
    check(result.returncode == 1, "asock-echo on a port in use exited %d" % result.returncode)
    check("cannot listen" in result.stderr, "no listen error on stderr: %r" % result.stderr)
    check(result.stdout == "", "asock-echo printed %r" % result.stdout)


def echo_returns_an_urgent_byte_in_place(echo, load):
    # Tests_SRS_ASYNC_SOCKET_LINUX_99_151
    # Tests_SRS_ASYNC_SOCKET_LINUX_99_152
    # A peer that sends a byte with MSG_OOB between two runs used to freeze its connection: the
    # echo got the bytes before the urgent mark and never the rest (issue 11, item 1).
    del load
    server = EchoServer(echo)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"AAAA")
            client.send(b"B", socket.MSG_OOB)
            client.sendall(b"CCCC")
            echoed = b""
            deadline = time.monotonic() + 10
            while len(echoed) < 9 and time.monotonic() < deadline:
                try:
                    chunk = client.recv(64)
                except socket.timeout:
                    break
                if not chunk:
                    break
                echoed += chunk
            check(echoed == b"AAAABCCCC", "asock-echo returned %r, expected b'AAAABCCCC'" % echoed)
    finally:
        code, _, err = server.stop()
    check(code == 0, "asock-echo exited %d: %r" % (code, err))


CASES = {f.__name__: f for f in (help_exits_0, bad_flags_exit_2_with_one_line, echo_and_load_round_trip,
                                 load_progress_only_on_a_terminal, run_script_prints_the_table,
                                 load_detects_a_corrupted_byte, echo_stops_cleanly_under_load,
                                 echo_survives_running_out_of_fds,
                                 echo_serves_established_connections_while_out_of_fds,
                                 load_fails_when_nothing_listens,
                                 load_names_the_real_cause_of_a_failed_connect,
                                 load_goes_to_the_fd_limit_and_says_when_it_caps,
                                 echo_cannot_listen_on_a_port_in_use,
                                 echo_returns_an_urgent_byte_in_place)}


def main(argv):
    if len(argv) != 4 or argv[3] not in CASES:
        print("usage: tools_test.py ASOCK_ECHO ASOCK_LOAD CASE (one of %s)" % ", ".join(CASES), file=sys.stderr)
        return 2
    try:
        CASES[argv[3]](argv[1], argv[2])
    except Failure as failure:
        print("FAILED %s: %s" % (argv[3], failure))
        return 1
    print("OK %s" % argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
