// text.hpp -- the one copy of the small text rules every part of stockade needs: lower-casing a
// name, comparing names, splitting a host list, escaping XML, spotting a NUL byte.
//
// Header-only and standard C++ only, because agents (which never link libstockade), front-ends,
// the core and the CLI all use it; each of these rules once existed five or seven times with
// different details ("a;b" was one host for some agents and two for others).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stockade::text {

// Lower-cases ASCII letters only: node, parameter and action names compare case-insensitively,
// and the result must not depend on the process locale.
inline std::string ascii_lower(std::string_view s)
{
    std::string out(s);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
    return out;
}

// ASCII case-insensitive equality (how node names are compared everywhere).
inline bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = char(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = char(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

// THE host-list rule (hostlist, pcmk_host_list, ping target lists, meatware hosts): entries are
// separated by any run of spaces, tabs, line breaks, commas or semicolons -- the separators
// Pacemaker accepts in pcmk_host_list -- and empty entries are dropped.  So "a;b", "a, b" and
// "a\tb" all name two hosts.  Documented in docs/input-rules.md ("Host lists").
inline constexpr std::string_view kListSeparators = " \t\r\n,;";

// Splits on any of the characters in `seps`, dropping empty pieces.
inline std::vector<std::string> split_list(std::string_view s, std::string_view seps = kListSeparators)
{
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find_first_of(seps, i);
        if (j == std::string_view::npos)
            j = s.size();
        if (j > i)
            out.emplace_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

// Escapes text for an XML attribute value or element content.  Control characters other than
// tab, LF and CR are not allowed in XML 1.0 at all, so they become a space.
inline std::string xml_escape(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '\'': out += "&apos;"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
                out += ' ';
            else
                out += c;
        }
    }
    return out;
}

// Whether `s` holds a NUL byte.  Every input that passes through C strings (stdin lines, the
// environment, agent parameters) would be cut silently at the first NUL, so a value with one is
// an error naming its key, never a shorter value.
inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// The whole of `s` as a decimal integer (optional '-'; no blanks, no '+'), or nothing.
inline std::optional<int64_t> parse_int64(std::string_view s)
{
    int64_t v = 0;
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

} // namespace stockade::text
