// sfex_wrapper.cpp -- the "sfex_wrapper" agent: an SFEX-aware guard around a real fencing agent.
//
// Linux-HA Japan's stonith-wrapper (Heartbeat 2.1.4 era) has no public source; this is our spec
// (see the notes, section 6).  In a split brain both nodes fence each other at once and the whole
// cluster goes down.  The wrapper lets the node that holds the SFEX lock (the active one) shoot at
// once, and makes every other node wait sby_wait first, so the active side's shot lands first.
//
// reset/off: if every nodeip* is silent the victim is dead: success.  Otherwise read the lock;
// ours -> call the real agent now; not ours -> wait sby_wait, re-read (for the log: a victim still
// renewing the lock is alive and active, a lock that moved to us makes us active) and call the
// real agent.  The real agent runs through ctx->invoke under control_timeout, in its own isolated
// process tree that the host kills at that timeout.
//
// Parameters for the real agent: the agent declares STOCKADE_CAP_EXTRA_PARAMS, so every parameter
// not in its own table reaches open() unchanged and is passed on ("every other parameter goes to
// the real agent"); nodeip<N> beyond the eight declared ones arrive the same way.  For hosts or
// configurations that reject unknown names, the `real_params` string ("key=value key='v a l'")
// carries them too; entries there win over same-named extras.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent_util.hpp"
#include "stockade/icmp_probe.hpp"
#include "stockade/agent.h"
#include "stockade/sfex.hpp"

using namespace stockade::helper;
using namespace stockade::icmp;
namespace sfex = stockade::sfex;

namespace {

#define NODEIP(i)                                                                                               \
    {STOCKADE_PARAM_DESC_HEADER, .name = "nodeip" #i, .type = STOCKADE_PARAM_STRING,                             \
     .description = "An address of the victim for the death check (numeric IPv4/IPv6, optional %iface; may list " \
                    "several)"}

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "real_plugin", .type = STOCKADE_PARAM_STRING,
     .flags = STOCKADE_PARAM_REQUIRED, .description = "The agent that really fences (a stockade agent name)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "real_params", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_SECRET,
     .description = "Parameters for the real agent: key=value pairs separated by blanks; quote values with '...' or \"...\" "
                    "(backslash escapes inside \"...\" and outside quotes).  Secret: may hold the device password"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "sby_wait", .type = STOCKADE_PARAM_SECONDS, .default_value = "25",
     .description = "Seconds a node that does not hold the SFEX lock waits before shooting"},
    NODEIP(1), NODEIP(2), NODEIP(3), NODEIP(4), NODEIP(5), NODEIP(6), NODEIP(7), NODEIP(8),
    {STOCKADE_PARAM_DESC_HEADER, .name = "dead_check_trialcount", .type = STOCKADE_PARAM_INTEGER,
     .default_value = "5", .description = "ICMP echoes per nodeip (one per second) before it counts as silent"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "device", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "sfex_device", .description = "SFEX device (shared partition) holding the lock"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "index", .type = STOCKADE_PARAM_INTEGER, .default_value = "1",
     .aliases = "sfex_index", .description = "SFEX lock index (1..999)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "nodename", .type = STOCKADE_PARAM_STRING, .aliases = "sfex_nodename",
     .description = "This node's name as written in the lock (default: uname -n)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "start_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "20",
     .description = "Accepted for compatibility: the real agent is opened inside each call, so opening counts against "
                    "control_timeout/status_timeout"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "status_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "20",
     .description = "Limit for the real agent's status call"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "control_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "60",
     .description = "Limit for the real agent's off/reboot/on call; its whole process tree is killed at expiry"},
};
#undef NODEIP

struct Wrapper {
    std::string real_plugin;
    std::vector<std::pair<std::string, std::string>> real_params;
    int64_t sby_wait_ms = 25000;
    std::vector<ProbeTarget> nodeips;
    int trials = 5;
    std::string device;
    int index = 1;
    std::string nodename;
    int64_t status_timeout_ms = 20000;
    int64_t control_timeout_ms = 60000;
};

