/* What asock-echo and asock-load share: flag parsing that fails with one line naming the flag,
 * a monotonic clock, and the signal set both tools wait on. */
#ifndef TOOL_COMMON_H
#define TOOL_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes, the same for both tools (and documented in --help and docs/tools.md). */
#define TOOL_EXIT_OK 0      /* the run was clean */
#define TOOL_EXIT_FAILURE 1 /* a runtime failure: cannot listen / connect, an I/O error, a mismatch */
#define TOOL_EXIT_USAGE 2   /* a bad flag or flag value (one line on stderr names it) */

/* The value after argv[*index] (a flag that takes one), advancing *index; NULL after printing
 * "<tool>: <flag> needs a value" when there is none. */
const char* tool_flag_value(const char* tool, int argc, char** argv, int* index);

/* Parses text as a decimal integer in [min, max] into *value. Returns false after printing one
 * line naming the flag when it is not. */
bool tool_parse_uint(const char* tool, const char* flag, const char* text, uint64_t min, uint64_t max, uint64_t* value);

/* Parses text as a decimal number (e.g. 3 or 0.5) in (0, max] into *value; false after one line. */
bool tool_parse_seconds(const char* tool, const char* flag, const char* text, double max, double* value);

/* Prints "<tool>: unknown flag <flag> (see --help)" and returns TOOL_EXIT_USAGE. */
int tool_unknown_flag(const char* tool, const char* flag);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t tool_now_ns(void);

/* Milliseconds from now_ns until deadline_ns, rounded up and capped at cap_ms; 0 when the deadline
 * has passed (the subtraction would otherwise wrap around to a huge value). */
uint32_t tool_ms_until(uint64_t now_ns, uint64_t deadline_ns, uint32_t cap_ms);

/* Blocks SIGINT and SIGTERM in the calling thread (and the threads it creates afterwards, such as
 * the library's workers) and ignores SIGPIPE, so that the main thread alone takes the stop
 * request through tool_wait_for_stop. Call it before platform_init. Fills *stop_signals. */
void tool_block_stop_signals(sigset_t* stop_signals);

/* Waits up to timeout_ms for SIGINT or SIGTERM; returns the signal, or 0 when the time passed. */
int tool_wait_for_stop(const sigset_t* stop_signals, uint32_t timeout_ms);

#endif /* TOOL_COMMON_H */
