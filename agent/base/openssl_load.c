/* openssl_load.c: libssl and libcrypto opened on first use instead of
 * linked (see dlib.h): linked, the two cost about 1.7 MiB of resident
 * pages in every agent, though only TLS, the authenticators and the
 * attribute hash use them. The functions carry OpenSSL's names and
 * prototypes (checked against its headers) and forward to the library,
 * which the first of them opens; libssl's handle finds libcrypto's symbols
 * too. A new OpenSSL call fails the link until it is added here. When the
 * library cannot be loaded each answers as OpenSSL does on failure, and
 * CRYPTO_memcmp answers "different". */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#include "base/dlib.h"

#define OPENSSL_SYMS(X) \
    X(BIO_free) \
    X(BIO_new_mem_buf) \
    X(CRYPTO_memcmp) \
    X(ERR_clear_error) \
    X(ERR_error_string_n) \
    X(ERR_get_error) \
    X(ERR_peek_error) \
    X(EVP_Digest) \
    X(EVP_PKEY_free) \
    X(EVP_sha1) \
    X(EVP_sha256) \
    X(OPENSSL_cleanse) \
    X(PEM_read_bio_PrivateKey) \
    X(PEM_read_bio_X509) \
    X(SSL_CTX_check_private_key) \
    X(SSL_CTX_ctrl) \
    X(SSL_CTX_free) \
    X(SSL_CTX_get_cert_store) \
    X(SSL_CTX_load_verify_locations) \
    X(SSL_CTX_new) \
    X(SSL_CTX_set_alpn_protos) \
    X(SSL_CTX_set_alpn_select_cb) \
    X(SSL_CTX_set_default_verify_paths) \
    X(SSL_CTX_set_options) \
    X(SSL_CTX_set_verify) \
    X(SSL_CTX_up_ref) \
    X(SSL_CTX_use_PrivateKey) \
    X(SSL_CTX_use_PrivateKey_file) \
    X(SSL_CTX_use_certificate) \
    X(SSL_CTX_use_certificate_chain_file) \
    X(SSL_connect) \
    X(SSL_ctrl) \
    X(SSL_do_handshake) \
    X(SSL_free) \
    X(SSL_get0_alpn_selected) \
    X(SSL_get0_param) \
    X(SSL_get0_peer_certificate) \
    X(SSL_get_error) \
    X(SSL_get_verify_result) \
    X(SSL_new) \
    X(SSL_pending) \
    X(SSL_is_init_finished) \
    X(SSL_read) \
    X(SSL_set1_host) \
    X(SSL_set_accept_state) \
    X(SSL_set_fd) \
    X(SSL_write) \
    X(TLS_client_method) \
    X(TLS_server_method) \
    X(X509_STORE_add_cert) \
    X(X509_VERIFY_PARAM_set1_ip_asc) \
    X(X509_check_private_key) \
    X(X509_free) \
    X(X509_get_default_cert_dir) \
    X(X509_get_default_cert_dir_env) \
    X(X509_verify_cert_error_string) \

OT_DLIB_DEFINE("libssl.so.3", OPENSSL_SYMS);
#define REAL OT_DLIB_REAL
#define LOADED OT_DLIB_LOADED

/* Names in parentheses: the headers define function-like macros of some. */
int (BIO_free)(BIO *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(BIO_free)(a0);
}

BIO *(BIO_new_mem_buf)(const void *a0, int a1)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(BIO_new_mem_buf)(a0, a1);
}

int (CRYPTO_memcmp)(const void *a0, const void *a1, size_t a2)
{
    if (!LOADED()) {
        return 1; /* never equal: nothing was compared */
    }
    return REAL(CRYPTO_memcmp)(a0, a1, a2);
}

void (ERR_clear_error)(void)
{
    if (!LOADED()) {
        return;
    }
    REAL(ERR_clear_error)();
}