// Splits "k=v k2='a b' k3=\"x\\\"y\"" into pairs.  False with a reason (never echoing values,
// which may be secrets).
bool parse_real_params(const std::string &s, std::vector<std::pair<std::string, std::string>> &out,
                       std::string &error)
{
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word)
                words.push_back(cur);
            cur.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        if (c == '\'') {
            size_t end = s.find('\'', i + 1);
            if (end == std::string::npos) {
                error = "unterminated ' quote in word " + std::to_string(words.size() + 1);
                return false;
            }
            cur += s.substr(i + 1, end - i - 1);
            i = end;
        } else if (c == '"') {
            size_t j = i + 1;
            for (; j < s.size() && s[j] != '"'; ++j) {
                if (s[j] == '\\' && j + 1 < s.size())
                    ++j;
                cur += s[j];
            }
            if (j >= s.size()) {
                error = "unterminated \" quote in word " + std::to_string(words.size() + 1);
                return false;
            }
            i = j;
        } else if (c == '\\' && i + 1 < s.size()) {
            cur += s[++i];
        } else {
            cur += c;
        }
    }
    if (in_word)
        words.push_back(cur);
    for (size_t w = 0; w < words.size(); ++w) {
        auto eq = words[w].find('=');
        if (eq == std::string::npos || eq == 0) {
            error = "word " + std::to_string(w + 1) + " is not key=value";
            return false;
        }
        out.emplace_back(words[w].substr(0, eq), words[w].substr(eq + 1));
    }
    return true;
}

bool is_own_param(const std::string &name)
{
    for (const auto &d : kParams)
        if (name == d.name)
            return true;
    return false;
}

bool seconds_param(const stockade_param *p, size_t n, const stockade_ctx *ctx, const char *name, const char *def,
                   int64_t &out_ms)
{
    std::string s = param_value(p, n, name, def);
    long v = 0;
    if (!parse_long(s, v) || v < 0 || v > 86400) {
        set_err(ctx, "parameter '%s': '%s' is not a number of seconds", name, s.c_str());
        return false;
    }
    out_ms = int64_t(v) * 1000;
    return true;
}

// Calls the real agent through the host, bounded by `limit_ms` and the caller's own deadline.
uint32_t call_real(const Wrapper &w, const stockade_ctx *ctx, uint32_t action, const char *target, int64_t limit_ms,
                   uint32_t *power_state, uint32_t *verified)
{
    if (!ctx->invoke) {
        set_err(ctx, "this host cannot run nested agents, so real_plugin '%s' cannot be called", w.real_plugin.c_str());
        return STOCKADE_RC_UNSUPPORTED;
    }
    int64_t left = stockade_remaining_ms(ctx);
    if (left <= 0) {
        set_err(ctx, "no time left to call real_plugin '%s'", w.real_plugin.c_str());
        return STOCKADE_RC_TIMEOUT;
    }
    int64_t timeout = std::min<int64_t>(limit_ms, left);
    if (timeout < limit_ms)
        log(ctx, STOCKADE_LOG_WARNING, "only " + std::to_string(timeout) + " ms left of the caller's deadline for " +
                                           w.real_plugin + " (limit " + std::to_string(limit_ms) + " ms)");
    std::vector<stockade_param> params;
    params.reserve(w.real_params.size());
    for (const auto &[k, v] : w.real_params)
        params.push_back({STOCKADE_ABI_MAJOR, sizeof(stockade_param), k.c_str(), v.c_str()});
    char err[1024] = {0};
    uint32_t rc = ctx->invoke(ctx, w.real_plugin.c_str(), params.data(), params.size(), action, target,
                              uint32_t(timeout), power_state, verified, err, sizeof err);
    err[sizeof err - 1] = 0;
    if (rc != STOCKADE_RC_OK)
        set_err(ctx, "real_plugin %s: %s", w.real_plugin.c_str(), err[0] ? err : "failed");
    return rc;
}

// The wrapper's need: the death check, two reads of the SFEX lock around sby_wait, and the real
// agent under control_timeout (status: status_timeout).  Stated so no front-end cap cuts sby_wait
// or the real device short (issue #18).
constexpr int64_t kLockReadMs = 1000;

