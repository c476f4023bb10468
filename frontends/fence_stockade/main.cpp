// fence_stockade -- every stockade agent as a fence-agents executable.
//
// Pacemaker's fencer and cman's fenced run any `fence_*` program with key=value lines on stdin
// and read its exit code and stdout; people run the same programs with getopt options.  This one
// binary is installed as fence_stockade_<agent> (the agent comes from the program name) and as the
// generic fence_stockade (agent=).  It parses exactly like fence-agents (frontends/common), runs
// fence-agents' sequencing (status first, "Success: Already OFF", off confirmed before any
// success, reboot = off confirmed then on) through an isolated agent session whose every
// operation has a deadline we own, and prints fence-agents' strings and exit codes: 0 success,
// 1 failure, 2 only for `status` when the target is off.
//
// Deadlines: fence-agents switches its timeouts off when PCMK_service=pacemaker-fenced and lets
// Pacemaker SIGKILL it; we do not.  Every operation keeps its own timeout (login_timeout,
// shell_timeout, power_timeout, power_wait as fence-agents defines them) and the whole run keeps
// total_timeout (55 s, below Pacemaker's 60 s default), so a hung device ends in a clean failure
// that leaves Pacemaker time to retry or escalate to the next level.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <memory>
#include <mutex>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "stockade/config.hpp"
#include "stockade/frontend/fence_options.hpp"
#include "stockade/log.hpp"
#include "stockade/node_lock.hpp"
#include "stockade/quorum.hpp"
#include "stockade/runner.hpp"
#include "stockade/code_tables.hpp"
#include "stockade/process.hpp"
#include "stockade/registry.hpp"
#include "stockade/sequence.hpp"
#include "stockade/session.hpp"
#include "stockade/time_budget.hpp"
#include "stockade/text.hpp"

using namespace stockade;
using namespace stockade::frontend;
using namespace std::chrono_literals;

namespace {

// ---- fence-agents' failure lines, one row per result code ----------------------------------------

enum class Phase { Status, Off, On, Other };

constexpr std::string_view kLoginDenied = "Unable to connect/login to fencing device";
constexpr std::string_view kWaitingOff = "Failed: Timed out waiting to power OFF";
constexpr std::string_view kWaitingOn = "Failed: Timed out waiting to power ON";
constexpr std::string_view kBadStatus = "Failed: Unable to obtain correct plug status or plug is not available";
constexpr std::string_view kTimedOut = "Connection timed out";

struct FailureText {
    uint32_t rc;
    std::string_view status, off, on, other;
};

constexpr std::array<FailureText, STOCKADE_RC_COUNT> kFailureTexts{{
    {STOCKADE_RC_OK, "", "", "", ""},
    {STOCKADE_RC_BAD_CONFIG, "Failed: bad configuration", "Failed: bad configuration", "Failed: bad configuration",
     "Failed: bad configuration"},
    {STOCKADE_RC_ACCESS_DENIED, kLoginDenied, kLoginDenied, kLoginDenied, kLoginDenied},
    {STOCKADE_RC_UNREACHABLE, kLoginDenied, kLoginDenied, kLoginDenied, kLoginDenied},
    {STOCKADE_RC_TIMEOUT, kTimedOut, kWaitingOff, kWaitingOn, kTimedOut},
    {STOCKADE_RC_UNKNOWN_TARGET, kBadStatus, kBadStatus, kBadStatus, kBadStatus},
    {STOCKADE_RC_FAILED, kBadStatus, kWaitingOff, kWaitingOn, "Failed: action failed"},
    {STOCKADE_RC_UNSUPPORTED, "Failed: unsupported action", "Failed: unsupported action",
     "Failed: unsupported action", "Failed: unsupported action"},
    {STOCKADE_RC_CANCELLED, "Failed: cancelled", "Failed: cancelled", "Failed: cancelled", "Failed: cancelled"},
    {STOCKADE_RC_INTERNAL, "Failed: internal error", "Failed: internal error", "Failed: internal error",
     "Failed: internal error"},
}};

std::string_view failure_text(uint32_t rc, Phase phase)
{
    const FailureText &f = kFailureTexts[rc < kFailureTexts.size() ? rc : STOCKADE_RC_INTERNAL];
    switch (phase) {
    case Phase::Status: return f.status;
    case Phase::Off: return f.off;
    case Phase::On: return f.on;
    default: return f.other;
    }
}

// ---- logging: fence-agents' stderr format, syslog, optional debug file --------------------------

std::string timestamp()
{
    timeval tv{};
    ::gettimeofday(&tv, nullptr);
    tm t{};
    ::localtime_r(&tv.tv_sec, &t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &t);
    return fmt::format("{},{:03d}", buf, int(tv.tv_usec / 1000));
}

std::string_view level_word(int level)
{
    if (level <= STOCKADE_LOG_ERR)
        return "ERROR";
    if (level == STOCKADE_LOG_WARNING)
        return "WARNING";
    if (level <= STOCKADE_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) { g_cancel.store(true); }

// Sleeps until `until_ms` (monotonic) or a signal.
void sleep_until(int64_t until_ms)
{
    while (!g_cancel.load() && monotonic_ms() < until_ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, until_ms - monotonic_ms())));
}

