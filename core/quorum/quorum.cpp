// quorum.cpp -- quorum check, loss action, witness consultation and the runner gates; see
// quorum.hpp.  Probes run in parallel so a decision takes about one timeout, not one per member.
#include "stockade/quorum.hpp"

#include <sys/reboot.h>
#include <thread>
#include <unistd.h>

#include "net_probe.hpp"
#include "stockade/process.hpp"
#include "strings.hpp"

namespace stockade {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kLossCommandTimeout{120000};

// Runs fn(i) for every i at once and waits for all.
void run_all(size_t n, const std::function<void(size_t)> &fn)
{
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (size_t i = 0; i < n; ++i)
        threads.emplace_back([&fn, i] {
            try {
                fn(i);
            } catch (...) {
            }
        });
    for (auto &t : threads)
        t.join();
}

// What reboot(2) does for each drastic loss action.
struct SelfFence {
    LossAction action;
    int reboot_cmd;
    std::string_view what;
};
constexpr SelfFence kSelfFence[] = {
    {LossAction::Fastkill, RB_POWER_OFF, "power off"},
    {LossAction::Fastboot, RB_AUTOBOOT, "reboot"},
};

Result<std::string> run_argv(const std::vector<std::string> &argv, const std::vector<std::pair<std::string, std::string>> &env,
                             const char *what)
{
    SpawnSpec spec;
    spec.argv = argv;
    spec.env_set = env;
    auto r = run_command(spec, "", kLossCommandTimeout);
    if (!r)
        return make_error(r.error().rc, "{} {}: {}", what, argv[0], r.error().message);
    if (r->timed_out)
        return make_error(STOCKADE_RC_TIMEOUT, "{} {}: killed after {} s", what, argv[0], kLossCommandTimeout.count() / 1000);
    if (!r->success())
        return make_error(STOCKADE_RC_FAILED, "{} {}: {}", what, argv[0],
                          r->exit_code ? fmt::format("exit {}", *r->exit_code) : r->describe());
    return fmt::format("{} {} ran (exit 0)", what, argv[0]);
}

} // namespace

std::string QuorumVerdict::summary() const
{
    return fmt::format("{} of {} reachable (quorum needs more than {})", votes, total, total / 2);
}

QuorumVerdict check_quorum(const Config &config, const std::string &key, Logger &logger)
{
    QuorumVerdict v;
    const QuorumConfig &q = config.quorum;
    switch (q.mode) {
    case QuorumMode::None:
        v.quorate = true;
        v.details.push_back("quorum mode none: always quorate");
        return v;
    case QuorumMode::TcpRemote: {
        v.total = unsigned(q.hosts.size());
        std::vector<net::ReachResult> results(q.hosts.size());
        run_all(q.hosts.size(), [&](size_t i) {
            auto hp = net::split_host_port(q.hosts[i]);
            results[i] = hp ? net::tcp_connect(hp->first, hp->second, q.timeout)
                            : net::ReachResult{net::Reach::NoAnswer, hp.error().message};
        });
        for (size_t i = 0; i < results.size(); ++i) {
            // Only a completed connection counts: these hosts promise a listening service.
            bool ok = results[i].reach == net::Reach::Answered;
            v.votes += ok;
            v.details.push_back(fmt::format("quorum host {}: {}", q.hosts[i], results[i].detail));
        }
        break;
    }
    case QuorumMode::Majority: {
        auto peers = witness_peers(config);
        v.total = unsigned(peers.size());
        WitnessClient client(config, key, config.local_node);
        // Every address of every other member at once: a decision takes one timeout.
        struct Probe {
            size_t peer;
            std::string address;
            std::string error;
            bool alive = false;
        };
        std::vector<Probe> probes;
        for (size_t i = 0; i < peers.size(); ++i)
            if (!text::iequals(peers[i].name, config.local_node))
                for (const auto &a : peers[i].addresses)
                    probes.push_back({i, a, {}, false});
        run_all(probes.size(), [&](size_t i) {
            auto r = client.call(peers[probes[i].peer], probes[i].address, nlohmann::json{{"t", "alive"}}, q.timeout);
            probes[i].alive = r && (*r)["t"] == "alive";
            if (!probes[i].alive)
                probes[i].error = r ? "unexpected answer" : r.error().message;
        });
        for (size_t i = 0; i < peers.size(); ++i) {
            bool self = text::iequals(peers[i].name, config.local_node), alive = self;
            std::vector<std::string> errors;
            for (const auto &p : probes)
                if (p.peer == i) {
                    alive = alive || p.alive;
                    if (!p.alive)
                        errors.push_back(p.error);
                }
            if (peers[i].addresses.empty() && !self)
                errors.push_back(peers[i].name + ": no addresses configured");
            v.votes += alive;
            v.details.push_back(self ? fmt::format("{}: this node", peers[i].name)
                                     : alive ? fmt::format("{}: witness answered", peers[i].name)
                                             : join(errors, "; "));
        }
        break;
    }
    }
    v.quorate = v.votes * 2 > v.total;
    logger.logf(v.quorate ? STOCKADE_LOG_INFO : STOCKADE_LOG_WARNING, "quorum ({}): {} -- {}",
                quorum_mode_name(q.mode), v.summary(), join(v.details, "; "));
    return v;
}

