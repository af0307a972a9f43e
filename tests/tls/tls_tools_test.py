#!/usr/bin/env python3
"""End-to-end tests of the tools over TLS: asock-echo --tls-cert/--tls-key and asock-load --tls,
one case per run (each is its own ctest entry).

Usage: tls_tools_test.py ASOCK_ECHO ASOCK_LOAD OPENSSL CASE

Certificates are made for each case with the openssl command in a temporary directory. Servers
listen on 127.0.0.1 only. Every child process has a timeout and is killed if it overstays; a case
fails with a message and exit status 1. Python 3 standard library only.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

LISTEN_RE = re.compile(r"^asock-echo: listening on 127\.0\.0\.1:(\d+)$")
SUMMARY_RE = re.compile(r"^asock-echo: stopped: (\d+) connections, (\d+) bytes echoed$")


class Failure(Exception):
    pass


class Skipped(Exception):
    """The case (or the part of it that is its point) cannot run on this machine; the message
    says why. The case exits 77, which ctest reports as skipped."""
    pass


def localhost_problem():
    """None when the name "localhost" resolves to 127.0.0.1 here; otherwise why not (a chroot or
    a container without /etc/hosts has no such name)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None, socket.AF_INET, socket.SOCK_STREAM)}
    except socket.gaierror as error:
        return "the name 'localhost' does not resolve here (getaddrinfo: %s; is there a 'localhost' line in /etc/hosts?)" % error
    if "127.0.0.1" not in addresses:
        return "the name 'localhost' resolves to %s here, not to 127.0.0.1" % ", ".join(sorted(addresses))
    return None


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, timeout=30):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def make_certificate(openssl, directory, name, alt_names):
    """A self-signed EC certificate and its key, as PEM files; returns (certificate, key)."""
    certificate = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    result = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", "2", "-keyout", key, "-out", certificate, "-subj", "/CN=" + name,
                  "-addext", "subjectAltName=" + alt_names])
    check(result.returncode == 0, "openssl req failed: %s" % result.stderr)
    return certificate, key