std::string upper(std::string_view s)
{
    std::string o(s);
    for (auto &c : o)
        c = char(std::toupper(static_cast<unsigned char>(c)));
    return o;
}

// ---- one run --------------------------------------------------------------------------------

class Run {
public:
    Run(const AgentRegistry &registry, const AgentInfo &agent, const FrontendSettings &s, Logger &log,
        std::string label, int64_t start_ms)
        : registry_(registry), agent_(agent), s_(s), log_(log), label_(std::move(label)),
          start_ms_(start_ms), deadline_ms_(start_ms + int64_t(s.total_timeout_s) * 1000), targets_(s.targets)
    {
        // A single-target device (a BMC) may be asked without a plug: it has one target.
        if (targets_.empty())
            targets_.push_back("");
    }

    int execute(const ParamList &params);
    // validate-all: the agent itself checks the parameters (open never contacts the device).
    int validate(const ParamList &params);

private:
    Millis budget(int seconds) const;
    // The agent's own need (time_needed) against total_timeout: grows the run's deadline to hold
    // it when total_timeout was not given; when it was given and is too short, the refusal (for
    // validate-all and monitor) comes back as a value.  False after printing an agent error.
    bool settle_limits(const ParamList &params, std::string &refusal);
    bool open(const ParamList &params);
    int fail(uint32_t rc, Phase phase, const std::string &what, const OpResult &r, bool agents_answer = false);
    // Every target as a device of the one sequence, sharing our session.
    std::vector<SequenceDevice> devices() const;
    SequencePolicy policy() const;
    // Prints a failed sequence in fence-agents' words; returns 1.
    int fail_sequence(const SequenceOutcome &o, const std::vector<SequenceDevice> &devs);
    int do_list(bool with_status);
    int do_monitor();
    int do_power();

    const AgentRegistry &registry_;
    const AgentInfo &agent_;
    const FrontendSettings &s_;
    Logger &log_;
    std::string label_;
    int64_t start_ms_;
    int64_t deadline_ms_;
    ParamList params_; // as opened: what the agent's time_needed reads
    std::vector<std::string> targets_;
    std::unique_ptr<AgentSession> session_;
};

Millis Run::budget(int seconds) const
{
    int64_t left = deadline_ms_ - monotonic_ms();
    return Millis(std::max<int64_t>(0, std::min<int64_t>(int64_t(seconds) * 1000, left)));
}

