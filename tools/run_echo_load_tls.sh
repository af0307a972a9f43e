#!/bin/sh
# `make run-tls`: `make run` over TLS. Makes a self-signed certificate for 127.0.0.1 in a
# temporary directory (openssl command), then runs tools/run_echo_load.sh with asock-echo serving
# TLS and asock-load verifying the server against that certificate.
#
# usage: run_echo_load_tls.sh BIN_DIR [asock-load flags, e.g. --conns 4 --seconds 3]
# Codes_SRS_ASYNC_SOCKET_TLS_01_020
set -u
if [ $# -lt 1 ]; then
    echo "usage: run_echo_load_tls.sh BIN_DIR [asock-load flags]" >&2
    exit 2
fi
bin=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'rm -rf "$dir"; exit 1' INT TERM
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -keyout "$dir/server.key" -out "$dir/server.crt" -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1" 2>"$dir/openssl.err"; then
    cat "$dir/openssl.err" >&2
    echo "run-tls: cannot make a certificate with openssl" >&2
    exit 1
fi
ASOCK_ECHO_FLAGS="--tls-cert $dir/server.crt --tls-key $dir/server.key" \
    sh "$here/run_echo_load.sh" "$bin" --tls-ca "$dir/server.crt" "$@"
