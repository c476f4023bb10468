// libvirt_config.hpp -- the libvirt agent's parameters, parsed once at open().
//
// The host has already resolved aliases, checked types and filled defaults; what is left here is
// meaning: ranges, the reset method, the host list and the URI as opened and as shown (password
// masked).  The parameter table itself sits next to the agent descriptor in libvirt_agent.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stockade/agent.h"
#include "target_map.hpp"

namespace stockade::libvirt_agent {

enum class ResetMethod { PowerCycle, Reboot };

struct ResetMethodInfo {
    ResetMethod method;
    std::string_view name;
};
constexpr std::array<ResetMethodInfo, 2> kResetMethods{{
    {ResetMethod::PowerCycle, "power_cycle"},
    {ResetMethod::Reboot, "reboot"},
}};

struct Config {
    std::string uri;       // as configured
    std::string open_uri;  // as opened (effective_uri)
    std::string shown_uri; // for messages (password masked)
    HostList hosts;
    std::string plug;
    ResetMethod reset_method = ResetMethod::PowerCycle;
    bool missing_as_off = false;
    int64_t connect_timeout_ms = 10000;
    int64_t power_timeout_ms = 20000;
    int64_t power_wait_ms = 0;
    int keepalive_interval = 2;
    unsigned keepalive_count = 3;
    std::string login;
    std::string password;
};

// Fills `cfg` from the host-resolved parameters; the first problem is a BAD_CONFIG naming the field.
Status parse_config(const stockade_param *params, size_t n, Config &cfg);

} // namespace stockade::libvirt_agent