void (ERR_error_string_n)(unsigned long a0, char *a1, size_t a2)
{
    if (!LOADED()) {
        if (a2)
            snprintf(a1, a2, "libssl.so.3 cannot be loaded");
        return;
    }
    REAL(ERR_error_string_n)(a0, a1, a2);
}

unsigned long (ERR_get_error)(void)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(ERR_get_error)();
}

unsigned long (ERR_peek_error)(void)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(ERR_peek_error)();
}

int (EVP_Digest)(const void *a0, size_t a1, unsigned char *a2, unsigned int *a3, const EVP_MD *a4, ENGINE *a5)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(EVP_Digest)(a0, a1, a2, a3, a4, a5);
}

void (EVP_PKEY_free)(EVP_PKEY *a0)
{
    if (!LOADED()) {
        return;
    }
    REAL(EVP_PKEY_free)(a0);
}

const EVP_MD *(EVP_sha1)(void)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(EVP_sha1)();
}

const EVP_MD *(EVP_sha256)(void)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(EVP_sha256)();
}

void (OPENSSL_cleanse)(void *a0, size_t a1)
{
    if (!LOADED()) {
        volatile unsigned char *p = a0;
        for (size_t i = 0; i < a1; i++)
            p[i] = 0;
        return;
    }
    REAL(OPENSSL_cleanse)(a0, a1);
}

EVP_PKEY *(PEM_read_bio_PrivateKey)(BIO *a0, EVP_PKEY **a1, pem_password_cb *a2, void *a3)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(PEM_read_bio_PrivateKey)(a0, a1, a2, a3);
}

X509 *(PEM_read_bio_X509)(BIO *a0, X509 **a1, pem_password_cb *a2, void *a3)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(PEM_read_bio_X509)(a0, a1, a2, a3);
}

int (SSL_CTX_check_private_key)(const SSL_CTX *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_check_private_key)(a0);
}

long (SSL_CTX_ctrl)(SSL_CTX *a0, int a1, long a2, void *a3)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_ctrl)(a0, a1, a2, a3);
}

void (SSL_CTX_free)(SSL_CTX *a0)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_CTX_free)(a0);
}

X509_STORE *(SSL_CTX_get_cert_store)(const SSL_CTX *a0)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(SSL_CTX_get_cert_store)(a0);
}

int (SSL_CTX_load_verify_locations)(SSL_CTX *a0, const char *a1, const char *a2)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_load_verify_locations)(a0, a1, a2);
}

SSL_CTX *(SSL_CTX_new)(const SSL_METHOD *a0)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(SSL_CTX_new)(a0);
}

int (SSL_CTX_set_alpn_protos)(SSL_CTX *a0, const unsigned char *a1, unsigned int a2)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_set_alpn_protos)(a0, a1, a2);
}

void (SSL_CTX_set_alpn_select_cb)(SSL_CTX *a0, SSL_CTX_alpn_select_cb_func a1, void *a2)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_CTX_set_alpn_select_cb)(a0, a1, a2);
}

int (SSL_CTX_set_default_verify_paths)(SSL_CTX *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_set_default_verify_paths)(a0);
}

uint64_t (SSL_CTX_set_options)(SSL_CTX *a0, uint64_t a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_set_options)(a0, a1);
}

void (SSL_CTX_set_verify)(SSL_CTX *a0, int a1, SSL_verify_cb a2)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_CTX_set_verify)(a0, a1, a2);
}

int (SSL_CTX_up_ref)(SSL_CTX *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_up_ref)(a0);
}

int (SSL_CTX_use_PrivateKey)(SSL_CTX *a0, EVP_PKEY *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_use_PrivateKey)(a0, a1);
}

int (SSL_CTX_use_PrivateKey_file)(SSL_CTX *a0, const char *a1, int a2)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_use_PrivateKey_file)(a0, a1, a2);
}

int (SSL_CTX_use_certificate)(SSL_CTX *a0, X509 *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_use_certificate)(a0, a1);
}

int (SSL_CTX_use_certificate_chain_file)(SSL_CTX *a0, const char *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_CTX_use_certificate_chain_file)(a0, a1);
}

