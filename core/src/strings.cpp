// strings.cpp -- small string helpers shared inside the core.
#include "strings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace stockade {

std::string trim(std::string_view s)
{
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return std::string(s.substr(b, e - b));
}

std::string join(const std::vector<std::string> &v, std::string_view sep)
{
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i)
            out += sep;
        out += v[i];
    }
    return out;
}

std::optional<bool> parse_bool(std::string_view s)
{
    std::string l = text::ascii_lower(s);
    if (l == "1" || l == "yes" || l == "on" || l == "true" || l == "y")
        return true;
    if (l == "0" || l == "no" || l == "off" || l == "false" || l == "n")
        return false;
    return std::nullopt;
}

std::string normalise_key(std::string_view s)
{
    std::string out = text::ascii_lower(s);
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

} // namespace stockade
