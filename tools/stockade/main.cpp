// stockade -- the command-line front of the escalation runner.
//
// CLI11 parses the whole command line: the global options (accepted before or after the command),
// then the self-registered subcommand (cmd_*.cpp) with its own options, in any order; every
// command has --help.  Exit codes: 0 fenced/ok, 1 failed, 2 bad usage or configuration (status: 0
// on, 2 off, 1 unknown or any error, since 2 must only ever mean "off").
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "command.hpp"
#include "stockade/process.hpp"
#include "stockade/session.hpp"
#include "stockade_paths.h"

namespace stockade::cli {

static std::vector<Command> &registry()
{
    static std::vector<Command> r;
    return r;
}

void register_command(const Command &c) { registry().push_back(c); }

const std::vector<Command> &commands()
{
    auto &r = registry();
    std::sort(r.begin(), r.end(), [](const Command &a, const Command &b) { return std::strcmp(a.name, b.name) < 0; });
    return r;
}

} // namespace stockade::cli

using namespace stockade::cli;

int main(int argc, char **argv)
{
    GlobalOptions g;
    CLI::App app{"stockade: fence cluster nodes through escalation levels of fencing devices", "stockade"};
    app.require_subcommand(0, 1);
    app.set_version_flag("-V,--version", std::string("stockade ") + stockade::kVersion);
    app.add_option("-c,--config", g.config_path, "configuration file")->default_str(g.config_path);
    app.add_flag("--json", g.json, "machine-readable output on stdout: always a JSON array of records");
    app.add_flag("-v,--verbose", g.verbosity, "more log detail (debug); repeatable");
    app.add_flag("-q,--quiet", g.quiet, "warnings and errors only");
    app.footer("--config defaults to /etc/stockade/stockade.json.  `stockade COMMAND --help` describes a "
               "command.  Global options may also follow the command.");

    std::vector<std::pair<CLI::App *, CommandBody>> bodies;
    std::vector<std::pair<CLI::App *, int>> usage_exits;
    for (const auto &c : commands()) {
        CLI::App *sub = app.add_subcommand(c.name, c.summary);
        sub->fallthrough(); // global options after the command reach the main app
        bodies.emplace_back(sub, c.setup(*sub, g));
        usage_exits.emplace_back(sub, c.usage_exit);
    }
    // `stockade help [COMMAND]`, as the usage line has always said.
    std::string help_about;
    CLI::App *help = app.add_subcommand("help", "describe the commands, or one command");
    help->add_option("COMMAND", help_about, "the command to describe");

    auto usage_exit = [&] {
        for (const auto &[sub, code] : usage_exits)
            if (sub->parsed())
                return code;
        return 2;
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        fmt::print(stderr, "stockade: {}\n", e.what());
        fmt::print(stderr, "see `stockade {}--help`\n",
                   app.get_subcommands().empty() ? "" : app.get_subcommands()[0]->get_name() + " ");
        return usage_exit();
    }
    g.config_given = app.count("--config") > 0;
    if (help->parsed()) {
        if (help_about.empty()) { // the top-level help, not the selected subcommand's
            fmt::print("{}", app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal));
            return 0;
        }
        for (const auto &[sub, body] : bodies)
            if (sub->get_name() == help_about) {
                fmt::print("{}", sub->help("stockade"));
                return 0;
            }
        fmt::print(stderr, "stockade: help: unknown command '{}'\n", help_about);
        return 2;
    }
    // Each isolated session holds four descriptors: `concurrency` in the hundreds needs more than
    // the usual soft limit of 1024 (programs we exec get the old limit back).
    (void)stockade::raise_open_file_limit();
    // Isolated agent sessions are forked from this template, before any thread or secret exists
    // here; if it cannot start, they use the agent host as before.
    (void)stockade::start_fork_template(argc, argv);
    for (const auto &[sub, body] : bodies)
        if (sub->parsed())
            return body();
    fmt::print(stderr, "{}", app.help());
    return 2;
}
