// command.hpp -- subcommands of the `stockade` tool register themselves here.
//
// Each subcommand lives in its own cmd_*.cpp and registers with STOCKADE_COMMAND, so adding one
// touches no other file.  A command gets the arguments after its name and returns the exit code;
// only commands print and only main() exits.
#pragma once

#include <string>
#include <vector>

namespace stockade::cli {

struct GlobalOptions {
    std::string config_path = "/etc/stockade/stockade.json";
    bool config_given = false;
    bool json = false;
    int verbosity = 0; // -v raises the log level to debug
    bool quiet = false;
};

using CommandFn = int (*)(const GlobalOptions &global, std::vector<std::string> args);

struct Command {
    const char *name;
    const char *usage;   // e.g. "fence NODE [--action reboot|off|on]"
    const char *summary; // one line
    CommandFn fn;
};

void register_command(const Command &c);
const std::vector<Command> &commands();

struct CommandRegistrar {
    explicit CommandRegistrar(const Command &c) { register_command(c); }
};

#define STOCKADE_CMD_CAT2(a, b) a##b
#define STOCKADE_CMD_CAT(a, b) STOCKADE_CMD_CAT2(a, b)
#define STOCKADE_COMMAND(name, usage, summary, fn) \
    static const ::stockade::cli::CommandRegistrar STOCKADE_CMD_CAT(stockade_cmd_, __LINE__)({name, usage, summary, fn})

} // namespace stockade::cli
