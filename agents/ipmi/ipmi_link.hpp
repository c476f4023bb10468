// ipmi_link.hpp -- one IPMI-over-LAN session to one BMC through FreeIPMI's ipmi_ctx API.
//
// A link owns exactly one FreeIPMI context (never shared between threads: the agent ABI never
// calls one handle concurrently).  Every blocking FreeIPMI call is bounded by a session timeout,
// and that timeout is cut to what is left of the caller's deadline, so no call outlives it.  Each
// failure is translated, through one table, into a STOCKADE_RC_* code and a message that names the
// cause: unreachable, wrong user, wrong password, privilege too low, or the completion code.
#pragma once

#include <cstdint>
#include <string>

#include "ipmi_config.hpp"
#include "stockade/result.hpp"
#include "stockade/agent.h"

struct ipmi_ctx;

namespace stockade::ipmi {

class IpmiLink {
public:
    explicit IpmiLink(const IpmiConfig &cfg) : cfg_(cfg) {}
    // libgcrypt's set-up inside FreeIPMI (ipmi_rmcpplus_init: version check, thread callbacks,
    // no secure memory; it reads two config files and starts no thread): once per process, before
    // threads race to open sessions.  The agent's prepare runs it in the fork template, so the
    // sessions forked from it skip it (~10 % of a forked session's CPU).
    static void init_crypto();
    ~IpmiLink();
    IpmiLink(const IpmiLink &) = delete;
    IpmiLink &operator=(const IpmiLink &) = delete;

    // Opens a session unless one is open whose timeout still fits the deadline.
    Status ensure_open(const stockade_ctx *ctx);
    // Ends the session (best effort; the BMC also ages idle sessions out).
    void close();
    bool is_open() const { return open_; }

    // Get Chassis Status -> STOCKADE_POWER_ON / STOCKADE_POWER_OFF.
    Result<uint32_t> power_state(const stockade_ctx *ctx);
    // Chassis Control with an IPMI_CHASSIS_CONTROL_* value; success = completion code 0.
    Status chassis_control(const stockade_ctx *ctx, uint8_t value, const char *what);

private:
    Error failure_from_ctx(const char *during, bool opening, void *obj_rs);
    void drop_ctx();

    const IpmiConfig &cfg_;
    ipmi_ctx *ctx_ = nullptr;
    bool open_ = false;
    unsigned session_timeout_ms_ = 0; // of the open session
    bool clamped_by_deadline_ = false;
};

} // namespace stockade::ipmi