Result<std::string> run_loss_action(const Config &config, const std::string &reason, Logger &logger)
{
    const QuorumConfig &q = config.quorum;
    std::string_view action = loss_action_name(q.loss_action);
    logger.logf(STOCKADE_LOG_CRIT, "quorum lost on {}: running loss action {} ({})", config.local_node, action, reason);
    std::vector<std::pair<std::string, std::string>> env{
        {"STOCKADE_LOSS_ACTION", std::string(action)}, {"STOCKADE_NODE", config.local_node}, {"STOCKADE_REASON", reason}};
    std::vector<std::string> done;
    if (!q.loss_hook.empty()) {
        auto r = run_argv(q.loss_hook, env, "loss_hook");
        if (!r)
            logger.logf(STOCKADE_LOG_ERR, "quorum: {}", r.error().message);
        done.push_back(r ? *r : r.error().message);
    }
    if (q.loss_action == LossAction::Osu) {
        if (q.osu_command.empty())
            return make_error(STOCKADE_RC_BAD_CONFIG, "loss action osu: no osu_command configured");
        auto r = run_argv(q.osu_command, env, "osu_command");
        if (!r) {
            logger.logf(STOCKADE_LOG_CRIT, "quorum: {}", r.error().message);
            return r.error();
        }
        done.push_back(*r);
        return join(done, "; ");
    }
    for (const auto &sf : kSelfFence) {
        if (sf.action != q.loss_action)
            continue;
        if (!q.allow_self_fence) {
            logger.logf(STOCKADE_LOG_CRIT, "quorum: loss action {} would {} this node now; not done because "
                                           "quorum.allow_self_fence is false", action, sf.what);
            done.push_back(fmt::format("{} not done (allow_self_fence is false)", sf.what));
            return join(done, "; ");
        }
        logger.logf(STOCKADE_LOG_CRIT, "quorum: loss action {}: {} this node NOW", action, sf.what);
        // As LifeKeeper: at once, no sync, no unmount; the point is to stop writing.
        if (::reboot(sf.reboot_cmd) != 0)
            return make_error(STOCKADE_RC_FAILED, "loss action {}: reboot(2) failed: {}", action, std::strerror(errno));
        return std::string("self-fenced"); // not reached
    }
    return make_error(STOCKADE_RC_INTERNAL, "unknown loss action");
}

