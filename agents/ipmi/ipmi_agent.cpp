// ipmi_agent.cpp -- the "ipmi" fencing agent: IPMI-over-LAN chassis power control through
// FreeIPMI's library, with no ipmitool child and no password on any command line.
//
// Fencing rules kept here: power-off is confirmed by reading Get Chassis Status back (polling, not
// sleeping) until it says off or power_timeout expires, and expiry is a failure; a reboot is off +
// confirm, then on; "cycle" is never sent to a node that is already off and still has to be seen
// off; a target that is not in the BMC's hostlist (when one is set) is refused.  One FreeIPMI context per handle.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include <freeipmi/freeipmi.h>

#include "ipmi_config.hpp"
#include "ipmi_console.hpp"
#include "ipmi_link.hpp"
#include "stockade/agent.h"
#include "stockade/agent_poll.hpp"
#include "stockade/agent_support.hpp"

namespace stockade::ipmi {
namespace {


constexpr stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "ip", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "ipaddr", .description = "BMC address or host name"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "ipport", .type = STOCKADE_PARAM_INTEGER, .default_value = "623",
     .description = "BMC UDP port"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "username", .type = STOCKADE_PARAM_STRING, .aliases = "login userid",
     .description = "IPMI user name (empty = anonymous)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "password", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_SECRET,
     .aliases = "passwd", .description = "IPMI password"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "password_script", .type = STOCKADE_PARAM_STRING, .aliases = "passwd_script",
     .description = "Shell command whose first output line is the password (run with /bin/sh -c, nothing secret on argv)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "passwd_method", .type = STOCKADE_PARAM_SELECT, .default_value = "param",
     .choices = "param|env|file",
     .description = "Where the password comes from: param (password/password_script), env (IPMI_PASSWORD when no password is "
                    "set), file (password_file)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "password_file", .type = STOCKADE_PARAM_STRING,
     .description = "File whose first line is the password (passwd_method=file)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "lanplus", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "1",
     .description = "Use IPMI 2.0 / RMCP+ (off = IPMI 1.5)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "cipher", .type = STOCKADE_PARAM_INTEGER, .default_value = "3",
     .description = "RMCP+ cipher suite (3 = HMAC-SHA1/AES-CBC-128; 0 is refused unless allow_cipher_zero=1)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "allow_cipher_zero", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
     .description = "Permit cipher suite 0 / authentication type none (no authentication at all)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "auth", .type = STOCKADE_PARAM_SELECT, .default_value = "md5",
     .choices = "md5|md2|password|none", .description = "IPMI 1.5 authentication type (lanplus=0 only)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "privlvl", .type = STOCKADE_PARAM_SELECT, .default_value = "administrator",
     .choices = "administrator|operator|user",
     .description = "Privilege level requested for the session (chassis control needs operator)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "k_g", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_SECRET,
     .aliases = "kg", .description = "BMC key K_g: up to 20 bytes of text, or hexadecimal (0x prefix or 40 digits)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "workarounds", .type = STOCKADE_PARAM_STRING, .aliases = "workaround_flags",
     .description = "FreeIPMI workaround names, comma-separated (e.g. opensesspriv, authcap, intel20, supermicro20, sun20)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "session_timeout", .type = STOCKADE_PARAM_INTEGER, .default_value = "5000",
     .aliases = "session_timeout_ms",
     .description = "Milliseconds without an answer before the BMC is declared unreachable"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "retransmission_timeout", .type = STOCKADE_PARAM_INTEGER,
     .default_value = "1000", .aliases = "retransmission_timeout_ms",
     .description = "Longest wait before an unanswered packet is sent again (shortened so FreeIPMI's resend backoff "
                    "ends exactly at session_timeout)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "method", .type = STOCKADE_PARAM_SELECT, .default_value = "onoff",
     .choices = "onoff|cycle",
     .description = "Reboot by off+on (each confirmed) or by one power-cycle command (still confirmed off)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "power_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "20",
     .description = "Seconds to wait for the BMC to report the new power state; expiry is a failure"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "power_wait", .type = STOCKADE_PARAM_SECONDS, .default_value = "0",
     .description = "Seconds to sleep after a power command before polling (0 = poll at once)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "nmi_before_off", .type = STOCKADE_PARAM_SECONDS, .default_value = "0",
     .aliases = "diag_before_off",
     .description = "If set, send a diagnostic interrupt (NMI) and wait this many seconds before power-off (crash dump); "
                    "its failure never blocks the fence"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "capture_console", .type = STOCKADE_PARAM_STRING,
     .description = "File to append the victim's Serial-over-LAN output to before power-off (post-mortem evidence; best "
                    "effort, never blocks the fence)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "capture_seconds", .type = STOCKADE_PARAM_SECONDS, .default_value = "5",
     .description = "How long to record the console before power-off (capture_console)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "hostlist", .type = STOCKADE_PARAM_STRING,
     .aliases = "hostname plug nodename",
     .description = "Node name(s) this BMC powers, separated by spaces, commas or semicolons; any other target is refused.  Unset: the BMC powers whatever target it is "
                    "asked for (one BMC, one node, as with fence_ipmilan; let pcmk_host_list name the node)"},
    // fence_ipmilan's own parameters, so that its primitives work unchanged (see ipmi_config.cpp).
    {STOCKADE_PARAM_DESC_HEADER, .name = "target", .type = STOCKADE_PARAM_STRING,
     .description = "Bridge requests to this IPMB address behind the BMC (ipmitool -t; e.g. 0x82); unset = the BMC itself"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "hexadecimal_kg", .type = STOCKADE_PARAM_STRING,
     .flags = STOCKADE_PARAM_SECRET, .description = "BMC key K_g in hexadecimal (as fence_ipmilan's hexadecimal_kg)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "ipmitool_timeout", .type = STOCKADE_PARAM_STRING,
     .description = "fence_ipmilan's per-packet timeout in seconds (ipmitool -N): sets retransmission_timeout"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "stonith_status_sleep", .type = STOCKADE_PARAM_SECONDS,
     .description = "Longest sleep in seconds between status polls while waiting for the new power state (polling starts at "
                    "50 ms and backs off up to this)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "ipmitool_path", .type = STOCKADE_PARAM_STRING,
     .description = "Accepted for fence_ipmilan compatibility and ignored: no ipmitool is run"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "use_sudo", .type = STOCKADE_PARAM_BOOLEAN, .aliases = "sudo",
     .description = "Accepted for fence_ipmilan compatibility and ignored: no ipmitool is run, so nothing needs sudo"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "sudo_path", .type = STOCKADE_PARAM_STRING,
     .description = "Accepted for fence_ipmilan compatibility and ignored"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "port_as_ip", .type = STOCKADE_PARAM_BOOLEAN,
     .description = "Accepted for fence_ipmilan compatibility; unsupported (set ip): a warning is logged when it is on"},
};

