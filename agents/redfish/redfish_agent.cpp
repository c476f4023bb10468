// redfish_agent.cpp -- the "redfish" fencing agent: ComputerSystem.Reset over HTTPS (DMTF Redfish)
// through Boost.Beast + OpenSSL, one kept-alive connection per device handle.
//
// Fencing rules kept here: the ResetType is chosen from what the system itself allows
// (ResetType@Redfish.AllowableValues, or its @Redfish.ActionInfo); power-off is ForceOff and counts
// only once PowerState reads "Off" (polled, never slept on), within power_timeout -- expiry is a
// failure; a reboot is ForceOff + confirmed Off + On unless method=cycle asks for one ForceRestart,
// which counts only if the system was seen Off; a 202 Accepted task is followed to its end and
// still confirmed by PowerState; when a service manages several systems the target must name one
// (never "the last member", as fence_redfish picks).  Discovery results are cached in the handle,
// so the calls of one fence (status, off, status, on) cost one handshake and one login.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "redfish_config.hpp"
#include "redfish_https.hpp"
#include "redfish_link.hpp"
#include "stockade/agent.h"
#include "stockade/agent_poll.hpp"
#include "stockade/agent_support.hpp"

namespace stockade::redfish {
namespace {

using agent::cancelled;
using agent::log;

using agent::set_err;
using json = nlohmann::json;

constexpr uint32_t kCaps = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS |
                           STOCKADE_CAP_MONITOR | STOCKADE_CAP_DIAG;

// ResetType wanted per purpose, in order of preference (DMTF ResetType names).
struct ResetChoice {
    const char *purpose;
    std::vector<std::string> types;
};
const ResetChoice kOff{"power off", {"ForceOff"}};
const ResetChoice kOn{"power on", {"On", "ForceOn"}};
const ResetChoice kRestart{"restart", {"ForceRestart", "PowerCycle"}};
const ResetChoice kNmi{"diagnostic interrupt", {"Nmi"}};

// Pauses between PowerState reads that did not show the new state: first kFastPollPauses short ones
// (1, 2 ms), then kFirstPollPauseMs doubling -- reads at 0, 1, 3, 8, 18, 38, 78, 158, 318, 518...
// ms: a BMC that switches within a few milliseconds is seen within one to three, one that takes
// 500 ms within 20 ms of it, and only two reads per wait are closer than 5 ms to the one before.
constexpr int kFastPollPauses = 2;
constexpr int64_t kFirstPollPauseMs = 5;

// How old a status() read may be for the power action after it to start from it instead of
// reading again: the front-ends read the state and act at once (fence-agents' status-first), and
// the sequence has already decided on that read (already there: nothing sent).
constexpr int64_t kStatusReuseMs = 250;

// Task states that mean "still running" (Redfish TaskState).
constexpr const char *kRunningTaskStates[] = {"New", "Starting", "Running", "Pending", "Stopping", "Suspended",
                                              "Service", "Interrupted", "Cancelling"};

uint32_t report(const stockade_ctx *ctx, const Error &e)
{
    set_err(ctx, e.message);
    return e.rc;
}

// Sleeps up to ms, waking for cancellation and never past the deadline.
Status sleep_within(const stockade_ctx *ctx, int64_t ms) { return agent::sleep_within(ctx, ms, "redfish"); }
using agent::is_final;

std::string str_at(const json &j, const char *key)
{
    if (j.is_object())
        if (auto it = j.find(key); it != j.end() && it->is_string())
            return it->get<std::string>();
    return {};
}

std::string odata_id(const json &j, const char *key)
{
    if (j.is_object())
        if (auto it = j.find(key); it != j.end())
            return str_at(*it, "@odata.id");
    return {};
}

std::string last_segment(std::string uri)
{
    while (uri.size() > 1 && uri.back() == '/')
        uri.pop_back();
    auto slash = uri.rfind('/');
    return slash == std::string::npos ? uri : uri.substr(slash + 1);
}

std::string join(const std::vector<std::string> &v, const char *sep = ", ")
{
    std::string out;
    for (const auto &s : v)
        out += (out.empty() ? "" : sep) + s;
    return out;
}

// What PowerState says, for status: only "Off" is off; "PoweringOff" still has power.
uint32_t state_of(const std::string &power_state)
{
    if (power_state == "Off")
        return STOCKADE_POWER_OFF;
    if (power_state == "On" || power_state == "PoweringOn" || power_state == "PoweringOff" || power_state == "Paused")
        return STOCKADE_POWER_ON;
    return STOCKADE_POWER_UNKNOWN;
}

struct SystemInfo {
    std::string uri;
    std::string reset_target;           // the Reset action's URI
    std::vector<std::string> allowed;   // allowable ResetTypes; empty = the service does not say
    std::string power_state;            // as last read
};

class RedfishDevice {
public:
    explicit RedfishDevice(RedfishConfig cfg) : cfg_(std::move(cfg)), link_(cfg_) {}
    ~RedfishDevice() { (void)link_.logout(1500); }

    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                         std::unique_ptr<RedfishDevice> &out);
    // What the agent's own limits allow an action (time_needed_ms in redfish_config.hpp).  Pure: no
    // I/O, no TLS context.
    uint32_t time_needed(const stockade_ctx *ctx, uint32_t action, uint32_t *needed_ms) const;
    // ABI 1.2, once per process before any session (the fork template's, so its sessions inherit
    // it): OpenSSL initialised and warm (redfish_https.hpp prepare_tls).
    static uint32_t prepare() { return prepare_tls() ? STOCKADE_RC_OK : STOCKADE_RC_UNSUPPORTED; }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified);
    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *state);
    uint32_t monitor(const stockade_ctx *ctx);

