/* The execution engine: a reference-counted description of the threading an application asks for.
 *
 * On Linux every callback runs on the completion port's worker threads; the engine records the
 * thread counts the application asked for, and async_socket accepts NULL for it. */
#ifndef C_PAL_EXECUTION_ENGINE_H
#define C_PAL_EXECUTION_ENGINE_H

#include <stdint.h>

#include "c_pal/macro_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EXECUTION_ENGINE_TAG* EXECUTION_ENGINE_HANDLE;

/* 0 for max_thread_count means "no upper bound". */
typedef struct EXECUTION_ENGINE_PARAMETERS_TAG
{
    uint32_t min_thread_count;
    uint32_t max_thread_count;
} EXECUTION_ENGINE_PARAMETERS;

#define DEFAULT_MIN_THREAD_COUNT 4
#define DEFAULT_MAX_THREAD_COUNT 0

/* NULL parameters mean the defaults above. Fails (NULL) when min > max and max != 0. */
MOCKABLE_FUNCTION(, EXECUTION_ENGINE_HANDLE, execution_engine_create, const EXECUTION_ENGINE_PARAMETERS*, execution_engine_parameters);
MOCKABLE_FUNCTION(, void, execution_engine_inc_ref, EXECUTION_ENGINE_HANDLE, execution_engine);
MOCKABLE_FUNCTION(, void, execution_engine_dec_ref, EXECUTION_ENGINE_HANDLE, execution_engine);
/* The parameters the engine was created with (the defaults when created with NULL); NULL for a NULL engine. */
MOCKABLE_FUNCTION(, const EXECUTION_ENGINE_PARAMETERS*, execution_engine_linux_get_parameters, EXECUTION_ENGINE_HANDLE, execution_engine);

#ifdef __cplusplus
}
#endif

#endif /* C_PAL_EXECUTION_ENGINE_H */
