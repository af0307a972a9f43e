#!/usr/bin/env python3
"""Checks the syscall seam of src/sys.h.

1. No source of libasync_socket (src/ but the seam itself, sys_linux.c and sys_passthrough.h,
   and the TLS layer, a library of its own on the public API; see the deliberate exceptions at
   the top of src/sys.h) calls a syscall or an allocator directly: each goes through a sys_
   function.
2. Outside the trees that link the test seam (ASYNC_SOCKET_TEST_HOOKS), the test seam's
   questions sys_short_send_means_full / sys_short_recv_means_empty are constants: a translation
   unit that asks them, compiled as a Release library is (-O2 -DNDEBUG), references no such
   symbol; with ASYNC_SOCKET_TEST_HOOKS it does (so the check can tell).

usage: check_seam.py SOURCE_DIR CC NM     (Python 3 standard library only)
Tests_SRS_ASYNC_SOCKET_LINUX_99_180
"""

import os
import re
import subprocess
import sys
import tempfile

CALLS = ["socket", "connect", "accept4", "accept", "bind", "listen", "setsockopt", "getsockopt",
         "getsockname", "getpeername", "poll", "fstat", "read", "write", "close", "shutdown", "fcntl",
         "sendmsg", "recvmsg", "send", "recv", "sendto", "recvfrom", "epoll_create1", "epoll_ctl",
         "epoll_wait", "epoll_pwait", "eventfd", "timerfd_create", "timerfd_settime", "malloc", "calloc",
         "realloc", "free", "pthread_create", "syscall"]
EXEMPT = {"sys_linux.c", "sys_passthrough.h", "async_socket_tls.c"}
# (file, call) pairs src/sys.h names as deliberate: the logger's write of a line to stderr
EXEMPT_CALLS = {("logger.c", "write")}
# a call: the name not preceded by a word character, '.', '>' (a member) or "sys_"
CALL = re.compile(r"(?<![\w.>])(" + "|".join(CALLS) + r")\s*\(")


def strip_comments_and_strings(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def direct_calls(src_dir):
    found = []
    for name in sorted(os.listdir(src_dir)):
        if not name.endswith((".c", ".h")) or name in EXEMPT:
            continue
        with open(os.path.join(src_dir, name), encoding="utf-8") as f:
            text = strip_comments_and_strings(f.read())
        for number, line in enumerate(text.split("\n"), 1):
            for match in CALL.finditer(line):
                if (name, match.group(1)) in EXEMPT_CALLS:
                    continue
                found.append(f"src/{name}:{number}: {match.group(1)}(")
    return found


def undefined_symbols(source_dir, cc, nm, defines):
    probe = '#include "sys.h"\nint probe(void) { return sys_short_send_means_full() + sys_short_recv_means_empty(); }\n'
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "probe.c")
        o_file = os.path.join(tmp, "probe.o")
        with open(c_file, "w", encoding="utf-8") as f:
            f.write(probe)
        subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O2", "-DNDEBUG", *defines, "-I", os.path.join(source_dir, "src"),
                        "-I", os.path.join(source_dir, "include"), "-c", c_file, "-o", o_file], check=True)
        out = subprocess.run([nm, "-u", o_file], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source_dir, cc, nm = sys.argv[1:]
    failures = []
    calls = direct_calls(os.path.join(source_dir, "src"))
    if calls:
        failures.append("direct calls around src/sys.h:\n  " + "\n  ".join(calls))
    hooks = {"sys_short_send_means_full", "sys_short_recv_means_empty"}
    release = undefined_symbols(source_dir, cc, nm, []) & hooks
    if release:
        failures.append("a Release translation unit calls the test seam's " + ", ".join(sorted(release)))
    tests = undefined_symbols(source_dir, cc, nm, ["-DASYNC_SOCKET_TEST_HOOKS"]) & hooks
    if tests != hooks:
        failures.append("with ASYNC_SOCKET_TEST_HOOKS the test seam's questions should be calls; the probe cannot tell")
    print(f"check_seam: {len(calls)} direct calls in src/ (exempt: {', '.join(sorted(EXEMPT))}); "
          f"test hooks referenced: Release {len(release)}, test tree {len(tests)} of 2")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("check_seam: PASSED")


if __name__ == "__main__":
    main()
