// log.hpp -- the one logging path of the core: fmt-formatted lines to sinks main() chooses.
//
// Library code logs through a Logger it is handed and never writes to stdout/stderr itself
// ("daemons log, tools output").  main() decides whether lines reach stderr, syslog, a test
// buffer, or nothing.  Secret parameter values must never be passed in a message.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "stockade/agent.h"

namespace stockade {

std::string_view log_level_name(int level);

class Logger {
public:
    using Sink = std::function<void(int level, std::string_view line)>;

    Logger() = default;
    Logger(const Logger &) = delete;
    Logger &operator=(const Logger &) = delete;

    // Lines at `level` or more important (numerically <=) reach the sinks.
    void set_level(int level) { level_ = level; }
    int level() const { return level_; }
    bool enabled(int level) const { return level <= level_; }

    void add_stderr_sink(std::string program_name);
    void add_syslog_sink(const char *ident); // ident must outlive the logger (openlog keeps it)
    void add_sink(Sink sink);

    void log(int level, std::string_view line);

    template <class... Args>
    void logf(int level, fmt::format_string<Args...> f, Args &&...args)
    {
        if (enabled(level))
            log(level, fmt::format(f, std::forward<Args>(args)...));
    }

    // A logger with no sinks, for callers that want silence.
    static Logger &null();

private:
    std::mutex mu_;
    std::vector<Sink> sinks_;
    int level_ = STOCKADE_LOG_INFO;
};

} // namespace stockade