bool Run::settle_limits(const ParamList &params, std::string &refusal)
{
    params_ = params;
    const Millis status_budget{int64_t(s_.login_timeout_s + s_.shell_timeout_s) * 1000};
    const Millis total{int64_t(s_.total_timeout_s) * 1000};
    std::vector<std::string> actions;
    if (s_.action == "validate-all" || s_.action == "monitor") {
        actions = {"off"};
        if (agent_.can(STOCKADE_CAP_REBOOT))
            actions.push_back("reboot");
    } else if (auto pa = parse_power_action(s_.action)) {
        actions = {s_.action};
    }
    for (const auto &a : actions) {
        auto need = run_need(agent_, params, uint32_t(*parse_power_action(a)), status_budget);
        if (!need) {
            log_.log(STOCKADE_LOG_ERR, "Failed: " + need.error().message);
            return false;
        }
        if (!need->has_value())
            continue;
        // The advised Pacemaker settings, shown without -v (stonith_admin --validate and pcs show
        // stderr): a timeout that holds the agent's own need, and for an agent whose work is
        // waiting one attempt only -- a retry would restart the wait and, for meatware, replace
        // the operator's request (docs/deadlines.md).  A power device keeps Pacemaker's retries.
        if (s_.action == "validate-all")
            log_.logf(STOCKADE_LOG_WARNING, "{} needs up to {} for {}; under Pacemaker give this device pcmk_{}_timeout={}s{}",
                      agent_.name, seconds_text(**need), a, a, ((**need).count() + 999) / 1000,
                      agent_.can(STOCKADE_CAP_WAITS)
                          ? fmt::format(" pcmk_{}_retries=1 (a retry would start the wait again)", a)
                          : std::string());
        if (!s_.total_timeout_set) {
            // Nobody told us the caller's limit: the agent's own wait decides (the docs and the
            // metadata tell Pacemaker users to set pcmk_<action>_timeout to at least this).
            deadline_ms_ = std::max(deadline_ms_, start_ms_ + (**need).count());
            continue;
        }
        if (auto fits = check_fits(agent_.name, a, **need, "total_timeout", total); !fits && refusal.empty())
            refusal = fits.error().message;
    }
    return true;
}

int Run::fail(uint32_t rc, Phase phase, const std::string &what, const OpResult &r, bool agents_answer)
{
    // An agent that answered "not done" to off/reboot (stonith-helper: the node still answers)
    // says why; that reason is the first line, never a timeout nobody had (Pacemaker reads "timed
    // out" in stderr as a timeout).  A read-back that contradicts the off keeps fence-agents' line.
    if (agents_answer && rc == STOCKADE_RC_FAILED && phase == Phase::Off && !r.message.empty())
        log_.log(STOCKADE_LOG_ERR, "Failed: " + r.message);
    else
        log_.log(STOCKADE_LOG_ERR, std::string(failure_text(rc, phase)));
    log_.logf(STOCKADE_LOG_ERR, "{}: {} failed ({}): {}", label_, what, result_code_info(rc).name,
              r.message.empty() ? std::string(result_code_info(rc).meaning) : r.message);
    return 1;
}

bool Run::open(const ParamList &params)
{
    SessionOptions o;
    o.isolate = true;
    o.logger = &log_;
    o.label = label_;
    o.cancel = &g_cancel;
    o.registry = &registry_;
    o.last_of_process = true; // one device, one session per run
    session_ = make_session(agent_, o);
    OpResult r = session_->open(params, budget(s_.login_timeout_s + s_.shell_timeout_s));
    if (!r.ok()) {
        fail(r.rc, Phase::Other, "open", r);
        return false;
    }
    return true;
}

int Run::validate(const ParamList &params)
{
    std::string refusal;
    if (!settle_limits(params, refusal) || !open(params))
        return 1;
    session_->close();
    if (!refusal.empty()) {
        log_.log(STOCKADE_LOG_ERR, "Failed: " + refusal);
        return 1;
    }
    return 0;
}

std::vector<SequenceDevice> Run::devices() const
{
    // fence-agents' timeouts per operation (login + shell for a query, login + power_timeout +
    // power_wait for a switch, twice that for a reboot), all cut by total_timeout.
    const int query = s_.login_timeout_s + s_.shell_timeout_s;
    const int power = s_.login_timeout_s + s_.power_timeout_s + s_.power_wait_s;
    DeviceBudget b{Millis(query * 1000),         Millis(query * 1000),  Millis(power * 1000), Millis(power * 1000),
                   Millis((s_.login_timeout_s + 2 * (s_.power_timeout_s + s_.power_wait_s)) * 1000),
                   Millis(query * 1000),         Millis(0)};
    // An agent whose work is waiting states its own need for each power action; that replaces the
    // power-device formula (a wrong statement was refused when the parameters were settled).
    (void)apply_time_needed(b, agent_, params_);
    std::vector<SequenceDevice> devs;
    for (const auto &t : targets_) {
        SequenceDevice d;
        d.name = label_;
        d.target = t;
        d.agent = &agent_;
        d.session = session_.get();
        d.budget = b;
        devs.push_back(std::move(d));
    }
    return devs;
}

