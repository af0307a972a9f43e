/* See tls_test_util.h. */
#include "tls_test_util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int add_extension(X509* certificate, int nid, const char* value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, certificate, certificate, NULL, NULL, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (extension == NULL)
    {
        return -1;
    }
    int added = X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    return added == 1 ? 0 : -1;
}

/* A self-signed certificate for `common_name` with the given subjectAltName, valid from an hour
 * ago for a day. */
static X509* make_certificate(EVP_PKEY* key, const char* common_name, const char* alt_names, long serial)
{
    X509* certificate = X509_new();
    if (certificate == NULL)
    {
        return NULL;
    }
    X509_NAME* name = X509_get_subject_name(certificate);
    int ok = X509_set_version(certificate, 2) == 1 &&
        ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(certificate), 86400) != NULL &&
        X509_set_pubkey(certificate, key) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)common_name, -1, -1, 0) == 1 &&
        X509_set_issuer_name(certificate, name) == 1 &&
        add_extension(certificate, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
        add_extension(certificate, NID_subject_key_identifier, "hash") == 0 &&
        add_extension(certificate, NID_subject_alt_name, alt_names) == 0 &&
        X509_sign(certificate, key, EVP_sha256()) > 0;
    if (!ok)
    {
        X509_free(certificate);
        return NULL;
    }
    return certificate;
}

static int write_pem(const char* path, X509* certificate, EVP_PKEY* key)
{
    FILE* file = fopen(path, "w");
    if (file == NULL)
    {
        return -1;
    }
    int ok = (certificate != NULL) ? PEM_write_X509(file, certificate) : PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL);
    return (fclose(file) == 0 && ok == 1) ? 0 : -1;
}

static int make_pair(const char* certificate_path, const char* key_path, const char* common_name, const char* alt_names, long serial)
{
    EVP_PKEY* key = EVP_EC_gen("P-256");
    if (key == NULL)
    {
        return -1;
    }
    X509* certificate = make_certificate(key, common_name, alt_names, serial);
    int result = (certificate != NULL && write_pem(certificate_path, certificate, NULL) == 0 && write_pem(key_path, NULL, key) == 0) ? 0 : -1;
    X509_free(certificate);
    EVP_PKEY_free(key);
    return result;
}

int tls_test_files_make(TLS_TEST_FILES* files)
{
    memset(files, 0, sizeof(*files));
    (void)snprintf(files->directory, sizeof(files->directory), "/tmp/async_socket_tls_XXXXXX");
    if (mkdtemp(files->directory) == NULL)
    {
        return -1;
    }
    (void)snprintf(files->certificate, sizeof(files->certificate), "%s/server.crt", files->directory);
    (void)snprintf(files->key, sizeof(files->key), "%s/server.key", files->directory);
    (void)snprintf(files->other_ca, sizeof(files->other_ca), "%s/other_ca.crt", files->directory);
    (void)snprintf(files->other_key, sizeof(files->other_key), "%s/other_ca.key", files->directory);
    if (make_pair(files->certificate, files->key, "localhost", "DNS:localhost,IP:127.0.0.1", 1) != 0 ||
        make_pair(files->other_ca, files->other_key, "async_socket test other CA", "DNS:other.invalid", 2) != 0)
    {
        tls_test_files_remove(files);
        return -1;
    }
    return 0;
}

void tls_test_files_remove(const TLS_TEST_FILES* files)
{
    (void)unlink(files->certificate);
    (void)unlink(files->key);
    (void)unlink(files->other_ca);
    (void)unlink(files->other_key);
    (void)rmdir(files->directory);
}

/* ---- overlap detection ---- */

#define OVERLAP_SLOTS 64

static _Atomic(uintptr_t) slot_owner[OVERLAP_SLOTS];
static atomic_int slot_inside[OVERLAP_SLOTS];
static atomic_int overlaps;
static atomic_long ssl_calls;

void tls_test_overlap_reset(void)
{
    for (int i = 0; i < OVERLAP_SLOTS; i++)
    {
        atomic_store(&slot_owner[i], 0);
        atomic_store(&slot_inside[i], 0);
    }
    atomic_store(&overlaps, 0);
    atomic_store(&ssl_calls, 0);
}

