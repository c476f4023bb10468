// runner.cpp -- the escalation runner (see runner.hpp for the rules it keeps).
#include "stockade/runner.hpp"
#include "stockade/time_budget.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <thread>

#include "stockade/node_lock.hpp"
#include "stockade/process.hpp"
#include "strings.hpp"

namespace stockade {

namespace {

std::string format_ms(int64_t ms)
{
    if (ms < 1000)
        return fmt::format("{} ms", ms);
    return fmt::format("{:.1f} s", double(ms) / 1000.0);
}

void sleep_until(int64_t until_ms, const std::atomic<bool> *cancel)
{
    while (monotonic_ms() < until_ms && !(cancel && cancel->load()))
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, until_ms - monotonic_ms())));
}

// While one operation runs, calls tick(elapsed) every `interval` on its own thread (the operation
// blocks the runner's), so a long wait (an operator, a slow BMC) is never silent.  One thread
// serves every operation of a level (started at the first), so a quick failing device costs no
// thread creation of its own.
class WaitTicker {
public:
    WaitTicker() = default;
    WaitTicker(const WaitTicker &) = delete;
    WaitTicker &operator=(const WaitTicker &) = delete;
    ~WaitTicker()
    {
        if (!thread_.joinable())
            return;
        {
            std::lock_guard lock(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

    void start(Millis interval, std::function<void(int64_t elapsed_ms)> tick)
    {
        if (interval.count() <= 0) {
            stop();
            return;
        }
        std::lock_guard lock(mu_);
        tick_ = std::move(tick);
        interval_ = interval;
        t0_ = monotonic_ms();
        ++generation_;
        if (!thread_.joinable())
            thread_ = std::thread([this] { run(); });
        cv_.notify_all();
    }
    void stop()
    {
        std::lock_guard lock(mu_);
        tick_ = nullptr;
        ++generation_;
        cv_.notify_all();
    }

private:
    void run()
    {
        std::unique_lock lock(mu_);
        while (!quit_) {
            if (!tick_) {
                cv_.wait(lock);
                continue;
            }
            const uint64_t gen = generation_;
            if (cv_.wait_for(lock, interval_, [&] { return quit_ || generation_ != gen; }))
                continue; // stopped, restarted or quitting
            tick_(monotonic_ms() - t0_);
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::function<void(int64_t)> tick_;
    Millis interval_{0};
    int64_t t0_ = 0;
    uint64_t generation_ = 0;
    bool quit_ = false;
    std::thread thread_;
};

} // namespace

nlohmann::json StepRecord::to_json() const
{
    nlohmann::json j{{"loop", loop},         {"level", level},
                     {"index", index},       {"device", device},
                     {"agent", agent},       {"target", target},
                     {"op", op},             {"result", result_code_info(rc).name},
                     {"elapsed_ms", elapsed_ms}, {"started_ms", started_ms}};
    if (!message.empty())
        j["message"] = message;
    if (exec != ExecStatus::Completed)
        j["execution"] = exec_status_info(exec).name;
    if (op == "status" || op == "verify")
        j["power"] = power_state_info(power_state).name;
    if (verified) {
        j["verified_off"] = bool(verified & STOCKADE_VERIFIED_OFF);
        j["verified_on"] = bool(verified & STOCKADE_VERIFIED_ON);
    }
    return j;
}

nlohmann::json FenceReport::to_json() const
{
    nlohmann::json steps_json = nlohmann::json::array();
    for (const auto &s : steps)
        steps_json.push_back(s.to_json());
    nlohmann::json j{{"node", node},       {"action", power_action_info(action).name},
                     {"result", success ? "fenced" : "failed"},
                     {"loops", loops},     {"reason", reason},
                     {"elapsed_ms", elapsed_ms}, {"steps", steps_json}};
    if (action == PowerAction::On)
        j["result"] = success ? "on" : "failed";
    if (success)
        j["level"] = level;
    if (power_on_failed)
        j["power_on_failed"] = true;
    if (shared_with_pid)
        j["shared_with_pid"] = shared_with_pid;
    if (refused)
        j["result"] = "refused";
    return j;
}

nlohmann::json StatusReport::to_json() const
{
    nlohmann::json steps_json = nlohmann::json::array();
    for (const auto &s : steps)
        steps_json.push_back(s.to_json());
    nlohmann::json j{{"node", node}, {"power", power_state_info(power_state).name}, {"reason", reason},
                     {"elapsed_ms", elapsed_ms}, {"steps", steps_json}};
    if (level)
        j["level"] = level;
    return j;
}

void parallel_for(size_t n, unsigned concurrency, const std::function<void(size_t)> &fn)
{
    if (n == 0)
        return;
    size_t workers = std::min<size_t>(std::max(1u, concurrency), n);
    if (workers == 1) {
        for (size_t i = 0; i < n; ++i)
            fn(i);
        return;
    }
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    threads.reserve(workers);
    for (size_t w = 0; w < workers; ++w)
        threads.emplace_back([&] {
            for (size_t i = next++; i < n; i = next++)
                fn(i);
        });
    for (auto &t : threads)
        t.join();
}

EscalationRunner::EscalationRunner(const Config &config, const AgentRegistry &registry, Logger &logger)
    : config_(config), registry_(registry), logger_(logger)
{
}

void EscalationRunner::emit(FenceReport &r, StepRecord s) const
{
    std::string what;
    if (s.rc == STOCKADE_RC_OK) {
        what = "ok";
        if (s.op == "status" || s.op == "verify")
            what += fmt::format(", reads {}", power_state_info(s.power_state).name);
        else if ((s.op == "off" || s.op == "reboot") && (s.verified & STOCKADE_VERIFIED_OFF))
            what += ", confirmed off";
        else if (s.op == "on" && (s.verified & STOCKADE_VERIFIED_ON))
            what += ", confirmed on";
        if (!s.message.empty())
            what += ": " + s.message;
    } else {
        what = s.exec == ExecStatus::Completed
                   ? fmt::format("failed ({}): {}", result_code_info(s.rc).name, s.message)
                   : fmt::format("failed ({}, {}): {}", result_code_info(s.rc).name, exec_status_info(s.exec).name,
                                 s.message);
    }
    size_t level_size = 0;
    if (const NodeConfig *n = config_.find_node(r.node); n && s.level && s.level <= n->levels.size())
        level_size = n->levels[s.level - 1].size();
    // After a few identical passes, an endless loop logs its steps at debug level only (as
    // fenced throttles its retries), with a summary every 100 loops.
    int level = s.rc == STOCKADE_RC_OK ? STOCKADE_LOG_INFO : STOCKADE_LOG_WARNING;
    if (s.loop > 3 && s.loop % 100 != 0)
        level = STOCKADE_LOG_DEBUG;
    logger_.logf(level, "fence {}: loop {}, level {}, device {}/{} '{}' ({}) {} {}: {} [{}]", r.node, s.loop, s.level,
                 s.index, level_size, s.device, s.agent, s.op, s.target, what, format_ms(s.elapsed_ms));
    r.steps.push_back(std::move(s));
    if (hook_)
        hook_(r, r.steps.back());
}

// The devices of one level as the sequence sees them.  Each opens lazily (agent lookup,
// parameters, an isolated session) so a device after a failed one is never started.
std::vector<SequenceDevice> EscalationRunner::level_devices(const NodeConfig &node, unsigned level_no,
                                                            std::vector<std::unique_ptr<AgentSession>> &sessions) const
{
    const auto &level = node.levels[level_no - 1];
    std::vector<SequenceDevice> devs;
    sessions.clear();
    sessions.resize(level.size());
    for (size_t i = 0; i < level.size(); ++i) {
        const LevelDevice &entry = level[i];
        const DeviceConfig &d = config_.devices.at(entry.device);
        SequenceDevice sd;
        sd.name = d.name;
        sd.target = entry.target.empty() ? node.name : entry.target;
        if (auto a = registry_.find(d.agent))
            sd.agent = *a;
        sd.budget = DeviceBudget{d.timeout, d.timeout, d.timeout, d.timeout, d.timeout, d.timeout, Millis(0)};
        // Without a configured timeout, a power action gets what the agent states it needs (an
        // operator's answer, a standby wait); a configured one it does not fit in was refused by
        // validation (check_config_agents).
        if (sd.agent && !d.timeout_set)
            if (auto params = resolve_params(*sd.agent, merged_params(d, entry), UnknownParams::Reject))
                (void)apply_time_needed(sd.budget, *sd.agent, *params);
        auto *slot = &sessions[i];
        const bool last = one_node_process_ && node.levels.size() == 1 && level.size() == 1;
        sd.open = [this, &d, &entry, slot, last](SequenceDevice &self, Millis timeout) -> OpResult {
            OpResult res;
            auto agent = registry_.find(d.agent);
            if (!agent) {
                res.rc = agent.error().rc;
                res.message = agent.error().message;
                return res;
            }
            auto params = resolve_params(**agent, merged_params(d, entry), UnknownParams::Reject);
            if (!params) {
                res.rc = params.error().rc;
                res.message = params.error().message;
                return res;
            }
            SessionOptions o;
            o.isolate = d.isolate;
            o.logger = &logger_;
            o.label = d.name;
            o.cancel = cancel_;
            o.registry = &registry_;
            o.last_of_process = last;
            *slot = make_session(**agent, o);
            res = (*slot)->open(*params, timeout);
            if (!res.ok()) {
                slot->reset();
                return res;
            }
            self.agent = *agent;
            self.session = slot->get();
            return res;
        };
        devs.push_back(std::move(sd));
    }
    return devs;
}

bool EscalationRunner::run_level(FenceReport &r, const NodeConfig &node, unsigned loop, unsigned level_no,
                                 int64_t start, int64_t overall_deadline) const
{
    std::vector<std::unique_ptr<AgentSession>> sessions;
    std::vector<SequenceDevice> devs = level_devices(node, level_no, sessions);
    SequencePolicy policy;
    policy.deadline_ms = overall_deadline;
    policy.cancel = cancel_;
    WaitTicker ticker;
    const int quiet = loop > 3 && loop % 100 != 0 ? STOCKADE_LOG_DEBUG : STOCKADE_LOG_INFO; // as emit() throttles
    policy.on_start = [&](const SequenceDevice &dv, std::string_view op, Millis timeout) {
        size_t index = size_t(&dv - devs.data());
        const std::string &agent = config_.devices.at(node.levels[level_no - 1][index].device).agent;
        if (op == "open")
            logger_.logf(quiet, "fence {}: loop {}, level {}, device {}/{} '{}' ({}) starts: {} {} (timeout {})", r.node,
                         loop, level_no, index + 1, devs.size(), dv.name, agent, power_action_info(r.action).name,
                         dv.target, format_ms(timeout.count()));
        ticker.start(progress_interval_, [this, &r, name = dv.name, what = std::string(op), timeout,
                                          quiet](int64_t elapsed) {
            logger_.logf(quiet, "fence {}: device '{}' {}: still waiting ({} s of {} s)", r.node, name, what,
                         elapsed / 1000, (timeout.count() + 500) / 1000);
        });
    };
    policy.on_step = [&](const SequenceDevice &dv, const SequenceStep &st) {
        ticker.stop();
        StepRecord s;
        s.loop = loop;
        s.level = level_no;
        s.index = unsigned(st.device + 1);
        s.device = dv.name;
        s.agent = config_.devices.at(node.levels[level_no - 1][st.device].device).agent;
        s.target = dv.target;
        s.op = st.op;
        s.rc = st.result.rc;
        s.exec = st.result.exec;
        s.message = st.result.message;
        s.verified = st.result.verified;
        s.power_state = st.result.power_state;
        s.elapsed_ms = st.result.elapsed_ms;
        s.started_ms = monotonic_ms() - start - st.result.elapsed_ms;
        emit(r, std::move(s));
    };
    SequenceOutcome o = run_sequence(devs, sequence_action(r.action), policy);
    for (auto &sess : sessions)
        if (sess)
            sess->close();
    if (o.success && o.power_on_failed) {
        r.power_on_failed = true;
        logger_.logf(STOCKADE_LOG_WARNING, "fence {}: off was confirmed but power-on was not{}", r.node,
                     o.reason.empty() ? "" : ": " + o.reason);
    }
    return o.success;
}

FenceReport EscalationRunner::fence(const std::string &node_name, std::optional<PowerAction> action) const
{
    FenceReport r;
    r.node = node_name;
    int64_t start = monotonic_ms();
    const NodeConfig *node = config_.find_node(node_name);
    if (!node) {
        r.reason = fmt::format("node '{}' is not configured", node_name);
        logger_.logf(STOCKADE_LOG_ERR, "fence {} undefined: {}", node_name, r.reason);
        return r;
    }
    r.node = node->name;
    r.action = action.value_or(node->action);
    const auto &pol = config_.escalation;
    int64_t overall_deadline = pol.timeout.count() > 0 ? start + pol.timeout.count() : 0;
    if (lock_dir_.empty()) {
        fence_node(r, *node, start, overall_deadline);
        return r;
    }
    // One escalation per node at a time, across processes: wait for a running one and share its
    // outcome, bounded by our own timeout.
    const std::string action_name(power_action_info(r.action).name);
    const std::string scope = config_.cluster_name.empty()
                                  ? "file:" + std::filesystem::absolute(config_.source).lexically_normal().string()
                                  : "cluster:" + text::ascii_lower(config_.cluster_name);
    auto lock = lock_node(lock_dir_, scope, r.node, action_name, overall_deadline, cancel_, [&](pid_t holder) {
        logger_.logf(STOCKADE_LOG_NOTICE, "fence {}: already being fenced by {}; waiting for its outcome{}", r.node,
                     holder ? fmt::format("pid {}", holder) : std::string("another process (it could not write its pid)"),
                     overall_deadline ? fmt::format(" (at most {})", format_ms(overall_deadline - monotonic_ms()))
                                      : std::string());
    });
    if (!lock && (lock.error().rc == STOCKADE_RC_TIMEOUT || lock.error().rc == STOCKADE_RC_CANCELLED)) {
        r.reason = lock.error().message;
        r.elapsed_ms = monotonic_ms() - start;
        logger_.logf(STOCKADE_LOG_ERR, "fence {} failed: {} [{}]", r.node, r.reason, format_ms(r.elapsed_ms));
        return r;
    }
    if (!lock) {
        logger_.logf(STOCKADE_LOG_WARNING, "fence {}: fencing without the per-node lock: {}", r.node,
                     lock.error().message);
        fence_node(r, *node, start, overall_deadline);
        return r;
    }
    if (lock->shared) {
        const SharedOutcome &o = *lock->shared;
        r.success = o.success;
        r.shared_with_pid = o.pid;
        r.reason = fmt::format("shared the outcome of the escalation already running in pid {}: {}", o.pid, o.reason);
        r.elapsed_ms = monotonic_ms() - start;
        logger_.logf(o.success ? STOCKADE_LOG_NOTICE : STOCKADE_LOG_ERR, "fence {} {}: {} [{}]", r.node,
                     o.success ? "success" : "failed", r.reason, format_ms(r.elapsed_ms));
        return r;
    }
    if (lock->holder_vanished)
        logger_.logf(STOCKADE_LOG_WARNING, "fence {}: {} ended without an outcome we could read; fencing again", r.node,
                     lock->waited_for ? fmt::format("pid {}", lock->waited_for) : std::string("the escalation we waited for"));
    if (!lock->warning.empty())
        logger_.logf(STOCKADE_LOG_WARNING, "fence {}: {}", r.node, lock->warning);
    fence_node(r, *node, start, overall_deadline);
    if (auto recorded = lock->lease.finish(action_name, r.success, r.reason); !recorded)
        logger_.logf(STOCKADE_LOG_WARNING, "fence {}: {}", r.node, recorded.error().message);
    return r;
}

void EscalationRunner::fence_node(FenceReport &r, const NodeConfig &node_cfg, int64_t start,
                                  int64_t overall_deadline) const
{
    const NodeConfig *node = &node_cfg;
    const auto &pol = config_.escalation;
    for (const auto &[gate_name, gate] : gates_) {
        if (auto g = gate(r.node, r.action); !g) {
            r.refused = true;
            r.reason = fmt::format("refused by {}: {}", gate_name, g.error().message);
            r.elapsed_ms = monotonic_ms() - start;
            logger_.logf(STOCKADE_LOG_ERR, "fence {} refused: {}", r.node, r.reason);
            return;
        }
    }
    const char *verb = power_action_info(r.action).name.data();
    logger_.logf(STOCKADE_LOG_NOTICE, "fence {}: {} with {} level{}, {}{}", r.node, verb, node->levels.size(),
                 node->levels.size() == 1 ? "" : "s",
                 pol.max_loops ? fmt::format("at most {} loop{}", pol.max_loops, pol.max_loops == 1 ? "" : "s")
                               : std::string("retrying until success"),
                 pol.timeout.count() ? fmt::format(" within {}", format_ms(pol.timeout.count())) : std::string());

    for (unsigned loop = 1;; ++loop) {
        r.loops = loop;
        for (unsigned li = 1; li <= node->levels.size(); ++li) {
            if (cancelled()) {
                r.reason = "cancelled";
                goto done;
            }
            if (overall_deadline && monotonic_ms() >= overall_deadline) {
                r.reason = fmt::format("overall timeout of {} reached", format_ms(pol.timeout.count()));
                goto done;
            }
            if (run_level(r, *node, loop, li, start, overall_deadline)) {
                r.success = true;
                r.level = li;
                const auto &lvl = node->levels[li - 1];
                std::vector<std::string> names;
                for (const auto &e : lvl)
                    names.push_back(e.device);
                r.reason = fmt::format("{} confirmed at level {} ({}) in loop {}",
                                       r.action == PowerAction::On       ? "on"
                                       : r.action == PowerAction::Diag   ? "diagnostic interrupt"
                                                                         : "off",
                                       li, join(names, "+"), loop);
                if (r.power_on_failed)
                    r.reason += "; power-on was not confirmed";
                goto done;
            }
            if (cancelled()) {
                r.reason = "cancelled";
                goto done;
            }
        }
        if (pol.max_loops && loop >= pol.max_loops) {
            r.reason = fmt::format("all {} level{} failed in {} loop{}", node->levels.size(),
                                   node->levels.size() == 1 ? "" : "s", loop, loop == 1 ? "" : "s");
            goto done;
        }
        int64_t resume = monotonic_ms() + pol.retry_delay.count();
        if (overall_deadline && resume >= overall_deadline) {
            r.reason = fmt::format("overall timeout of {} reached after {} loop{}", format_ms(pol.timeout.count()),
                                   loop, loop == 1 ? "" : "s");
            goto done;
        }
        if (loop <= 3 || loop % 100 == 0)
            logger_.logf(STOCKADE_LOG_WARNING, "fence {}: every level failed (loop {}); retrying from level 1 in {}{}",
                         r.node, loop, format_ms(pol.retry_delay.count()), loop == 3 ? " (further retries logged quietly)" : "");
        sleep_until(resume, cancel_);
    }
done:
    r.elapsed_ms = monotonic_ms() - start;
    logger_.logf(r.success ? STOCKADE_LOG_NOTICE : STOCKADE_LOG_ERR, "fence {} {}: {} [{}]", r.node,
                 r.success ? "success" : "failed", r.reason, format_ms(r.elapsed_ms));
}

std::vector<FenceReport> EscalationRunner::fence_many(const std::vector<std::string> &nodes,
                                                      std::optional<PowerAction> action) const
{
    // One escalation per node: "n1 N1 n1" is n1 once (names ignore case, as lookups do).
    std::vector<std::string> unique;
    std::vector<std::string> seen;
    for (const auto &n : nodes) {
        const NodeConfig *cfg = config_.find_node(n);
        std::string key = cfg ? text::ascii_lower(cfg->name) : text::ascii_lower(n);
        if (std::find(seen.begin(), seen.end(), key) != seen.end())
            continue;
        seen.push_back(key);
        unique.push_back(n);
    }
    std::vector<FenceReport> out(unique.size());
    parallel_for(unique.size(), config_.concurrency, [&](size_t i) { out[i] = fence(unique[i], action); });
    return out;
}

StatusReport EscalationRunner::status(const std::string &node_name) const
{
    StatusReport r;
    r.node = node_name;
    int64_t start = monotonic_ms();
    const NodeConfig *node = config_.find_node(node_name);
    if (!node) {
        r.reason = fmt::format("node '{}' is not configured", node_name);
        return r;
    }
    r.node = node->name;
    std::vector<std::string> failures;
    for (unsigned li = 1; li <= node->levels.size() && !cancelled(); ++li) {
        std::vector<std::unique_ptr<AgentSession>> sessions;
        std::vector<SequenceDevice> devs = level_devices(*node, li, sessions);
        // Status shares one timeout between opening the device and reading it.
        for (auto &d : devs)
            d.budget.total = d.budget.status;
        SequencePolicy policy;
        policy.cancel = cancel_;
        policy.on_step = [&](const SequenceDevice &dv, const SequenceStep &st) {
            const LevelDevice &e = node->levels[li - 1][st.device];
            const std::string &agent = config_.devices.at(e.device).agent;
            StepRecord s;
            s.level = li;
            s.index = unsigned(st.device + 1);
            s.device = dv.name;
            s.agent = agent;
            s.target = dv.target;
            s.op = "status";
            s.rc = st.result.rc;
        s.exec = st.result.exec;
            s.message = st.result.message;
            s.power_state = st.result.power_state;
            s.elapsed_ms = st.result.elapsed_ms;
            s.started_ms = monotonic_ms() - start - st.result.elapsed_ms;
            const OpResult &res = st.result;
            logger_.logf(res.ok() ? STOCKADE_LOG_INFO : STOCKADE_LOG_WARNING, "status {}: level {} device '{}' ({}): {}",
                         r.node, li, dv.name, agent,
                         res.ok() ? std::string(power_state_info(res.power_state).name)
                                  : fmt::format("failed ({}): {}", result_code_info(res.rc).name, res.message));
            if (!res.ok())
                failures.push_back(fmt::format("{}: {}", dv.name, res.message));
            r.steps.push_back(std::move(s));
        };
        SequenceOutcome o = run_sequence(devs, SequenceAction::ReadStatus, policy);
        for (auto &sess : sessions)
            if (sess)
                sess->close();
        if (o.success) {
            r.power_state = o.state;
            r.level = li;
            r.reason = fmt::format("read at level {}", li);
            break;
        }
    }
    if (!r.level)
        r.reason = failures.empty() ? "no device of this node can read its status"
                                    : "no level could read the status: " + join(failures, "; ");
    r.elapsed_ms = monotonic_ms() - start;
    return r;
}

std::vector<StatusReport> EscalationRunner::status_all() const
{
    std::vector<StatusReport> out(config_.nodes.size());
    parallel_for(out.size(), config_.concurrency, [&](size_t i) { out[i] = status(config_.nodes[i].name); });
    return out;
}

} // namespace stockade