SequencePolicy Run::policy() const
{
    SequencePolicy p;
    p.status_first = true;
    p.on_attempts = unsigned(1 + std::max(0, s_.retry_on));
    p.reboot_on_attempts = unsigned(std::max(1, s_.retry_on));
    // power_wait: a fixed pause after each on/off command, for devices that need it.  Agents with
    // their own power_wait parameter receive it instead (they know when the command really ended).
    if (s_.power_wait_s > 0 && !agent_.find_param("power_wait"))
        p.settle = Millis(int64_t(s_.power_wait_s) * 1000);
    p.deadline_ms = deadline_ms_;
    p.cancel = &g_cancel;
    return p;
}

int Run::fail_sequence(const SequenceOutcome &o, const std::vector<SequenceDevice> &devs)
{
    if (!o.failed_step) {
        OpResult r;
        r.message = o.reason;
        return fail(o.rc, Phase::Other, s_.action, r);
    }
    const SequenceStep &st = o.steps[*o.failed_step];
    Phase phase = st.op == "status"                                       ? Phase::Status
                  : st.op == "off" || st.op == "reboot"                   ? Phase::Off
                  : st.op == "on"                                         ? Phase::On
                  : st.op == "verify" && st.expect == STOCKADE_POWER_OFF ? Phase::Off
                  : st.op == "verify" && st.expect == STOCKADE_POWER_ON  ? Phase::On
                                                                          : Phase::Other;
    return fail(st.result.rc, phase, fmt::format("{} of '{}'", st.op, devs[st.device].target), st.result,
                st.op == "off" || st.op == "reboot");
}

int Run::do_list(bool with_status)
{
    OpResult r = session_->list(budget(s_.login_timeout_s + s_.shell_timeout_s));
    if (!r.ok())
        return fail(r.rc, Phase::Other, "list", r);
    for (const auto &t : r.targets) {
        if (!with_status) {
            fmt::print("{}{}{}\n", t.name, s_.separator, t.alias);
            continue;
        }
        std::string state = "UNKNOWN";
        if (agent_.can(STOCKADE_CAP_STATUS)) {
            OpResult st = session_->status(t.name, budget(s_.login_timeout_s + s_.shell_timeout_s));
            if (st.ok() && (st.power_state == STOCKADE_POWER_ON || st.power_state == STOCKADE_POWER_OFF))
                state = std::string(power_state_info(st.power_state).name);
        }
        fmt::print("{}{}{}{}{}\n", t.name, s_.separator, t.alias, s_.separator, state);
    }
    return 0;
}

// monitor: the device's own check; else list (plug-based devices); else the status of the target
// (single-target devices; on and off both mean healthy); else opening is all there is.
int Run::do_monitor()
{
    Millis t = budget(s_.login_timeout_s + s_.shell_timeout_s);
    if (agent_.can(STOCKADE_CAP_MONITOR)) {
        OpResult r = session_->monitor(t);
        return r.ok() ? 0 : fail(r.rc, Phase::Other, "monitor", r);
    }
    if (agent_.can(STOCKADE_CAP_LIST)) {
        OpResult r = session_->list(t);
        return r.ok() ? 0 : fail(r.rc, Phase::Other, "monitor (list)", r);
    }
    if (agent_.can(STOCKADE_CAP_STATUS) && !s_.targets.empty()) {
        auto devs = devices();
        SequenceOutcome o = run_sequence(devs, SequenceAction::ReadStatus, policy());
        return o.success ? 0 : fail_sequence(o, devs);
    }
    log_.log(STOCKADE_LOG_INFO, "agent has no monitor, list or status: parameters accepted");
    return 0;
}

