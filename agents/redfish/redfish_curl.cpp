// redfish_curl.cpp -- see redfish_curl.hpp.
#include "redfish_curl.hpp"

#include <mutex>

#include "stockade/lazy_library.hpp"

namespace stockade::redfish {
namespace {

constexpr const char *kSoname = "libcurl.so.4";

template <class Fn>
bool resolve(void *lib, const char *name, Fn &out, std::string &why)
{
    return resolve_symbol(lib, kSoname, name, out, why);
}

// libcurl, opened once (never dlclosed: curl keeps global state and threads may still hold
// handles), or nullptr with *error set.
void *curl_library(std::string *error)
{
    static void *lib = open_library(kSoname, "libcurl4", *error);
    return lib;
}

} // namespace

const CurlApi *curl_api(std::string *why)
{
    static std::once_flag once;
    static CurlApi api;
    static bool loaded = false;
    static std::string error;
    std::call_once(once, [] {
        void *lib = curl_library(&error);
        if (!lib)
            return;
        loaded = resolve(lib, "curl_global_init", api.global_init, error) &&
                 resolve(lib, "curl_easy_init", api.easy_init, error) &&
                 resolve(lib, "curl_easy_setopt", api.easy_setopt, error) &&
                 resolve(lib, "curl_easy_perform", api.easy_perform, error) &&
                 resolve(lib, "curl_easy_getinfo", api.easy_getinfo, error) &&
                 resolve(lib, "curl_easy_cleanup", api.easy_cleanup, error) &&
                 resolve(lib, "curl_easy_strerror", api.easy_strerror, error) &&
                 resolve(lib, "curl_slist_append", api.slist_append, error) &&
                 resolve(lib, "curl_slist_free_all", api.slist_free_all, error) &&
                 resolve(lib, "SSL_CTX_set_verify", api.ssl_ctx_set_verify, error) &&
                 resolve(lib, "SSL_CTX_set_cert_verify_callback", api.ssl_ctx_set_cert_verify_callback, error) &&
                 resolve(lib, "X509_STORE_CTX_get0_cert", api.x509_store_ctx_get0_cert, error) &&
                 resolve(lib, "X509_digest", api.x509_digest, error) &&
                 resolve(lib, "EVP_sha256", api.evp_sha256, error);
        if (loaded)
            api.global_init(CURL_GLOBAL_DEFAULT);
    });
    if (!loaded && why)
        *why = error;
    return loaded ? &api : nullptr;
}

bool prepare_curl()
{
    if (!curl_api(nullptr))
        return false;
    std::string unused;
    void *lib = curl_library(&unused);
    const SSL_METHOD *(*client_method)() = nullptr;
    SSL_CTX *(*ctx_new)(const SSL_METHOD *) = nullptr;
    void (*ctx_free)(SSL_CTX *) = nullptr;
    if (!resolve(lib, "TLS_client_method", client_method, unused) || !resolve(lib, "SSL_CTX_new", ctx_new, unused) ||
        !resolve(lib, "SSL_CTX_free", ctx_free, unused))
        return true; // loaded all the same; only the warm-up is skipped
    if (SSL_CTX *warm = ctx_new(client_method()))
        ctx_free(warm);
    return true;
}

} // namespace stockade::redfish
