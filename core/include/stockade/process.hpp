// process.hpp -- child processes whose deadlines we own.
//
// Every child (agent host, fence_* executable, command device) is started with Boost.Process in
// its own process group, with pipes for stdin/stdout/stderr and every other descriptor closed on
// exec.  We never rely on Boost 1.74's wait_for (unreliable on Linux): we poll the pipes against
// a CLOCK_MONOTONIC deadline ourselves and, when it passes, SIGKILL the whole tree: the process
// group plus every descendant found through /proc, even ones that left the group.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "stockade/result.hpp"

namespace stockade {

int64_t monotonic_ms();

struct SpawnSpec {
    std::vector<std::string> argv;                             // argv[0] is the executable path
    std::vector<std::pair<std::string, std::string>> env_set;  // added to / replacing the environment
    std::vector<std::string> env_unset;
};

class Subprocess {
public:
    enum class Read { Line, Eof, Timeout, Cancelled };

    static Result<std::unique_ptr<Subprocess>> spawn(const SpawnSpec &spec);
    ~Subprocess(); // kills the tree if still running and reaps the child

    pid_t pid() const { return pid_; }

    // Writes all of data to the child's stdin before the deadline.
    Status write_all(std::string_view data, int64_t deadline_ms);
    void close_stdin();

    // Waits for one complete line on stdout (without the '\n').  stderr is drained meanwhile and
    // handed, line by line, to on_stderr (if set).
    Read read_line(std::string &line, int64_t deadline_ms, const std::atomic<bool> *cancel = nullptr);

    // Reads stdout and stderr to EOF (or the deadline), appending to out/err.
    Read read_all(std::string &out, std::string &err, int64_t deadline_ms, const std::atomic<bool> *cancel = nullptr);

    // Waits for the child to exit before the deadline; returns its wait status.
    std::optional<int> wait(int64_t deadline_ms);

    // SIGKILL the process group and every descendant, then reap the child.
    void kill_tree();

    std::function<void(std::string_view)> on_stderr;

private:
    Subprocess() = default;
    bool drain_fd(int &fd, std::string &buf, bool is_err);

    pid_t pid_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    std::string out_buf_, err_buf_;
    std::optional<int> status_;
};

// Every descendant of `root` (children, grandchildren, ...) plus members of process group
// `pgid`, from /proc.
std::vector<pid_t> process_tree(pid_t root, pid_t pgid);

struct CommandResult {
    bool timed_out = false;
    bool cancelled = false;
    std::optional<int> exit_code; // set when it exited normally
    std::optional<int> signal;    // set when a signal ended it
    std::string out, err;
};

// Runs argv with `input` on stdin, collecting output, killing the tree at the timeout.
Result<CommandResult> run_command(const SpawnSpec &spec, std::string_view input, std::chrono::milliseconds timeout,
                                  const std::atomic<bool> *cancel = nullptr);

} // namespace stockade