// on, off, reboot, status, diag: the one sequence (core/src/sequence.cpp), in fence-agents' words.
int Run::do_power()
{
    const std::string &action = s_.action;
    SequenceAction a = action == "status" ? SequenceAction::ReadStatus
                                          : sequence_action(parse_power_action(action).value_or(PowerAction::Reboot));
    auto devs = devices();
    SequenceOutcome o = run_sequence(devs, a, policy());
    if (!o.success)
        return fail_sequence(o, devs);
    if (a == SequenceAction::ReadStatus) {
        const PowerStateInfo &info = power_state_info(o.state);
        fmt::print("{}\n", info.status_text);
        return info.status_exit;
    }
    if (o.already) {
        fmt::print("Success: Already {}\n", upper(power_state_info(o.state).name));
        return 0;
    }
    // reboot: the off part decides success; a failed power-on is logged, never a failure.
    if (o.power_on_failed && agent_.can(STOCKADE_CAP_ON)) {
        log_.log(STOCKADE_LOG_ERR, "Timed out waiting to power ON");
        log_.logf(STOCKADE_LOG_ERR, "{}: {}", label_, o.reason);
    }
    fmt::print("{}\n", power_action_info(*sequence_action_info(a).power).success_text);
    return 0;
}

int Run::execute(const ParamList &params)
{
    const std::string &a = s_.action;
    bool targeted = a == "on" || a == "off" || a == "reboot" || a == "status" || a == "diag";
    if (targeted && s_.targets.empty() && agent_.can(STOCKADE_CAP_LIST)) {
        log_.log(STOCKADE_LOG_ERR, "Failed: You have to enter plug number or machine identification");
        log_.log(STOCKADE_LOG_ERR, "Please use '-h' for usage");
        return 1;
    }
    std::string refusal;
    if (!settle_limits(params, refusal) || !open(params))
        return 1;
    if (!refusal.empty()) {
        if (a == "monitor") { // the time to say so: Pacemaker runs monitor when the device starts
            session_->close();
            log_.log(STOCKADE_LOG_ERR, "Failed: " + refusal);
            return 1;
        }
        log_.log(STOCKADE_LOG_WARNING, refusal + "; this run is cut at total_timeout");
    }
    int rc = 1;
    if (a == "list" || a == "list-status")
        rc = do_list(a == "list-status");
    else if (a == "monitor")
        rc = do_monitor();
    else
        rc = do_power();
    session_->close();
    return rc;
}

// ---- orphan guard -----------------------------------------------------------------------------
//
// Pacemaker SIGKILLs the agent's process group at its timeout.  The isolated agent host runs in
// a process group of its own (so our deadline can kill its whole tree), which that SIGKILL does
// not reach: a hung agent would outlive us.  So a small guard process, outside our group, keeps
// a snapshot of our descendants and, once we are gone for any reason, SIGKILLs the ones still
// alive (same pid and start time, so a reused pid is never hit).  On a normal exit they are
// already gone and it kills nothing.

// Runs in the guard: watches stdin, whose write end only the parent holds (close-on-exec).
int guard_main(pid_t parent)
{
    std::map<pid_t, unsigned long long> seen;
    for (;;) {
        pollfd p{0, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char c;
            if (::read(0, &c, 1) <= 0)
                break; // parent gone: the write end is closed
        }
        for (pid_t pid : process_tree(parent, 0))
            if (pid != parent && !seen.count(pid))
                if (auto st = read_proc_stat(pid))
                    seen[pid] = st->start_time;
    }
    for (const auto &[pid, started] : seen)
        if (auto st = read_proc_stat(pid); st && st->start_time == started)
            ::kill(pid, SIGKILL);
    return 0;
}

// Starts the guard: first thing in main(), before any thread and before the agent and its
// libraries are loaded.  Forked from a small address space, it costs little, and our own writes
// later do not fault on pages it shares (forked after the load it made a fence ~0.25 ms slower).
void start_orphan_guard(int argc, char **argv)
{
    pid_t parent = ::getpid();
    SpawnSpec spec;
    spec.argv = {"orphan guard"};
    spec.new_session = true; // Pacemaker's SIGKILL to our group must not reach it
    spec.stdout_to = ChildStream::Null; // never hold the fencer's stdout/stderr pipes open
    spec.stderr_to = ChildStream::Null;
    if (auto g = Subprocess::fork_function(spec, [parent, argc, argv] {
            blank_inherited_argv(argc, argv);
            return guard_main(parent);
        }))
        g.value()->release(); // it outlives us on purpose; its stdin pipe stays open until we exit
}

