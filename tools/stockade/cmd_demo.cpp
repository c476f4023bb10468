// cmd_demo.cpp -- `stockade demo`: fence simulated nodes and narrate each step.
//
// The demo powers on the nodes of a sim-agent configuration (examples/demo.json, compiled in, or
// --config), then fences each node in turn through the real escalation runner and checks every
// claim against the process table: a node reported fenced must have lost its process, a failed
// fence must have left it alive.  Exit 0 when every claim matched reality.
#include <memory>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/process.hpp"
#include "stockade/runner.hpp"
#include "stockade/session.hpp"

namespace stockade::cli {

extern const std::string_view kDemoConfig;

namespace {

// pid of a simulated node from the sim agent's state file ("pid starttime"), 0 if none.
long node_pid(const std::string &state_dir, const std::string &node)
{
    std::ifstream f(state_dir + "/" + node + ".node");
    long pid = 0;
    f >> pid;
    return pid;
}

bool alive(long pid)
{
    if (pid <= 0)
        return false;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s))
        return false;
    auto rp = s.rfind(')');
    return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] != 'Z';
}

std::string level_text(const Config &c, const NodeConfig &n)
{
    std::string out;
    for (size_t i = 0; i < n.levels.size(); ++i) {
        std::vector<std::string> names;
        for (const auto &e : n.levels[i]) {
            const auto &d = c.devices.at(e.device);
            names.push_back(fmt::format("{} ({})", e.device, d.agent));
        }
        out += fmt::format("{}  level {}: {}", i ? "\n" : "", i + 1, fmt::join(names, " + "));
    }
    return out;
}

