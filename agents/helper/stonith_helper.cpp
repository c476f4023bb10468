// stonith_helper.cpp -- the "stonith_helper" agent: death check and mutual-kill guard.
//
// Parameter-compatible with pm_extras' external/stonith_helper, placed in an escalation level
// before the real fencing device.  Two field failures it exists for: (1) a node whose power died
// cannot be fenced through a BMC sharing that power, so fencing retries forever; if every address
// of the victim is silent, the victim is dead and fencing may count as done.  (2) In a split brain
// both nodes shoot at once; the standby side waits first so the active side wins.
//
// Its only success is "all targets are dead" (every dead_check_target silent for trialcount
// echoes).  Otherwise it performs the standby wait (skipped on the active node: the command exits
// 0, or this node holds the SFEX lock) and reports FAILED so the runner escalates to the real
// device.  It never powers anything on.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_util.hpp"
#include "stockade/icmp_probe.hpp"
#include "stockade/agent.h"
#include "stockade/process.hpp"
#include "stockade/sfex.hpp"

using namespace stockade::helper;
using namespace stockade::icmp;
namespace sfex = stockade::sfex;

namespace {

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "hostlist", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "pcmk_host_list",
     .description = "Nodes this device fences, separated by spaces, commas or semicolons"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "dead_check_target", .type = STOCKADE_PARAM_STRING,
     .description = "Addresses of the victim (numeric IPv4/IPv6, optional %iface), separated by spaces, commas or semicolons; all silent = dead"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "dead_check_trialcount", .type = STOCKADE_PARAM_INTEGER,
     .default_value = "5", .description = "ICMP echoes per target (one per second) before it counts as silent"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "run_dead_check", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "1",
     .description = "Check whether every dead_check_target is silent"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "run_standby_wait", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "1",
     .description = "On the standby node, wait standby_wait_time before letting the real device shoot"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "standby_check_command", .type = STOCKADE_PARAM_STRING,
     .description = "Shell command that exits 0 when this node is the active one (killed after 10 s: standby)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "standby_wait_time", .type = STOCKADE_PARAM_SECONDS, .default_value = "25",
     .description = "Seconds the standby node waits so the active node shoots first"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "run_online_check", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
     .description = "pm_extras' crm_node membership check: accepted only as 'no' (not supported)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "run_quorum_check", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
     .description = "pm_extras' quorum check: accepted only as 'no' (it reported success without quorum)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "quorum_check_wait_time", .type = STOCKADE_PARAM_SECONDS,
     .default_value = "10", .description = "Accepted for compatibility; unused"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "sfex_device", .type = STOCKADE_PARAM_STRING,
     .description = "SFEX device: this node is active when it holds the lock (instead of standby_check_command)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "sfex_index", .type = STOCKADE_PARAM_INTEGER, .default_value = "1",
     .description = "SFEX lock index (1..999)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "sfex_nodename", .type = STOCKADE_PARAM_STRING,
     .description = "Node name the SFEX lock is compared with (default: uname -n)"},
};

// What the "am I active?" question may take: standby_check_command is killed after this long (and
// counts as "standby"); reading the SFEX lock is one block.
constexpr int64_t kStandbyCheckMs = 10000;

struct Helper {
    std::vector<std::string> hosts; // lower-case
    bool run_dead_check = true;
    bool run_standby_wait = true;
    std::vector<ProbeTarget> targets;
    int trials = 5;
    std::string standby_command;
    int64_t standby_wait_ms = 25000;
    std::string sfex_device;
    int sfex_index = 1;
    std::string sfex_nodename;
};

bool truthy(const std::string &v)
{
    std::string l = ascii_lower(v);
    return l == "1" || l == "yes" || l == "true" || l == "on";
}

// Runs `command` through /bin/sh in its own process group with stdio on /dev/null, killing its
// tree at timeout_ms.  Returns the exit status (0..255), -1 on timeout, -2 when it could not run
// or its outcome is unknown.
int run_check_command(const stockade_ctx *ctx, const std::string &command, int64_t timeout_ms, std::string &why)
{
    stockade::SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", command};
    spec.stdout_to = stockade::ChildStream::Null;
    spec.stderr_to = stockade::ChildStream::Null;
    auto r = stockade::run_command_until(spec, "", stockade_monotonic_ms() + timeout_ms,
                                         [ctx] { return cancelled(ctx); });
    if (!r) {
        why = r.error().message;
        return -2;
    }
    if (r->end == stockade::ChildEnd::Exited)
        return *r->exit_code;
    if (r->end == stockade::ChildEnd::TimedOut || r->end == stockade::ChildEnd::Cancelled) {
        why = "timed out after " + std::to_string(timeout_ms) + " ms";
        return -1;
    }
    why = r->describe();
    return -2;
}

