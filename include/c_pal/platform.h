/* Process-wide initialisation: creates the completion port that every async socket shares. */
#ifndef C_PAL_PLATFORM_H
#define C_PAL_PLATFORM_H

#include "c_pal/macro_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reference-counted: each successful platform_init() needs one platform_deinit(). Safe to call
 * from several threads. Returns 0 on success. */
MOCKABLE_FUNCTION(, int, platform_init);
MOCKABLE_FUNCTION(, void, platform_deinit);

#ifdef __cplusplus
}
#endif

#include "c_pal/platform_linux.h"

#endif /* C_PAL_PLATFORM_H */