int run_demo(const GlobalOptions &g, const std::optional<std::string> &state_opt)
{
    std::string text(kDemoConfig), source = "embedded demo config (examples/demo.json)";
    if (g.config_given) {
        std::ifstream f(g.config_path);
        if (!f)
            return fail_usage(fmt::format("demo: cannot read {}", g.config_path));
        std::stringstream ss;
        ss << f.rdbuf();
        text = ss.str();
        source = g.config_path;
    }
    auto parsed = parse_config(text, source);
    if (!parsed)
        return fail_usage(parsed.error().message);
    Config config = std::move(parsed.value());

    AgentRegistry registry;
    if (!registry.find("sim")) // never installed: it "fences" by killing local processes
        return fail_usage("demo: the sim agent is not here: it is built only in a source tree, never "
                          "installed (run scripts/demo.sh from the stockade sources)");

    bool own_dir = !state_opt;
    std::string state_dir;
    if (state_opt) {
        state_dir = std::filesystem::absolute(*state_opt).string();
    } else {
        char tmpl[] = "/tmp/stockade-demo-XXXXXX";
        if (!::mkdtemp(tmpl))
            return fail_usage("demo: cannot create a temporary folder");
        state_dir = tmpl;
    }
    for (auto &[name, d] : config.devices) {
        if (d.agent != "sim")
            return fail_usage(fmt::format("demo: device '{}' uses agent '{}'; the demo only drives sim devices", name,
                                          d.agent));
        for (auto &[k, v] : d.params)
            if (k == "state_dir")
                v = state_dir;
    }
    if (auto s = check_config_agents(config, registry); !s)
        return fail_usage(s.error().message);

    Logger logger;
    logger.set_level(g.verbosity ? STOCKADE_LOG_DEBUG : STOCKADE_LOG_INFO);
    logger.add_syslog_sink("stockade-demo");
    logger.add_sink([](int, std::string_view line) {
        if (line.rfind("fence ", 0) != 0 && line.rfind("status ", 0) != 0)
            fmt::print("        | {}\n", line); // what the agents themselves report
    });
    const std::atomic<bool> *cancel = install_cancel_signals();

    fmt::print("stockade demo: fencing simulated nodes\n");
    fmt::print("Each simulated node is a local process; the sim agent 'powers it off' by killing that\n"
               "process and confirms it is gone. Configuration: {}\nState folder: {}\n"
               "Escalation policy: {}, {} s between passes.\n\n",
               source, state_dir,
               config.escalation.max_loops ? fmt::format("at most {} passes over the levels", config.escalation.max_loops)
                                           : std::string("retry until success"),
               double(config.escalation.retry_delay.count()) / 1000.0);

    // 1. Power on every node with a bench supply outside the configuration (a sim switch with
    // no hostlist), so even a node whose only configured device is broken starts up.
    fmt::print("1. Powering on the simulated cluster\n");
    for (const auto &n : config.nodes) {
        auto r = invoke_agent(registry, "sim", {{"state_dir", state_dir}}, STOCKADE_ACTION_ON, n.name,
                              std::chrono::seconds(10), Logger::null(), cancel);
        fmt::print("   {} is {} (pid {})\n", n.name, r.ok() ? "up" : "NOT up: " + r.message, node_pid(state_dir, n.name));
    }

    EscalationRunner runner(config, registry, logger);
    runner.set_cancel(cancel);
    runner.set_step_hook([](const FenceReport &, const StepRecord &s) {
        std::string outcome;
        if (s.rc == STOCKADE_RC_OK) {
            outcome = "ok";
            if (s.verified & STOCKADE_VERIFIED_OFF)
                outcome += ", confirmed off";
            if (s.verified & STOCKADE_VERIFIED_ON)
                outcome += ", confirmed on";
            if (s.op == "verify")
                outcome += fmt::format(", reads {}", power_state_info(s.power_state).name);
        } else {
            outcome = fmt::format("FAILED ({}): {}", result_code_info(s.rc).name, s.message);
        }
        fmt::print("     pass {} level {} device {} {:<6} -> {}  [{} ms]\n", s.loop, s.level, s.device, s.op, outcome,
                   s.elapsed_ms);
        std::fflush(stdout);
    });

    int step = 2, mismatches = 0;
    std::vector<std::string> summary;
    for (const auto &n : config.nodes) {
        long before = node_pid(state_dir, n.name);
        fmt::print("\n{}. Node {} stopped answering: fence it ({}). Its escalation:\n{}\n", step++, n.name,
                   power_action_info(n.action).name, level_text(config, n));
        std::fflush(stdout);
        FenceReport r = runner.fence(n.name);
        long after = node_pid(state_dir, n.name);
        bool old_gone = !alive(before);
        std::string check;
        bool truthful;
        if (r.success) {
            truthful = old_gone;
            check = fmt::format("old process {} {}", before, old_gone ? "is gone" : "IS STILL ALIVE");
            if (n.action == PowerAction::Reboot)
                check += alive(after) && after != before ? fmt::format("; node is back as pid {}", after)
                                                         : std::string("; node did not come back");
            else
                check += "; node stays off";
        } else {
            truthful = true; // a failure claims nothing; report what is left
            check = fmt::format("process {} is {}", before, old_gone ? "gone anyway" : "still alive, as reported");
        }
        mismatches += truthful ? 0 : 1;
        fmt::print("   => {} {}: {}\n   check against the process table: {}\n", n.name,
                   r.success ? "FENCED" : "NOT FENCED", r.reason, check);
        summary.push_back(fmt::format("   {:<8} {:<7} {:<11} {}", n.name, power_action_info(n.action).name,
                                      r.success ? fmt::format("level {}", r.level) : std::string("failed"),
                                      truthful ? "claim verified" : "CLAIM WRONG"));
        if (cancel->load())
            break;
    }

    fmt::print("\n{}. Cleaning up: powering off what is left\n", step);
    for (const auto &n : config.nodes) {
        long pid = node_pid(state_dir, n.name);
        if (alive(pid))
            ::kill(pid_t(pid), SIGKILL);
    }
    if (own_dir) {
        std::error_code ec;
        std::filesystem::remove_all(state_dir, ec);
    }
    fmt::print("\nSummary\n   {:<8} {:<7} {:<11} {}\n", "node", "action", "outcome", "truth");
    for (const auto &s : summary)
        fmt::print("{}\n", s);
    fmt::print("\n{}\n", mismatches ? "demo FAILED: a claim did not match the process table"
                                    : "demo finished: every outcome matched the process table");
    return mismatches ? 1 : 0;
}

CommandBody setup_demo(CLI::App &app, const GlobalOptions &g)
{
    auto state_dir = std::make_shared<std::optional<std::string>>();
    app.add_option("--state-dir", *state_dir, "keep the simulated nodes' state here (default: a temporary folder)");
    return [&g, state_dir] { return run_demo(g, *state_dir); };
}

} // namespace

STOCKADE_COMMAND("demo", "fence simulated nodes (examples/demo.json or --config) and narrate each step", setup_demo);

} // namespace stockade::cli
