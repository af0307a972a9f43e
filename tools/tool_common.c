/* Flag parsing, time and signals for the asock tools. */
#include "tool_common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

const char* tool_flag_value(const char* tool, int argc, char** argv, int* index)
{
    if (*index + 1 >= argc)
    {
        (void)fprintf(stderr, "%s: %s needs a value (see --help)\n", tool, argv[*index]);
        return NULL;
    }
    *index += 1;
    return argv[*index];
}

bool tool_parse_uint(const char* tool, const char* flag, const char* text, uint64_t min, uint64_t max, uint64_t* value)
{
    char* end = NULL;
    errno = 0;
    /* strtoull accepts a sign and leading blanks; a value must start with a digit. */
    unsigned long long parsed = (text[0] >= '0' && text[0] <= '9') ? strtoull(text, &end, 10) : 0;
    if (end == NULL || end == text || *end != '\0' || errno != 0 || parsed < min || parsed > max)
    {
        (void)fprintf(stderr, "%s: %s: \"%s\" is not a whole number in %llu..%llu\n", tool, flag, text,
            (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *value = parsed;
    return true;
}

bool tool_parse_seconds(const char* tool, const char* flag, const char* text, double max, double* value)
{
    char* end = NULL;
    errno = 0;
    double parsed = ((text[0] >= '0' && text[0] <= '9') || text[0] == '.') ? strtod(text, &end) : 0.0;
    if (end == NULL || end == text || *end != '\0' || errno != 0 || !isfinite(parsed) || parsed <= 0.0 || parsed > max)
    {
        (void)fprintf(stderr, "%s: %s: \"%s\" is not a number of seconds above 0 and at most %g\n", tool, flag, text, max);
        return false;
    }
    *value = parsed;
    return true;
}

int tool_unknown_flag(const char* tool, const char* flag)
{
    (void)fprintf(stderr, "%s: unknown flag %s (see --help)\n", tool, flag);
    return TOOL_EXIT_USAGE;
}

uint64_t tool_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t tool_ms_until(uint64_t now_ns, uint64_t deadline_ns, uint32_t cap_ms)
{
    if (deadline_ns <= now_ns)
    {
        return 0;
    }
    uint64_t left = deadline_ns - now_ns;
    uint64_t ms = left / 1000000u + ((left % 1000000u) != 0); /* rounded up without overflowing */
    return (ms > cap_ms) ? cap_ms : (uint32_t)ms;
}

void tool_block_stop_signals(sigset_t* stop_signals)
{
    /* A shell starts background commands with SIGINT ignored, and an ignored signal is never
     * pending; the stop request must reach sigtimedwait however the tool was started. */
    (void)signal(SIGINT, SIG_DFL);
    (void)signal(SIGTERM, SIG_DFL);
    (void)sigemptyset(stop_signals);
    (void)sigaddset(stop_signals, SIGINT);
    (void)sigaddset(stop_signals, SIGTERM);
    (void)pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    /* The library sends with MSG_NOSIGNAL already; this covers anything else a TLS layer writes. */
    (void)signal(SIGPIPE, SIG_IGN);
}

int tool_wait_for_stop(const sigset_t* stop_signals, uint32_t timeout_ms)
{
    struct timespec timeout = {.tv_sec = timeout_ms / 1000u, .tv_nsec = (long)(timeout_ms % 1000u) * 1000000L};
    for (;;)
    {
        int signal_number = sigtimedwait(stop_signals, NULL, &timeout);
        if (signal_number > 0)
        {
            return signal_number;
        }
        if (errno == EAGAIN)
        {
            return 0;
        }
        /* EINTR: another signal arrived; the remaining time is not tracked, a tick is a tick. */
    }
}