class EchoServer:
    """asock-echo over TLS on 127.0.0.1 port 0; reads the port from its first line."""

    def __init__(self, echo, certificate, key):
        self.process = subprocess.Popen([echo, "--port", "0", "--bind", "127.0.0.1", "--tls-cert", certificate,
                                         "--tls-key", key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().rstrip("\n")
        match = LISTEN_RE.match(line)
        if match is None:
            self.kill()
            raise Failure("asock-echo printed %r instead of its listening address" % line)
        self.port = int(match.group(1))

    def stop(self, timeout=15):
        """SIGTERM; returns (exit code, rest of stdout, stderr)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("asock-echo did not stop within %d s of SIGTERM" % timeout)
        return self.process.returncode, out, err

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def load_json(load, port, *flags, size=1000, timeout=30):
    result = run([load, "--port", str(port), "--conns", "4", "--size", str(size), "--seconds", "1", "--json", *flags],
                 timeout=timeout)
    lines = result.stdout.splitlines()
    report = json.loads(lines[0]) if len(lines) == 1 else None
    return result, report


def with_server(echo, openssl, body):
    """Runs body(server, directory, certificate) with a TLS echo server; stops it after, returns
    its (exit code, stdout, stderr)."""
    with tempfile.TemporaryDirectory(prefix="asock_tls_") as directory:
        certificate, key = make_certificate(openssl, directory, "localhost", "DNS:localhost,IP:127.0.0.1")
        server = EchoServer(echo, certificate, key)
        try:
            body(server, directory, certificate)
        finally:
            stopped = server.stop()
    return stopped


# ---- cases ----

def echo_and_load_over_tls_verified(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_018
    # Tests_SRS_ASYNC_SOCKET_TLS_01_019
    reports = []
    # verifying the certificate by its DNS name needs the name to resolve; by address always runs
    problem = localhost_problem()
    hosts = ("127.0.0.1",) if problem else ("localhost", "127.0.0.1")

    def body(server, directory, certificate):
        for host in hosts:
            result, report = load_json(load, server.port, "--host", host, "--tls", "--tls-ca", certificate)
            check(result.returncode == 0, "asock-load --tls to %s exited %d: %s" % (host, result.returncode, result.stderr))
            check(report is not None, "asock-load --json printed %r" % result.stdout)
            check(report["round_trips"] > 0 and report["errors"] == 0 and report["mismatches"] == 0,
                  "asock-load --tls to %s: %r" % (host, report))
            reports.append(report)

    code, out, err = with_server(echo, openssl, body)
    check(code == 0, "asock-echo exited %d: %s" % (code, err))
    match = SUMMARY_RE.match(out.strip())
    check(match is not None, "asock-echo printed %r" % out)
    # every byte of every completed round trip was echoed; a message in flight at the end may add one
    echoed = int(match.group(2))
    expected = sum(r["round_trips"] for r in reports) * 1000
    connections = 4 * len(hosts)
    check(int(match.group(1)) == connections, "asock-echo counted %s connections, expected %d" % (match.group(1), connections))
    check(expected <= echoed <= expected + connections * 1000, "echoed %d bytes for %d bytes of round trips" % (echoed, expected))
    check("ERROR" not in err, "asock-echo logged errors: %s" % err)
    if problem:
        raise Skipped("the 127.0.0.1 half passed; the 'localhost' half did not run: " + problem)


def load_tls_insecure_accepts_any_certificate(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_019
    def body(server, directory, certificate):
        result, report = load_json(load, server.port, "--tls-insecure", size=20000)
        check(result.returncode == 0, "asock-load --tls-insecure exited %d: %s" % (result.returncode, result.stderr))
        check(report["round_trips"] > 0 and report["errors"] == 0 and report["mismatches"] == 0, "%r" % report)

    code, _, err = with_server(echo, openssl, body)
    check(code == 0, "asock-echo exited %d: %s" % (code, err))


def load_tls_rejects_a_server_it_cannot_verify(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_019
    def body(server, directory, certificate):
        other, _ = make_certificate(openssl, directory, "other", "DNS:other.invalid")
        # numeric addresses: what is tested is the trust, not the name
        cases = (("--host", "127.0.0.1", "--tls-ca", other, "certificate verify failed"),
                 ("--host", "127.0.0.1", "--tls", "certificate verify failed"))
        for case in cases:
            flags, needle = case[:-1], case[-1]
            result, report = load_json(load, server.port, *flags)
            check(result.returncode == 1, "asock-load %s exited %d" % (" ".join(flags), result.returncode))
            check(report is not None and report["errors"] > 0 and report["round_trips"] == 0,
                  "asock-load %s reported %r" % (" ".join(flags), result.stdout))
            check(needle in result.stderr, "asock-load %s: no %r on stderr: %r" % (" ".join(flags), needle, result.stderr))

    code, _, _ = with_server(echo, openssl, body)
    check(code == 0, "asock-echo exited %d" % code)


def plain_load_against_a_tls_server_fails(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_018
    def body(server, directory, certificate):
        result, report = load_json(load, server.port)
        check(result.returncode == 1, "plain asock-load against TLS exited %d" % result.returncode)
        check(report is not None and report["errors"] > 0, "plain asock-load reported %r" % result.stdout)

    code, _, err = with_server(echo, openssl, body)
    check(code == 0, "asock-echo exited %d" % code)
    check("wrong version number" in err or "TLS socket" in err, "asock-echo did not log the TLS failure: %r" % err)


def tls_flag_errors(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_018
    # Tests_SRS_ASYNC_SOCKET_TLS_01_019
    usage = [
        [echo, "--port", "0", "--tls-cert", "x.crt"],
        [echo, "--port", "0", "--tls-key", "x.key"],
        [echo, "--port", "0", "--tls-cert"],
        [load, "--port", "1", "--tls-ca"],
    ]
    for argv in usage:
        result = run(argv)
        check(result.returncode == 2, "%s exited %d" % (" ".join(argv[1:]), result.returncode))
        check(len(result.stderr.splitlines()) == 1, "%s: stderr %r is not one line" % (" ".join(argv[1:]), result.stderr))
        check(result.stdout == "", "%s printed %r" % (" ".join(argv[1:]), result.stdout))
    with tempfile.TemporaryDirectory(prefix="asock_tls_") as directory:
        missing = os.path.join(directory, "missing.crt")
        result = run([echo, "--port", "0", "--bind", "127.0.0.1", "--tls-cert", missing, "--tls-key", missing])
        check(result.returncode == 1, "asock-echo with a missing certificate exited %d" % result.returncode)
        check(missing in result.stderr, "the error does not name %s: %r" % (missing, result.stderr))
        check(result.stdout == "", "asock-echo printed %r" % result.stdout)
        result = run([load, "--port", "1", "--tls-ca", missing])
        check(result.returncode == 1, "asock-load with a missing CA file exited %d" % result.returncode)
        check(missing in result.stderr, "the error does not name %s: %r" % (missing, result.stderr))
    for tool in (echo, load):
        result = run([tool, "--help"])
        check(result.returncode == 0 and "--tls" in result.stdout, "%s --help does not mention --tls" % tool)


def run_tls_script_prints_the_table(echo, load, openssl):
    # Tests_SRS_ASYNC_SOCKET_TLS_01_020
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "run_echo_load_tls.sh")
    bin_dir = os.path.dirname(os.path.abspath(echo))
    check(os.path.dirname(os.path.abspath(load)) == bin_dir, "asock-echo and asock-load are not in one directory")
    environment = dict(os.environ, PATH=os.path.dirname(openssl) + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run(["sh", script, bin_dir, "--conns", "2", "--seconds", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=40, env=environment)
    check(result.returncode == 0, "run_echo_load_tls.sh exited %d: %s" % (result.returncode, result.stderr))
    lines = result.stdout.splitlines()
    check(len(lines) > 3 and LISTEN_RE.match(lines[0]) is not None, "no listening line first: %r" % result.stdout)
    table = dict(re.findall(r"^  (round trips|errors|mismatches) +(\d+)$", result.stdout, re.M))
    check(int(table.get("round trips", "0")) > 0 and table.get("errors") == "0" and table.get("mismatches") == "0",
          "the table shows %r" % table)
    check(SUMMARY_RE.match(lines[-1]) is not None, "no summary line last: %r" % lines[-1])
    check("ERROR" not in result.stderr, "errors logged: %s" % result.stderr)


CASES = {f.__name__: f for f in (echo_and_load_over_tls_verified, load_tls_insecure_accepts_any_certificate,
                                 load_tls_rejects_a_server_it_cannot_verify, plain_load_against_a_tls_server_fails,
                                 tls_flag_errors, run_tls_script_prints_the_table)}


def main(argv):
    if len(argv) != 5 or argv[4] not in CASES:
        print("usage: tls_tools_test.py ASOCK_ECHO ASOCK_LOAD OPENSSL CASE (one of %s)" % ", ".join(CASES),
              file=sys.stderr)
        return 2
    try:
        CASES[argv[4]](argv[1], argv[2], argv[3])
    except Failure as failure:
        print("FAILED %s: %s" % (argv[4], failure))
        return 1
    except Skipped as skipped:
        print("SKIPPED %s: %s" % (argv[4], skipped))
        return 77
    except subprocess.TimeoutExpired as expired:
        print("FAILED %s: %s" % (argv[4], expired))
        return 1
    print("OK %s" % argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
