// hmac.hpp -- SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) from OpenSSL's libcrypto.
//
// The witness protocol signs every message with HMAC-SHA256 over the shared cluster key.  The
// implementation (core/quorum/hmac.cpp) is OpenSSL's EVP_MAC; MACs are compared with
// CRYPTO_memcmp, nonces come from RAND_bytes.  Part of the quorum/witness library, which only
// the CLI links, so libstockade, agents and front-ends stay free of libcrypto.  The FIPS 180-4
// and RFC 4231 vectors are in agents/command/tests/test_witness_protocol.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace stockade {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
Sha256Digest hmac_sha256(std::string_view key, std::string_view data);

std::string to_hex(const uint8_t *data, size_t n);
inline std::string to_hex(const Sha256Digest &d) { return to_hex(d.data(), d.size()); }

// Compares two strings without an early exit (timing does not reveal the matching prefix).
bool equal_constant_time(std::string_view a, std::string_view b);

// n bytes from OpenSSL's CSPRNG (RAND_bytes), as hex; empty on failure.
std::string random_hex(size_t n);

} // namespace stockade
