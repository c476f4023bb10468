// hmac.cpp -- SHA-256 (FIPS 180-4) and HMAC (RFC 2104); see hmac.hpp for why it is self-contained.
#include "stockade/hmac.hpp"

#include <cstring>
#include <sys/random.h>

namespace stockade {

namespace {

constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

class Sha256 {
public:
    void update(std::string_view data)
    {
        for (unsigned char c : data) {
            block_[fill_++] = c;
            if (fill_ == 64) {
                compress();
                fill_ = 0;
            }
        }
        bits_ += uint64_t(data.size()) * 8;
    }

    Sha256Digest finish()
    {
        uint64_t bits = bits_;
        block_[fill_++] = 0x80;
        if (fill_ > 56) {
            while (fill_ < 64)
                block_[fill_++] = 0;
            compress();
            fill_ = 0;
        }
        while (fill_ < 56)
            block_[fill_++] = 0;
        for (int i = 7; i >= 0; --i)
            block_[fill_++] = uint8_t(bits >> (i * 8));
        compress();
        Sha256Digest out{};
        for (size_t i = 0; i < 8; ++i)
            for (size_t j = 0; j < 4; ++j)
                out[i * 4 + j] = uint8_t(state_[i] >> (24 - 8 * j));
        return out;
    }

private:
    void compress()
    {
        uint32_t w[64];
        for (size_t i = 0; i < 16; ++i)
            w[i] = uint32_t(block_[i * 4]) << 24 | uint32_t(block_[i * 4 + 1]) << 16 | uint32_t(block_[i * 4 + 2]) << 8 |
                   uint32_t(block_[i * 4 + 3]);
        for (size_t i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
        uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
        for (size_t i = 0; i < 64; ++i) {
            uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + s1 + ch + kRoundConstants[i] + w[i];
            uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = s0 + maj;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state_[0] += a;
        state_[1] += b;
        state_[2] += c;
        state_[3] += d;
        state_[4] += e;
        state_[5] += f;
        state_[6] += g;
        state_[7] += h;
    }

    uint32_t state_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t block_[64] = {};
    size_t fill_ = 0;
    uint64_t bits_ = 0;
};

} // namespace

Sha256Digest sha256(std::string_view data)
{
    Sha256 h;
    h.update(data);
    return h.finish();
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data)
{
    std::string k(key);
    if (k.size() > 64) {
        auto d = sha256(k);
        k.assign(reinterpret_cast<const char *>(d.data()), d.size());
    }
    k.resize(64, '\0');
    std::string ipad(64, '\0'), opad(64, '\0');
    for (size_t i = 0; i < 64; ++i) {
        ipad[i] = char(k[i] ^ 0x36);
        opad[i] = char(k[i] ^ 0x5c);
    }
    Sha256 inner;
    inner.update(ipad);
    inner.update(data);
    auto id = inner.finish();
    Sha256 outer;
    outer.update(opad);
    outer.update(std::string_view(reinterpret_cast<const char *>(id.data()), id.size()));
    return outer.finish();
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
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

std::string random_hex(size_t n)
{
    std::string buf(n, '\0');
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::getrandom(buf.data() + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return {};
        }
        got += size_t(r);
    }
    return to_hex(reinterpret_cast<const uint8_t *>(buf.data()), n);
}

} // namespace stockade