private:
    Status use_host(const stockade_ctx *ctx, const std::string &target);
    Status read_root(const stockade_ctx *ctx);
    Result<std::vector<std::string>> members(const stockade_ctx *ctx);
    Result<std::string> system_for(const stockade_ctx *ctx, const std::string &target);
    Result<SystemInfo> read_system(const stockade_ctx *ctx, const std::string &target);
    // The system a power action starts from: what status() read for the same target at most
    // kStatusReuseMs ago (fence-agents' status-first, then the action: one GET, not two), else
    // read now.  Either way the action decides on one fresh read, as the sequence itself did.
    Result<SystemInfo> system_for_action(const stockade_ctx *ctx, const std::string &target);
    Result<std::string> read_power_state(const stockade_ctx *ctx, const std::string &uri);
    Result<std::string> choose(const SystemInfo &sys, const ResetChoice &want) const;
    // POSTs the reset; the task monitor to follow when the BMC answered 202 with one, else "".
    Result<std::string> reset(const stockade_ctx *ctx, const SystemInfo &sys, const std::string &type);
    // Polls a 202 task until it ends or `until` (CLOCK_MONOTONIC ms) passes (a failure).
    Status follow_task(const stockade_ctx *ctx, const std::string &monitor, const std::string &type, int64_t until);
    // Sleeps `first_pause_ms` (power_wait), then polls PowerState until it reads `want` ("On"/"Off")
    // or `until` passes (a failure).
    Status wait_for(const stockade_ctx *ctx, const SystemInfo &sys, const std::string &want, const std::string &after,
                    int64_t first_pause_ms, int64_t max_interval_ms, int64_t until);
    // A reset accepted now: its confirmation window (power_wait + power_timeout) ends then.
    int64_t window_end() const { return stockade_monotonic_ms() + cfg_.confirm_window_ms(); }
    std::string window_text() const;
    // ForceOff (unless already Off) and confirm; `sys` holds the state just read.
    Status set_power(const stockade_ctx *ctx, SystemInfo &sys, bool on);
    Status reboot(const stockade_ctx *ctx, SystemInfo &sys, uint32_t *verified);
    Status cycle(const stockade_ctx *ctx, SystemInfo &sys, uint32_t *verified);
    void log_traffic(const stockade_ctx *ctx, const char *what);
    std::string where() const { return "redfish " + link_.endpoint(); }
    // Longest pause between two PowerState reads: stonith_status_sleep, but at most 200 ms -- a
    // read on the kept-alive connection costs the BMC little, and a fence should not wait longer
    // than it must to see the new state.
    int64_t poll_cap_ms() const { return std::min<int64_t>(int64_t(cfg_.status_sleep_s) * 1000, 200); }

    RedfishConfig cfg_;
    RedfishLink link_;
    // Discovery, cached for the life of the handle (one BMC; reset when port_as_ip moves it).
    bool root_read_ = false;
    std::string systems_collection_;
    std::vector<std::string> members_;
    bool members_read_ = false;
    std::map<std::string, SystemInfo> systems_; // by system URI (reset target and allowable values)
    // The last status() read, offered once to the power action that follows it.
    std::string status_target_, status_uri_;
    int64_t status_at_ms_ = 0;
};

