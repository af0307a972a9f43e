/* The execution engine on Linux.
 *
 * Every callback runs on the completion port's workers, so the engine only records the thread
 * counts the application asked for. It stays a reference-counted object anyway, because code
 * written against the requirements creates, shares and releases it like one. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>

#include "c_pal/execution_engine.h"
#include "log_internal.h"
#include "sys.h"

typedef struct EXECUTION_ENGINE_TAG
{
    atomic_uint_fast32_t ref_count;
    EXECUTION_ENGINE_PARAMETERS parameters;
} EXECUTION_ENGINE;

static const EXECUTION_ENGINE_PARAMETERS default_parameters = {
    .min_thread_count = DEFAULT_MIN_THREAD_COUNT,
    .max_thread_count = DEFAULT_MAX_THREAD_COUNT,
};

EXECUTION_ENGINE_HANDLE execution_engine_create(const EXECUTION_ENGINE_PARAMETERS* execution_engine_parameters)
{
    const EXECUTION_ENGINE_PARAMETERS* parameters =
        (execution_engine_parameters == NULL) ? &default_parameters : execution_engine_parameters;
    /* max 0 means "no upper bound", so only a non-zero max can be below min. */
    if (parameters->max_thread_count != 0 && parameters->min_thread_count > parameters->max_thread_count)
    {
        LogError("min_thread_count=%" PRIu32 " is greater than max_thread_count=%" PRIu32,
            parameters->min_thread_count, parameters->max_thread_count);
        return NULL;
    }
    EXECUTION_ENGINE* engine = sys_malloc(sizeof(*engine));
    if (engine == NULL)
    {
        LogError("sys_malloc(%zu) failed", sizeof(*engine));
        return NULL;
    }
    atomic_init(&engine->ref_count, 1);
    /* A copy, so the caller's parameters may live on its stack. */
    engine->parameters = *parameters;
    return engine;
}

void execution_engine_inc_ref(EXECUTION_ENGINE_HANDLE execution_engine)
{
    if (execution_engine == NULL)
    {
        LogError("execution_engine is NULL");
        return;
    }
    /* Relaxed is enough: taking a reference needs an existing one, which already orders memory. */
    atomic_fetch_add_explicit(&execution_engine->ref_count, 1, memory_order_relaxed);
}

void execution_engine_dec_ref(EXECUTION_ENGINE_HANDLE execution_engine)
{
    if (execution_engine == NULL)
    {
        LogError("execution_engine is NULL");
        return;
    }
    /* acq_rel so that the thread freeing the engine sees every other holder's last use of it. */
    if (atomic_fetch_sub_explicit(&execution_engine->ref_count, 1, memory_order_acq_rel) == 1)
    {
        sys_free(execution_engine);
    }
}

const EXECUTION_ENGINE_PARAMETERS* execution_engine_linux_get_parameters(EXECUTION_ENGINE_HANDLE execution_engine)
{
    if (execution_engine == NULL)
    {
        LogError("execution_engine is NULL");
        return NULL;
    }
    return &execution_engine->parameters;
}
