// cmd_fence.cpp -- `stockade fence NODE...`: run the escalation for one or more nodes.
//
// Steps go to stderr and syslog as they happen; the outcome is one line per node on stdout (or a
// JSON record with --json).  Exit 0 when every node was fenced, 1 when any failed, 2 for bad
// usage, a bad configuration, or a node that is not configured (fence_node's "undefined"), 3 when
// a quorum/witness gate refused the fence (no device was touched) and none failed otherwise.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/node_lock.hpp"
#include "stockade/quorum.hpp"
#include "stockade/runner.hpp"

namespace stockade::cli {

namespace {

struct FenceArgs {
    std::vector<std::string> nodes;
    std::optional<std::string> action;
    std::optional<std::string> cluster_conf; // a cman cluster.conf instead of --config
};

int run_fence(const GlobalOptions &g, FenceArgs &fa)
{
    std::optional<PowerAction> action;
    if (fa.action) {
        action = parse_power_action(*fa.action);
        if (!action || *action == PowerAction::Diag)
            return fail_usage(fmt::format("--action: '{}' is not one of reboot, off, on", *fa.action));
    }
    const bool json = g.json;
    auto &cluster_conf = fa.cluster_conf;
    const std::vector<std::string> &args = fa.nodes;

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
    runner.set_one_node_process(args.size() == 1);
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
        fmt::print("{}\n", out.dump(2));
    return all_ok ? 0 : any_failed ? 1 : 3;
}

CommandBody setup_fence(CLI::App &app, const GlobalOptions &g)
{
    auto fa = std::make_shared<FenceArgs>();
    app.add_option("NODE", fa->nodes, "nodes to fence, each through its own levels")->required();
    app.add_option("-o,--action", fa->action, "reboot (default), off or on");
    app.add_option("--cluster-conf", fa->cluster_conf, "read devices and levels from a cman cluster.conf");
    app.footer("Exit 0 fenced, 1 failed, 2 usage/config or an unknown node, 3 refused by quorum/witness.  "
               "--json prints one record per node, always as an array.");
    return [&g, fa] { return run_fence(g, *fa); };
}

} // namespace

STOCKADE_COMMAND("fence",
                 "fence nodes through their escalation levels (exit 0 fenced, 1 failed, 2 usage/config, "
                 "3 refused by quorum/witness)",
                 setup_fence);

} // namespace stockade::cli
