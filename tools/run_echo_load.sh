#!/bin/sh
# `make run`: starts asock-echo on a free loopback port, runs asock-load against it, stops the
# server, and exits non-zero when either tool reports a failure.
#
# usage: run_echo_load.sh BIN_DIR [asock-load flags, e.g. --conns 4 --seconds 3]
# Codes_SRS_ASOCK_TOOLS_01_030
set -u
if [ $# -lt 1 ]; then
    echo "usage: run_echo_load.sh BIN_DIR [asock-load flags]" >&2
    exit 2
fi
bin=$1
shift
out=$(mktemp) || exit 1
echo_pid=""
cleanup() {
    if [ -n "$echo_pid" ]; then
        kill "$echo_pid" 2>/dev/null
        wait "$echo_pid" 2>/dev/null
    fi
    rm -f "$out"
}
trap 'cleanup; exit 1' INT TERM

# ASOCK_ECHO_FLAGS: more asock-echo flags (run_echo_load_tls.sh passes its TLS certificate there).
# shellcheck disable=SC2086
"$bin/asock-echo" --port 0 --bind 127.0.0.1 ${ASOCK_ECHO_FLAGS:-} >"$out" &
echo_pid=$!

# The server prints its address once it listens; wait up to 10 s for it.
port=""
tries=0
while [ "$tries" -lt 100 ]; do
    port=$(sed -n 's/^asock-echo: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out")
    if [ -n "$port" ] || ! kill -0 "$echo_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
    tries=$((tries + 1))
done
if [ -z "$port" ]; then
    echo "run: asock-echo did not start listening" >&2
    cleanup
    exit 1
fi
head -n 1 "$out"

"$bin/asock-load" --host 127.0.0.1 --port "$port" "$@"
load_status=$?

kill -TERM "$echo_pid"
wait "$echo_pid"
echo_status=$?
echo_pid=""
sed -n '2,$p' "$out"
rm -f "$out"

if [ "$load_status" -ne 0 ] || [ "$echo_status" -ne 0 ]; then
    echo "run: FAILED (asock-load exit $load_status, asock-echo exit $echo_status)" >&2
    exit 1
fi
