// redfish_curl.hpp -- libcurl (and the few OpenSSL calls of the certificate pin), loaded on first use.
//
// Debian's libcurl4-openssl pulls 33 shared libraries into a process (GnuTLS, Kerberos, LDAP,
// libssh2, librtmp...); loading them costs 20-30 ms on a busy machine.  Every front-end loads
// every agent it may run just to read its descriptor, so the agent does not link libcurl: the
// first handle that is about to talk to a BMC loads libcurl.so.4 (never unloaded) and resolves the
// entry points below; the OpenSSL functions come from the libssl/libcrypto that libcurl itself
// loaded, so both sides of the handshake callback are the same library.
#pragma once

#include <string>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace stockade::redfish {

struct CurlApi {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)();
    CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    curl_slist *(*slist_append)(curl_slist *list, const char *line);
    void (*slist_free_all)(curl_slist *list);
    // OpenSSL, for the pinned-fingerprint check inside the handshake.
    void (*ssl_ctx_set_verify)(SSL_CTX *ctx, int mode, SSL_verify_cb cb);
    void (*ssl_ctx_set_cert_verify_callback)(SSL_CTX *ctx, int (*cb)(X509_STORE_CTX *, void *), void *arg);
    X509 *(*x509_store_ctx_get0_cert)(const X509_STORE_CTX *ctx);
    int (*x509_digest)(const X509 *cert, const EVP_MD *type, unsigned char *md, unsigned int *len);
    const EVP_MD *(*evp_sha256)();
};

// The loaded API (once per process, thread-safe), or nullptr with the reason in *why.
const CurlApi *curl_api(std::string *why);

// For the agent's prepare (ABI 1.2: once per process, before any session, in the fork template):
// loads libcurl as curl_api() does (curl_global_init initialises OpenSSL), then makes and frees
// one client SSL_CTX, so OpenSSL 3 has fetched and cached its ciphers, digests and groups in the
// process-wide library context (the first SSL_CTX_new of a process costs ~0.9 ms, a later one
// ~0.2).  No thread, no descriptor left open, no connection, nothing secret: the context's random
// ticket keys are freed with it, and a forked session's DRBG reseeds itself (its pid differs).
// False when libcurl cannot be loaded (the first handle then reports why).
bool prepare_curl();

} // namespace stockade::redfish
