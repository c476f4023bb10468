// ipmi_config.hpp -- the IPMI agent's parameters, parsed once at open().
//
// The host has already resolved aliases, checked types and filled defaults; what is left here is
// meaning: ranges, the cipher-0 guard, workaround names, k_g encoding, the target list, and where
// the password comes from (a value, a script, the environment or a file).  Secrets live only in
// this struct's memory and are wiped when it is destroyed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stockade/result.hpp"
#include "stockade/agent.h"

#include "stockade/secret.hpp"

namespace stockade::ipmi {

enum class RebootMethod { OnOff, Cycle };


struct IpmiConfig {
    std::string host;                 // address or name of the BMC
    int port = 623;
    std::string username;
    SecretString password;
    SecretString k_g;                 // raw bytes, at most 20
    bool lanplus = true;              // IPMI 2.0 / RMCP+; false = IPMI 1.5
    uint8_t cipher = 3;
    uint8_t auth_type = 0;            // IPMI 1.5 only (IPMI_AUTHENTICATION_TYPE_*)
    uint8_t privilege = 4;            // IPMI_PRIVILEGE_LEVEL_*
    std::string privilege_name = "administrator";
    unsigned workaround_flags = 0;
    unsigned session_timeout_ms = 5000;
    unsigned retransmission_timeout_ms = 1000;
    RebootMethod method = RebootMethod::OnOff;
    unsigned power_timeout_s = 20;
    unsigned power_wait_s = 0;
    unsigned nmi_wait_s = 0;          // nmi_before_off: 0 = no NMI before power-off
    std::vector<std::string> hostlist; // empty: any target (one BMC, one node)
    std::optional<uint8_t> bridge_target;       // fence_ipmilan's target: IPMB address to bridge to
    std::optional<unsigned> status_sleep_ms;    // stonith_status_sleep: longest pause between polls
    std::string capture_console;      // file to record SOL output to before power-off ("" = off)
    unsigned capture_seconds = 5;

    std::string endpoint() const { return host + ":" + std::to_string(port); }
    bool accepts_target(const std::string &target) const;
};

// Parses the parameter list handed to open().  Runs password_script (bounded by ctx's deadline)
// when one is configured.  Error messages name the parameter and never contain a secret.
Result<IpmiConfig> parse_config(const stockade_param *params, size_t n, const stockade_ctx *ctx);

// Workaround names as FreeIPMI's tools spell them (-W), for the lanplus or lan protocol.
Result<unsigned> parse_workarounds(const std::string &list, bool lanplus);

} // namespace stockade::ipmi