Status RedfishDevice::use_host(const stockade_ctx *ctx, const std::string &target)
{
    if (!cfg_.port_as_ip)
        return {};
    if (target.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, "redfish: port_as_ip=1 needs a target (the BMC's address)"};
    if (target != link_.host()) {
        link_.set_host(target);
        root_read_ = members_read_ = false;
        members_.clear();
        systems_.clear();
        log(ctx, STOCKADE_LOG_DEBUG, "redfish: port_as_ip: talking to " + link_.endpoint());
    }
    return {};
}

Status RedfishDevice::read_root(const stockade_ctx *ctx)
{
    if (root_read_)
        return {};
    auto r = link_.get_public(ctx, cfg_.redfish_uri);
    if (!r)
        return r.error().rc == STOCKADE_RC_BAD_CONFIG
                   ? Error{r.error().rc, r.error().message + " (the service root: check redfish_uri)"}
                   : r.error();
    systems_collection_ = odata_id(r->body, "Systems");
    std::string sessions;
    if (r->body.is_object() && r->body.contains("Links"))
        sessions = odata_id(r->body["Links"], "Sessions");
    if (!sessions.empty())
        link_.set_sessions_uri(sessions);
    root_read_ = true;
    return {};
}

Result<std::vector<std::string>> RedfishDevice::members(const stockade_ctx *ctx)
{
    if (members_read_)
        return members_;
    auto is_collection = [](const json &b) {
        return b.is_object() && b.contains("Members") && b["Members"].is_array();
    };
    auto keep = [&](const json &collection) { // no Members: no system
        members_.clear();
        if (is_collection(collection))
            for (const auto &m : collection["Members"])
                if (std::string id = str_at(m, "@odata.id"); !id.empty())
                    members_.push_back(id);
        members_read_ = true;
        return members_;
    };
    // Redfish fixes the collection's URI (DSP0266 1.6 and later: <service root>/Systems), so it is
    // read at once: a fence makes one request fewer.  The service root is read (and its Systems
    // link followed) only when that is not a collection -- or with session auth, whose login URI
    // the root names.
    if (!root_read_ && cfg_.auth == AuthType::Basic) {
        const std::string fixed = cfg_.redfish_uri + (cfg_.redfish_uri.ends_with('/') ? "Systems" : "/Systems");
        auto r = link_.get(ctx, fixed);
        if (r && is_collection(r->body)) {
            systems_collection_ = fixed;
            return keep(r->body);
        }
        if (!r && r.error().rc != STOCKADE_RC_BAD_CONFIG) // 404 (or 400, 405): asked the root below
            return r.error();
        log(ctx, STOCKADE_LOG_DEBUG, where() + ": " + fixed + " is no Systems collection here; asking the service root");
    }
    if (Status s = read_root(ctx); !s)
        return s.error();
    if (systems_collection_.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, where() + ": the service root " + cfg_.redfish_uri +
                                                 " has no Systems collection; set systems_uri"};
    auto r = link_.get(ctx, systems_collection_);
    if (!r)
        return r.error();
    return keep(r->body);
}

