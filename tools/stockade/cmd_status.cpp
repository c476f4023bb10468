// cmd_status.cpp -- `stockade status [NODE...]`: read power state through the fencing devices.
//
// With no node, every configured node is queried, at most `concurrency` at once.  Exit codes for
// one node follow fence-agents: 0 on, 2 off, 1 unknown -- and 1 for every error too, because 2
// must only ever mean "off".  For several nodes: 0 when every state is known, else 1.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/runner.hpp"

namespace stockade::cli {

namespace {

struct StatusArgs {
    std::vector<std::string> nodes;
    std::optional<std::string> cluster_conf;
};

int run_status(const GlobalOptions &g, StatusArgs &sa)
{
    const bool json = g.json;
    auto &cluster_conf = sa.cluster_conf;
    const std::vector<std::string> &args = sa.nodes;
    Logger &log = setup_logger(g);
    AgentRegistry registry;
    auto config = cluster_conf ? load_checked_cluster_conf(*cluster_conf, registry) : load_checked_config(g, registry);
    if (!config)
        return 1;
    for (const auto &n : args)
        if (!config->find_node(n))
            return fail_usage(fmt::format("status: node '{}' is not in {}", n, config->source), 1);
    EscalationRunner runner(*config, registry, log);
    runner.set_cancel(install_cancel_signals());
    runner.set_one_node_process(args.size() == 1 || (args.empty() && config->nodes.size() == 1));
    std::vector<StatusReport> reports;
    if (args.empty()) {
        reports = runner.status_all();
    } else {
        reports.resize(args.size());
        parallel_for(args.size(), config->concurrency, [&](size_t i) { reports[i] = runner.status(args[i]); });
    }
    nlohmann::json out = nlohmann::json::array();
    bool all_known = true;
    for (const auto &r : reports) {
        all_known = all_known && r.power_state != STOCKADE_POWER_UNKNOWN;
        if (json)
            out.push_back(r.to_json());
        else
            fmt::print("{}: {} ({})\n", r.node, power_state_info(r.power_state).name, r.reason);
    }
    if (json)
        fmt::print("{}\n", out.dump(2));
    if (args.size() == 1)
        return power_state_info(reports[0].power_state).status_exit;
    return all_known ? 0 : 1;
}

CommandBody setup_status(CLI::App &app, const GlobalOptions &g)
{
    auto sa = std::make_shared<StatusArgs>();
    app.add_option("NODE", sa->nodes, "nodes to query (default: every configured node)");
    app.add_option("--cluster-conf", sa->cluster_conf, "read devices and levels from a cman cluster.conf");
    app.footer("One node: exit 0 on, 2 off, 1 unknown or any error.  Several: 0 when every state is known.  "
               "--json prints one record per node, always as an array.");
    return [&g, sa] { return run_status(g, *sa); };
}

} // namespace

STOCKADE_COMMAND("status", "power state of nodes via their devices (one node: exit 0 on, 2 off, 1 unknown)",
                 setup_status, 1);

} // namespace stockade::cli
