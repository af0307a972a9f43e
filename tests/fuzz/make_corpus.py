#!/usr/bin/env python3
"""Writes the seed corpus of the async_socket fuzz harness (format: tests/fuzz/README.md).

Usage: python3 tests/fuzz/make_corpus.py [DIR]   (default: tests/fuzz/corpus next to this file)

Each seed is a short script that reaches one path of the library (a partial send resumed after
readiness, an end of stream behind data, a close from inside a hook, ...), so that the fuzzer
starts from inputs that already get deep. Regression inputs (crashes the fuzzer found) are added
to the same directory by hand, named regression-*, and are not written by this script.
"""

import sys
from pathlib import Path

# config bits (first byte)
SEND_ALL, RECV_ALL, DESTROY_ONLY, NO_SETTLE, NO_OPEN = 0x01, 0x02, 0x04, 0x08, 0x10
# steps (high nibble of an opcode)
SEND, RECEIVE, NOTIFY, CLOSE, SEND_RESULT, RECV_RESULT, FD, CALLBACK_ACTION, SETTLE = range(9)
# what the next callback does (low nibble of a CALLBACK_ACTION step)
CB_CLOSE, CB_DESTROY, CB_SEND, CB_RECEIVE = range(4)
# transport results (low nibble of a *_RESULT step)
ALL, PARTIAL, EAGAIN, EINTR, ECONNRESET, ERROR, ZERO, HOOK_CLOSE = range(8)
# fd changes (low nibble of an FD step)
PEER_WRITES, DRAIN_FD, FILL_FD, PEER_READS, PEER_SHUTDOWN, PEER_CLOSES = range(6)


def op(step, arg=0):
    return bytes([(step << 4) | arg])


def send(*sizes, big=False):
    """A send of len(sizes) buffers; each size is 1..256 (times 16 when big)."""
    assert 1 <= len(sizes) <= 8
    return op(SEND, (len(sizes) - 1) | (8 if big else 0)) + bytes(s - 1 for s in sizes)


def receive(*sizes, big=False):
    assert 1 <= len(sizes) <= 8
    return op(RECEIVE, (len(sizes) - 1) | (8 if big else 0)) + bytes(s - 1 for s in sizes)


def sr(kind, amount=0):
    return op(SEND_RESULT, kind) + bytes([amount])


def rr(kind, amount=0):
    return op(RECV_RESULT, kind) + bytes([amount])


def fd(change):
    return op(FD, change)


def callback(action, *sizes):
    """The next callback closes, destroys, or issues a send / receive of these buffer sizes."""
    sizes = sizes or (1,)
    return op(CALLBACK_ACTION, action) + bytes([len(sizes) - 1]) + bytes(s - 1 for s in sizes)


def notify(out=False):
    return op(NOTIFY, 1 if out else 0)


