/* See bench_tls_common.h. */
#include "bench_tls_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
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
    return (added == 1) ? 0 : -1;
}

static X509* self_signed(EVP_PKEY* key)
{
    X509* certificate = X509_new();
    if (certificate == NULL)
    {
        return NULL;
    }
    X509_NAME* name = X509_get_subject_name(certificate);
    bool ok = X509_set_version(certificate, 2) == 1 &&
        ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(certificate), 86400) != NULL &&
        X509_set_pubkey(certificate, key) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)"localhost", -1, -1, 0) == 1 &&
        X509_set_issuer_name(certificate, name) == 1 &&
        add_extension(certificate, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
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

int bench_tls_files_make(BENCH_TLS_FILES* files)
{
    (void)snprintf(files->directory, sizeof(files->directory), "/tmp/bench_tls_XXXXXX");
    if (mkdtemp(files->directory) == NULL)
    {
        return -1;
    }
    (void)snprintf(files->certificate, sizeof(files->certificate), "%s/server.crt", files->directory);
    (void)snprintf(files->key, sizeof(files->key), "%s/server.key", files->directory);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* certificate = (key != NULL) ? self_signed(key) : NULL;
    int result = (certificate != NULL && write_pem(files->certificate, certificate, NULL) == 0 &&
        write_pem(files->key, NULL, key) == 0) ? 0 : -1;
    X509_free(certificate);
    EVP_PKEY_free(key);
    return result;
}

void bench_tls_files_remove(const BENCH_TLS_FILES* files)
{
    (void)unlink(files->certificate);
    (void)unlink(files->key);
    (void)rmdir(files->directory);
}

const char* bench_tls_cipher_suites(void)
{
    const char* suites = getenv("BENCH_TLS_CIPHERSUITES");
    return (suites != NULL && suites[0] != '\0') ? suites : BENCH_TLS_CIPHERSUITES_DEFAULT;
}

bool bench_tls_want_ktls(void)
{
    const char* ktls = getenv("BENCH_TLS_KTLS");
    return ktls != NULL && strcmp(ktls, "1") == 0;
}
