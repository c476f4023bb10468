// stockade -- the command-line front of the escalation runner.
//
// Parses the global options, then hands the rest to a self-registered subcommand (cmd_*.cpp).
// Exit codes: 0 fenced/ok, 1 failed, 2 bad usage or configuration (status: 0 on, 2 off, 1 unknown
// or any error, since 2 must only ever mean "off").
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command.hpp"
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

static void usage(FILE *to)
{
    fmt::print(to, "usage: stockade [--config FILE] [--json] [-v] [-q] COMMAND [ARGS]\n\ncommands:\n");
    for (const auto &c : commands())
        fmt::print(to, "  {:<44} {}\n", c.usage, c.summary);
    fmt::print(to, "\n--config defaults to /etc/stockade/stockade.json.  See `stockade help COMMAND`.\n");
}

int main(int argc, char **argv)
{
    GlobalOptions g;
    std::vector<std::string> rest;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--config" || a == "-c") {
            if (i + 1 >= argc) {
                fmt::print(stderr, "stockade: --config needs a file\n");
                return 2;
            }
            g.config_path = argv[++i];
            g.config_given = true;
        } else if (a.rfind("--config=", 0) == 0) {
            g.config_path = a.substr(9);
            g.config_given = true;
        } else if (a == "--json") {
            g.json = true;
        } else if (a == "-v" || a == "--verbose") {
            ++g.verbosity;
        } else if (a == "-q" || a == "--quiet") {
            g.quiet = true;
        } else if (a == "-h" || a == "--help" || a == "help") {
            if (a == "help" && i + 1 < argc) {
                for (const auto &c : commands())
                    if (argv[i + 1] == std::string(c.name)) {
                        fmt::print("usage: stockade {}\n{}\n", c.usage, c.summary);
                        return 0;
                    }
            }
            usage(stdout);
            return 0;
        } else if (a == "-V" || a == "--version") {
            fmt::print("stockade {}\n", stockade::kVersion);
            return 0;
        } else if (!a.empty() && a[0] == '-') {
            fmt::print(stderr, "stockade: unknown option '{}'\n", a);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    std::string name = argv[i++];
    for (; i < argc; ++i)
        rest.emplace_back(argv[i]);
    for (const auto &c : commands())
        if (name == c.name)
            return c.fn(g, std::move(rest));
    fmt::print(stderr, "stockade: unknown command '{}' (see stockade --help)\n", name);
    return 2;
}