int (SSL_connect)(SSL *a0)
{
    if (!LOADED()) {
        return -1;
    }
    return REAL(SSL_connect)(a0);
}

long (SSL_ctrl)(SSL *a0, int a1, long a2, void *a3)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_ctrl)(a0, a1, a2, a3);
}

int (SSL_do_handshake)(SSL *a0)
{
    if (!LOADED()) {
        return -1;
    }
    return REAL(SSL_do_handshake)(a0);
}

void (SSL_free)(SSL *a0)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_free)(a0);
}

void (SSL_get0_alpn_selected)(const SSL *a0, const unsigned char **a1, unsigned int *a2)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_get0_alpn_selected)(a0, a1, a2);
}

X509_VERIFY_PARAM *(SSL_get0_param)(SSL *a0)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(SSL_get0_param)(a0);
}

int (SSL_get_error)(const SSL *a0, int a1)
{
    if (!LOADED()) {
        return SSL_ERROR_SSL;
    }
    return REAL(SSL_get_error)(a0, a1);
}

X509 *(SSL_get0_peer_certificate)(const SSL *a0)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(SSL_get0_peer_certificate)(a0);
}

long (SSL_get_verify_result)(const SSL *a0)
{
    if (!LOADED()) {
        return X509_V_ERR_UNSPECIFIED;
    }
    return REAL(SSL_get_verify_result)(a0);
}

SSL *(SSL_new)(SSL_CTX *a0)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(SSL_new)(a0);
}

int (SSL_read)(SSL *a0, void *a1, int a2)
{
    if (!LOADED()) {
        return -1;
    }
    return REAL(SSL_read)(a0, a1, a2);
}

int (SSL_set1_host)(SSL *a0, const char *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_set1_host)(a0, a1);
}

void (SSL_set_accept_state)(SSL *a0)
{
    if (!LOADED()) {
        return;
    }
    REAL(SSL_set_accept_state)(a0);
}

int (SSL_set_fd)(SSL *a0, int a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_set_fd)(a0, a1);
}

int (SSL_write)(SSL *a0, const void *a1, int a2)
{
    if (!LOADED()) {
        return -1;
    }
    return REAL(SSL_write)(a0, a1, a2);
}

const SSL_METHOD *(TLS_client_method)(void)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(TLS_client_method)();
}

const SSL_METHOD *(TLS_server_method)(void)
{
    if (!LOADED()) {
        return NULL;
    }
    return REAL(TLS_server_method)();
}

int (X509_STORE_add_cert)(X509_STORE *a0, X509 *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(X509_STORE_add_cert)(a0, a1);
}

int (X509_VERIFY_PARAM_set1_ip_asc)(X509_VERIFY_PARAM *a0, const char *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(X509_VERIFY_PARAM_set1_ip_asc)(a0, a1);
}

int (X509_check_private_key)(const X509 *a0, const EVP_PKEY *a1)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(X509_check_private_key)(a0, a1);
}

void (X509_free)(X509 *a0)
{
    if (!LOADED()) {
        return;
    }
    REAL(X509_free)(a0);
}

const char *(X509_verify_cert_error_string)(long a0)
{
    if (!LOADED()) {
        return "libssl.so.3 cannot be loaded";
    }
    return REAL(X509_verify_cert_error_string)(a0);
}

const char *(X509_get_default_cert_dir)(void)
{
    if (!LOADED()) {
        return "";
    }
    return REAL(X509_get_default_cert_dir)();
}

const char *(X509_get_default_cert_dir_env)(void)
{
    if (!LOADED()) {
        return "SSL_CERT_DIR";
    }
    return REAL(X509_get_default_cert_dir_env)();
}

int (SSL_is_init_finished)(const SSL *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_is_init_finished)(a0);
}

int (SSL_pending)(const SSL *a0)
{
    if (!LOADED()) {
        return 0;
    }
    return REAL(SSL_pending)(a0);
}
