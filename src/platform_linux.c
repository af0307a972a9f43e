/* Process-wide initialisation: the completion port every async socket shares.
 *
 * One mutex guards the port pointer, the init count and the worker setting. platform_init holds
 * it across completion_port_create so that concurrent first calls create exactly one port; the
 * count moves only after the port exists, so a failed init leaves nothing to undo. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "c_pal/completion_port_linux.h"
#include "log_internal.h"
#include "c_pal/platform.h"
#include "c_pal/platform_linux.h"

static pthread_mutex_t platform_lock = PTHREAD_MUTEX_INITIALIZER;
static COMPLETION_PORT_HANDLE platform_port = NULL;
static uint32_t platform_init_count = 0;
/* 0 means "not set": fall back to the environment, then to the port's default. */
static uint32_t platform_worker_count = 0;

/* Accepts only a whole string of digits so that "4x" or "-1" are reported, not half-read. */
static uint32_t parse_worker_count(const char* text)
{
    if (text[0] == '\0' || text[strspn(text, "0123456789")] != '\0' || strlen(text) > 9)
    {
        return 0;
    }
    unsigned long value = strtoul(text, NULL, 10);
    return (value <= COMPLETION_PORT_MAX_WORKERS) ? (uint32_t)value : 0;
}

/* Called with platform_lock held. An explicit setting wins over the environment so that an
 * application can pin its thread count regardless of how it is launched. */
static uint32_t worker_count_to_use(void)
{
    if (platform_worker_count != 0)
    {
        return platform_worker_count;
    }
    const char* text = getenv(PLATFORM_WORKER_COUNT_ENV);
    if (text == NULL || text[0] == '\0')
    {
        return 0;
    }
    uint32_t count = parse_worker_count(text);
    if (count == 0)
    {
        LogWarning("%s=\"%s\" is not a number of workers in 1..%d; using the default",
            PLATFORM_WORKER_COUNT_ENV, text, COMPLETION_PORT_MAX_WORKERS);
    }
    return count;
}

int platform_init(void)
{
    int result = 0;
    (void)pthread_mutex_lock(&platform_lock);
    if (platform_init_count == 0)
    {
        uint32_t worker_count = worker_count_to_use();
        platform_port = completion_port_create(worker_count);
        if (platform_port == NULL)
        {
            /* completion_port_create logged the step that failed: one line per failure */
            result = -1;
        }
    }
    /* The count only moves on success, so a failed init needs no deinit. */
    if (result == 0)
    {
        platform_init_count++;
    }
    (void)pthread_mutex_unlock(&platform_lock);
    return result;
}

void platform_deinit(void)
{
    COMPLETION_PORT_HANDLE port_to_release = NULL;
    (void)pthread_mutex_lock(&platform_lock);
    if (platform_init_count == 0)
    {
        (void)pthread_mutex_unlock(&platform_lock);
        LogError("platform_deinit called without a matching platform_init");
        return;
    }
    if (--platform_init_count == 0)
    {
        port_to_release = platform_port;
        platform_port = NULL;
    }
    (void)pthread_mutex_unlock(&platform_lock);
    /* Released outside the lock: the last reference joins the workers, and a worker that calls
     * platform_get_completion_port meanwhile must not wait for us while we wait for it. A
     * platform_init racing with this simply creates a new port; the old one still goes away. */
    if (port_to_release != NULL)
    {
        completion_port_dec_ref(port_to_release);
    }
}

COMPLETION_PORT_HANDLE platform_get_completion_port(void)
{
    (void)pthread_mutex_lock(&platform_lock);
    COMPLETION_PORT_HANDLE port = platform_port;
    if (port != NULL)
    {
        /* Taken under the lock so that a concurrent last deinit cannot free the port first. */
        completion_port_inc_ref(port);
    }
    (void)pthread_mutex_unlock(&platform_lock);
    if (port == NULL)
    {
        LogError("platform is not initialised (call platform_init first)");
    }
    return port;
}

int platform_linux_set_worker_count(uint32_t worker_count)
{
    if (worker_count > COMPLETION_PORT_MAX_WORKERS)
    {
        LogError("worker_count=%" PRIu32 " is above the maximum of %d", worker_count, COMPLETION_PORT_MAX_WORKERS);
        return -1;
    }
    (void)pthread_mutex_lock(&platform_lock);
    platform_worker_count = worker_count;
    (void)pthread_mutex_unlock(&platform_lock);
    return 0;
}