Result<std::string> RedfishDevice::system_for(const stockade_ctx *ctx, const std::string &target)
{
    if (!cfg_.systems_uri.empty())
        return cfg_.systems_uri;
    auto m = members(ctx);
    if (!m)
        return m.error();
    if (m->empty())
        return Error{STOCKADE_RC_UNKNOWN_TARGET, where() + ": the Systems collection " + systems_collection_ +
                                                     " is empty: this BMC manages no system"};
    std::vector<std::string> ids;
    for (const auto &uri : *m) {
        ids.push_back(last_segment(uri));
        if (!cfg_.port_as_ip && !target.empty() && text::iequals(ids.back(), target))
            return uri;
    }
    if (m->size() == 1)
        return m->front(); // one system: whatever the node is called, this is it (as fence_redfish)
    if (target.empty() || cfg_.port_as_ip)
        return Error{STOCKADE_RC_BAD_CONFIG, where() + " manages " + std::to_string(m->size()) + " systems (" +
                                                 join(ids) + "): set plug to one of them, or systems_uri"};
    return Error{STOCKADE_RC_UNKNOWN_TARGET, where() + ": no system '" + target + "' among the " +
                                                 std::to_string(m->size()) + " this BMC manages (" + join(ids) + ")"};
}

Result<SystemInfo> RedfishDevice::read_system(const stockade_ctx *ctx, const std::string &target)
{
    auto uri = system_for(ctx, target);
    if (!uri)
        return uri.error();
    auto r = link_.get(ctx, *uri);
    if (!r) {
        if (r.error().rc == STOCKADE_RC_BAD_CONFIG && !cfg_.systems_uri.empty())
            return Error{STOCKADE_RC_BAD_CONFIG, r.error().message + " (systems_uri)"};
        return r.error();
    }
    SystemInfo &sys = systems_[*uri];
    sys.uri = *uri;
    sys.power_state = str_at(r->body, "PowerState");
    if (sys.power_state.empty())
        return Error{STOCKADE_RC_FAILED, where() + ": " + *uri + " has no PowerState (is it a ComputerSystem?)"};
    if (sys.reset_target.empty()) {
        json action;
        if (r->body.contains("Actions") && r->body["Actions"].is_object())
            action = r->body["Actions"].value("#ComputerSystem.Reset", json());
        sys.reset_target = str_at(action, "target");
        sys.allowed.clear();
        if (action.is_object() && action.contains("ResetType@Redfish.AllowableValues") &&
            action["ResetType@Redfish.AllowableValues"].is_array()) {
            for (const auto &v : action["ResetType@Redfish.AllowableValues"])
                if (v.is_string())
                    sys.allowed.push_back(v.get<std::string>());
        } else if (std::string info = str_at(action, "@Redfish.ActionInfo"); !info.empty()) {
            auto ai = link_.get(ctx, info);
            if (ai && ai->body.contains("Parameters") && ai->body["Parameters"].is_array())
                for (const auto &p : ai->body["Parameters"])
                    if (str_at(p, "Name") == "ResetType" && p.contains("AllowableValues") &&
                        p["AllowableValues"].is_array())
                        for (const auto &v : p["AllowableValues"])
                            if (v.is_string())
                                sys.allowed.push_back(v.get<std::string>());
            if (!ai)
                log(ctx, STOCKADE_LOG_WARNING, ai.error().message + " (ActionInfo; assuming every ResetType)");
        }
    }
    return sys;
}

