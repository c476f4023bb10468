// cmd_import_stonith.cpp -- `stockade import-stonith-conf FILE`: LifeKeeper's stonith.conf as a
// stockade configuration on stdout.
//
// stonith.conf holds one `<node> <command line>` per line (`#` starts a comment line); a node may
// have several lines, tried in order.  Each line becomes a device of agent "command" and a level
// of its own for that node, in file order, so the site's working commands keep their order.
// Command lines that show a password are warned about on stderr (they are visible in the process
// table while they run); the output itself is the config, ready for `stockade validate`.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "stonith_conf.hpp"

namespace stockade::cli {

namespace {

int run_import(const GlobalOptions &, std::vector<std::string> args)
{
    if (args.size() != 1 || args[0].empty() || (args[0][0] == '-' && args[0] != "-"))
        return fail_usage("import-stonith-conf: usage: stockade import-stonith-conf FILE (- for stdin)");
    std::stringstream text;
    if (args[0] == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream f(args[0]);
        if (!f)
            return fail_usage(fmt::format("import-stonith-conf: cannot read {}: {}", args[0], std::strerror(errno)));
        text << f.rdbuf();
    }
    auto r = import_stonith_conf(text.str(), args[0]);
    if (!r)
        return fail_usage(r.error().message);
    for (const auto &w : r->warnings)
        fmt::print(stderr, "stockade: warning: {}\n", w);
    fmt::print("{}\n", r->config.dump(2));
    if (!r->warnings.empty())
        fmt::print(stderr, "stockade: {} command line(s) show a password; the command agent keeps command lines out of logs and output, but not out of the process table\n",
                   r->warnings.size());
    return 0;
}

} // namespace

STOCKADE_COMMAND("import-stonith-conf", "import-stonith-conf FILE",
                 "print a stockade config for LifeKeeper's stonith.conf (one command-device level per line)", run_import);

} // namespace stockade::cli
