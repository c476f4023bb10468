// cmd_fence.cpp -- `stockade fence NODE...`: run the escalation for one or more nodes.
//
// Steps go to stderr and syslog as they happen; the outcome is one line per node on stdout (or a
// JSON record with --json).  Exit 0 when every node was fenced, 1 when any failed, 2 for bad
// usage, a bad configuration, or a node that is not configured (fence_node's "undefined"), 3 when
// a quorum/witness gate refused the fence (no device was touched) and none failed otherwise.
#include <cstdio>

#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/node_lock.hpp"
#include "stockade/quorum.hpp"
#include "stockade/runner.hpp"

namespace stockade::cli {

namespace {

int run_fence(const GlobalOptions &g, std::vector<std::string> args)
{
    std::optional<PowerAction> action;
    if (auto a = take_option(args, "--action"); a) {
        action = parse_power_action(*a);
        if (!action || *action == PowerAction::Diag)
            return fail_usage(fmt::format("--action: '{}' is not one of reboot, off, on", *a));
    } else if (auto o = take_option(args, "-o"); o) {
        action = parse_power_action(*o);
        if (!action || *action == PowerAction::Diag)
            return fail_usage(fmt::format("-o: '{}' is not one of reboot, off, on", *o));
    }
    bool json = g.json || take_flag(args, "--json");
    auto cluster_conf = take_option(args, "--cluster-conf"); // a cman cluster.conf instead of --config
    for (const auto &a : args)
        if (!a.empty() && a[0] == '-')
            return fail_usage(fmt::format("fence: unknown option '{}'", a));
    if (args.empty())
        return fail_usage("fence: no node name given (usage: stockade fence NODE [--action reboot|off|on])");

    Logger &log = setup_logger(g);
    AgentRegistry registry;
    auto config = cluster_conf ? load_checked_cluster_conf(*cluster_conf, registry) : load_checked_config(g, registry);
    if (!config)
        return 2;
    for (const auto &n : args)
        if (!config->find_node(n)) {
            fmt::print(stderr, "stockade: fence {} undefined: node '{}' is not in {}\n", n, n, config->source);
            return 2;
        } else if (config->find_node(n)->levels.empty()) {
            fmt::print(stderr, "stockade: fence {} undefined: node '{}' has no fence method in {}\n", n, n,
                       config->source);
            return 2;
        }
    EscalationRunner runner(*config, registry, log);
    runner.set_cancel(install_cancel_signals());
    ClusterGates gates(*config, log); // quorum and witness (config "quorum", "witness")
    gates.install(runner);
    runner.set_node_locks(default_lock_dir()); // one escalation per node across processes
    auto reports = runner.fence_many(args, action);

    bool all_ok = true, any_failed = false;
    nlohmann::json out = nlohmann::json::array();
    for (const auto &r : reports) {
        all_ok = all_ok && r.success;
        any_failed = any_failed || (!r.success && !r.refused);
        if (json)
            out.push_back(r.to_json());
        else
            fmt::print("fence {} {}: {} ({:.1f} s)\n", r.node,
                       r.success ? "success" : r.refused ? "refused" : "failed", r.reason, double(r.elapsed_ms) / 1000.0);
    }
    if (json)
        fmt::print("{}\n", (reports.size() == 1 ? out[0] : out).dump(2));
    return all_ok ? 0 : any_failed ? 1 : 3;
}

} // namespace

STOCKADE_COMMAND("fence", "fence NODE... [--action reboot|off|on] [--json] [--cluster-conf FILE]",
                 "fence nodes through their escalation levels (exit 0 fenced, 1 failed, 2 usage/config, "
                 "3 refused by quorum/witness)",
                 run_fence);

} // namespace stockade::cli
