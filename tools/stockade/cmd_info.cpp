// cmd_info.cpp -- read-only subcommands: list, agents, metadata, validate.
#include <memory>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/runner.hpp"
#include "stockade/session.hpp"

namespace stockade::cli {

namespace {

std::string caps_text(uint32_t caps)
{
    std::string out;
    for (const auto &c : kCapabilities)
        if (caps & c.bit)
            out += (out.empty() ? "" : ",") + std::string(c.name);
    return out;
}

int run_list(const GlobalOptions &g, bool targets)
{
    const bool json = g.json;
    AgentRegistry registry;
    auto config = load_checked_config(g, registry);
    if (!config)
        return 2;
    // --json: one record per node ({"node": ...}, as fence and status), then with --targets one
    // per device that has a list ({"device": ...}); always an array.
    nlohmann::json out = nlohmann::json::array();
    for (const auto &n : config->nodes) {
        nlohmann::json levels = nlohmann::json::array();
        std::string line = n.name + ":";
        for (size_t i = 0; i < n.levels.size(); ++i) {
            nlohmann::json lv = nlohmann::json::array();
            std::string names;
            for (const auto &e : n.levels[i]) {
                // As the config spells a level entry: the device's name, or device + target.
                if (e.target.empty())
                    lv.push_back(e.device);
                else
                    lv.push_back({{"device", e.device}, {"target", e.target}});
                names += (names.empty() ? "" : "+") + e.device + (e.target.empty() ? "" : "[" + e.target + "]");
            }
            levels.push_back(lv);
            line += fmt::format(" level {}={}", i + 1, names);
        }
        out.push_back({{"node", n.name}, {"action", power_action_info(n.action).name}, {"levels", levels}});
        if (!json)
            fmt::print("{}\n", line);
    }
    int rc = 0;
    if (targets) {
        Logger &log = setup_logger(g);
        for (const auto &[name, d] : config->devices) {
            const AgentInfo *a = *registry.find(d.agent);
            if (!a->can(STOCKADE_CAP_LIST))
                continue;
            auto params = resolve_params(*a, d.params, UnknownParams::Reject);
            SessionOptions o;
            o.isolate = d.isolate;
            o.logger = &log;
            o.label = name;
            o.registry = &registry;
            auto s = make_session(*a, o);
            OpResult r = s->open(*params, d.timeout);
            if (r.ok())
                r = s->list(d.timeout);
            s->close();
            nlohmann::json t = nlohmann::json::array();
            if (r.rc == STOCKADE_RC_UNSUPPORTED) {
                // A device without a list (fence_ipmilan's "NOTICE: List option is not working"):
                // not a failure, and never a target.
                fmt::print(stderr, "stockade: device '{}' has no target list: {}\n", name, r.message);
                continue;
            }
            if (!r.ok()) {
                rc = 1;
                fmt::print(stderr, "stockade: list on device '{}' failed ({}): {}\n", name, result_code_info(r.rc).name,
                           r.message);
                continue;
            }
            for (const auto &x : r.targets) {
                t.push_back({{"name", x.name}, {"alias", x.alias}});
                if (!json)
                    fmt::print("{}: {}{}{}\n", name, x.name, x.alias.empty() ? "" : ",", x.alias);
            }
            out.push_back({{"device", name}, {"targets", t}});
        }
    }
    if (json)
        fmt::print("{}\n", out.dump(2));
    return rc;
}

int run_agents(const GlobalOptions &g)
{
    const bool json = g.json;
    AgentRegistry registry;
    nlohmann::json out = nlohmann::json::array();
    int rc = 0;
    for (auto &[name, r] : registry.scan()) {
        if (!r) {
            rc = 1;
            fmt::print(stderr, "stockade: {}\n", r.error().message);
            continue;
        }
        const AgentInfo &a = **r;
        if (json)
            out.push_back({{"name", a.name}, {"summary", a.summary}, {"version", a.version}, {"path", a.path},
                           {"capabilities", caps_text(a.capabilities)}});
        else
            fmt::print("{:<16} {}\n", a.name, a.summary);
    }
    if (json)
        fmt::print("{}\n", out.dump(2));
    return rc;
}

nlohmann::json metadata_json(const AgentInfo &a)
{
    nlohmann::json params = nlohmann::json::array();
    for (const auto &p : a.params) {
        nlohmann::json j{{"name", p.name},
                         {"type", param_type_info(p.type)->name},
                         {"required", p.required()},
                         {"secret", p.secret()},
                         {"host_supplied", p.host_supplied()},
                         {"aliases", p.aliases},
                         {"description", p.description}};
        if (p.default_value)
            j["default"] = *p.default_value;
        if (!p.choices.empty())
            j["choices"] = p.choices;
        params.push_back(j);
    }
    nlohmann::json actions = nlohmann::json::array();
    for (const auto &c : kCapabilities)
        if (a.capabilities & c.bit)
            actions.push_back(c.name);
    return {{"name", a.name},
            {"version", a.version},
            {"summary", a.summary},
            {"description", a.description},
            {"abi", fmt::format("{}.{}", a.abi_major, a.abi_minor)},
            {"actions", actions},
            {"parameters", params}};
}

void print_metadata_text(const AgentInfo &a)
{
    fmt::print("{} {} -- {}\n", a.name, a.version, a.summary);
    if (!a.description.empty())
        fmt::print("{}\n", a.description);
    fmt::print("actions: {}\nparameters:\n", caps_text(a.capabilities));
    for (const auto &p : a.params) {
        std::string flags;
        if (p.required())
            flags += " required";
        if (p.secret())
            flags += " secret";
        if (p.host_supplied())
            flags += " from-target";
        std::string type(param_type_info(p.type)->name);
        if (!p.choices.empty())
            type += " " + fmt::format("{}", fmt::join(p.choices, "|"));
        fmt::print("  {:<22} {:<10}{}{}\n", p.name, type, flags,
                   p.default_value ? fmt::format(" (default {})", *p.default_value) : std::string());
        fmt::print("      {}\n", p.description);
        if (!p.aliases.empty())
            fmt::print("      also: {}\n", fmt::join(p.aliases, ", "));
    }
}

// Every agent named is looked up before anything is printed: an unknown one prints nothing.
int run_metadata(const GlobalOptions &g, const std::vector<std::string> &names)
{
    AgentRegistry registry;
    std::vector<const AgentInfo *> agents;
    for (const auto &n : names) {
        auto r = registry.find(n);
        if (!r)
            return fail_usage(r.error().message);
        agents.push_back(*r);
    }
    if (g.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const AgentInfo *a : agents)
            out.push_back(metadata_json(*a));
        fmt::print("{}\n", out.dump(2));
        return 0;
    }
    for (size_t i = 0; i < agents.size(); ++i) {
        if (i)
            fmt::print("\n");
        print_metadata_text(*agents[i]);
    }
    return 0;
}

int run_validate(const GlobalOptions &g, const std::string &file)
{
    AgentRegistry registry;
    std::string path = file.empty() ? g.config_path : file;
    auto config = load_checked_config(g, registry, path, /*every_error=*/true);
    if (!config)
        return 2;
    size_t levels = 0;
    for (const auto &n : config->nodes)
        levels += n.levels.size();
    fmt::print("{}: ok ({} device{}, {} node{}, {} level{})\n", path, config->devices.size(),
               config->devices.size() == 1 ? "" : "s", config->nodes.size(), config->nodes.size() == 1 ? "" : "s",
               levels, levels == 1 ? "" : "s");
    return 0;
}

CommandBody setup_list(CLI::App &app, const GlobalOptions &g)
{
    auto targets = std::make_shared<bool>(false);
    app.add_flag("--targets", *targets, "also ask each device which targets it can fence");
    app.footer("--json prints an array: one record per node ({\"node\", \"action\", \"levels\"}), then with --targets "
               "one per device that has a list ({\"device\", \"targets\"}).");
    return [&g, targets] { return run_list(g, *targets); };
}

CommandBody setup_agents(CLI::App &app, const GlobalOptions &g)
{
    app.footer("--json prints one record per agent, as an array.");
    return [&g] { return run_agents(g); };
}

CommandBody setup_metadata(CLI::App &app, const GlobalOptions &g)
{
    auto agents = std::make_shared<std::vector<std::string>>();
    app.add_option("AGENT", *agents, "agent names (see `stockade agents`)")->required();
    app.footer("--json prints one record per agent named, as an array.");
    return [&g, agents] { return run_metadata(g, *agents); };
}

CommandBody setup_validate(CLI::App &app, const GlobalOptions &g)
{
    auto file = std::make_shared<std::string>();
    app.add_option("CONFIG", *file, "configuration file (default: --config)");
    return [&g, file] { return run_validate(g, *file); };
}

} // namespace

STOCKADE_COMMAND("list", "configured nodes and their levels; --targets asks each device", setup_list);
STOCKADE_COMMAND("agents", "agents found in the search path, with summaries", setup_agents);
STOCKADE_COMMAND("metadata", "agents' parameters and actions", setup_metadata);
STOCKADE_COMMAND("validate", "check a configuration against the schema and the agents", setup_validate);

} // namespace stockade::cli