constexpr uint32_t kCaps = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS |
                           STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_DIAG;

using stockade::agent::cancelled;
using stockade::agent::log;
using stockade::agent::set_err;

uint32_t report(const stockade_ctx *ctx, const Error &f)
{
    set_err(ctx, f.message);
    return f.rc;
}

const char *state_name(uint32_t s) { return s == STOCKADE_POWER_ON ? "on" : s == STOCKADE_POWER_OFF ? "off" : "unknown"; }

// Sleeps up to ms, waking for cancellation and never past ctx's deadline.
Status sleep_within(const stockade_ctx *ctx, int64_t ms) { return agent::sleep_within(ctx, ms, "ipmi"); }

class IpmiDevice {
public:
    explicit IpmiDevice(IpmiConfig cfg) : cfg_(std::move(cfg)), link_(cfg_) {}

    static uint32_t prepare()
    {
        IpmiLink::init_crypto();
        return STOCKADE_RC_OK;
    }

    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                         std::unique_ptr<IpmiDevice> &out);
    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified);
    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *state);
    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx);
    uint32_t monitor(const stockade_ctx *ctx);

private:
    // Polls status until it reads `want` or power_timeout passes (a failure).
    Status wait_for(const stockade_ctx *ctx, uint32_t want, const char *after, int64_t max_interval_ms);
    // Sends the command unless `known_state` is already `want` (UNKNOWN: sent anyway), then confirms.
    Status set_power(const stockade_ctx *ctx, uint32_t want, uint32_t known_state);
    Status reboot(const stockade_ctx *ctx, uint32_t *verified);
    void nmi_before_off(const stockade_ctx *ctx);
    void console_before_off(const stockade_ctx *ctx, const std::string &target);
    // What must stay free of the deadline for the power-off itself.
    int64_t off_reserve_ms() const
    {
        return int64_t(cfg_.power_timeout_s) * 1000 + 2 * int64_t(cfg_.session_timeout_ms);
    }
    Error unknown_target(const std::string &target) const;

    IpmiConfig cfg_;
    IpmiLink link_;
};