// ---- main -----------------------------------------------------------------------------------

std::string read_stdin()
{
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// Overwrites secret values in our own argv, so /proc/<pid>/cmdline stops showing them.
void scrub_argv(int argc, char **argv, const ParsedInput &in)
{
    for (const auto &[idx, off] : in.secret_spans) {
        if (int(idx) + 1 >= argc)
            continue;
        char *a = argv[idx + 1];
        size_t n = std::strlen(a);
        for (size_t i = off; i < n; ++i)
            a[i] = 'x';
    }
}

void usage_failure(const std::string &msg)
{
    std::fprintf(stderr, "%s\n", msg.c_str());
    std::fprintf(stderr, "Please use '-h' for usage\n");
}

// Runs password_script through the shell: its stdout, right-stripped, is the password.  Nothing
// secret is on its argv or in its environment; its output never reaches a log.
Result<std::string> run_password_script(const std::string &script, int timeout_s)
{
    SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    auto r = run_command(spec, "", std::chrono::seconds(std::max(1, timeout_s)), &g_cancel);
    if (!r)
        return r.error();
    if (r->timed_out)
        return make_error(STOCKADE_RC_TIMEOUT, "Failed: password script did not finish within {} s", timeout_s);
    if (!r->exit_code || *r->exit_code != 0)
        return make_error(STOCKADE_RC_BAD_CONFIG, "Failed: password script failed (exit {})",
                          r->exit_code ? *r->exit_code : -1);
    std::string out = r->out;
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back())))
        out.pop_back();
    return out;
}

// config=FILE (--config FILE): the target's levels and gates from a stockade JSON config, through
// the escalation runner (the same sequence, the per-node lock), answered in fence-agents' words.
// Pacemaker kills us at its timeout, so the escalation ends before total_timeout.
int run_config(const std::string &path, const FrontendSettings &s, Logger &log, int64_t start_ms)
{
    AgentRegistry registry;
    ConfigCheck check = check_config_file(path, registry);
    if (!check.config) {
        for (const auto &e : check.errors)
            log.log(STOCKADE_LOG_ERR, e.message);
        if (s.action == "validate-all") { // every problem, then fence-agents' closing line
            for (const auto &e : check.errors)
                std::fprintf(stderr, "Failed: %s\n", e.message.c_str());
            usage_failure("validate-all failed");
        } else {
            usage_failure("Failed: " + (check.errors.empty() ? path : check.errors.front().message));
        }
        return 1;
    }
    Config &c = *check.config;
    Millis left(std::max<int64_t>(1, int64_t(s.total_timeout_s) * 1000 - (monotonic_ms() - start_ms)));
    if (c.escalation.timeout.count() == 0 || c.escalation.timeout > left)
        c.escalation.timeout = left;
    const std::string &a = s.action;
    if (a == "monitor" || a == "validate-all")
        return 0; // the file, its devices and their parameters are sound
    if (a == "list" || a == "list-status") {
        for (const auto &n : c.nodes)
            fmt::print("{}{}\n", n.name, s.separator);
        return 0;
    }
    if (s.targets.empty()) {
        usage_failure("Failed: You have to enter plug number or machine identification");
        return 1;
    }
    const std::string &node = s.targets.front();
    if (!c.find_node(node)) {
        usage_failure(fmt::format("Failed: node '{}' is not in {}", node, path));
        return 1;
    }
    EscalationRunner runner(c, registry, log);
    runner.set_cancel(&g_cancel);
    ClusterGates gates(c, log); // quorum and witness, as `stockade fence` has them
    gates.install(runner);
    runner.set_node_locks(default_lock_dir());
    if (a == "status") {
        StatusReport st = runner.status(node);
        if (!st.level) {
            log.logf(STOCKADE_LOG_ERR, "{}", kBadStatus);
            log.logf(STOCKADE_LOG_ERR, "status {}: {}", node, st.reason);
            return 1;
        }
        const PowerStateInfo &info = power_state_info(st.power_state);
        fmt::print("{}\n", info.status_text);
        return info.status_exit;
    }
    auto action = parse_power_action(a);
    if (!action || *action == PowerAction::Diag) {
        usage_failure("Failed: Unrecognised action '" + a + "'");
        return 1;
    }
    FenceReport r = runner.fence(node, *action);
    if (!r.success) {
        log.logf(STOCKADE_LOG_ERR, "Failed: fence {}: {}", node, r.reason);
        return 1;
    }
    if (r.power_on_failed)
        log.log(STOCKADE_LOG_ERR, "Timed out waiting to power ON");
    fmt::print("{}\n", power_action_info(*action).success_text);
    return 0;
}

