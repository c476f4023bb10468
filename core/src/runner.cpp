// runner.cpp -- the escalation runner (see runner.hpp for the rules it keeps).
#include "stockade/runner.hpp"
#include "stockade/time_budget.hpp"

#include <algorithm>
#include <thread>

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
        what = fmt::format("failed ({}): {}", result_code_info(s.rc).name, s.message);
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

struct EscalationRunner::LevelRun {
    struct Dev {
        const LevelDevice *entry;
        const DeviceConfig *device;
        const AgentInfo *agent = nullptr;
        ParamList params; // resolved at open; what the agent's time_needed reads
        std::string target;
        std::unique_ptr<AgentSession> session;
        unsigned index;
    };
    std::vector<Dev> devs;
};

bool EscalationRunner::run_level(FenceReport &r, const NodeConfig &node, unsigned loop, unsigned level_no,
                                 int64_t start, int64_t overall_deadline) const
{
    const auto &level = node.levels[level_no - 1];
    LevelRun run;
    for (size_t i = 0; i < level.size(); ++i) {
        const DeviceConfig &d = config_.devices.at(level[i].device);
        run.devs.push_back({&level[i], &d, nullptr, {}, level[i].target.empty() ? node.name : level[i].target,
                            nullptr, unsigned(i + 1)});
    }

    auto step = [&](LevelRun::Dev &dv, std::string op, const OpResult &res) {
        StepRecord s;
        s.loop = loop;
        s.level = level_no;
        s.index = dv.index;
        s.device = dv.device->name;
        s.agent = dv.device->agent;
        s.target = dv.target;
        s.op = std::move(op);
        s.rc = res.rc;
        s.message = res.message;
        s.verified = res.verified;
        s.power_state = res.power_state;
        s.elapsed_ms = res.elapsed_ms;
        s.started_ms = monotonic_ms() - start - res.elapsed_ms;
        emit(r, std::move(s));
    };
    // The time an operation on this device may take: its own timeout (for a power action without
    // a configured timeout, what the agent states it needs), cut by the overall one.
    auto op_timeout = [&](const LevelRun::Dev &dv, uint32_t power_action = 0) -> Millis {
        int64_t t = dv.device->timeout.count();
        if (power_action && !dv.device->timeout_set && dv.agent)
            if (auto cap = operation_cap(*dv.agent, dv.params, power_action, dv.device->timeout))
                t = cap->count();
        if (overall_deadline)
            t = std::min<int64_t>(t, overall_deadline - monotonic_ms());
        return Millis(std::max<int64_t>(t, 0));
    };
    auto out_of_time = [&](LevelRun::Dev &dv, const char *op) {
        if (op_timeout(dv).count() > 0 && !cancelled())
            return false;
        OpResult res;
        res.rc = cancelled() ? STOCKADE_RC_CANCELLED : STOCKADE_RC_TIMEOUT;
        res.message = cancelled() ? "cancelled" : "overall escalation timeout reached";
        step(dv, op, res);
        return true;
    };
    auto open = [&](LevelRun::Dev &dv) -> bool {
        if (dv.session)
            return true;
        if (out_of_time(dv, "open"))
            return false;
        OpResult res;
        auto agent = registry_.find(dv.device->agent);
        if (!agent) {
            res.rc = agent.error().rc;
            res.message = agent.error().message;
            step(dv, "open", res);
            return false;
        }
        dv.agent = *agent;
        auto params = resolve_params(*dv.agent, merged_params(*dv.device, *dv.entry), UnknownParams::Reject);
        if (!params) {
            res.rc = params.error().rc;
            res.message = params.error().message;
            step(dv, "open", res);
            return false;
        }
        SessionOptions o;
        o.isolate = dv.device->isolate;
        o.logger = &logger_;
        o.label = dv.device->name;
        o.cancel = cancel_;
        o.registry = &registry_;
        dv.params = *params;
        dv.session = make_session(*dv.agent, o);
        res = dv.session->open(*params, op_timeout(dv));
        if (!res.ok()) {
            step(dv, "open", res);
            dv.session.reset();
            return false;
        }
        return true;
    };
    auto act = [&](LevelRun::Dev &dv, PowerAction a) -> OpResult {
        const auto &info = power_action_info(a);
        if (out_of_time(dv, std::string(info.name).c_str())) {
            OpResult res;
            res.rc = STOCKADE_RC_TIMEOUT;
            return res;
        }
        OpResult res = dv.session->power(a, dv.target, op_timeout(dv, uint32_t(a)));
        step(dv, std::string(info.name), res);
        return res;
    };
    // Off counts only when confirmed: the agent's own verification, else a status read.
    auto confirm = [&](LevelRun::Dev &dv, const OpResult &res, uint32_t want) -> bool {
        uint32_t bit = want == STOCKADE_POWER_OFF ? STOCKADE_VERIFIED_OFF : STOCKADE_VERIFIED_ON;
        if (res.verified & bit)
            return true;
        if (!dv.agent->can(STOCKADE_CAP_STATUS)) {
            OpResult v;
            v.rc = STOCKADE_RC_FAILED;
            v.message = fmt::format("agent '{}' neither confirmed the target {} nor can read its status",
                                    dv.agent->name, power_state_info(want).name);
            step(dv, "verify", v);
            return false;
        }
        if (out_of_time(dv, "verify"))
            return false;
        OpResult v = dv.session->status(dv.target, op_timeout(dv));
        if (v.ok() && v.power_state != want) {
            v.rc = STOCKADE_RC_FAILED;
            v.message = fmt::format("status reads {} after {}", power_state_info(v.power_state).name,
                                    want == STOCKADE_POWER_OFF ? "off" : "on");
        }
        step(dv, "verify", v);
        return v.ok();
    };

    // The action on every device of the level, in order; the first failure loses the level.
    // want_state: the state each device must confirm (none for a diagnostic interrupt).
    auto every_device = [&](PowerAction a, std::optional<uint32_t> want_state) -> bool {
        for (auto &dv : run.devs) {
            if (!open(dv))
                return false;
            OpResult res = act(dv, a);
            if (!res.ok() || (want_state && !confirm(dv, res, *want_state)))
                return false;
        }
        return true;
    };

    switch (r.action) {
    case PowerAction::Off:
        return every_device(PowerAction::Off, STOCKADE_POWER_OFF);
    case PowerAction::On:
        return every_device(PowerAction::On, STOCKADE_POWER_ON);
    case PowerAction::Diag:
        return every_device(PowerAction::Diag, std::nullopt);
    case PowerAction::Reboot:
        break;
    }

    // Reboot.  One device that can reboot itself does it in one call; it must confirm the off.
    if (run.devs.size() == 1) {
        auto &dv = run.devs[0];
        if (!open(dv))
            return false;
        if (dv.agent->can(STOCKADE_CAP_REBOOT)) {
            OpResult res = act(dv, PowerAction::Reboot);
            if (!res.ok())
                return false;
            if (!(res.verified & STOCKADE_VERIFIED_OFF)) {
                OpResult v;
                v.rc = STOCKADE_RC_FAILED;
                v.message = "the agent did not confirm the target went off during the reboot";
                step(dv, "verify", v);
                return false;
            }
            if (!(res.verified & STOCKADE_VERIFIED_ON)) {
                r.power_on_failed = true;
                logger_.logf(STOCKADE_LOG_WARNING, "fence {}: off was confirmed but power-on was not", r.node);
            }
            return true;
        }
    }
    // Several devices (or one without reboot): off on every device, then on on every device.
    if (!every_device(PowerAction::Off, STOCKADE_POWER_OFF))
        return false;
    for (auto &dv : run.devs) {
        if (!dv.agent->can(STOCKADE_CAP_ON)) {
            logger_.logf(STOCKADE_LOG_WARNING, "fence {}: device '{}' cannot power on; the node stays off", r.node,
                         dv.device->name);
            r.power_on_failed = true;
            continue;
        }
        OpResult res = act(dv, PowerAction::On);
        if (!res.ok() || !confirm(dv, res, STOCKADE_POWER_ON))
            r.power_on_failed = true; // fenced all the same: every off was confirmed
    }
    return true;
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
    for (const auto &[gate_name, gate] : gates_) {
        if (auto g = gate(r.node, r.action); !g) {
            r.refused = true;
            r.reason = fmt::format("refused by {}: {}", gate_name, g.error().message);
            r.elapsed_ms = monotonic_ms() - start;
            logger_.logf(STOCKADE_LOG_ERR, "fence {} refused: {}", r.node, r.reason);
            return r;
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
    return r;
}

std::vector<FenceReport> EscalationRunner::fence_many(const std::vector<std::string> &nodes,
                                                      std::optional<PowerAction> action) const
{
    std::vector<FenceReport> out(nodes.size());
    parallel_for(nodes.size(), config_.concurrency, [&](size_t i) { out[i] = fence(nodes[i], action); });
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
        bool all_answered = true, any_on = false, asked = false;
        for (size_t di = 0; di < node->levels[li - 1].size(); ++di) {
            const LevelDevice &e = node->levels[li - 1][di];
            const DeviceConfig &d = config_.devices.at(e.device);
            StepRecord s;
            s.level = li;
            s.index = unsigned(di + 1);
            s.device = d.name;
            s.agent = d.agent;
            s.target = e.target.empty() ? node->name : e.target;
            s.op = "status";
            s.started_ms = monotonic_ms() - start;
            auto agent = registry_.find(d.agent);
            if (agent && !(*agent)->can(STOCKADE_CAP_STATUS))
                continue; // this device cannot tell; others in the level may
            asked = true;
            OpResult res;
            if (!agent) {
                res.rc = agent.error().rc;
                res.message = agent.error().message;
            } else if (auto params = resolve_params(**agent, merged_params(d, e), UnknownParams::Reject); !params) {
                res.rc = params.error().rc;
                res.message = params.error().message;
            } else {
                SessionOptions o;
                o.isolate = d.isolate;
                o.logger = &logger_;
                o.label = d.name;
                o.cancel = cancel_;
                o.registry = &registry_;
                auto session = make_session(**agent, o);
                int64_t t0 = monotonic_ms();
                res = session->open(*params, d.timeout);
                if (res.ok())
                    res = session->status(s.target, Millis(std::max<int64_t>(1, d.timeout.count() - (monotonic_ms() - t0))));
                session->close();
                res.elapsed_ms = monotonic_ms() - t0;
            }
            s.rc = res.rc;
            s.message = res.message;
            s.power_state = res.power_state;
            s.elapsed_ms = res.elapsed_ms;
            logger_.logf(res.ok() ? STOCKADE_LOG_INFO : STOCKADE_LOG_WARNING, "status {}: level {} device '{}' ({}): {}",
                         r.node, li, d.name, d.agent,
                         res.ok() ? std::string(power_state_info(res.power_state).name)
                                  : fmt::format("failed ({}): {}", result_code_info(res.rc).name, res.message));
            if (!res.ok() || res.power_state == STOCKADE_POWER_UNKNOWN) {
                all_answered = false;
                failures.push_back(fmt::format("{}: {}", d.name, res.ok() ? "state unknown" : res.message));
            } else if (res.power_state == STOCKADE_POWER_ON) {
                any_on = true;
            }
            r.steps.push_back(std::move(s));
            if (!all_answered)
                break;
        }
        if (asked && all_answered) {
            r.power_state = any_on ? STOCKADE_POWER_ON : STOCKADE_POWER_OFF;
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