WitnessVerdict consult_witnesses(const Config &config, const std::string &key, const std::string &victim, Logger &logger)
{
    WitnessVerdict v;
    std::vector<WitnessPeer> asked;
    for (auto &p : witness_peers(config))
        if (!text::iequals(p.name, config.local_node) && !text::iequals(p.name, victim))
            asked.push_back(p);
    WitnessClient client(config, key, config.local_node);
    // A witness probes for up to one timeout itself (in parallel), then answers.
    milliseconds t = config.witness.timeout * 2 + milliseconds(1000);
    std::vector<Result<NodeView>> views(asked.size(), Error{});
    run_all(asked.size(), [&](size_t i) { views[i] = client.observe(asked[i], victim, t); });
    for (size_t i = 0; i < asked.size(); ++i) {
        if (!views[i]) {
            v.unreachable.push_back(views[i].error().message);
            continue;
        }
        const NodeView &nv = *views[i];
        v.consulted.push_back(fmt::format("{}: {} ({})", asked[i].name, nv.alive ? "alive" : "dead", join(nv.evidence, "; ")));
        if (nv.alive && v.alive_by.empty())
            v.alive_by = fmt::format("{} sees {} alive: {}", asked[i].name, victim, join(nv.evidence, "; "));
    }
    v.proceed = v.alive_by.empty();
    logger.logf(v.proceed ? STOCKADE_LOG_INFO : STOCKADE_LOG_WARNING, "witness: {} of {} members answered about {}{}{}",
                v.consulted.size(), asked.size(), victim, v.consulted.empty() ? "" : ": ", join(v.consulted, "; "));
    if (!v.unreachable.empty())
        logger.logf(STOCKADE_LOG_INFO, "witness: no answer from: {}", join(v.unreachable, "; "));
    return v;
}

Result<std::string> ClusterGates::key()
{
    if (!key_)
        key_ = load_cluster_key(config_.witness.key_file);
    return *key_;
}

void ClusterGates::install(EscalationRunner &runner)
{
    if (config_.quorum.mode != QuorumMode::None)
        runner.add_gate("quorum", [this](const std::string &n, PowerAction a) { return quorum_gate(n, a); });
    if (config_.witness.mode != WitnessMode::None)
        runner.add_gate("witness", [this](const std::string &n, PowerAction a) { return witness_gate(n, a); });
}

Status ClusterGates::quorum_gate(const std::string &, PowerAction)
{
    std::lock_guard lock(mu_);
    if (quorum_result_)
        return *quorum_result_;
    std::string k;
    if (config_.quorum.mode == QuorumMode::Majority) {
        auto kr = key();
        if (!kr) // we do not know whether we have quorum: refuse, but this is no proof of loss
            return *(quorum_result_ = Status(make_error(kr.error().rc, "cannot check: {}", kr.error().message)));
        k = *kr;
    }
    QuorumVerdict v = check_quorum(config_, k, logger_);
    if (v.quorate) {
        quorum_result_ = Status{};
        return *quorum_result_;
    }
    std::string reason = fmt::format("no quorum: {} [{}]", v.summary(), join(v.details, "; "));
    auto done = run_loss_action(config_, reason, logger_);
    reason += fmt::format("; loss action {}: {}", loss_action_name(config_.quorum.loss_action),
                          done ? *done : "FAILED: " + done.error().message);
    quorum_result_ = Status(make_error(STOCKADE_RC_FAILED, "{}", reason));
    return *quorum_result_;
}

Status ClusterGates::witness_gate(const std::string &node, PowerAction action)
{
    if (action == PowerAction::On)
        return {}; // powering on is no verdict of death
    std::string k;
    {
        std::lock_guard lock(mu_);
        auto kr = key();
        if (!kr)
            return make_error(kr.error().rc, "cannot consult witnesses: {}", kr.error().message);
        k = *kr;
    }
    WitnessVerdict v = consult_witnesses(config_, k, node, logger_);
    if (!v.proceed)
        return make_error(STOCKADE_RC_FAILED, "witness says alive: {}", v.alive_by);
    return {};
}

} // namespace stockade