int real_main(int argc, char **argv)
{
    const int64_t start_ms = monotonic_ms();
    std::string argv0 = argc > 0 ? argv[0] : std::string(kGenericProgram);
    std::string program = argv0.substr(argv0.rfind('/') == std::string::npos ? 0 : argv0.rfind('/') + 1);
    std::string agent_name = agent_from_program_name(program);
    bool generic = agent_name.empty();

    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    bool from_stdin = args.empty();
    std::string input = from_stdin ? read_stdin() : std::string();
    if (generic)
        agent_name = (from_stdin ? peek_agent_stdin(input) : peek_agent_argv(args)).value_or("");

    AgentRegistry registry;
    const AgentInfo *agent = nullptr;
    std::string load_error;
    if (!agent_name.empty()) {
        auto r = registry.find(agent_name);
        if (r)
            agent = *r;
        else
            load_error = r.error().message;
    }

    OptionTable table(agent, generic);
    ParsedInput in;
    if (from_stdin) {
        in = parse_stdin(input, table);
    } else {
        auto r = parse_argv(args, table);
        if (!r) {
            usage_failure(r.error().message);
            return 1;
        }
        in = std::move(r.value());
        scrub_argv(argc, argv, in);
    }
    for (const auto &w : in.warnings)
        std::fprintf(stderr, "%s\n", w.c_str());
    if (!in.errors.empty()) {
        for (const auto &e : in.errors)
            std::fprintf(stderr, "%s\n", e.c_str());
        usage_failure("Failed: refusing to run with a NUL byte in the input");
        return 1;
    }

    if (!load_error.empty()) {
        usage_failure("Failed: " + load_error);
        return 1;
    }
    if (in.has(Field::Help)) {
        fmt::print("{}", usage_text(table, program));
        return 0;
    }
    std::string action = text::ascii_lower(in.get(Field::Action).value_or(table.default_action()));
    if (action == "metadata" || action == "meta-data") {
        fmt::print("{}", metadata_xml(table, program));
        return 0;
    }
    if (in.has(Field::Version)) {
        fmt::print("{}\n", agent ? agent->version : std::string(STOCKADE_VERSION));
        return 0;
    }

    std::vector<std::string> problems;
    auto settled = settle(in, table, &problems);
    FrontendSettings s = settled ? settled.value() : FrontendSettings{};
    if (!settled)
        s.action = action == "meta-data" ? "metadata" : action;

    // Logging: stderr in fence-agents' format (unless quiet), syslog, and the debug file.
    Logger log;
    int stderr_level = s.verbose_level >= 2 ? STOCKADE_LOG_DEBUG
                       : s.verbose_level == 1 ? STOCKADE_LOG_INFO
                                              : STOCKADE_LOG_WARNING;
    log.set_level(s.debug_file.empty() ? stderr_level : STOCKADE_LOG_DEBUG);
    if (!s.quiet)
        log.add_sink([stderr_level](int level, std::string_view line) {
            if (level > stderr_level)
                return;
            std::string out = fmt::format("{} {}: {}\n", timestamp(), level_word(level), line);
            std::fwrite(out.data(), 1, out.size(), stderr);
            std::fflush(stderr);
        });
    static std::string syslog_ident;
    syslog_ident = program;
    log.add_syslog_sink(syslog_ident.c_str());
    std::shared_ptr<std::ofstream> debug_file;
    if (!s.debug_file.empty()) {
        debug_file = std::make_shared<std::ofstream>(s.debug_file, std::ios::app);
        if (!*debug_file) {
            log.logf(STOCKADE_LOG_ERR, "Unable to create file {}", s.debug_file);
            usage_failure("Failed: Unable to create file " + s.debug_file);
            return 1;
        }
        auto mu = std::make_shared<std::mutex>();
        log.add_sink([debug_file, mu](int level, std::string_view line) {
            std::lock_guard lock(*mu);
            *debug_file << timestamp() << ' ' << level_word(level) << ": " << line << '\n' << std::flush;
        });
    }

    // The generic program needs exactly one of agent= (one device) and config= (a node's levels
    // from a stockade file): the metadata marks neither required, so this is where it is enforced.
    auto cfg = generic ? in.get(Field::Config) : std::nullopt;
    const bool has_config = cfg && !cfg->empty();
    auto refuse = [&](const std::string &why) {
        if (s.action == "validate-all") {
            std::fprintf(stderr, "%s\n", why.c_str());
            usage_failure("validate-all failed");
        } else {
            usage_failure(why);
        }
        return 1;
    };
    if (has_config && agent)
        return refuse("Failed: agent= and config= exclude each other: config= names each device's agent in the file");
    if (has_config) {
        return run_config(*cfg, s, log, start_ms);
    }
    if (!agent)
        return refuse("Failed: You have to set agent or config (agent=NAME or config=FILE on stdin, --agent=NAME or "
                      "--config=FILE on the command line)");
    if (!table.accepts_action(s.action)) {
        usage_failure("Failed: Unrecognised action '" + s.action + "'");
        return 1;
    }
    const char *pcmk = std::getenv("PCMK_service");
    if (s.disable_timeout_requested)
        log.log(STOCKADE_LOG_WARNING, "disable_timeout ignored: stockade keeps its own deadlines (total_timeout)");
    else if (pcmk && std::string(pcmk) == "pacemaker-fenced")
        log.logf(STOCKADE_LOG_DEBUG, "run by pacemaker-fenced: keeping deadlines (total_timeout={}s)",
                 s.total_timeout_s);

    // The password script runs before validation, so a required password it supplies counts.
    if (s.password_script && settled) {
        auto pw = run_password_script(*s.password_script, s.login_timeout_s + s.shell_timeout_s);
        if (!pw) {
            problems.push_back(pw.error().message);
        } else if (const ParamInfo *p = password_param(*agent)) {
            in.agent_params.emplace_back(p->name, std::move(pw.value()));
        }
    }
    std::vector<std::string> missing;
    auto params = settled ? agent_params(in, s, table, &missing) : Result<ParamList>(settled.error());
    if (settled && !params && missing.empty())
        problems.push_back(params.error().message);
    problems.insert(problems.end(), missing.begin(), missing.end());

    if (s.action == "validate-all") {
        int rc = 0;
        if (problems.empty()) {
            Run run(registry, *agent, s, log, program, start_ms);
            rc = run.validate(*params);
        }
        for (const auto &p : problems)
            std::fprintf(stderr, "%s\n", p.c_str());
        if (!problems.empty() || rc != 0) {
            usage_failure("validate-all failed");
            return 1;
        }
        return 0;
    }
    if (!problems.empty()) {
        usage_failure(problems.front());
        return 1;
    }

    // delay: only before off and reboot, counted from our start, before touching the device.
    if ((s.action == "off" || s.action == "reboot") && s.delay_s > 0) {
        log.logf(STOCKADE_LOG_INFO, "Delay {} second(s) before logging in to the fence device", s.delay_s);
        sleep_until(start_ms + int64_t(s.delay_s) * 1000);
    }
    Run run(registry, *agent, s, log, program, start_ms);
    return run.execute(*params);
}

} // namespace

int main(int argc, char **argv)
{
    // The orphan guard first (it watches everything we start), then the template isolated agent
    // sessions are forked from: before any thread, before the options (and their password) are
    // read from stdin, before our signal handlers.  The agent our name says
    // (fence_stockade_<agent>) is loaded in it from the start.
    start_orphan_guard(argc, argv);
    (void)start_fork_template(argc, argv, agent_from_program_name(argc > 0 ? argv[0] : ""));
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    int rc = 1;
    try {
        rc = real_main(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "Failed: internal error: %s\n", e.what());
        rc = 1;
    } catch (...) {
        std::fprintf(stderr, "Failed: internal error\n");
        rc = 1;
    }
    std::fflush(stdout);
    return rc;
}
