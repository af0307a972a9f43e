/* Certificates for the TLS tests, made at run time with the OpenSSL API (no files in the tree,
 * nothing that expires): a self-signed server certificate for "localhost" and 127.0.0.1 with its
 * key, and an unrelated self-signed certificate that serves as a CA which did not sign it. */
#ifndef TLS_TEST_UTIL_H
#define TLS_TEST_UTIL_H

typedef struct TLS_TEST_FILES_TAG
{
    char directory[64];
    char certificate[128]; /* server certificate (PEM); also the CA that verifies it */
    char key[128];         /* its private key (PEM) */
    char other_ca[128];    /* a self-signed certificate that signed nothing here */
    char other_key[128];   /* the other certificate's key (a key that does not match `certificate`) */
} TLS_TEST_FILES;

/* Writes the files into a new directory under /tmp. Returns 0, or -1 when anything failed. */
int tls_test_files_make(TLS_TEST_FILES* files);

/* Removes the files and their directory. */
void tls_test_files_remove(const TLS_TEST_FILES* files);

/* The test executable interposes SSL_read, SSL_write and SSL_shutdown (tls_test_util.c): each
 * forwards to OpenSSL's own and counts the calls that began while another call on the same SSL
 * object was still running, which OpenSSL does not allow. */
void tls_test_overlap_reset(void);
int tls_test_overlaps(void);
long tls_test_ssl_calls(void);
/* The cipher suite of the connection whose SSL_read last returned data (NULL before any). */
const char* tls_test_last_cipher(void);

/* With n > 0, every n-th SSL_write on a TLS 1.3 connection that has finished its handshake first
 * asks for a key update (SSL_KEY_UPDATE_REQUESTED): the peer must then write its own KeyUpdate
 * from inside its SSL_read. 0 stops it. tls_test_key_updates counts the requests made. */
void tls_test_key_update_every(int n);
int tls_test_key_updates(void);

#endif /* TLS_TEST_UTIL_H */
