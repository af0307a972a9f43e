#!/usr/bin/env python3
"""Checks that every Makefile target installs what it uses on a fresh machine.

Usage: makefile_needs.py REPO_ROOT

Asks GNU make itself for the value of each *_NEEDS list (make --eval, nothing is built), then
checks that every list a recipe passes to install_missing is defined and holds the Debian packages
that target's steps run. Exits 1 with one line per problem. Python 3 standard library only.
"""

import re
import subprocess
import sys
from pathlib import Path

# The packages each list must name (the list's own line in the Makefile may add more).
BUILD = {"gcc", "cmake", "pkg-config", "make", "libc6-dev", "libssl-dev"}
REQUIRED = {
    "BUILD_NEEDS": BUILD,
    "TEST_NEEDS": BUILD | {"libcmocka-dev", "python3", "libuv1-dev", "iproute2", "openssl"},
    "BENCH_NEEDS": BUILD | {"libuv1-dev", "strace", "python3"},
    "CHECK_NEEDS": BUILD | {"libcmocka-dev", "python3", "iproute2", "openssl", "clang", "valgrind",
                            "libclang-rt-14-dev"},
    "CONSUMER_NEEDS": BUILD | {"g++", "binutils", "openssl"},  # openssl: the TLS consumer's certificate
    "FUZZ_NEEDS": BUILD | {"clang", "libclang-rt-14-dev"},
}


def make_value(root, name):
    """The expanded value of a make variable, as make sees it after reading the Makefile."""
    rule = "print-needs-value: ; @echo '$(%s)'" % name
    result = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(root), "--eval", rule,
                             "print-needs-value"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError("make could not print %s: %s" % (name, result.stderr.strip()))
    return result.stdout.split()


def packages(needs):
    """kind:what:package entries -> the set of packages."""
    return {need.rsplit(":", 1)[-1] for need in needs if need.count(":") >= 2}


def check_without_sudo(root):
    """A user who is not root and has no sudo is told what to run, not `sudo: not found`."""
    import os
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as bin_dir:
        for tool in ("make", "sh", "id", "dpkg", "pkg-config"):
            found = shutil.which(tool)
            if found:
                os.symlink(found, os.path.join(bin_dir, tool))
        rule = "probe-no-sudo: ; $(call install_missing,cmd:asock-no-such-command:asock-no-such-package)"
        result = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(root), "--eval", rule, "probe-no-sudo",
                                 "SUDO=sudo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30,
                                env={"PATH": bin_dir, "HOME": os.environ.get("HOME", "/")})
    problems = []
    if result.returncode == 0:
        problems.append("without root and sudo, a missing package did not fail the target")
    if "installing:" in result.stdout or "sudo: not found" in result.stderr:
        problems.append("without root and sudo, make tried to install: %r" % (result.stdout + result.stderr))
    if "apt-get install -y --no-install-recommends asock-no-such-package" not in result.stderr:
        problems.append("without root and sudo, make does not say what to run as root: %r" % result.stderr)
    return problems


def main(argv):
    if len(argv) != 2:
        print("usage: makefile_needs.py REPO_ROOT", file=sys.stderr)
        return 2
    root = Path(argv[1])
    problems = []
    text = (root / "Makefile").read_text()
    used = set(re.findall(r"\$\(call install_missing,\$\(([A-Z_]+)\)\)", text))
    for name in sorted(used | set(REQUIRED)):
        needs = make_value(root, name)
        if not needs:
            problems.append("%s is empty or undefined, yet a recipe installs it" % name)
            continue
        malformed = [need for need in needs if need.count(":") < 2]
        if malformed:
            problems.append("%s has entries that are not kind:what:package: %s" % (name, " ".join(malformed)))
        missing = REQUIRED.get(name, set()) - packages(needs)
        if missing:
            problems.append("%s lacks %s" % (name, " ".join(sorted(missing))))
    problems.extend(check_without_sudo(root))
    for problem in problems:
        print("makefile_needs: " + problem)
    print("makefile_needs: %d lists checked, %d problems" % (len(used | set(REQUIRED)), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
