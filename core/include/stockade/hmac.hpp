// hmac.hpp -- SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), self-contained.
//
// The witness protocol signs every message with HMAC-SHA256 over the shared cluster key.  A
// hundred lines of SHA-256, checked against the FIPS and RFC 4231 test vectors, keep libstockade
// free of a libcrypto dependency (the core links only fmt, nlohmann-json and Boost headers), so
// every agent host and front-end stays as small as before.  Nothing here is secret-dependent in
// its timing except the key itself; MACs are compared in constant time.
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

// n bytes from the kernel's CSPRNG (getrandom), as hex; empty on failure.
std::string random_hex(size_t n);

} // namespace stockade
