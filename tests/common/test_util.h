/* Helpers shared by the integration tests: loopback socket pairs, fd counting, time, and a byte
 * pattern that depends on the absolute stream offset, so lost, duplicated or reordered bytes show
 * up as a mismatch at a known position. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A connected TCP pair over 127.0.0.1: fds[0] is the client end, fds[1] the accepted server end.
 * Both are blocking, close-on-exec and TCP_NODELAY. SO_SNDBUF / SO_RCVBUF are set on both ends
 * before the connection is made when the value is > 0 (0 keeps the kernel default), so a small
 * value forces the slow paths (partial sends, EAGAIN) for real. Returns 0, or -1 with errno set. */
int test_tcp_pair(int fds[2], int sndbuf, int rcvbuf);

/* The number of file descriptors this process has open. */
int test_count_open_fds(void);

/* The number of threads in this process (the entries of /proc/self/task); fails the current cmocka
 * test when that cannot be read. A thread joined a moment ago may still be listed. */
int test_count_threads(void);

/* What a unit test must give back: live library allocations (sys_fault_live_allocations), open
 * fds and threads. */
typedef struct TEST_BASELINE_TAG
{
    int64_t allocations;
    int fds;
    int threads;
} TEST_BASELINE;

/* Disarms sys_fault on this thread, resets the send and receive limits to 0, then records the
 * baseline. */
TEST_BASELINE test_baseline_take(void);

/* Asserts that the live allocations and the open fds are back to the baseline (threads are left
 * to the caller: not every test can wait for them). */
void test_baseline_assert_back_to(TEST_BASELINE baseline);

/* Reads exactly len bytes from a blocking or non-blocking fd (polling, then recv with
 * MSG_DONTWAIT); fails the current cmocka test when they have not all arrived after 5 s or recv
 * fails. */
void test_read_exact(int fd, uint8_t* buf, size_t len);

/* The count a long test loop runs: `full`, or `slow` when the environment variable
 * ASYNC_SOCKET_SLOW_CHECK is set to a non-zero number (the valgrind and TSan trees of make check
 * set it). Memcheck runs the code tens of times slower and TSan several times; such a test keeps
 * its assertions and its timeout and does less work. */
uint32_t test_count_unless_slow(uint32_t full, uint32_t slow);

/* What TEST_WAIT_UNTIL multiplies its timeout by: 1, or 4 when ASYNC_SOCKET_SLOW_CHECK is set
 * (on a loaded machine a tool that runs one thread at a time can take that much longer). Only the
 * time a failing wait takes to fail grows; a wait that succeeds returns as soon as it does. */
uint64_t test_wait_scale(void);

void test_sleep_ms(unsigned int ms);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t test_now_ms(void);

/* The pattern byte at absolute stream offset `offset`. */
static inline uint8_t test_pattern_byte(uint64_t offset)
{
    return (uint8_t)((((offset * 2654435761u) >> 24) & 0xFF) ^ (offset & 0xFF) ^ ((offset >> 8) & 0xFF));
}

/* Fills buf with the pattern for stream offsets [offset, offset + len). */
void test_fill_pattern(uint8_t* buf, size_t len, uint64_t offset);

/* Checks buf against the pattern for stream offsets [offset, offset + len); returns the index of
 * the first mismatching byte, or len when all match. */
size_t test_check_pattern(const uint8_t* buf, size_t len, uint64_t offset);

/* Polls cond every millisecond; fails the current cmocka test when it is still false after
 * timeout_ms (times test_wait_scale()). */
#define TEST_WAIT_UNTIL(cond, timeout_ms)                                                              \
    do                                                                                                 \
    {                                                                                                  \
        const uint64_t test_wait_start_ = test_now_ms();                                               \
        while (!(cond))                                                                                \
        {                                                                                              \
            if (test_now_ms() - test_wait_start_ > (uint64_t)(timeout_ms) * test_wait_scale())        \
            {                                                                                          \
                fail_msg("timed out after %llu ms waiting for: %s",                                    \
                         (unsigned long long)(timeout_ms) * test_wait_scale(), #cond);                 \
            }                                                                                          \
            test_sleep_ms(1);                                                                          \
        }                                                                                              \
    } while (0)

#endif /* TEST_UTIL_H */
