// redfish_curl.cpp -- see redfish_curl.hpp.
#include "redfish_curl.hpp"

#include <dlfcn.h>
#include <mutex>

namespace stockade::redfish {
namespace {

template <class Fn>
bool resolve(void *lib, const char *name, Fn &out, std::string &why)
{
    void *sym = ::dlsym(lib, name);
    if (!sym) {
        why = std::string("libcurl.so.4 has no ") + name;
        return false;
    }
    out = reinterpret_cast<Fn>(sym);
    return true;
}

} // namespace

const CurlApi *curl_api(std::string *why)
{
    static std::once_flag once;
    static CurlApi api;
    static bool loaded = false;
    static std::string error;
    std::call_once(once, [] {
        // Never dlclosed: curl keeps global state and threads may still hold handles.
        void *lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            const char *e = ::dlerror();
            error = std::string("cannot load libcurl.so.4 (package libcurl4): ") + (e ? e : "unknown error");
            return;
        }
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

} // namespace stockade::redfish