Error IpmiDevice::unknown_target(const std::string &target) const
{
    std::string names;
    for (const auto &h : cfg_.hostlist)
        names += (names.empty() ? "" : " ") + h;
    return Error{STOCKADE_RC_UNKNOWN_TARGET, "ipmi " + cfg_.endpoint() + ": unknown target '" + target +
                                                "': this BMC powers only [" + names + "] (hostlist)"};
}

Status IpmiDevice::wait_for(const stockade_ctx *ctx, uint32_t want, const char *after, int64_t max_interval_ms)
{
    const int64_t start = stockade_monotonic_ms();
    agent::PollPlan plan;
    plan.give_up_at = start + int64_t(cfg_.power_timeout_s) * 1000;
    plan.first_pause_ms = int64_t(cfg_.power_wait_s) * 1000;
    plan.max_interval_ms = cfg_.status_sleep_ms ? std::max<int64_t>(50, *cfg_.status_sleep_ms) : max_interval_ms;
    uint32_t last_state = STOCKADE_POWER_UNKNOWN;
    Status s = agent::poll_until(
        ctx, plan, "ipmi", state_name(want),
        [&]() -> Result<bool> {
            auto st = link_.power_state(ctx);
            if (!st)
                return st.error();
            last_state = *st;
            return *st == want;
        },
        [&](const std::string &last_error) -> Status {
            std::string msg = "ipmi " + cfg_.endpoint() + ": " + after + " accepted, but the BMC did not report " +
                              state_name(want) + " within power_timeout=" + std::to_string(cfg_.power_timeout_s) +
                              " s (last status: " + state_name(last_state) + ")";
            if (!last_error.empty())
                msg += "; last error: " + last_error;
            return Error{STOCKADE_RC_FAILED, msg};
        });
    if (s)
        log(ctx, STOCKADE_LOG_INFO,
            "ipmi " + cfg_.endpoint() + ": confirmed " + state_name(want) + " " +
                std::to_string(stockade_monotonic_ms() - start) + " ms after " + after);
    return s;
}

Status IpmiDevice::set_power(const stockade_ctx *ctx, uint32_t want, uint32_t known_state)
{
    // No status read first unless the caller has one: power-down of an off node and power-up of
    // an on node change nothing (IPMI Chassis Control), and the confirming read that follows says
    // whether it is there.  That read first was a third BMC exchange per off (the bare off +
    // confirm client issue 14 compares with sends two), one BMC round trip on every fence.
    if (known_state == want) {
        log(ctx, STOCKADE_LOG_NOTICE, "ipmi " + cfg_.endpoint() + ": already " + state_name(want));
        return {};
    }
    const bool off = want == STOCKADE_POWER_OFF;
    const char *what = off ? "power down" : "power up";
    // A BMC that does not answer at all has been sent nothing: that is the answer, at once.
    if (Status open = link_.ensure_open(ctx); !open)
        return open;
    Status c = link_.chassis_control(ctx, off ? IPMI_CHASSIS_CONTROL_POWER_DOWN : IPMI_CHASSIS_CONTROL_POWER_UP, what);
    if (!c) {
        // The reply may be what got lost, or the BMC refuses the command in the state the node
        // is already in: read the state back once (a fresh session if the link failed).
        if (c.error().rc != STOCKADE_RC_UNREACHABLE && known_state != STOCKADE_POWER_UNKNOWN)
            return c;
        auto again = link_.power_state(ctx);
        if (!again || *again != want)
            return c;
        log(ctx, STOCKADE_LOG_WARNING, c.error().message + "; but the BMC now reports " + state_name(want));
        return {};
    }
    return wait_for(ctx, want, what, 1000);
}

