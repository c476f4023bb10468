// cli_common.cpp -- see cli_common.hpp.
#include "cli_common.hpp"

#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#ifdef STOCKADE_HAVE_CLUSTER_CONF
#include "cluster_conf.hpp"
#endif

namespace stockade::cli {

namespace {
std::atomic<bool> g_cancel{false};
extern "C" void on_signal(int) { g_cancel.store(true); }
} // namespace

Logger &setup_logger(const GlobalOptions &g, bool use_syslog)
{
    static Logger logger;
    static bool done = false;
    if (!done) {
        done = true;
        logger.set_level(g.quiet ? STOCKADE_LOG_ERR : g.verbosity > 0 ? STOCKADE_LOG_DEBUG : STOCKADE_LOG_INFO);
        logger.add_stderr_sink("stockade");
        if (use_syslog)
            logger.add_syslog_sink("stockade");
    }
    return logger;
}

std::optional<Config> load_checked_config(const GlobalOptions &g, const AgentRegistry &registry,
                                          const std::string &path_override, bool every_error)
{
    // The first error (one line), or with every_error all of them, one line each naming the file
    // and the JSON pointer of the field.
    ConfigCheck check = check_config_file(path_override.empty() ? g.config_path : path_override, registry);
    for (const auto &e : check.errors) {
        fmt::print(stderr, "stockade: {}\n", e.message);
        if (!every_error)
            break;
    }
    if (check.config)
        for (const auto &w : readable_secret_warnings(*check.config, registry))
            fmt::print(stderr, "stockade: warning: {}\n", w);
    return std::move(check.config);
}

std::optional<Config> load_checked_cluster_conf(const std::string &path, const AgentRegistry &registry)
{
#ifdef STOCKADE_HAVE_CLUSTER_CONF
    auto c = load_cluster_conf(path);
    if (!c) {
        fmt::print(stderr, "stockade: {}\n", c.error().message);
        return std::nullopt;
    }
    if (auto s = check_config_agents(c->config, registry); !s) {
        fmt::print(stderr, "stockade: {}\n", s.error().message);
        return std::nullopt;
    }
    return std::move(c->config);
#else
    (void)registry;
    fmt::print(stderr, "stockade: {}: this build has no cluster.conf support (frontends/fence_node)\n", path);
    return std::nullopt;
#endif
}

const std::atomic<bool> *install_cancel_signals()
{
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    return &g_cancel;
}

int fail_usage(const std::string &msg, int code)
{
    fmt::print(stderr, "stockade: {}\n", msg);
    return code;
}

} // namespace stockade::cli
