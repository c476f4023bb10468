// process.hpp -- the one way stockade runs a child process whose deadline it owns.
//
// Every child (agent host, fence_* executable, glue plugin, command line, password script, the
// orphan guard, a fork-server operation) goes through here, so the rules live in one place:
// the child gets its own process group (or session), stdin/stdout/stderr on pipes or /dev/null,
// every other descriptor closed (close_range) and SIGPIPE/SIGCHLD back to default.  We never use
// Boost 1.74's wait_for (it can wait the full timeout on Linux): we poll the pipes and a pidfd
// against our own CLOCK_MONOTONIC deadline, and at the deadline SIGKILL the whole tree -- the
// group and every descendant found in /proc, also ones that called setsid() -- while the leader
// is still unreaped, so the group id cannot name anyone else's group.  An outcome we could not
// read (the child was reaped behind our back: ECHILD) is ChildEnd::Unknown, never exit status 0.
//
// Built as the small static library stockade::process (std + POSIX; Boost.Process used only
// inside the .cpp), linked by libstockade and directly by agents, which never link libstockade.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <sys/types.h>
#include <vector>

#include "stockade/result.hpp"

namespace stockade {

inline int64_t monotonic_ms() { return stockade_monotonic_ms(); }

// How a child run ended.  Only Exited carries an exit code; nothing else is ever success.
enum class ChildEnd : uint8_t { Exited, Signaled, TimedOut, Cancelled, Unknown };

struct ChildEndInfo {
    ChildEnd end;
    std::string_view name;
};
inline constexpr std::array<ChildEndInfo, 5> kChildEnds{{
    {ChildEnd::Exited, "exited"},
    {ChildEnd::Signaled, "killed by a signal"},
    {ChildEnd::TimedOut, "killed at the deadline"},
    {ChildEnd::Cancelled, "cancelled and killed"},
    {ChildEnd::Unknown, "outcome unknown (exit status could not be read)"},
}};
static_assert(kChildEnds.size() == size_t(ChildEnd::Unknown) + 1);

enum class ChildStream : uint8_t {
    Pipe,   // captured by the parent (up to SpawnSpec::output_cap bytes)
    Null,   // /dev/null
    Stdout, // stderr only: merged into the stdout pipe
};

enum class OnExit : uint8_t {
    KillGroup,  // leftovers in the child's process group are SIGKILLed before the leader is reaped
    LeaveGroup, // background children that let go of our pipes are left alone (as fenced does)
};

struct SpawnSpec {
    std::vector<std::string> argv;                             // argv[0] is the program
    std::vector<std::pair<std::string, std::string>> env_set;  // added to / replacing the environment
    std::vector<std::string> env_unset;
    std::optional<std::vector<std::string>> env;               // exactly these NAME=value; else inherit
    bool search_path = false;                                  // look argv[0] up in $PATH
    ChildStream stdout_to = ChildStream::Pipe;
    ChildStream stderr_to = ChildStream::Pipe;
    bool new_session = false; // setsid() instead of a process group of its own
    OnExit on_exit = OnExit::KillGroup;
    size_t output_cap = size_t(1) << 20; // bytes kept per stream; the rest is read and dropped
    std::vector<int> keep_fds;           // stay open in the child, at the same numbers (all >= 3)
};

// "Stop now" from the caller: an atomic flag (the runner), a function (an agent's ctx), or none.
class Cancel {
public:
    Cancel() = default;
    Cancel(const std::atomic<bool> *flag) : flag_(flag) {}
    template <class F>
        requires std::is_invocable_r_v<bool, F &>
    Cancel(F fn) : fn_(std::move(fn))
    {
    }
    bool operator()() const { return (flag_ && flag_->load()) || (fn_ && fn_()); }

private:
    const std::atomic<bool> *flag_ = nullptr;
    std::function<bool()> fn_;
};

struct CommandResult {
    ChildEnd end = ChildEnd::Unknown;
    bool timed_out = false;
    bool cancelled = false;
    std::optional<int> exit_code; // set only when it exited and we read the status
    std::optional<int> signal;    // set when a signal ended it
    std::string out, err;
    bool out_truncated = false, err_truncated = false;

    bool success() const { return end == ChildEnd::Exited && exit_code == 0; }
    std::string describe() const; // "exited with status 3", "killed by signal 9 (Killed)", ...
};

class Subprocess {
public:
    enum class Read { Line, Eof, Timeout, Cancelled };

    // Starts spec.argv (Boost.Process: fork + exec).
    static Result<std::unique_ptr<Subprocess>> spawn(const SpawnSpec &spec);
    // Forks and runs body() in the child, which then _exit()s with its return value.  spec.argv
    // is only a name for messages.  Only from a process that has started no threads, or whose
    // other threads hold no locks body() needs.
    static Result<std::unique_ptr<Subprocess>> fork_function(const SpawnSpec &spec, const std::function<int()> &body);