struct WrapperDevice : Wrapper {
    static uint32_t open(const stockade_param *p, size_t n, const stockade_ctx *ctx, std::unique_ptr<WrapperDevice> &out)
    {
        auto w = std::make_unique<WrapperDevice>();
        w->real_plugin = param_value(p, n, "real_plugin");
        if (w->real_plugin.empty()) {
            set_err(ctx, "parameter 'real_plugin' is required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (w->real_plugin == "sfex_wrapper") {
            set_err(ctx, "parameter 'real_plugin': the wrapper cannot wrap itself");
            return STOCKADE_RC_BAD_CONFIG;
        }
        std::string err;
        if (!parse_real_params(param_value(p, n, "real_params"), w->real_params, err)) {
            set_err(ctx, "parameter 'real_params': %s", err.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (!seconds_param(p, n, ctx, "sby_wait", "25", w->sby_wait_ms) ||
            !seconds_param(p, n, ctx, "status_timeout", "20", w->status_timeout_ms) ||
            !seconds_param(p, n, ctx, "control_timeout", "60", w->control_timeout_ms))
            return STOCKADE_RC_BAD_CONFIG;
        int64_t ignored = 0;
        if (!seconds_param(p, n, ctx, "start_timeout", "20", ignored))
            return STOCKADE_RC_BAD_CONFIG;
        if (w->control_timeout_ms == 0 || w->status_timeout_ms == 0) {
            set_err(ctx, "control_timeout and status_timeout must be at least 1 second");
            return STOCKADE_RC_BAD_CONFIG;
        }
        // nodeip1..8 from the table and any further nodeip<N> among the extras, in order of N;
        // every other name not in the table goes to the real agent.
        std::vector<std::pair<long, std::string>> nodeips;
        std::vector<std::pair<std::string, std::string>> extras;
        for (const auto &[name, value] : stockade::agent::named_values(p, n)) {
            long num = 0;
            if (name.rfind("nodeip", 0) == 0 && parse_long(name.substr(6), num) && num >= 1) {
                if (!value.empty())
                    nodeips.emplace_back(num, name);
                continue;
            }
            if (!is_own_param(name))
                extras.emplace_back(name, value);
        }
        std::sort(nodeips.begin(), nodeips.end());
        for (const auto &[num, name] : nodeips) {
            std::vector<ProbeTarget> t;
            if (!parse_probe_targets(param_value(p, n, name.c_str()), t, err)) {
                set_err(ctx, "parameter '%s': %s", name.c_str(), err.c_str());
                return STOCKADE_RC_BAD_CONFIG;
            }
            w->nodeips.insert(w->nodeips.end(), t.begin(), t.end());
        }
        // Extras first, then real_params: the real agent's parameter resolution keeps the last.
        w->real_params.insert(w->real_params.begin(), extras.begin(), extras.end());
        long v = 0;
        std::string s = param_value(p, n, "dead_check_trialcount", "5");
        if (!parse_long(s, v) || v < 1 || v > 100) {
            set_err(ctx, "parameter 'dead_check_trialcount': '%s' is not a number of tries in 1..100", s.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        w->trials = int(v);
        w->device = param_value(p, n, "device");
        if (w->device.empty()) {
            set_err(ctx, "parameter 'device' (the SFEX device) is required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        s = param_value(p, n, "index", "1");
        if (!parse_long(s, v) || v < sfex::kMinLocks || v > sfex::kMaxLocks) {
            set_err(ctx, "parameter 'index': '%s' is not in 1..999", s.c_str());
            return STOCKADE_RC_BAD_CONFIG;
        }
        w->index = int(v);
        w->nodename = param_value(p, n, "nodename");
        if (w->nodename.empty()) {
            sfex::Status st = sfex::local_nodename(w->nodename);
            if (!st.ok()) {
                set_err(ctx, "parameter 'nodename' unset and %s", st.message.c_str());
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        out = std::move(w);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target_name, uint32_t *verified)
    {
        auto &w = *this;
        const char *target = target_name.c_str();
        if (target_name.empty()) {
            set_err(ctx, "no target given");
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (action == STOCKADE_ACTION_ON)
            return call_real(w, ctx, action, target, w.control_timeout_ms, nullptr, verified);
        if (action != STOCKADE_ACTION_OFF && action != STOCKADE_ACTION_REBOOT) {
            set_err(ctx, "action %u is not supported by sfex_wrapper", action);
            return STOCKADE_RC_UNSUPPORTED;
        }

        // 1. Death check: every address silent means the victim is already dead.
        if (!w.nodeips.empty()) {
            ProbeOptions o;
            o.trials = w.trials;
            o.deadline_ms = ctx->deadline_ms;
            o.cancelled = [ctx] { return cancelled(ctx); };
            o.log = [ctx](int level, const std::string &m) { log(ctx, level, m); };
            ProbeResult r = probe_all(w.nodeips, o);
            switch (r.verdict) {
            case ProbeVerdict::all_silent:
                log(ctx, STOCKADE_LOG_NOTICE, std::string("all addresses of ") + target + " are silent: " + r.message);
                *verified = STOCKADE_VERIFIED_OFF;
                return STOCKADE_RC_OK;
            case ProbeVerdict::alive:
                log(ctx, STOCKADE_LOG_INFO, std::string(target) + " is alive: " + r.message);
                break;
            case ProbeVerdict::cancelled:
                set_err(ctx, "cancelled during the death check of %s", target);
                return STOCKADE_RC_CANCELLED;
            case ProbeVerdict::timeout:
                set_err(ctx, "death check of %s: %s", target, r.message.c_str());
                return STOCKADE_RC_TIMEOUT;
            case ProbeVerdict::error:
                log(ctx, STOCKADE_LOG_WARNING, std::string("death check failed, treating ") + target +
                                                   " as alive: " + r.message);
                break;
            }
        }

        // 2. Who is active?  The lock holder shoots at once; everybody else waits first.
        LockView before = read_lock_view(w.device, w.index, w.nodename);
        if (!before.read_ok)
            log(ctx, STOCKADE_LOG_WARNING, "cannot read the SFEX lock, acting as standby: " + before.message);
        else
            log(ctx, STOCKADE_LOG_INFO, before.message);
        if (before.ours) {
            log(ctx, STOCKADE_LOG_NOTICE, "this node (" + w.nodename + ") holds the lock: shooting " + target + " now");
        } else {
            log(ctx, STOCKADE_LOG_NOTICE, "this node (" + w.nodename + ") does not hold the lock: waiting " +
                                              std::to_string(w.sby_wait_ms / 1000) + " s before shooting " + target);
            switch (wait_ms(ctx, w.sby_wait_ms)) {
            case WaitEnd::done:
                break;
            case WaitEnd::cancelled:
                set_err(ctx, "cancelled during the %lld s standby wait", static_cast<long long>(w.sby_wait_ms / 1000));
                return STOCKADE_RC_CANCELLED;
            case WaitEnd::deadline:
                set_err(ctx, "deadline reached during the %lld s standby wait",
                        static_cast<long long>(w.sby_wait_ms / 1000));
                return STOCKADE_RC_TIMEOUT;
            }
            LockView after = read_lock_view(w.device, w.index, w.nodename);
            if (!after.read_ok)
                log(ctx, STOCKADE_LOG_WARNING, "cannot re-read the SFEX lock: " + after.message);
            else if (after.ours)
                log(ctx, STOCKADE_LOG_NOTICE, "the lock moved to this node: shooting " + std::string(target));
            else if (before.read_ok && after.lock.locked() && after.lock.count != before.lock.count)
                log(ctx, STOCKADE_LOG_NOTICE, "'" + after.lock.nodename + "' is still renewing the lock (count " +
                                                  std::to_string(before.lock.count) + " -> " +
                                                  std::to_string(after.lock.count) + "): it is alive and active, shooting " +
                                                  target);
            else
                log(ctx, STOCKADE_LOG_INFO, after.message + " after the wait: shooting " + target);
        }

        // 3. The real shot, under control_timeout.
        uint32_t real_verified = 0;
        uint32_t rc = call_real(w, ctx, action, target, w.control_timeout_ms, nullptr, &real_verified);
        if (rc != STOCKADE_RC_OK)
            return rc;
        if (!(real_verified & STOCKADE_VERIFIED_OFF)) {
            set_err(ctx, "real_plugin %s reported success without confirming that %s is off", w.real_plugin.c_str(),
                    target);
            return STOCKADE_RC_FAILED;
        }
        *verified = real_verified;
        return STOCKADE_RC_OK;
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *power_state)
    {
        auto &w = *this;
        *power_state = STOCKADE_POWER_UNKNOWN;
        return call_real(w, ctx, 0, target.c_str(), w.status_timeout_ms, power_state, nullptr);
    }

    // The wrapper's own device is the SFEX partition: it must be readable and hold our lock index.
    uint32_t monitor(const stockade_ctx *ctx)
    {
        auto &w = *this;
        return check_lock_readable(ctx, w.device, w.index, w.nodename);
    }

    uint32_t time_needed(const stockade_ctx * /*ctx*/, uint32_t action, uint32_t *needed_ms) const
    {
        int64_t need = 0;
        if (action == 0) {
            need = status_timeout_ms;
        } else if (action == STOCKADE_ACTION_ON) {
            need = control_timeout_ms;
        } else {
            if (!nodeips.empty())
                need += probe_all_budget_ms(trials);
            need += 2 * kLockReadMs + sby_wait_ms + control_timeout_ms;
        }
        *needed_ms = uint32_t(std::min<int64_t>(need, UINT32_MAX));
        return STOCKADE_RC_OK;
    }
};

const stockade_agent kAgent = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_MONITOR | STOCKADE_CAP_EXTRA_PARAMS | STOCKADE_CAP_WAITS,
    .name = "sfex_wrapper",
    .version = "1.0",
    .summary = "SFEX-aware guard around a real fencing agent: the lock holder shoots first",
    .description =
        "Against mutual kills in a split brain.  If every nodeip is silent the victim is dead (success).  "
        "Otherwise the node holding the SFEX lock calls real_plugin at once; any other node waits sby_wait "
        "first.  The real agent runs isolated under control_timeout and its whole process tree is killed at "
        "expiry.  Every parameter not listed here (and real_params) is passed to the real agent.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(WrapperDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kAgent; }
