// target_map.cpp -- hostlist parsing, target resolution and URI rewrites for the libvirt agent
// (see target_map.hpp for the rules).
#include "target_map.hpp"

#include <cctype>

#include "stockade/agent.h"

namespace stockade::libvirt_agent {

namespace {

bool is_hex(char c)
{
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

struct UriParts {
    std::string_view scheme;    // "qemu+ssh"
    std::string_view authority; // "root@host:22"
    std::string_view rest;      // "/system?no_verify=1"
};

std::optional<UriParts> split_uri(std::string_view uri)
{
    auto sep = uri.find("://");
    if (sep == std::string_view::npos || sep == 0)
        return std::nullopt;
    UriParts p;
    p.scheme = uri.substr(0, sep);
    std::string_view after = uri.substr(sep + 3);
    auto slash = after.find_first_of("/?");
    p.authority = after.substr(0, slash);
    p.rest = slash == std::string_view::npos ? std::string_view{} : after.substr(slash);
    return p;
}

} // namespace

const HostEntry *HostList::find(std::string_view node) const
{
    for (const auto &e : entries)
        if (iequals(e.node, node))
            return &e;
    return nullptr;
}

Status parse_hostlist(std::string_view text, HostList &out)
{
    out.entries.clear();
    for (const std::string &entry : stockade::text::split_list(text)) {
        std::string_view item = entry;
        HostEntry e;
        auto colon = item.find(':');
        e.node = std::string(item.substr(0, colon));
        e.domain = colon == std::string_view::npos ? e.node : std::string(item.substr(colon + 1));
        if (e.node.empty())
            return {STOCKADE_RC_BAD_CONFIG, "hostlist entry '" + std::string(item) + "' has no node name"};
        if (e.domain.empty())
            return {STOCKADE_RC_BAD_CONFIG, "hostlist entry '" + std::string(item) + "' has an empty domain"};
        if (const HostEntry *dup = out.find(e.node); dup) {
            if (dup->domain != e.domain)
                return {STOCKADE_RC_BAD_CONFIG, "hostlist names node '" + e.node + "' twice, as '" + dup->domain +
                                                    "' and '" + e.domain + "'"};
            continue;
        }
        out.entries.push_back(std::move(e));
    }
    return {};
}

bool looks_like_uuid(std::string_view s)
{
    if (s.size() == 32) {
        for (char c : s)
            if (!is_hex(c))
                return false;
        return true;
    }
    if (s.size() != 36)
        return false;
    for (size_t i = 0; i < s.size(); ++i) {
        bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_here ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

Status resolve_target(const HostList &hosts, std::string_view plug, std::string_view target,
                      ResolvedTarget &out)
{
    if (const HostEntry *e = target.empty() ? nullptr : hosts.find(target)) {
        out = {e->domain, TargetSource::HostList};
        return {};
    }
    if (!hosts.entries.empty() && plug.empty()) {
        std::string known;
        for (const auto &e : hosts.entries)
            known += (known.empty() ? "" : " ") + e.node;
        return {STOCKADE_RC_UNKNOWN_TARGET, "node '" + std::string(target) + "' is not in hostlist (" + known + ")"};
    }
    if (!plug.empty()) {
        out = {std::string(plug), TargetSource::Plug};
        return {};
    }
    if (target.empty())
        return {STOCKADE_RC_BAD_CONFIG, "no target: give the domain as the target, in 'plug' or through 'hostlist'"};
    out = {std::string(target), TargetSource::Direct};
    return {};
}

std::string effective_uri(std::string_view uri)
{
    std::string result(uri);
    auto parts = split_uri(uri);
    if (!parts)
        return result;
    auto plus = parts->scheme.find('+');
    if (plus == std::string_view::npos || parts->scheme.substr(plus + 1) != "ssh")
        return result;
    auto q = result.find('?');
    if (q != std::string::npos) {
        std::string_view query = std::string_view(result).substr(q + 1);
        // Parameter names are matched whole: "no_tty=" at the start or after '&'.
        for (size_t pos = 0; pos <= query.size();) {
            auto amp = query.find('&', pos);
            std::string_view kv = query.substr(pos, amp == std::string_view::npos ? query.npos : amp - pos);
            if (kv == "no_tty" || kv.substr(0, 7) == "no_tty=")
                return result;
            if (amp == std::string_view::npos)
                break;
            pos = amp + 1;
        }
        return result + "&no_tty=1";
    }
    return result + "?no_tty=1";
}

std::string uri_for_display(std::string_view uri)
{
    std::string shown(uri);
    auto parts = split_uri(uri);
    if (!parts)
        return shown;
    auto at = parts->authority.rfind('@');
    if (at == std::string_view::npos)
        return shown;
    auto colon = parts->authority.substr(0, at).find(':');
    if (colon == std::string_view::npos)
        return shown;
    size_t begin = static_cast<size_t>(parts->authority.data() - uri.data()) + colon + 1;
    size_t end = static_cast<size_t>(parts->authority.data() - uri.data()) + at;
    return shown.replace(begin, end - begin, "***");
}

std::optional<std::string> test_driver_file(std::string_view uri)
{
    auto parts = split_uri(uri);
    if (!parts || parts->scheme != "test" || !parts->authority.empty())
        return std::nullopt;
    std::string_view path = parts->rest.substr(0, parts->rest.find('?'));
    if (path.empty() || path == "/default")
        return std::nullopt;
    return std::string(path);
}

} // namespace stockade::libvirt_agent
