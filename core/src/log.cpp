// log.cpp -- sinks for the core's Logger: stderr, syslog, callbacks.
#include "stockade/log.hpp"

#include <cstdio>
#include <syslog.h>

namespace stockade {

std::string_view log_level_name(int level)
{
    switch (level) {
    case STOCKADE_LOG_CRIT: return "crit";
    case STOCKADE_LOG_ERR: return "error";
    case STOCKADE_LOG_WARNING: return "warning";
    case STOCKADE_LOG_NOTICE: return "notice";
    case STOCKADE_LOG_INFO: return "info";
    default: return "debug";
    }
}

void Logger::add_stderr_sink(std::string program_name)
{
    add_sink([name = std::move(program_name)](int level, std::string_view line) {
        std::string out = fmt::format("{}: {}: {}\n", name, log_level_name(level), line);
        std::fwrite(out.data(), 1, out.size(), stderr);
        std::fflush(stderr);
    });
}

void Logger::add_syslog_sink(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    add_sink([](int level, std::string_view line) {
        syslog(level, "%.*s", static_cast<int>(line.size()), line.data());
    });
}

void Logger::add_sink(Sink sink)
{
    std::lock_guard lock(mu_);
    sinks_.push_back(std::move(sink));
}

void Logger::log(int level, std::string_view line)
{
    if (!enabled(level))
        return;
    std::lock_guard lock(mu_);
    for (auto &s : sinks_)
        s(level, line);
}

Logger &Logger::null()
{
    static Logger silent;
    return silent;
}

} // namespace stockade
