// hmac.cpp -- SHA-256, HMAC-SHA256, constant-time compare and random bytes, all from OpenSSL's
// libcrypto (EVP_Digest, EVP_MAC, CRYPTO_memcmp, RAND_bytes).  stockade once carried its own
// SHA-256; a reviewed library is the better place for that.  Only the quorum/witness library
// (linked by the CLI alone) uses this file, and it opens libcrypto on first use
// (lazy_library.hpp): a `stockade status` or `fence` without a witness never maps it.
#include "stockade/hmac.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <memory>
#include <mutex>

#include "stockade/lazy_library.hpp"

namespace stockade {

namespace {

// The libcrypto functions used here, each a pointer of its real prototype's type.
#define STOCKADE_CRYPTO_FUNCTIONS(X)                                                                  \
    X(EVP_Digest) X(EVP_sha256) X(EVP_MAC_fetch) X(EVP_MAC_free) X(EVP_MAC_CTX_new) X(EVP_MAC_CTX_free) \
    X(EVP_MAC_init) X(EVP_MAC_update) X(EVP_MAC_final) X(OSSL_PARAM_construct_utf8_string)             \
    X(OSSL_PARAM_construct_end) X(CRYPTO_memcmp) X(RAND_bytes)

struct CryptoApi {
#define STOCKADE_CRYPTO_MEMBER(f) decltype(&::f) f = nullptr;
    STOCKADE_CRYPTO_FUNCTIONS(STOCKADE_CRYPTO_MEMBER)
#undef STOCKADE_CRYPTO_MEMBER
};

// libcrypto, or nullptr when it cannot be loaded (package libssl3 is a dependency, so only a
// broken installation): then digests are all zero and never verify, compares say "different"
// and random_hex is empty -- the witness fails closed.
const CryptoApi *crypto()
{
    static std::once_flag once;
    static CryptoApi api;
    static bool loaded = false;
    std::call_once(once, [] {
        constexpr const char *kSoname = "libcrypto.so.3";
        std::string why;
        void *lib = open_library(kSoname, "libssl3", why);
#define STOCKADE_CRYPTO_RESOLVE(f) &&resolve_symbol(lib, kSoname, #f, api.f, why)
        loaded = lib != nullptr STOCKADE_CRYPTO_FUNCTIONS(STOCKADE_CRYPTO_RESOLVE);
#undef STOCKADE_CRYPTO_RESOLVE
    });
    return loaded ? &api : nullptr;
}

struct MacFree {
    void operator()(EVP_MAC *m) const { crypto()->EVP_MAC_free(m); }
    void operator()(EVP_MAC_CTX *c) const { crypto()->EVP_MAC_CTX_free(c); }
};

// libcrypto fails only when it cannot allocate or its SHA-256 provider is missing; neither has a
// sensible MAC to return, so callers get an all-zero digest that never verifies a real message.
Sha256Digest failed() { return Sha256Digest{}; }

} // namespace

Sha256Digest sha256(std::string_view data)
{
    const CryptoApi *c = crypto();
    if (!c)
        return failed();
    Sha256Digest out{};
    unsigned int len = 0;
    if (c->EVP_Digest(data.data(), data.size(), out.data(), &len, c->EVP_sha256(), nullptr) != 1 || len != out.size())
        return failed();
    return out;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data)
{
    const CryptoApi *c = crypto();
    if (!c)
        return failed();
    std::unique_ptr<EVP_MAC, MacFree> mac(c->EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!mac)
        return failed();
    std::unique_ptr<EVP_MAC_CTX, MacFree> ctx(c->EVP_MAC_CTX_new(mac.get()));
    if (!ctx)
        return failed();
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {c->OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                           c->OSSL_PARAM_construct_end()};
    // A zero-length key is legal HMAC; OpenSSL wants a non-null pointer for it.
    static const unsigned char kEmpty = 0;
    const auto *k = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char *>(key.data());
    if (c->EVP_MAC_init(ctx.get(), k, key.size(), params) != 1 ||
        c->EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char *>(data.data()), data.size()) != 1)
        return failed();
    Sha256Digest out{};
    size_t len = 0;
    if (c->EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size())
        return failed();
    return out;
}

std::string to_hex(const uint8_t *data, size_t n)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        out += kDigits[data[i] >> 4];
        out += kDigits[data[i] & 15];
    }
    return out;
}

bool equal_constant_time(std::string_view a, std::string_view b)
{
    // The length of a MAC is public; only the bytes must not leak through timing.
    const CryptoApi *c = crypto();
    return c && a.size() == b.size() && c->CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_hex(size_t n)
{
    std::string buf(n, '\0');
    const CryptoApi *c = crypto();
    if (!c || n > size_t(INT32_MAX) || c->RAND_bytes(reinterpret_cast<unsigned char *>(buf.data()), int(n)) != 1)
        return {};
    return to_hex(reinterpret_cast<const uint8_t *>(buf.data()), n);
}

} // namespace stockade