Result<SystemInfo> RedfishDevice::system_for_action(const stockade_ctx *ctx, const std::string &target)
{
    const std::string uri = std::exchange(status_uri_, std::string());
    const int64_t age = stockade_monotonic_ms() - status_at_ms_;
    if (!uri.empty() && target == status_target_ && age <= kStatusReuseMs)
        if (auto it = systems_.find(uri); it != systems_.end()) {
            log(ctx, STOCKADE_LOG_DEBUG, where() + ": " + uri + ": PowerState " + it->second.power_state + " as read " +
                                             std::to_string(age) + " ms ago by status");
            return it->second;
        }
    return read_system(ctx, target);
}

Result<std::string> RedfishDevice::read_power_state(const stockade_ctx *ctx, const std::string &uri)
{
    auto r = link_.get(ctx, uri);
    if (!r)
        return r.error();
    std::string ps = str_at(r->body, "PowerState");
    if (ps.empty())
        return Error{STOCKADE_RC_FAILED, where() + ": " + uri + " answered without a PowerState"};
    return ps;
}

Result<std::string> RedfishDevice::choose(const SystemInfo &sys, const ResetChoice &want) const
{
    if (sys.reset_target.empty())
        return Error{STOCKADE_RC_UNSUPPORTED,
                     where() + ": " + sys.uri + " offers no #ComputerSystem.Reset action (cannot " + want.purpose + ")"};
    if (sys.allowed.empty())
        return want.types.front();
    for (const auto &t : want.types)
        if (std::find(sys.allowed.begin(), sys.allowed.end(), t) != sys.allowed.end())
            return t;
    return Error{STOCKADE_RC_UNSUPPORTED, where() + ": " + sys.uri + " allows ResetType " + join(sys.allowed, "|") +
                                              ", none of " + join(want.types, "|") + " (needed to " + want.purpose +
                                              ")"};
}

std::string RedfishDevice::window_text() const
{
    return cfg_.power_wait_s ? "power_wait=" + std::to_string(cfg_.power_wait_s) +
                                   " s + power_timeout=" + std::to_string(cfg_.power_timeout_s) + " s"
                             : "power_timeout=" + std::to_string(cfg_.power_timeout_s) + " s";
}

Status RedfishDevice::follow_task(const stockade_ctx *ctx, const std::string &monitor, const std::string &type,
                                  int64_t until)
{
    const int64_t give_up = until;
    int64_t interval = 20;
    for (;;) {
        auto r = link_.get(ctx, monitor);
        if (!r) {
            if (is_final(r.error().rc))
                return r.error();
            log(ctx, STOCKADE_LOG_WARNING, r.error().message + " (task of " + type + "; checking PowerState instead)");
            return {};
        }
        std::string state = str_at(r->body, "TaskState");
        const bool running = r->status == 202 || std::any_of(std::begin(kRunningTaskStates), std::end(kRunningTaskStates),
                                                             [&](const char *s) { return state == s; });
        if (!running) {
            if (state.empty() || state == "Completed") {
                log(ctx, STOCKADE_LOG_DEBUG, where() + ": task " + monitor + " of " + type + " completed");
                return {};
            }
            std::string why = state;
            if (r->body.contains("Messages") && r->body["Messages"].is_array() && !r->body["Messages"].empty())
                why += ": " + str_at(r->body["Messages"][0], "Message");
            return Error{STOCKADE_RC_FAILED, where() + ": " + type + " task " + monitor + " ended " + why};
        }
        const int64_t now = stockade_monotonic_ms();
        if (now >= give_up)
            return Error{STOCKADE_RC_FAILED, where() + ": " + type + " task " + monitor + " still " +
                                                 (state.empty() ? std::string("running") : state) +
                                                 " after " + window_text()};
        if (Status s = sleep_within(ctx, std::min(interval, give_up - now)); !s)
            return s;
        interval = std::min<int64_t>(interval * 2, poll_cap_ms());
    }
}

