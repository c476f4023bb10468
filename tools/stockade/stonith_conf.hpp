// stonith_conf.hpp -- LifeKeeper's stonith.conf as a stockade configuration.
//
// stonith.conf holds one `<node> <command line>` per line (`#` starts a comment line); a node may
// have several lines, tried in order.  Each line becomes a device of agent "command" and a level
// of its own for that node, in file order.  Command lines that show a password come back as
// warnings (they are visible in the process table while they run).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "stockade/result.hpp"

namespace stockade::cli {

struct StonithConfImport {
    nlohmann::ordered_json config;     // the stockade configuration
    std::vector<std::string> warnings; // "<file>:<line>: the command for <node> shows ..."
};

// Errors name the file and line; `source` is the file name used in them.
Result<StonithConfImport> import_stonith_conf(std::string_view text, const std::string &source);

} // namespace stockade::cli
