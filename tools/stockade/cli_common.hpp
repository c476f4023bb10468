// cli_common.hpp -- what every subcommand of `stockade` shares: logging set-up, loading and
// checking the configuration, and turning SIGINT/SIGTERM into a cancel flag.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "stockade/config.hpp"
#include "stockade/log.hpp"
#include "stockade/registry.hpp"

namespace stockade::cli {

// Logger writing to stderr and syslog ("stockade"), level from -v/-q.
Logger &setup_logger(const GlobalOptions &g, bool use_syslog = true);

// Loads --config and checks it against the agents.  On error prints one line (every error, one
// line each, with every_error) and returns nullopt.
std::optional<Config> load_checked_config(const GlobalOptions &g, const AgentRegistry &registry,
                                          const std::string &path_override = "", bool every_error = false);

// Loads a cman cluster.conf (--cluster-conf FILE) as a configuration and checks it against the
// agents.  On error prints one line and returns nullopt.
std::optional<Config> load_checked_cluster_conf(const std::string &path, const AgentRegistry &registry);

// Set by SIGINT/SIGTERM once install_cancel_signals() ran.
const std::atomic<bool> *install_cancel_signals();

// Prints "stockade: <msg>" to stderr; returns `code`.
int fail_usage(const std::string &msg, int code = 2);

} // namespace stockade::cli