Result<std::string> RedfishDevice::reset(const stockade_ctx *ctx, const SystemInfo &sys, const std::string &type)
{
    auto r = link_.post(ctx, sys.reset_target, "{\"ResetType\":\"" + type + "\"}");
    if (!r) {
        Error e = r.error();
        if (e.rc == STOCKADE_RC_BAD_CONFIG) // 404 on the action the system itself advertised
            e.rc = STOCKADE_RC_FAILED;
        e.message += " (ResetType " + type + ")";
        return e;
    }
    log(ctx, STOCKADE_LOG_INFO, where() + ": " + sys.uri + ": ResetType " + type + " accepted (" +
                                    std::to_string(r->status) + ")");
    return r->status == 202 ? r->location : std::string();
}

Status RedfishDevice::wait_for(const stockade_ctx *ctx, const SystemInfo &sys, const std::string &want,
                               const std::string &after, int64_t first_pause_ms, int64_t max_interval_ms,
                               int64_t until)
{
    const int64_t start = stockade_monotonic_ms();
    // The first read goes at once, the next ones 1, 2, then 5, 10, 20 ms... apart (kFastPollPauses,
    // kFirstPollPauseMs): a BMC that switches in a few milliseconds is seen within a few (a fixed 10
    // ms first pause was half of an in-process reboot on a BMC that switches at once), one that
    // takes seconds is read at most poll_cap_ms() apart -- ten reads in a 500 ms transition.
    agent::PollPlan plan;
    plan.give_up_at = until;
    plan.first_pause_ms = first_pause_ms;
    plan.fast_pauses = kFastPollPauses;
    plan.first_interval_ms = kFirstPollPauseMs;
    plan.max_interval_ms = max_interval_ms;
    std::string last_state = sys.power_state;
    Status s = agent::poll_until(
        ctx, plan, "redfish", want,
        [&]() -> Result<bool> {
            auto st = read_power_state(ctx, sys.uri);
            if (!st)
                return st.error();
            last_state = *st;
            return *st == want;
        },
        [&](const std::string &last_error) -> Status {
            std::string msg = where() + ": " + after + " accepted, but " + sys.uri + " did not report PowerState " +
                              want + " within " + window_text() + " (last: " +
                              (last_state.empty() ? "unknown" : last_state) + ")";
            if (!last_error.empty())
                msg += "; last error: " + last_error;
            return Error{STOCKADE_RC_FAILED, msg};
        },
        [&]() -> Status {
            return Error{STOCKADE_RC_TIMEOUT, where() + ": the operation deadline passed waiting for " + sys.uri +
                                                  " to report " + want + " (last: " + last_state + ")"};
        });
    if (s)
        log(ctx, STOCKADE_LOG_INFO, where() + ": " + sys.uri + " confirmed " + want + " " +
                                        std::to_string(stockade_monotonic_ms() - start) + " ms after " + after);
    return s;
}

Status RedfishDevice::set_power(const stockade_ctx *ctx, SystemInfo &sys, bool on)
{
    const std::string want = on ? "On" : "Off";
    if (sys.power_state == want) {
        log(ctx, STOCKADE_LOG_NOTICE, where() + ": " + sys.uri + " already " + want);
        return {};
    }
    auto type = choose(sys, on ? kOn : kOff);
    if (!type)
        return type.error();
    auto task = reset(ctx, sys, *type);
    if (!task) {
        if (task.error().rc != STOCKADE_RC_UNREACHABLE)
            return task.error();
        // The answer may be what got lost: read the state back once.
        auto again = read_power_state(ctx, sys.uri);
        if (!again || *again != want)
            return task.error();
        log(ctx, STOCKADE_LOG_WARNING, task.error().message + "; but PowerState now reads " + want);
        sys.power_state = want;
        return {};
    }
    const int64_t until = window_end();
    if (!task->empty())
        if (Status t = follow_task(ctx, *task, *type, until); !t)
            return t;
    Status w = wait_for(ctx, sys, want, "ResetType " + *type, int64_t(cfg_.power_wait_s) * 1000, poll_cap_ms(), until);
    if (w)
        sys.power_state = want;
    return w;
}

