/* What the two TLS benchmark programs share (bench_tls_async_socket, bench_tls_epoll): the
 * certificate, the pinned cipher suite and the pieces of the full-duplex scenario.
 *
 * Scenario "tls": one loopback connection over TLS 1.3, both ends in one process; each end keeps
 * BENCH_STREAM_OUTSTANDING sends of BENCH_STREAM_CHUNK bytes outstanding and receives at the same
 * time, and checks every byte it receives against the stream pattern (each direction has its own
 * pattern offset). The handshake happens during the warm-up. The figure is MB/s each way: the
 * bytes both ends received in the measured phase, halved. */
#ifndef BENCH_TLS_COMMON_H
#define BENCH_TLS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

/* OpenSSL's first choice for TLS 1.3 on this kind of machine (AES-NI): what an application that
 * keeps OpenSSL's defaults gets. BENCH_TLS_CIPHERSUITES overrides it for both programs. */
#define BENCH_TLS_CIPHERSUITES_DEFAULT "TLS_AES_256_GCM_SHA384"

/* Pattern offset of the server's stream, far from the client's (which starts at 0). */
#define BENCH_TLS_SERVER_STREAM ((uint64_t)1 << 40)

typedef struct BENCH_TLS_FILES_TAG
{
    char directory[64];
    char certificate[128];
    char key[128];
} BENCH_TLS_FILES;

/* A self-signed P-256 certificate for "localhost" and its key, in a new directory under /tmp.
 * Returns 0, or -1 when anything failed. */
int bench_tls_files_make(BENCH_TLS_FILES* files);
void bench_tls_files_remove(const BENCH_TLS_FILES* files);

/* The TLS 1.3 cipher suites both programs pin (BENCH_TLS_CIPHERSUITES or the default). */
const char* bench_tls_cipher_suites(void);

/* Whether the OpenSSL loop asks for kernel TLS (BENCH_TLS_KTLS=1). */
bool bench_tls_want_ktls(void);

#endif /* BENCH_TLS_COMMON_H */
