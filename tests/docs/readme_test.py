#!/usr/bin/env python3
"""The README's promises, checked as a newcomer would follow them.

Usage: readme_test.py REPO_ROOT BUILD_DIR CASE [--flags=CFLAGS]

--flags: added to the build line (a sanitized tree's archive needs -fsanitize=...).

Cases:
  two_commands_first         the first screen (30 lines) names `make run` and `make test`
  client_example_runs        the README's `cc ...` line for examples/client_example.c builds it
                             (against BUILD_DIR instead of build/release) and the program echoes
                             "hello" through BUILD_DIR's asock-echo
Exit 0 on success; 1 with one line saying what was wrong.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LISTEN_RE = re.compile(r"^asock-echo: listening on 127\.0\.0\.1:(\d+)$")


class Failure(Exception):
    pass


def readme(root):
    return (Path(root) / "README.md").read_text()


def two_commands_first(root, build, flags):
    first_screen = "\n".join(readme(root).splitlines()[:30])
    for command in ("make run", "make test"):
        if command not in first_screen:
            raise Failure("README's first 30 lines do not name `%s`" % command)


def client_build_line(text):
    """The `cc ... examples/client_example.c ...` line of the README."""
    for line in text.splitlines():
        if line.startswith("cc ") and "examples/client_example.c" in line:
            return line
    raise Failure("README has no `cc ... examples/client_example.c` line")


def client_example_runs(root, build, flags):
    line = client_build_line(readme(root))
    with tempfile.TemporaryDirectory() as scratch:
        program = os.path.join(scratch, "client")
        command = line.replace("build/release/", build.rstrip("/") + "/")
        command = re.sub(r"-o \S+", "-o " + program, command) + (" " + flags if flags else "")
        built = subprocess.run(command, shell=True, cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=120)
        if built.returncode != 0:
            raise Failure("the README's build line failed (%s): %s" % (command, built.stdout.strip()))
        echo = subprocess.Popen([os.path.join(build, "asock-echo"), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            match = LISTEN_RE.match(echo.stdout.readline().rstrip("\n"))
            if match is None:
                raise Failure("asock-echo did not print its listening address")
            ran = subprocess.run([program, match.group(1)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, timeout=30)
        finally:
            echo.terminate()
            echo.communicate(timeout=15)
        if ran.returncode != 0 or ran.stdout != "6 bytes: hello\n":
            raise Failure("client exited %d printing %r (stderr %r), expected '6 bytes: hello'"
                          % (ran.returncode, ran.stdout, ran.stderr))


CASES = {"two_commands_first": two_commands_first, "client_example_runs": client_example_runs}


def main(argv):
    flags = ""
    if len(argv) == 5 and argv[4].startswith("--flags="):
        flags = argv[4][len("--flags="):].strip()
        argv = argv[:4]
    if len(argv) != 4 or argv[3] not in CASES:
        print("usage: readme_test.py REPO_ROOT BUILD_DIR CASE (one of %s)" % ", ".join(CASES), file=sys.stderr)
        return 2
    try:
        CASES[argv[3]](argv[1], argv[2], flags)
    except (Failure, subprocess.TimeoutExpired) as failure:
        print("FAIL %s: %s" % (argv[3], failure))
        return 1
    print("PASS %s" % argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