    // A child another process forked for us (the fork-server agent host): we hold its pipes (in:
    // write end, out/err: read ends, or -1) and a pidfd; `reap` asks its parent for the wait
    // status once it exited and its group is dead (nullopt: unknown).  Fails without pidfd.
    using Reaper = std::function<std::optional<int>(pid_t)>;
    static Result<std::unique_ptr<Subprocess>> adopt(pid_t pid, int in, int out, int err, const SpawnSpec &spec,
                                                     Reaper reap);

    ~Subprocess(); // kills the tree if still running and reaps the child
    Subprocess(const Subprocess &) = delete;
    Subprocess &operator=(const Subprocess &) = delete;

    pid_t pid() const { return pid_; }

    // Writes all of data to the child's stdin before the deadline (SIGPIPE-safe).
    Status write_all(std::string_view data, int64_t deadline_ms);
    void close_stdin();

    // Waits for one complete line on stdout (without the '\n').  stderr is drained meanwhile and
    // handed, line by line, to on_stderr (if set).
    Read read_line(std::string &line, int64_t deadline_ms, const Cancel &cancel = {});

    // Reads stdout and stderr to EOF (or the deadline), appending to out/err.
    Read read_all(std::string &out, std::string &err, int64_t deadline_ms, const Cancel &cancel = {});

    // Waits (pidfd) for the child to exit before the deadline; returns its wait status.  nullopt:
    // still running at the deadline, or end() == ChildEnd::Unknown.
    std::optional<int> wait(int64_t deadline_ms);
    // Exited/Signaled/Unknown once wait() saw the end; TimedOut while it is still running.
    ChildEnd end() const;

    // Feeds input (then closes stdin), collects stdout/stderr to EOF and the exit status; kills
    // the tree at the deadline (0: none) or on cancel.  Leftovers holding our pipes after the
    // leader exited get a short grace, then are killed too.
    CommandResult communicate(std::string_view input, int64_t deadline_ms, const Cancel &cancel = {});

    // SIGKILL the process group and every descendant (leader not yet reaped), then reap.
    void kill_tree();

    // Lets the child go on its own: never killed or reaped by us.  Our end of its stdin stays
    // open until this process exits, so the child sees EOF on stdin exactly when we are gone.
    void release();

    std::function<void(std::string_view)> on_stderr;

private:
    explicit Subprocess(const SpawnSpec &spec) : on_exit_(spec.on_exit), cap_(spec.output_cap) {}
    bool drain_fd(int &fd, std::string &buf, bool is_err);
    void reap(bool blocking);
    bool leader_unreaped() const;

    pid_t pid_ = -1;
    int pidfd_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    OnExit on_exit_ = OnExit::KillGroup;
    size_t cap_ = 0;
    bool out_truncated_ = false, err_truncated_ = false;
    std::string out_buf_, err_buf_;
    std::optional<int> status_;
    bool unknown_ = false, released_ = false;
    Reaper reaper_;

};

// For a fork that does not go through Subprocess (the fork-server agent host, whose client owns
// the child): in the child, stdin/stdout/stderr from these descriptors, its own process group,
// signal mask and SIGPIPE/SIGCHLD reset, every other descriptor closed.  Async-signal-safe.
void become_forked_child(int in, int out, int err) noexcept;

// For a front-end's main(), before it opens sessions: raises the soft limit on open descriptors
// to the hard limit (at most 1 << 20).  Each isolated session holds four (three pipe ends and a
// pidfd), so a `concurrency` in the hundreds outgrew the usual soft limit of 1024 and sessions
// failed with EMFILE.  Programs this process execs get the old soft limit back (one using
// select() breaks above 1024).  Returns the soft limit now in force.
unsigned long raise_open_file_limit() noexcept;

// In a child forked (fork_function) from a front-end's main(): blanks argv[1..], which is what
// /proc/<pid>/cmdline shows and may hold a secret the parent scrubs from its own copy only later.
void blank_inherited_argv(int argc, char **argv) noexcept;

// Every descendant of `root` (children, grandchildren, ...) plus members of process group
// `pgid`, from /proc.
std::vector<pid_t> process_tree(pid_t root, pid_t pgid);

// The one /proc/<pid>/stat reader: nullopt when the process is gone or a zombie.
struct ProcStat {
    pid_t ppid = 0, pgid = 0;
    unsigned long long start_time = 0; // clock ticks after boot: tells a reused pid apart
};
std::optional<ProcStat> read_proc_stat(pid_t pid);


// Runs spec with `input` on stdin, collecting output, killing the tree at the timeout or on
// cancel.  An error only when it could not start (the message names argv[0]).
Result<CommandResult> run_command(const SpawnSpec &spec, std::string_view input, std::chrono::milliseconds timeout,
                                  const Cancel &cancel = {});
// The same against an absolute CLOCK_MONOTONIC deadline in ms (0: none), as agents hold it.
Result<CommandResult> run_command_until(const SpawnSpec &spec, std::string_view input, int64_t deadline_ms,
                                        const Cancel &cancel = {});

std::string describe_wait_status(int status);

// argv[0] as execvp would find it: a name without '/' is looked up in $PATH.
std::optional<std::string> find_program(const std::string &name);

} // namespace stockade
