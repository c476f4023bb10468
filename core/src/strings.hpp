// strings.hpp -- small string helpers shared inside the core (not public API).  Lower-casing,
// splitting and escaping live in stockade/text.hpp, shared with agents and front-ends.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/text.hpp"

namespace stockade {

std::string trim(std::string_view s);
std::string join(const std::vector<std::string> &v, std::string_view sep);
using text::parse_int64;
std::optional<bool> parse_bool(std::string_view s);
// Lower-case, '-' -> '_': the form under which parameter names are compared.
std::string normalise_key(std::string_view s);

} // namespace stockade
