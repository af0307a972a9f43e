#!/usr/bin/env python3
"""End-to-end tests of examples/chat_server.c, one case per run (each its own ctest entry).

Usage: chat_server_test.py CHAT_SERVER CASE

The server listens on 127.0.0.1 port 0. With CHAT_SERVER_WRAPPER set (e.g. "valgrind
--error-exitcode=99 --leak-check=full"), the server runs under that command, and a case fails
when the server's exit status is not 0. Every wait is bounded; a case fails with a message and
exit status 1. Python 3 standard library only.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

LISTEN_RE = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")
# Slow under valgrind: every bound is multiplied by this.
SLOW = 10 if os.environ.get("CHAT_SERVER_WRAPPER") else 1


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Server:
    def __init__(self, program, *extra):
        wrapper = shlex.split(os.environ.get("CHAT_SERVER_WRAPPER", ""))
        self.process = subprocess.Popen(wrapper + [program, "--port", "0", *extra], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().rstrip("\n")
        match = LISTEN_RE.match(line)
        if match is None:
            self.process.kill()
            raise Failure("chat_server printed %r instead of 'listening on 127.0.0.1:PORT'" % line)
        self.port = int(match.group(1))

    def stop(self):
        """SIGINT; returns (exit status, rest of stdout, stderr)."""
        self.process.send_signal(signal.SIGINT)
        try:
            out, err = self.process.communicate(timeout=20 * SLOW)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise Failure("chat_server did not stop within %d s of SIGINT" % (20 * SLOW))
        return self.process.returncode, out, err

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


class Client:
    """A chat client that reads whole lines, with a deadline on every wait."""

    def __init__(self, port, receive_buffer=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        self.pending = b""
        self.eof = False
        self.announcements = []  # the "* ..." lines line_ending skipped
        self.name = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def line(self, timeout=5):
        deadline = time.monotonic() + timeout * SLOW
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            check(left > 0 and not self.eof, "%s: no complete line within %d s (have %r)" % (self.name, timeout * SLOW, self.pending[:80]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.eof = not data
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        return line

    def line_ending(self, text, timeout=5):
        """The next line that ends with text (announcements of joins and departures are skipped)."""
        while True:
            line = self.line(timeout)
            if line.endswith(text):
                return line
            check(line.startswith(b"* "), "%s: unexpected line %r while waiting for %r" % (self.name, line[:80], text[:80]))
            self.announcements.append(line)

    def rest(self, timeout=5):
        """Everything up to the end of stream."""
        deadline = time.monotonic() + timeout * SLOW
        while not self.eof:
            left = deadline - time.monotonic()
            check(left > 0, "%s: no end of stream within %d s" % (self.name, timeout * SLOW))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            self.eof = not data
            self.pending += data
        return self.pending


def joined(clients):
    """Waits until every client has seen every later client's join (so all are in the list)."""
    for i, client in enumerate(clients):
        for later in clients[i + 1:]:
            client.line_ending(("%s joined" % later.name).encode())


def case_lines_reach_every_other_client(program):
    # Tests_SRS_ASYNC_SOCKET_LISTENER_01_006
    server = Server(program)
    try:
        clients = [Client(server.port) for _ in range(3)]
        joined(clients)
        a, b, c = clients
        a.sock.sendall(b"hel")  # a partial line, finished later
        time.sleep(0.05)
        a.sock.sendall(b"lo\r\nsecond line\n")  # CRLF, and two lines in one segment
        for other in (b, c):
            check(other.line_ending(b"hello").startswith(a.name.encode()), "the line does not name its sender")
            other.line_ending(b"second line")
        big = b"".join(b"%09d\n" % i for i in range(1000)).replace(b"\n", b"-")  # 10,000 bytes
        c.sock.sendall(big + b"\n")
        for other in (a, b):
            line = other.line_ending(big)
            check(len(line) == len(c.name) + 2 + 10000, "the 10,000-byte line arrived as %d bytes" % len(line))
        b.sock.close()
        a.line_ending(("%s left" % b.name).encode())
        c.sock.sendall(b"after b left\n")
        a.line_ending(b"after b left")
        check(not a.pending and not c.pending, "a line reached its own sender")
        status, _, err = server.stop()
        check(status == 0, "chat_server exited with %d: %s" % (status, err[-2000:]))
    finally:
        server.kill()


def case_a_client_that_does_not_read_is_dropped(program):
    server = Server(program)
    try:
        reader = Client(server.port)
        stalled = Client(server.port, receive_buffer=4096)
        sender = Client(server.port)
        joined([reader, stalled, sender])
        chunk = b"y" * 9999 + b"\n"
        deadline = time.monotonic() + 30 * SLOW
        dropped = False
        sent = 0
        while not dropped:
            check(time.monotonic() < deadline, "the client that does not read was not dropped after %d bytes" % sent)
            sender.sock.sendall(chunk * 10)
            sent += len(chunk) * 10
            for _ in range(10):
                reader.line_ending(chunk[:-1])  # the reader goes on getting every line
            dropped = any(line.startswith(("* %s left" % stalled.name).encode()) for line in reader.announcements)
        rest = stalled.rest(timeout=10)  # the server closed it: its stream ends
        check(len(rest) < sent, "the stalled client got everything (%d bytes)" % len(rest))
        sender.sock.sendall(b"still here\n")
        reader.line_ending(b"still here")
        status, _, err = server.stop()
        check(status == 0, "chat_server exited with %d: %s" % (status, err[-2000:]))
        check("does not read" in err, "the drop was not logged: %r" % err[-500:])
    finally:
        server.kill()


def case_sigint_says_goodbye_to_every_client(program):
    server = Server(program)
    try:
        clients = [Client(server.port) for _ in range(4)]
        joined(clients)
        status, out, err = server.stop()
        for client in clients:
            rest = client.rest()
            check(rest.endswith(b"* the server is shutting down\n"), "%s: no goodbye before the end of stream: %r" % (client.name, rest[-80:]))
        check(status == 0, "chat_server exited with %d: %s" % (status, err[-2000:]))
        check(out.strip() == "stopped", "chat_server printed %r after SIGINT" % out)
    finally:
        server.kill()


def case_bad_arguments_exit_2(program):
    for argv in ([], ["--port"], ["--port", "70000"], ["--port", "1", "--bind"]):
        result = subprocess.run([program] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        check(result.returncode == 2 and "usage" in result.stderr, "%r: exit %d, %r" % (argv, result.returncode, result.stderr))
    # an address that cannot be bound: one line naming the cause, exit 1
    result = subprocess.run([program, "--port", "0", "--bind", "192.0.2.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=10)
    check(result.returncode == 1 and "192.0.2.1" in result.stderr, "unbindable address: exit %d, %r" % (result.returncode, result.stderr))


CASES = {name[len("case_"):]: function for name, function in globals().items() if name.startswith("case_")}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: chat_server_test.py CHAT_SERVER {%s}" % ",".join(CASES), file=sys.stderr)
        return 2
    try:
        CASES[sys.argv[2]](sys.argv[1])
    except Failure as failure:
        print("FAIL %s: %s" % (sys.argv[2], failure), file=sys.stderr)
        return 1
    print("PASS %s" % sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