// Is this node the active one?  Any doubt means "no": the only cost is a delay.
bool node_is_active(const Helper &h, const stockade_ctx *ctx)
{
    if (!h.sfex_device.empty()) {
        LockView v = read_lock_view(h.sfex_device, h.sfex_index, h.sfex_nodename);
        if (!v.read_ok) {
            log(ctx, STOCKADE_LOG_WARNING, "cannot read the SFEX lock, assuming standby: " + v.message);
            return false;
        }
        log(ctx, STOCKADE_LOG_INFO, v.message + (v.ours ? ": this node is active" : ": this node is standby"));
        return v.ours;
    }
    int64_t left = stockade_remaining_ms(ctx);
    std::string why;
    int rc = run_check_command(ctx, h.standby_command, std::min<int64_t>(left, kStandbyCheckMs), why);
    if (rc < 0) {
        log(ctx, STOCKADE_LOG_WARNING, "standby_check_command " + why + ", assuming standby");
        return false;
    }
    log(ctx, STOCKADE_LOG_INFO, "standby_check_command exited " + std::to_string(rc) +
                                    (rc == 0 ? ": this node is active" : ": this node is standby"));
    return rc == 0;
}

struct HelperDevice : Helper {
    static uint32_t open(const stockade_param *p, size_t n, const stockade_ctx *ctx, std::unique_ptr<HelperDevice> &out)
    {
        auto h = std::make_unique<HelperDevice>();
        for (auto &host : split_list(param_value(p, n, "hostlist")))
            h->hosts.push_back(ascii_lower(host));
        if (h->hosts.empty()) {
            set_err(ctx, "parameter 'hostlist' is empty");
            return STOCKADE_RC_BAD_CONFIG;
        }
        // pm_extras' two cluster-manager checks are refused rather than ignored: the quorum check
        // reported "fenced" when quorum was lost, which a fencing framework must never do.
        if (truthy(param_value(p, n, "run_quorum_check", "0"))) {
            set_err(ctx, "parameter 'run_quorum_check': not supported (pm_extras reported success without "
                         "quorum); use a quorum gate in the runner");
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (truthy(param_value(p, n, "run_online_check", "0"))) {
            set_err(ctx, "parameter 'run_online_check': not supported (needs crm_node); set it to no");
            return STOCKADE_RC_BAD_CONFIG;
        }
        h->run_dead_check = truthy(param_value(p, n, "run_dead_check", "1"));
        h->run_standby_wait = truthy(param_value(p, n, "run_standby_wait", "1"));
        long v = 0;
        std::string s = param_value(p, n, "dead_check_trialcount", "5");
        if (!parse_long(s, v) || v < 1 || v > 100) {
            set_err(ctx, "parameter 'dead_check_trialcount': '%s' is not a number of tries in 1..100", s.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        h->trials = int(v);
        if (h->run_dead_check) {
            std::string err;
            if (!parse_probe_targets(param_value(p, n, "dead_check_target"), h->targets, err)) {
                set_err(ctx, "parameter 'dead_check_target' (needed while run_dead_check is on): %s", err.c_str());
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        s = param_value(p, n, "standby_wait_time", "25");
        if (!parse_long(s, v) || v < 0 || v > 86400) {
            set_err(ctx, "parameter 'standby_wait_time': '%s' is not a number of seconds", s.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        h->standby_wait_ms = v * 1000;
        h->standby_command = param_value(p, n, "standby_check_command");
        h->sfex_device = param_value(p, n, "sfex_device");
        s = param_value(p, n, "sfex_index", "1");
        if (!parse_long(s, v) || v < sfex::kMinLocks || v > sfex::kMaxLocks) {
            set_err(ctx, "parameter 'sfex_index': '%s' is not in 1..999", s.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        h->sfex_index = int(v);
        h->sfex_nodename = param_value(p, n, "sfex_nodename");
        if (h->sfex_nodename.empty() && !h->sfex_device.empty()) {
            sfex::Status st = sfex::local_nodename(h->sfex_nodename);
            if (!st.ok()) {
                set_err(ctx, "parameter 'sfex_nodename' unset and %s", st.message.c_str());
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        if (h->run_standby_wait) {
            if (h->standby_command.empty() == h->sfex_device.empty()) {
                set_err(ctx, "%s", h->standby_command.empty()
                                       ? "run_standby_wait is on: set standby_check_command or sfex_device"
                                       : "set only one of standby_check_command and sfex_device");
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        out = std::move(h);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        auto &h = *this;
        if (action != STOCKADE_ACTION_OFF && action != STOCKADE_ACTION_REBOOT) {
            set_err(ctx, "stonith_helper only checks whether a node is dead; it cannot power anything on");
            return STOCKADE_RC_UNSUPPORTED;
        }
        std::string node = ascii_lower(target);
        if (std::find(h.hosts.begin(), h.hosts.end(), node) == h.hosts.end()) {
            set_err(ctx, "target '%s' is not in hostlist", target.c_str());
            return STOCKADE_RC_UNKNOWN_TARGET;
        }

        std::string not_dead = "dead check disabled";
        if (h.run_dead_check) {
            ProbeOptions o;
            o.trials = h.trials;
            o.deadline_ms = ctx->deadline_ms;
            o.cancelled = [ctx] { return cancelled(ctx); };
            o.log = [ctx](int level, const std::string &m) { log(ctx, level, m); };
            ProbeResult r = probe_all(h.targets, o);
            switch (r.verdict) {
            case ProbeVerdict::all_silent:
                log(ctx, STOCKADE_LOG_NOTICE, "all targets are dead: " + r.message);
                *verified = STOCKADE_VERIFIED_OFF;
                return STOCKADE_RC_OK;
            case ProbeVerdict::alive:
                log(ctx, STOCKADE_LOG_INFO, node + " is alive: " + r.message);
                not_dead = r.message;
                break;
            case ProbeVerdict::cancelled:
                set_err(ctx, "cancelled during the death check of %s", node.c_str());
                return STOCKADE_RC_CANCELLED;
            case ProbeVerdict::timeout:
                set_err(ctx, "death check of %s: %s", node.c_str(), r.message.c_str());
                return STOCKADE_RC_TIMEOUT;
            case ProbeVerdict::error:
                log(ctx, STOCKADE_LOG_WARNING, "death check failed, treating " + node + " as alive: " + r.message);
                not_dead = "death check failed: " + r.message;
                break;
            }
        }

        if (h.run_standby_wait) {
            if (node_is_active(h, ctx)) {
                log(ctx, STOCKADE_LOG_INFO, "this node is active: no standby wait");
            } else {
                log(ctx, STOCKADE_LOG_NOTICE, "this node is standby: waiting " + std::to_string(h.standby_wait_ms / 1000) +
                                                  " s so the active node shoots first");
                switch (wait_ms(ctx, h.standby_wait_ms)) {
                case WaitEnd::done:
                    break;
                case WaitEnd::cancelled:
                    set_err(ctx, "cancelled during the standby wait");
                    return STOCKADE_RC_CANCELLED;
                case WaitEnd::deadline:
                    set_err(ctx, "deadline reached during the %lld s standby wait",
                            static_cast<long long>(h.standby_wait_ms / 1000));
                    return STOCKADE_RC_TIMEOUT;
                }
            }
        }
        set_err(ctx, "%s is not known to be dead (%s): leaving it to the next device", node.c_str(), not_dead.c_str());
        return STOCKADE_RC_FAILED;
    }

    uint32_t list(const stockade_ctx * /*ctx*/, stockade_list_fn emit, void *emit_ctx)
    {
        for (const auto &host : hosts)
            emit(emit_ctx, host.c_str(), nullptr);
        return STOCKADE_RC_OK;
    }

    // pm_extras' "status": the parameters were validated by open(); an SFEX device must be readable.
    uint32_t monitor(const stockade_ctx *ctx)
    {
        auto &h = *this;
        if (!h.sfex_device.empty())
            return check_lock_readable(ctx, h.sfex_device, h.sfex_index, h.sfex_nodename);
        return STOCKADE_RC_OK;
    }

    // The helper's work is waiting: the death check's rounds, the standby check and the standby wait.
    // It states that sum, so no front-end cap cuts standby_wait_time short (issue #18).
    uint32_t time_needed(const stockade_ctx * /*ctx*/, uint32_t action, uint32_t *needed_ms) const
    {
        if (action != STOCKADE_ACTION_OFF && action != STOCKADE_ACTION_REBOOT)
            return STOCKADE_RC_UNSUPPORTED; // status, list, monitor: no waiting
        int64_t need = 0;
        if (run_dead_check)
            need += probe_all_budget_ms(trials);
        if (run_standby_wait)
            need += kStandbyCheckMs + standby_wait_ms;
        *needed_ms = uint32_t(std::min<int64_t>(need, UINT32_MAX));
        return STOCKADE_RC_OK;
    }
};

const stockade_agent kAgent = {
    STOCKADE_AGENT_HEADER,
    .capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_REBOOT | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_WAITS,
    .name = "stonith_helper",
    .version = "1.0",
    .summary = "Death check (ICMP) and standby wait before the real fencing device",
    .description =
        "Compatible with pm_extras' stonith_helper.  Reports the target fenced only when every dead_check_target "
        "stays silent for dead_check_trialcount ICMP echoes.  Otherwise the standby node waits standby_wait_time "
        "(the active node, per standby_check_command or the SFEX lock, does not) and the agent fails so the next "
        "escalation level, the real device, shoots.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(HelperDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kAgent; }