Status RedfishDevice::cycle(const stockade_ctx *ctx, SystemInfo &sys, uint32_t *verified)
{
    auto type = choose(sys, kRestart);
    if (!type)
        return type.error();
    auto task = reset(ctx, sys, *type);
    if (!task)
        return task.error();
    const int64_t until = window_end();
    if (!task->empty())
        if (Status t = follow_task(ctx, *task, *type, until); !t)
            return t;
    // Counts as a fence only if the system is seen Off: poll fast and at once (no power_wait pause),
    // the Off moment may be short.
    Status off = wait_for(ctx, sys, "Off", "ResetType " + *type, 0, 50, until);
    if (!off)
        return Error{off.error().rc, off.error().message + "; the " + *type +
                                         " is NOT confirmed as a fence (system never seen Off; use method=onoff)"};
    *verified |= STOCKADE_VERIFIED_OFF;
    Status on = wait_for(ctx, sys, "On", "ResetType " + *type, 0, poll_cap_ms(),
                         stockade_monotonic_ms() + int64_t(cfg_.power_timeout_s) * 1000);
    if (on)
        *verified |= STOCKADE_VERIFIED_ON;
    else
        log(ctx, STOCKADE_LOG_WARNING, "reboot: system confirmed off, but not back on: " + on.error().message);
    return {};
}

Status RedfishDevice::reboot(const stockade_ctx *ctx, SystemInfo &sys, uint32_t *verified)
{
    if (sys.power_state != "Off" && cfg_.method == RebootMethod::Cycle)
        return cycle(ctx, sys, verified);
    if (sys.power_state == "Off")
        log(ctx, STOCKADE_LOG_NOTICE, where() + ": reboot: " + sys.uri + " already Off, powering on");
    else if (Status off = set_power(ctx, sys, false); !off)
        return off;
    *verified |= STOCKADE_VERIFIED_OFF;
    if (Status on = set_power(ctx, sys, true); on) {
        *verified |= STOCKADE_VERIFIED_ON;
    } else {
        log(ctx, STOCKADE_LOG_WARNING, "reboot: system confirmed off, but power-on failed: " + on.error().message);
        set_err(ctx, "system confirmed off, but power-on failed: " + on.error().message);
    }
    return {};
}

void RedfishDevice::log_traffic(const stockade_ctx *ctx, const char *what)
{
    log(ctx, STOCKADE_LOG_DEBUG, where() + ": " + what + ": " + std::to_string(link_.requests()) + " requests, " +
                                     std::to_string(link_.connects()) + " new connection(s)");
    link_.reset_counters();
}

uint32_t RedfishDevice::power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
{
    *verified = 0;
    if (Status s = use_host(ctx, target); !s)
        return report(ctx, s.error());
    auto sys = system_for_action(ctx, target);
    if (!sys)
        return report(ctx, sys.error());
    Status s;
    switch (action) {
    case STOCKADE_ACTION_OFF:
        s = set_power(ctx, *sys, false);
        if (s)
            *verified = STOCKADE_VERIFIED_OFF;
        break;
    case STOCKADE_ACTION_ON:
        s = set_power(ctx, *sys, true);
        if (s)
            *verified = STOCKADE_VERIFIED_ON;
        break;
    case STOCKADE_ACTION_REBOOT:
        s = reboot(ctx, *sys, verified);
        break;
    case STOCKADE_ACTION_DIAG: {
        auto type = choose(*sys, kNmi);
        auto task = type ? reset(ctx, *sys, *type) : Result<std::string>(type.error());
        if (!task)
            s = task.error();
        else if (!task->empty())
            s = follow_task(ctx, *task, *type, stockade_monotonic_ms() + int64_t(cfg_.power_timeout_s) * 1000);
        break;
    }
    default:
        s = Error{STOCKADE_RC_UNSUPPORTED, "redfish: unknown action " + std::to_string(action)};
    }
    log_traffic(ctx, "power");
    if (!s)
        return report(ctx, s.error());
    return STOCKADE_RC_OK;
}

