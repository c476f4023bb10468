// libvirt_config.cpp -- parameter values to a Config (see libvirt_config.hpp).
#include "libvirt_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "stockade/agent_support.hpp"

namespace stockade::libvirt_agent {
namespace {

bool parse_number(std::string_view name, const char *value, long long max, long long &out, Status &err)
{
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(value, &end, 10);
    if (errno || end == value || *end || v < 0 || v > max) {
        err = {STOCKADE_RC_BAD_CONFIG, "parameter '" + std::string(name) + "': '" + value +
                                           "' is not a whole number between 0 and " + std::to_string(max)};
        return false;
    }
    out = v;
    return true;
}

bool parse_bool(const char *value)
{
    for (const char *yes : {"1", "yes", "on", "true"})
        if (iequals(value, yes))
            return true;
    return false;
}

} // namespace

Status parse_config(const stockade_param *params, size_t n, Config &cfg)
{
    Status err;
    long long num = 0;
    std::string hostlist;
    for (const auto &[name, value] : agent::named_values(params, n)) {
        const std::string_view k = name;
        const char *v = value.c_str();
        if (k == "hypervisor_uri") {
            cfg.uri = v;
        } else if (k == "hostlist") {
            hostlist = v;
        } else if (k == "plug") {
            cfg.plug = v;
        } else if (k == "reset_method") {
            auto it = std::find_if(kResetMethods.begin(), kResetMethods.end(),
                                   [&](const ResetMethodInfo &m) { return iequals(m.name, v); });
            if (it == kResetMethods.end())
                return {STOCKADE_RC_BAD_CONFIG,
                        "parameter 'reset_method': '" + std::string(v) + "' is not power_cycle|reboot"};
            cfg.reset_method = it->method;
        } else if (k == "missing_as_off") {
            cfg.missing_as_off = parse_bool(v);
        } else if (k == "connect_timeout" || k == "power_timeout" || k == "power_wait") {
            if (!parse_number(k, v, 86400, num, err))
                return err;
            (k == "connect_timeout" ? cfg.connect_timeout_ms
                                    : k == "power_timeout" ? cfg.power_timeout_ms : cfg.power_wait_ms) = num * 1000;
        } else if (k == "keepalive_interval") {
            if (!parse_number(k, v, 3600, num, err))
                return err;
            cfg.keepalive_interval = static_cast<int>(num);
        } else if (k == "keepalive_count") {
            if (!parse_number(k, v, 100, num, err))
                return err;
            cfg.keepalive_count = static_cast<unsigned>(num);
        } else if (k == "login") {
            cfg.login = v;
        } else if (k == "password") {
            cfg.password = v;
        } else {
            return {STOCKADE_RC_BAD_CONFIG, "unknown parameter '" + std::string(k) + "'"};
        }
    }
    if (cfg.uri.empty())
        return {STOCKADE_RC_BAD_CONFIG,
                "parameter 'hypervisor_uri' is required (an empty URI would let libvirt guess the hypervisor)"};
    if (Status s = parse_hostlist(hostlist, cfg.hosts); !s.ok())
        return {s.rc, "parameter 'hostlist': " + s.message};
    if (cfg.connect_timeout_ms == 0)
        return {STOCKADE_RC_BAD_CONFIG, "parameter 'connect_timeout': must be at least 1 second"};
    cfg.open_uri = effective_uri(cfg.uri);
    cfg.shown_uri = uri_for_display(cfg.uri);
    return {};
}

} // namespace stockade::libvirt_agent
