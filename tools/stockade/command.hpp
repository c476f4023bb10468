// command.hpp -- subcommands of the `stockade` tool register themselves here.
//
// Each subcommand lives in its own cmd_*.cpp and registers with STOCKADE_COMMAND, so adding one
// touches no other file.  Parsing is CLI11's (main.cpp): a command's setup function declares its
// options and positionals on its CLI::App (so --help, options in any order and the global options
// after the command all come from one parser) and returns the body that runs once the whole
// command line parsed.  Only commands print and only main() exits.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace stockade::cli {

struct GlobalOptions {
    std::string config_path = "/etc/stockade/stockade.json";
    bool config_given = false;
    bool json = false;
    int verbosity = 0; // -v raises the log level to debug
    bool quiet = false;
};

// Runs the command with the options its setup bound; returns the exit code.
using CommandBody = std::function<int()>;
// Declares the command's options on `app`; `g` is filled by the time the body runs.
using CommandSetup = CommandBody (*)(CLI::App &app, const GlobalOptions &g);

struct Command {
    const char *name;
    const char *summary; // one line
    CommandSetup setup;
    int usage_exit = 2;  // exit code for a command line the parser refuses (status: 1, sfex: 4)
};

void register_command(const Command &c);
const std::vector<Command> &commands();

struct CommandRegistrar {
    explicit CommandRegistrar(const Command &c) { register_command(c); }
};

#define STOCKADE_CMD_CAT2(a, b) a##b
#define STOCKADE_CMD_CAT(a, b) STOCKADE_CMD_CAT2(a, b)
#define STOCKADE_COMMAND(...) \
    static const ::stockade::cli::CommandRegistrar STOCKADE_CMD_CAT(stockade_cmd_, __LINE__)({__VA_ARGS__})

} // namespace stockade::cli
