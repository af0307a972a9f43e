/* Socket addresses as text: "127.0.0.1:8080", "[::1]:8080". Internal to the library. */
#ifndef ADDRESS_TEXT_H
#define ADDRESS_TEXT_H

#include <stddef.h>
#include <sys/socket.h>

/* Writes `address` into buffer (NUL-terminated). Returns 0, or -1 (logged) when the family is not
 * IPv4 or IPv6 or the buffer is too small. */
int address_text__format(const struct sockaddr* address, socklen_t length, char* buffer, size_t buffer_size);
/* The address of fd's peer (getpeername), formatted as above. */
int address_text__of_peer(int fd, char* buffer, size_t buffer_size);
/* The address fd is bound to (getsockname), formatted as above. */
int address_text__of_local(int fd, char* buffer, size_t buffer_size);

#endif /* ADDRESS_TEXT_H */
