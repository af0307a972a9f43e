/* Uses the library's enums the way a c-pal program does, with macro-utils' names:
 * MU_ENUM_TO_STRING, and PRI_MU_ENUM with MU_ENUM_VALUE. tests/compat/check_compat.py compiles it
 * with macro_compat.h's definitions alone and with the test-only macro-utils stand-in
 * (tests/compat/include) included before and after the library's headers (MACRO_UTILS_FIRST /
 * MACRO_UTILS_LAST), links it with the shared and the static library, and compares what it
 * prints: the names come from the library's exported MU_<enum>_ToString functions. */
#include <stdio.h>

#ifdef MACRO_UTILS_FIRST
#include "macro_utils/macro_utils.h"
#include "umock_c/umock_c_prod.h"
#endif

#include "c_pal/async_socket.h"
#include "c_pal/logger.h"
#include "c_pal/socket_transport.h"

#ifdef MACRO_UTILS_LAST
#include "macro_utils/macro_utils.h"
#include "umock_c/umock_c_prod.h"
#endif

int main(void)
{
    /* Tests_SRS_ASYNC_SOCKET_LINUX_99_102 */
    (void)printf("%s\n", MU_ENUM_TO_STRING(ASYNC_SOCKET_OPEN_RESULT, ASYNC_SOCKET_OPEN_ERROR));
    (void)printf("%s\n", MU_ENUM_TO_STRING(ASYNC_SOCKET_SEND_RESULT, (ASYNC_SOCKET_SEND_RESULT)99));
    (void)printf("%" PRI_MU_ENUM "\n", MU_ENUM_VALUE(SOCKET_ACCEPT_RESULT, SOCKET_ACCEPT_NO_CONNECTION));
    (void)printf("%" PRI_MU_ENUM "\n", MU_ENUM_VALUE(SOCKET_SEND_RESULT, SOCKET_SEND_OK));
    (void)printf("%" PRI_MU_ENUM "\n", MU_ENUM_VALUE(ADDRESS_TYPE, ADDRESS_INET));
    (void)printf("%" PRI_MU_ENUM "\n", MU_ENUM_VALUE(ASYNC_SOCKET_LOG_LEVEL, ASYNC_SOCKET_LOG_LEVEL_WARNING));
    return 0;
}
