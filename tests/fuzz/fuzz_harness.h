/* The fuzz harness (fuzz_async_socket.c), as libFuzzer and the corpus replay driver call it. */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Initialises the platform with one completion port worker (unless ASYNC_SOCKET_WORKERS is set)
 * and registers the barrier the harness waits with; idempotent. */
void fuzz_harness_init(void);

/* Runs one input (format: tests/fuzz/README.md); aborts with a message on a violated invariant. */
int fuzz_harness_run(const uint8_t* data, size_t size);

/* Undoes fuzz_harness_init, so that a replay ends with nothing allocated. */
void fuzz_harness_deinit(void);

int LLVMFuzzerInitialize(int* argc, char*** argv);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif /* FUZZ_HARNESS_H */