void IpmiDevice::nmi_before_off(const stockade_ctx *ctx)
{
    if (!cfg_.nmi_wait_s)
        return;
    Status s = link_.chassis_control(ctx, IPMI_CHASSIS_CONTROL_PULSE_DIAGNOSTIC_INTERRUPT, "diagnostic interrupt");
    if (!s) {
        log(ctx, STOCKADE_LOG_WARNING, s.error().message + "; powering off without a crash dump");
        return;
    }
    // Leave the victim time to dump, but never eat the time the power-off itself needs.
    const int64_t reserve = off_reserve_ms();
    const int64_t left = stockade_remaining_ms(ctx);
    int64_t wait = int64_t(cfg_.nmi_wait_s) * 1000;
    if (left != INT64_MAX)
        wait = std::min(wait, left - reserve);
    log(ctx, STOCKADE_LOG_NOTICE, "ipmi " + cfg_.endpoint() + ": NMI sent; waiting " +
                                      std::to_string(std::max<int64_t>(wait, 0)) + " ms before power-off");
    if (wait > 0)
        (void)sleep_within(ctx, wait);
}

void IpmiDevice::console_before_off(const stockade_ctx *ctx, const std::string &target)
{
    if (cfg_.capture_console.empty())
        return;
    int64_t budget = int64_t(cfg_.capture_seconds) * 1000;
    const int64_t left = stockade_remaining_ms(ctx);
    if (left != INT64_MAX)
        budget = std::min(budget, left - off_reserve_ms());
    auto got = capture_console(cfg_, ctx, target, budget);
    if (got)
        log(ctx, STOCKADE_LOG_NOTICE, "ipmi " + cfg_.endpoint() + ": recorded " + std::to_string(*got) +
                                          " bytes of console output to " + cfg_.capture_console);
    else
        log(ctx, STOCKADE_LOG_WARNING, got.error().message + "; fencing without a console record");
}

Status IpmiDevice::reboot(const stockade_ctx *ctx, uint32_t *verified)
{
    // A power cycle needs a node that is on; onoff does not ask (see set_power).
    Result<uint32_t> st = uint32_t(STOCKADE_POWER_UNKNOWN);
    if (cfg_.method == RebootMethod::Cycle)
        st = link_.power_state(ctx);
    if (!st)
        return st.error();
    if (*st == STOCKADE_POWER_ON && cfg_.method == RebootMethod::Cycle) {
        Status c = link_.chassis_control(ctx, IPMI_CHASSIS_CONTROL_POWER_CYCLE, "power cycle");
        if (!c)
            return c;
        // A cycle counts as a fence only if the node is actually seen off (poll fast: the off
        // window of a cycle can be short).
        Status off = wait_for(ctx, STOCKADE_POWER_OFF, "power cycle", 200);
        if (!off)
            return Error{off.error().rc, off.error().message + "; the power cycle was NOT confirmed (node never "
                                                                   "seen off)"};
        *verified |= STOCKADE_VERIFIED_OFF;
        Status on = wait_for(ctx, STOCKADE_POWER_ON, "power cycle", 1000);
        if (on)
            *verified |= STOCKADE_VERIFIED_ON;
        else
            log(ctx, STOCKADE_LOG_WARNING, "reboot: node confirmed off, but not back on: " + on.error().message);
        return {};
    }
    if (*st != STOCKADE_POWER_OFF) {
        Status off = set_power(ctx, STOCKADE_POWER_OFF, *st);
        if (!off)
            return off;
    } else {
        log(ctx, STOCKADE_LOG_NOTICE, "ipmi " + cfg_.endpoint() + ": reboot: node already off, powering on");
    }
    *verified |= STOCKADE_VERIFIED_OFF;
    Status on = set_power(ctx, STOCKADE_POWER_ON, STOCKADE_POWER_OFF);
    if (on)
        *verified |= STOCKADE_VERIFIED_ON;
    else {
        log(ctx, STOCKADE_LOG_WARNING, "reboot: node confirmed off, but power-on failed: " + on.error().message);
        set_err(ctx, "node confirmed off, but power-on failed: " + on.error().message);
    }
    return {};
}