SEEDS = {
    "send-whole": bytes([SEND_ALL | RECV_ALL]) + send(10),
    "send-eight-buffers": bytes([SEND_ALL]) + send(1, 2, 3, 4, 5, 6, 7, 8),
    "send-big": bytes([SEND_ALL]) + send(200, 256, big=True),
    "send-partial-then-ready": bytes([0]) + sr(PARTIAL, 3) + sr(EAGAIN) + send(10, 20, 30)
        + sr(ALL) + sr(ALL) + sr(ALL) + fd(PEER_WRITES),
    "send-eagain-queue-behind": bytes([0]) + send(5) + send(6, 7) + send(8) + sr(ALL) + sr(ALL)
        + fd(PEER_WRITES) + sr(PARTIAL, 1) + fd(PEER_WRITES) + fd(PEER_WRITES),
    "send-eintr": bytes([SEND_ALL]) + sr(EINTR) + sr(EINTR) + sr(PARTIAL, 2) + sr(EINTR) + send(9, 9),
    "send-reset-inline": bytes([SEND_ALL]) + sr(ECONNRESET) + send(4) + send(4),
    "send-error-queued": bytes([0]) + sr(PARTIAL, 1) + sr(EAGAIN) + send(8) + send(8) + sr(ERROR, 0)
        + fd(PEER_WRITES),
    "send-epipe-queued": bytes([0]) + send(3, 3) + sr(ERROR, 1) + fd(PEER_WRITES),
    "send-zero": bytes([0]) + sr(ZERO) + send(7) + send(7) + sr(ALL) + fd(PEER_WRITES),
    "send-hook-close-inline": bytes([SEND_ALL]) + sr(HOOK_CLOSE) + send(5) + send(5),
    "send-hook-close-queued": bytes([0]) + send(5, 6) + receive(10) + sr(PARTIAL, 1) + sr(HOOK_CLOSE)
        + fd(PEER_WRITES),
    "receive-whole": bytes([RECV_ALL]) + receive(16),
    "receive-eight-buffers": bytes([RECV_ALL]) + receive(1, 2, 3, 4, 5, 6, 7, 8),
    "receive-partial-eof": bytes([0]) + rr(PARTIAL, 4) + rr(ZERO) + receive(32) + receive(32)
        + fd(PEER_WRITES),
    "receive-data-then-eof": bytes([0]) + receive(8) + receive(8) + rr(ALL) + rr(PARTIAL, 2) + rr(ZERO)
        + fd(PEER_WRITES) + fd(PEER_WRITES),
    "receive-eagain-ready": bytes([0]) + rr(EAGAIN) + receive(20) + rr(PARTIAL, 9) + fd(PEER_WRITES)
        + rr(ALL) + fd(PEER_WRITES),
    "receive-eintr": bytes([0]) + rr(EINTR) + rr(EINTR) + rr(ALL) + receive(3, 3),
    "receive-reset": bytes([0]) + rr(PARTIAL, 1) + rr(ECONNRESET) + receive(10) + receive(10)
        + fd(PEER_WRITES),
    "receive-error": bytes([0]) + rr(ERROR, 0) + receive(10) + receive(4) + rr(ALL) + fd(PEER_WRITES),
    "receive-hook-close": bytes([0]) + receive(10) + receive(10) + notify() + rr(PARTIAL, 3)
        + rr(HOOK_CLOSE, 1) + fd(PEER_WRITES),
    "receive-peer-shutdown": bytes([RECV_ALL]) + receive(4) + fd(PEER_SHUTDOWN) + receive(4),
    "notify-in": bytes([0]) + notify() + fd(PEER_WRITES) + notify() + fd(DRAIN_FD) + notify(),
    "notify-out-full": bytes([0]) + fd(FILL_FD) + notify(out=True) + fd(PEER_READS) + notify(out=True),
    "notify-peer-closes": bytes([0]) + notify() + notify(out=True) + fd(PEER_CLOSES) + notify(),
    "callback-close": bytes([SEND_ALL | RECV_ALL]) + callback(CB_CLOSE) + send(4) + receive(4) + send(4),
    "callback-close-receive": bytes([0]) + receive(4) + receive(4) + send(3) + callback(CB_CLOSE)
        + rr(PARTIAL, 1) + fd(PEER_WRITES),
    "callback-destroy": bytes([SEND_ALL | RECV_ALL]) + receive(4) + callback(CB_DESTROY) + send(4) + fd(PEER_WRITES),
    "callback-destroy-pending": bytes([0]) + receive(4) + send(5) + notify() + callback(CB_DESTROY) + rr(PARTIAL, 1)
        + fd(PEER_WRITES),
    "callback-send-nested": bytes([SEND_ALL]) + receive(4) + callback(CB_SEND, 7, 9) + send(3) + send(3),
    "callback-send-from-receive": bytes([SEND_ALL | RECV_ALL]) + callback(CB_SEND, 20) + receive(6) + fd(PEER_WRITES),
    "callback-receive": bytes([0]) + receive(4) + callback(CB_RECEIVE, 5, 6) + rr(ALL) + rr(PARTIAL, 2)
        + fd(PEER_WRITES) + fd(PEER_WRITES),
    "receive-hook-close-with-data": bytes([0]) + receive(10, 10) + rr(ALL) + rr(HOOK_CLOSE, 2) + fd(PEER_WRITES),
    "close-pending": bytes([0]) + send(10) + send(10) + receive(5) + notify() + op(CLOSE) + send(1)
        + receive(1) + notify(),
    "destroy-only-pending": bytes([DESTROY_ONLY]) + send(10) + receive(5) + notify(out=True) + receive(5),
    "never-opened": bytes([NO_OPEN]) + send(3) + receive(3) + notify() + op(CLOSE),
    "no-settle-race": bytes([NO_SETTLE]) + send(50) + receive(50) + sr(PARTIAL, 7) + rr(PARTIAL, 7)
        + fd(PEER_WRITES) + send(20) + fd(PEER_WRITES) + rr(ALL) + sr(ALL) + fd(PEER_WRITES) + op(SETTLE),
    "duplex-mixed": bytes([0]) + send(30, 30) + receive(25, 25) + sr(PARTIAL, 10) + rr(PARTIAL, 10)
        + fd(PEER_WRITES) + sr(EINTR) + sr(ALL) + sr(ALL) + rr(ALL) + fd(PEER_WRITES) + notify()
        + fd(PEER_SHUTDOWN) + rr(ZERO) + receive(5),
}


def main():
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (directory / name).write_bytes(data)
    print(f"{len(SEEDS)} seeds written to {directory}")


if __name__ == "__main__":
    main()