int tls_test_overlaps(void)
{
    return atomic_load(&overlaps);
}

long tls_test_ssl_calls(void)
{
    return atomic_load(&ssl_calls);
}

/* The slot of `ssl`, claimed on first use (a test makes far fewer SSL objects than slots between
 * two resets); -1 when the table is full, and the call is then not checked. */
static int slot_of(const SSL* ssl)
{
    uintptr_t key = (uintptr_t)ssl;
    for (int i = 0; i < OVERLAP_SLOTS; i++)
    {
        uintptr_t owner = atomic_load(&slot_owner[i]);
        if (owner == key)
        {
            return i;
        }
        if (owner == 0)
        {
            uintptr_t expected = 0;
            if (atomic_compare_exchange_strong(&slot_owner[i], &expected, key) || expected == key)
            {
                return i;
            }
        }
    }
    return -1;
}

static void enter_ssl(const SSL* ssl, int* slot)
{
    atomic_fetch_add(&ssl_calls, 1);
    *slot = slot_of(ssl);
    if (*slot >= 0 && atomic_fetch_add(&slot_inside[*slot], 1) != 0)
    {
        atomic_fetch_add(&overlaps, 1);
    }
    /* widen the window a little, so unserialised calls would meet */
    for (volatile int spin = 0; spin < 200; spin++)
    {
    }
}

static void leave_ssl(int slot)
{
    if (slot >= 0)
    {
        atomic_fetch_sub(&slot_inside[slot], 1);
    }
}

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static int (*real_read)(SSL*, void*, int);
static int (*real_write)(SSL*, const void*, int);
static int (*real_shutdown)(SSL*);

static void find_real(void)
{
    real_read = (int (*)(SSL*, void*, int))dlsym(RTLD_NEXT, "SSL_read");
    real_write = (int (*)(SSL*, const void*, int))dlsym(RTLD_NEXT, "SSL_write");
    real_shutdown = (int (*)(SSL*))dlsym(RTLD_NEXT, "SSL_shutdown");
}

static _Atomic(const char*) last_cipher;

const char* tls_test_last_cipher(void)
{
    return atomic_load(&last_cipher);
}

int SSL_read(SSL* ssl, void* buffer, int length)
{
    (void)pthread_once(&real_once, find_real);
    int slot;
    enter_ssl(ssl, &slot);
    int result = real_read(ssl, buffer, length);
    if (result > 0)
    {
        /* OpenSSL's names are static strings */
        atomic_store(&last_cipher, SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    }
    leave_ssl(slot);
    return result;
}

static atomic_int key_update_every;
static atomic_int key_update_count;
static atomic_long writes_seen;

void tls_test_key_update_every(int n)
{
    atomic_store(&key_update_every, n);
    atomic_store(&key_update_count, 0);
}

int tls_test_key_updates(void)
{
    return atomic_load(&key_update_count);
}

/* Called inside the interposed SSL_write, with the caller's serialisation of the SSL object. */
static void maybe_request_key_update(SSL* ssl)
{
    int every = atomic_load(&key_update_every);
    if (every <= 0 || atomic_fetch_add(&writes_seen, 1) % every != 0)
    {
        return;
    }
    /* refused while a record is still being written (the error it queues is dropped, so that the
     * caller's SSL_get_error sees only what SSL_write itself reports) */
    (void)ERR_set_mark();
    if (SSL_version(ssl) == TLS1_3_VERSION && SSL_is_init_finished(ssl) && SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1)
    {
        atomic_fetch_add(&key_update_count, 1);
    }
    (void)ERR_pop_to_mark();
}

int SSL_write(SSL* ssl, const void* buffer, int length)
{
    (void)pthread_once(&real_once, find_real);
    int slot;
    enter_ssl(ssl, &slot);
    maybe_request_key_update(ssl);
    int result = real_write(ssl, buffer, length);
    leave_ssl(slot);
    return result;
}

int SSL_shutdown(SSL* ssl)
{
    (void)pthread_once(&real_once, find_real);
    int slot;
    enter_ssl(ssl, &slot);
    int result = real_shutdown(ssl);
    leave_ssl(slot);
    return result;
}
