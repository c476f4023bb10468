// cmd_import_stonith.cpp -- `stockade import-stonith-conf FILE`: LifeKeeper's stonith.conf as a
// stockade configuration on stdout.
//
// stonith.conf holds one `<node> <command line>` per line (`#` starts a comment line); a node may
// have several lines, tried in order.  Each line becomes a device of agent "command" and a level
// of its own for that node, in file order, so the site's working commands keep their order.
// Command lines that show a password are warned about on stderr (they are visible in the process
// table while they run); the output itself is the config, ready for `stockade validate`.
#include <memory>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "stonith_conf.hpp"

namespace stockade::cli {

namespace {

int run_import(const std::string &file)
{
    std::stringstream text;
    if (file == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream f(file);
        if (!f)
            return fail_usage(fmt::format("import-stonith-conf: cannot read {}: {}", file, std::strerror(errno)));
        text << f.rdbuf();
    }
    auto r = import_stonith_conf(text.str(), file);
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

CommandBody setup_import(CLI::App &app, const GlobalOptions &)
{
    auto file = std::make_shared<std::string>();
    app.add_option("FILE", *file, "LifeKeeper stonith.conf (- for stdin)")->required();
    return [file] { return run_import(*file); };
}

} // namespace

STOCKADE_COMMAND("import-stonith-conf",
                 "print a stockade config for LifeKeeper's stonith.conf (one command-device level per line)",
                 setup_import);

} // namespace stockade::cli
