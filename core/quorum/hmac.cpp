// hmac.cpp -- SHA-256, HMAC-SHA256, constant-time compare and random bytes, all from OpenSSL's
// libcrypto (EVP_Digest, EVP_MAC, CRYPTO_memcmp, RAND_bytes).  stockade once carried its own
// SHA-256; a reviewed library is the better place for that.  Only the quorum/witness library
// (linked by the CLI alone) uses this file, so agents and front-ends never load libcrypto.
#include "stockade/hmac.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <memory>

namespace stockade {

namespace {

struct MacFree {
    void operator()(EVP_MAC *m) const { EVP_MAC_free(m); }
    void operator()(EVP_MAC_CTX *c) const { EVP_MAC_CTX_free(c); }
};

// libcrypto fails only when it cannot allocate or its SHA-256 provider is missing; neither has a
// sensible MAC to return, so callers get an all-zero digest that never verifies a real message.
Sha256Digest failed() { return Sha256Digest{}; }

} // namespace

Sha256Digest sha256(std::string_view data)
{
    Sha256Digest out{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 || len != out.size())
        return failed();
    return out;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data)
{
    std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!mac)
        return failed();
    std::unique_ptr<EVP_MAC_CTX, MacFree> ctx(EVP_MAC_CTX_new(mac.get()));
    if (!ctx)
        return failed();
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                           OSSL_PARAM_construct_end()};
    // A zero-length key is legal HMAC; OpenSSL wants a non-null pointer for it.
    static const unsigned char kEmpty = 0;
    const auto *k = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char *>(key.data());
    if (EVP_MAC_init(ctx.get(), k, key.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char *>(data.data()), data.size()) != 1)
        return failed();
    Sha256Digest out{};
    size_t len = 0;
    if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size())
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
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_hex(size_t n)
{
    std::string buf(n, '\0');
    if (n > size_t(INT32_MAX) || RAND_bytes(reinterpret_cast<unsigned char *>(buf.data()), int(n)) != 1)
        return {};
    return to_hex(reinterpret_cast<const uint8_t *>(buf.data()), n);
}

} // namespace stockade
