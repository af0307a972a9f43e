/* The platform's socket handle type: on Linux a file descriptor. */
#ifndef C_PAL_SOCKET_HANDLE_H
#define C_PAL_SOCKET_HANDLE_H

typedef int SOCKET_HANDLE;

#ifndef INVALID_SOCKET
#define INVALID_SOCKET ((SOCKET_HANDLE)-1)
#endif

#endif /* C_PAL_SOCKET_HANDLE_H */
