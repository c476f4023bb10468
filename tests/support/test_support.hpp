// test_support.hpp -- helpers shared by every test: temporary folders, free ports, running the
// built tools, looking for processes.  Tests start their own peers on ports chosen here and stop
// them by PID; nothing here talks to any address outside 127.0.0.0/8.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "stockade/log.hpp"
#include "stockade/process.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"

namespace stockade::test {

// A fresh folder under $TMPDIR, removed with everything in it at scope exit.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::filesystem::path &path() const { return path_; }
    std::string file(const std::string &name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// Environment set by ctest (see STOCKADE_TEST_ENV): build dirs, source dir.
std::string env_or_fail(const char *name);
std::string bin_path(const std::string &tool);          // $STOCKADE_BIN_DIR/tool
std::string source_path(const std::string &relative);    // $STOCKADE_SOURCE_DIR/relative

// A port on 127.0.0.1 nobody listens on right now (bound and released).
int free_udp_port();
int free_tcp_port();

void write_file(const std::string &path, const std::string &content, mode_t mode = 0644);
std::string read_file(const std::string &path);

bool pid_alive(pid_t pid);
// The agent `name` from one registry kept for the whole test program (the search path of the
// test environment); throws when it is not found.
const AgentInfo &registered_agent(const std::string &name);
// True once pid has exited (SIGKILL is delivered asynchronously: a process killed a moment ago may
// still be running its exit on a loaded machine); false if it is still alive after `within`.
bool pid_gone_within(pid_t pid, std::chrono::milliseconds within);
// Every live process whose /proc/<pid>/cmdline or /proc/<pid>/environ contains `needle`.
std::vector<pid_t> processes_exposing(const std::string &needle);

// Runs a command (argv[0] a path) and collects its result; stdin from `input`.
CommandResult run(const std::vector<std::string> &argv, const std::string &input = "",
                  std::chrono::milliseconds timeout = std::chrono::seconds(60),
                  const std::vector<std::pair<std::string, std::string>> &env = {});

// Whether a program is on PATH (for tests of optional real peers).
std::optional<std::string> which(const std::string &program);

// Runs fn on a thread that has joined the network namespace /run/netns/<ns>: sockets it opens
// live there (a peer's 127.0.0.1 inside a test's namespace).  fn's exceptions reach the caller;
// throws std::runtime_error when the namespace cannot be joined.
void in_netns(const std::string &ns, const std::function<void()> &fn);

// A TCP listener on 127.0.0.1 (a port the kernel picks) that accepts connections into its backlog
// and never answers: a peer that is up but silent.  Closed at scope exit.
class SilentListener {
public:
    SilentListener();
    ~SilentListener();
    SilentListener(const SilentListener &) = delete;
    SilentListener &operator=(const SilentListener &) = delete;
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

// What tests/agents/testagent.c journals at open() with report_prepare=1: how often its process
// had run the agent's prepare (ABI 1.2), in which process, and the session's own process.
struct PrepareReport {
    int count = -1;
    long by = 0, in = 0;
};
// Every such line of a journal file, in order.
std::vector<PrepareReport> prepare_reports(const std::string &journal);

// Milliseconds since t0 on the steady clock.
long ms_since(std::chrono::steady_clock::time_point t0);

// `base` with each entry of `extra` replacing the one of the same name, or appended; an extra
// value of "<unset>" removes the name.
RawParams with_params(RawParams base, const RawParams &extra);

// A session on `agent` opened with `raw` (resolved as the front-ends do, unknown names refused),
// isolated in an agent host unless `isolate` is false, logging to `logger` with the agent's name
// as label.  Throws with the reason when resolving or opening fails, unless `open_result` is
// given: then the open's result is stored there and the session returned as it is.
std::unique_ptr<AgentSession> open_session(const AgentInfo &agent, const RawParams &raw, bool isolate = true,
                                           Logger *logger = nullptr, OpResult *open_result = nullptr);

// Every line a session logged (any thread), for "the warning was logged" / "no secret in any line".
class KeptLog {
public:
    KeptLog();
    Logger logger;
    std::vector<std::string> lines() const;
    std::string all() const; // every line, each ending in a newline
    bool contains(const std::string &needle) const;

private:
    struct Shared {
        mutable std::mutex mu;
        std::vector<std::string> lines;
    };
    std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

// Ends the test case with a warning (not a failure) when a real peer cannot run here; `why` is
// an expression giving std::optional<std::string> (the reason).
#define STOCKADE_SKIP_IF_UNAVAILABLE(why)                                                       \
    do {                                                                                       \
        if (auto reason_ = (why)) {                                                            \
            WARN("SKIPPED: " << *reason_);                                                     \
            return;                                                                            \
        }                                                                                      \
    } while (0)

} // namespace stockade::test