uint32_t IpmiDevice::power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
{
    *verified = 0;
    if (!cfg_.accepts_target(target))
        return report(ctx, unknown_target(target));
    struct CloseAtEnd {
        IpmiLink &l;
        ~CloseAtEnd() { l.close(); }
    } closer{link_};

    switch (action) {
    case STOCKADE_ACTION_OFF: {
        uint32_t known = STOCKADE_POWER_UNKNOWN;
        if (!cfg_.capture_console.empty() || cfg_.nmi_wait_s) { // only a node that is on gets them
            auto st = link_.power_state(ctx);
            if (!st)
                return report(ctx, st.error());
            known = *st;
            if (known == STOCKADE_POWER_ON) {
                link_.close(); // no idle session held open while the console is recorded
                console_before_off(ctx, target);
                nmi_before_off(ctx);
            }
        }
        Status s = set_power(ctx, STOCKADE_POWER_OFF, known);
        if (!s)
            return report(ctx, s.error());
        *verified = STOCKADE_VERIFIED_OFF;
        return STOCKADE_RC_OK;
    }
    case STOCKADE_ACTION_ON: {
        Status s = set_power(ctx, STOCKADE_POWER_ON, STOCKADE_POWER_UNKNOWN);
        if (!s)
            return report(ctx, s.error());
        *verified = STOCKADE_VERIFIED_ON;
        return STOCKADE_RC_OK;
    }
    case STOCKADE_ACTION_REBOOT: {
        Status s = reboot(ctx, verified);
        if (!s)
            return report(ctx, s.error());
        return STOCKADE_RC_OK;
    }
    case STOCKADE_ACTION_DIAG: {
        Status s = link_.chassis_control(ctx, IPMI_CHASSIS_CONTROL_PULSE_DIAGNOSTIC_INTERRUPT, "diagnostic interrupt");
        if (!s)
            return report(ctx, s.error());
        log(ctx, STOCKADE_LOG_NOTICE, "ipmi " + cfg_.endpoint() + ": diagnostic interrupt (NMI) sent to " + target);
        return STOCKADE_RC_OK;
    }
    default:
        set_err(ctx, "ipmi: unknown action " + std::to_string(action));
        return STOCKADE_RC_UNSUPPORTED;
    }
}

uint32_t IpmiDevice::status(const stockade_ctx *ctx, const std::string &target, uint32_t *state)
{
    *state = STOCKADE_POWER_UNKNOWN;
    if (!cfg_.accepts_target(target))
        return report(ctx, unknown_target(target));
    auto st = link_.power_state(ctx);
    link_.close();
    if (!st)
        return report(ctx, st.error());
    *state = *st;
    return STOCKADE_RC_OK;
}

uint32_t IpmiDevice::monitor(const stockade_ctx *ctx)
{
    auto st = link_.power_state(ctx);
    link_.close();
    if (!st)
        return report(ctx, st.error());
    return STOCKADE_RC_OK;
}

uint32_t IpmiDevice::list(const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx)
{
    // Without a hostlist there is nothing to list.  A failure (not an empty list) makes
    // pacemaker-fenced fall back to asking status for the target, as it does for fence_ipmilan.
    if (cfg_.hostlist.empty()) {
        set_err(ctx, "ipmi " + cfg_.endpoint() + ": no hostlist: this BMC powers whatever node it is asked to "
                     "(name it with pcmk_host_list)");
        return STOCKADE_RC_UNSUPPORTED;
    }
    for (const auto &h : cfg_.hostlist)
        emit(emit_ctx, h.c_str(), "");
    return STOCKADE_RC_OK;
}

uint32_t IpmiDevice::open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                          std::unique_ptr<IpmiDevice> &out)
{
    auto cfg = parse_config(params, n, ctx);
    if (!cfg)
        return report(ctx, cfg.error());
    out = std::make_unique<IpmiDevice>(std::move(cfg.value()));
    return STOCKADE_RC_OK;
}

const stockade_agent kAgent = {
    STOCKADE_AGENT_HEADER,
    .capabilities = kCaps,
    .name = "ipmi",
    .version = "1.0",
    .summary = "IPMI-over-LAN chassis power control through FreeIPMI (no ipmitool, no password on argv)",
    .description =
        "Fences a node through its BMC (iDRAC, iLO, IPMI 2.0 boards) with FreeIPMI's library. Power-off is "
        "confirmed by reading the chassis status back until it reports off or power_timeout expires (a failure). "
        "With hostlist set, other targets are refused; without it, the BMC powers whatever node it is asked to "
        "(as fence_ipmilan). Accepts every fence_ipmilan parameter.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(IpmiDevice),
};

} // namespace
} // namespace stockade::ipmi

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &stockade::ipmi::kAgent;
}
