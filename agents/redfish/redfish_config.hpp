// redfish_config.hpp -- the Redfish agent's parameters, parsed once at open().
//
// The host has already resolved aliases (fence_redfish's names included), checked types and filled
// defaults; what is left here is meaning: the address (fence_redfish's "ip:port" form included),
// the TLS trust choice (CA file, pinned certificate fingerprint, or ssl_insecure -- exactly one
// wins, and insecure only when asked), URIs that must be absolute paths, and the time limits.
// Parsing is pure (no I/O), so the same code can answer "how long do you need" without a device.
// The password lives only in this struct's memory and is wiped when it is destroyed.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "stockade/agent.h"
#include "stockade/result.hpp"

#include "stockade/secret.hpp"

namespace stockade::redfish {

enum class RebootMethod { OnOff, Cycle };
enum class AuthType { Basic, Session };
enum class TlsTrust { SystemCa, CaFile, Fingerprint, Insecure };


struct RedfishConfig {
    std::string host;                 // address or name of the BMC (no brackets, no port)
    int port = 443;
    bool port_as_ip = false;          // the target names the BMC (fence-agents port_as_ip)
    std::string username;
    SecretString password;
    AuthType auth = AuthType::Basic;
    std::string redfish_uri = "/redfish/v1";
    std::string systems_uri;          // "" = discover through the service root
    TlsTrust trust = TlsTrust::SystemCa;
    std::string ca_file;
    std::array<unsigned char, 32> fingerprint{}; // SHA-256 of the DER certificate (TlsTrust::Fingerprint)
    RebootMethod method = RebootMethod::OnOff;
    unsigned power_timeout_s = 20;
    unsigned power_wait_s = 0;
    unsigned login_timeout_s = 5;     // connect + TLS handshake
    unsigned request_timeout_s = 10;  // one HTTP request, answer included
    unsigned status_sleep_s = 1;      // longest pause between two PowerState reads
    unsigned retries = 2;             // extra attempts of a request that failed transiently (5xx, no answer)

    // How long an action (STOCKADE_ACTION_*) may take under these limits, in ms: what the agent
    // states through time_needed (see time_needed_ms below).
    int64_t request_ms() const { return int64_t(request_timeout_s) * 1000; }
    // One request run to the end of its own limits: request_timeout per attempt, `retries` more
    // attempts, and the growing pauses between them (kRetryPauseMs, 2x, 3x...).
    int64_t request_with_retries_ms() const;
    // power_wait + power_timeout: the window after a reset is accepted in which the task (202) is
    // followed and PowerState must reach the new state.
    int64_t confirm_window_ms() const { return (int64_t(power_wait_s) + power_timeout_s) * 1000; }

    // "https://host:port" for `host` (the configured one, or the target with port_as_ip).
    std::string base_url(const std::string &for_host) const;
    std::string endpoint(const std::string &for_host) const { return for_host + ":" + std::to_string(port); }
};

// Pause before the first retry of a failed request; the k-th retry waits k times this.
inline constexpr int64_t kRetryPauseMs = 200;

// What time_needed states for `action` (STOCKADE_ACTION_*), in ms; 0 = no statement (status, list,
// monitor: the front-end's query budget applies).  The agent's own limits when the BMC is slow in
// one place at a time: connecting (login_timeout), one request that runs out request_timeout and
// every retry, each confirmation window (power_wait + power_timeout: the 202 task and the
// PowerState reads) used up, and the PowerState read in flight when a window closes
// (request_timeout).  off/on: one window; reboot (onoff): off + on, two windows on the one
// connection; method=cycle: the window in which Off must be seen, then power_timeout for On; diag:
// the Nmi request and its task (power_timeout).  A BMC slow in several places at once is cut at
// this statement: a timeout, not a fence, as it would be anyway.
int64_t time_needed_ms(const RedfishConfig &c, uint32_t action);

// Parses the parameter list handed to open().  Messages name the parameter, never a secret.
Result<RedfishConfig> parse_config(const stockade_param *params, size_t n);

// The agent's parameter table (static storage), for the descriptor.
struct ParamTable {
    const stockade_param_desc *rows;
    size_t count;
};
ParamTable param_table();

// Lower-case hex of a SHA-256 fingerprint, colon separated (as `openssl x509 -fingerprint`).
std::string fingerprint_text(const std::array<unsigned char, 32> &fp);

} // namespace stockade::redfish