uint32_t RedfishDevice::status(const stockade_ctx *ctx, const std::string &target, uint32_t *state)
{
    *state = STOCKADE_POWER_UNKNOWN;
    if (Status s = use_host(ctx, target); !s)
        return report(ctx, s.error());
    status_uri_.clear();
    auto sys = read_system(ctx, target);
    log_traffic(ctx, "status");
    if (!sys)
        return report(ctx, sys.error());
    status_target_ = target;
    status_uri_ = sys->uri;
    status_at_ms_ = stockade_monotonic_ms();
    *state = state_of(sys->power_state);
    if (*state == STOCKADE_POWER_UNKNOWN)
        return report(ctx, Error{STOCKADE_RC_FAILED, where() + ": " + sys->uri + ": PowerState '" + sys->power_state +
                                                         "' is neither On nor Off"});
    return STOCKADE_RC_OK;
}

uint32_t RedfishDevice::monitor(const stockade_ctx *ctx)
{
    if (cfg_.port_as_ip)
        return STOCKADE_RC_OK; // no BMC until a target names one
    // Reading a system (or the collection) proves address, TLS trust and credentials.
    if (!cfg_.systems_uri.empty()) {
        auto r = link_.get(ctx, cfg_.systems_uri);
        if (!r)
            return report(ctx, r.error());
        return STOCKADE_RC_OK;
    }
    auto m = members(ctx);
    if (!m)
        return report(ctx, m.error());
    return STOCKADE_RC_OK;
}

uint32_t RedfishDevice::open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                             std::unique_ptr<RedfishDevice> &out)
{
    auto cfg = parse_config(params, n);
    if (!cfg)
        return report(ctx, cfg.error());
    out = std::make_unique<RedfishDevice>(std::move(cfg.value()));
    return STOCKADE_RC_OK;
}

uint32_t RedfishDevice::time_needed(const stockade_ctx * /*ctx*/, uint32_t action, uint32_t *needed_ms) const
{
    const int64_t need = time_needed_ms(cfg_, action);
    if (need <= 0)
        return STOCKADE_RC_UNSUPPORTED; // status, list, monitor: the front-end's query budget
    *needed_ms = uint32_t(std::min<int64_t>(need, UINT32_MAX));
    return STOCKADE_RC_OK;
}

// Built on first use: the parameter table lives in redfish_config.cpp.
const stockade_agent *descriptor()
{
    static const stockade_agent agent = [] {
        const ParamTable t = param_table();
        return stockade_agent{
            .abi_major = STOCKADE_ABI_MAJOR,
            .struct_size = sizeof(stockade_agent),
            .abi_minor = STOCKADE_ABI_MINOR,
            .capabilities = kCaps,
            .name = "redfish",
            .version = "1.0",
            .summary = "Redfish (DMTF) ComputerSystem.Reset over HTTPS (Boost.Beast, OpenSSL): one connection, verified TLS",
            .description =
                "Fences a server through its BMC's Redfish service (iDRAC, iLO, XCC, OpenBMC). ForceOff, then "
                "PowerState is read back until it says Off or power_wait + power_timeout expire (a failure); it states "
                "what its limits need per action (time_needed). ResetTypes are "
                "chosen from what the system allows; 202 tasks are followed. TLS is verified (system CAs, "
                "ssl_ca_file or ssl_fingerprint) unless ssl_insecure=1. Accepts every fence_redfish parameter.",
            .params = t.rows,
            .n_params = t.count,
            .param_struct_size = sizeof(stockade_param_desc),
            // No list (as fence_redfish), so no plug is demanded when one system is served.
            STOCKADE_AGENT_ENTRY_POINTS(RedfishDevice),
        };
    }();
    return &agent;
}

} // namespace
} // namespace stockade::redfish

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return stockade::redfish::descriptor();
}
