/* Linux part of the platform API. */
#ifndef C_PAL_PLATFORM_LINUX_H
#define C_PAL_PLATFORM_LINUX_H

#include <stdint.h>

#include "c_pal/macro_compat.h"
#include "c_pal/completion_port_linux.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Environment variable read by platform_init() for the number of completion port worker threads
 * (1..COMPLETION_PORT_MAX_WORKERS). platform_linux_set_worker_count() takes precedence. */
#define PLATFORM_WORKER_COUNT_ENV "ASYNC_SOCKET_WORKERS"

/* Returns the process completion port with a reference taken (release it with
 * completion_port_dec_ref), or NULL when the platform is not initialised. */
MOCKABLE_FUNCTION(, COMPLETION_PORT_HANDLE, platform_get_completion_port);

/* Sets the worker thread count used by the next platform_init() that creates the port; 0 restores
 * the default (completion_port_default_worker_count(): one per online CPU). Returns non-zero for a count above the maximum. */
MOCKABLE_FUNCTION(, int, platform_linux_set_worker_count, uint32_t, worker_count);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_PLATFORM_LINUX_H */
