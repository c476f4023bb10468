// process.cpp -- the child-process API of process.hpp: Boost.Process (or a plain fork for
// fork_function) to start, one child-side setup for both, pidfd + poll to our own deadline, and a
// tree kill that freezes (SIGSTOP) what it finds so nothing forks away while it looks, then
// SIGKILLs the group and every process seen before the leader is reaped.
#include "stockade/process.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace bp = boost::process;

namespace stockade {

namespace {

constexpr int64_t kPollSliceMs = 50;           // wake this often to look at cancellation
constexpr int64_t kLeftoverGraceMs = 500;      // pipes still held this long after the leader exited
constexpr int64_t kReapAfterKillMs = 2000;     // a SIGKILLed leader is normally gone at once
constexpr int kFreezeRounds = 50;
constexpr int kGoneRounds = 200;               // x 5 ms: wait for the killed tree to disappear

void close_fd(int &fd)
{
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

void set_nonblock_cloexec(int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int poll_slice(int64_t deadline_ms)
{
    if (deadline_ms <= 0)
        return int(kPollSliceMs);
    int64_t left = deadline_ms - monotonic_ms();
    return int(std::clamp<int64_t>(left, 0, kPollSliceMs));
}

bool past(int64_t deadline_ms) { return deadline_ms > 0 && monotonic_ms() >= deadline_ms; }

int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = int(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pid;
    return -1;
#endif
}

// What the child does between fork and exec (or body()): prepared before the fork, applied with
// async-signal-safe calls only.
struct ChildSetup {
    bool new_session = false;
    int devnull = -1;
    ChildStream stdout_to = ChildStream::Pipe, stderr_to = ChildStream::Pipe;
    std::vector<int> keep; // sorted, all >= 3
};

// The one way descriptors are shut in a child: everything from 3 up except `keep`.  Before an
// exec they are marked close-on-exec (Boost.Process still reports exec failures over one of
// them); in a child that runs code instead they are closed.
void close_inherited(const std::vector<int> &keep, bool at_exec) noexcept
{
    const unsigned flags = at_exec ? CLOSE_RANGE_CLOEXEC : 0;
    unsigned lo = 3;
    auto shut = [&](unsigned from, unsigned to) {
        if (from > to)
            return;
        if (::syscall(SYS_close_range, from, to, flags) == 0)
            return;
        struct rlimit rl {};
        unsigned top = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? unsigned(rl.rlim_cur) : 65536;
        for (unsigned fd = from; fd <= std::min(to, top); ++fd)
            at_exec ? (void)::fcntl(int(fd), F_SETFD, FD_CLOEXEC) : (void)::close(int(fd));
    };
    for (int k : keep) {
        if (k < int(lo))
            continue;
        shut(lo, unsigned(k) - 1);
        lo = unsigned(k) + 1;
    }
    shut(lo, ~0U);
}

ChildSetup setup_for(const SpawnSpec &spec)
{
    ChildSetup s;
    s.new_session = spec.new_session;
    s.stdout_to = spec.stdout_to;
    s.stderr_to = spec.stderr_to;
    s.keep = spec.keep_fds;
    std::sort(s.keep.begin(), s.keep.end());
    return s;
}

// The soft descriptor limit before raise_open_file_limit(), restored for programs we exec.
struct rlimit g_exec_nofile {};
std::atomic<bool> g_nofile_raised{false};

void apply_child_setup(const ChildSetup &s, bool at_exec) noexcept
{
    if (at_exec && g_nofile_raised.load())
        ::setrlimit(RLIMIT_NOFILE, &g_exec_nofile);
    if (s.new_session)
        ::setsid();
    else
        ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGCHLD, SIG_DFL);
    if (s.stdout_to == ChildStream::Null && s.devnull >= 0)
        ::dup2(s.devnull, 1);
    if (s.stderr_to == ChildStream::Null && s.devnull >= 0)
        ::dup2(s.devnull, 2);
    else if (s.stderr_to == ChildStream::Stdout)
        ::dup2(1, 2);
    close_inherited(s.keep, at_exec);
    for (int fd : s.keep)
        ::fcntl(fd, F_SETFD, 0); // kept across exec too
}

// stdio from the given descriptors (-1: keep), then the common setup; no exec follows.
void enter_child(int in, int out, int err, const ChildSetup &setup) noexcept
{
    if (in >= 0)
        ::dup2(in, 0);
    if (out >= 0)
        ::dup2(out, 1);
    if (err >= 0)
        ::dup2(err, 2);
    apply_child_setup(setup, false);
}

const ChildSetup kForkedChild{}; // own process group, stdio as given, nothing else open

// A child that exits without reading its stdin must not kill us with SIGPIPE.  Library code may
// not change the process's signal dispositions, so SIGPIPE is blocked for this thread around
// the writes and a pending one is consumed before the mask is restored.
class SigpipeGuard {
public:
    SigpipeGuard()
    {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        sigpending(&pending_before_);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
    }
    ~SigpipeGuard()
    {
        if (!sigismember(&pending_before_, SIGPIPE)) {
            sigset_t pipe_set;
            sigemptyset(&pipe_set);
            sigaddset(&pipe_set, SIGPIPE);
            struct timespec zero {};
            while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard &) = delete;
    SigpipeGuard &operator=(const SigpipeGuard &) = delete;

private:
    sigset_t old_, pending_before_;
};

// Live processes that descend (by parent links) from any of `roots`, or are in group `pgid`.
std::map<pid_t, ProcStat> collect_tree(const std::vector<pid_t> &roots, pid_t pgid)
{
    // Nothing to start from (kill_tree after the leader was reaped): the answer is empty, so do
    // not read every /proc/<pid>/stat for it -- that scan was most of an isolated session's
    // close with a few hundred processes on the machine.
    if (pgid <= 0 && std::none_of(roots.begin(), roots.end(), [](pid_t r) { return r > 0; }))
        return {};
    std::map<pid_t, ProcStat> all;
    if (DIR *d = ::opendir("/proc")) {
        while (dirent *e = ::readdir(d)) {
            char *end = nullptr;
            long p = std::strtol(e->d_name, &end, 10);
            if (!end || *end || p <= 0)
                continue;
            if (auto st = read_proc_stat(pid_t(p)))
                all.emplace(pid_t(p), *st);
        }
        ::closedir(d);
    }
    std::map<pid_t, ProcStat> tree;
    std::vector<pid_t> frontier;
    for (pid_t r : roots)
        if (r > 0)
            frontier.push_back(r);
    for (const auto &[p, st] : all)
        if (pgid > 0 && st.pgid == pgid)
            frontier.push_back(p);
    while (!frontier.empty()) {
        pid_t p = frontier.back();
        frontier.pop_back();
        if (auto it = all.find(p); it != all.end() && !tree.count(p)) {
            tree.emplace(p, it->second);
            for (const auto &[c, st] : all)
                if (st.ppid == p && !tree.count(c))
                    frontier.push_back(c);
        }
    }
    tree.erase(::getpid());
    return tree;
}

bool same_process(pid_t pid, unsigned long long start_time)
{
    auto st = read_proc_stat(pid);
    return st && st->start_time == start_time;
}

std::string exec_failure(const std::string &program, const std::string &why)
{
    return "cannot run " + program + ": " + why;
}

} // namespace

void become_forked_child(int in, int out, int err) noexcept
{
    enter_child(in, out, err, kForkedChild);
}

unsigned long raise_open_file_limit() noexcept
{
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    const rlim_t want = std::min<rlim_t>(rl.rlim_max, rlim_t(1) << 20);
    if (rl.rlim_cur >= want || g_nofile_raised.load())
        return rl.rlim_cur;
    struct rlimit raised = rl;
    raised.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0)
        return rl.rlim_cur;
    g_exec_nofile = rl;
    g_nofile_raised.store(true);
    return want;
}

void blank_inherited_argv(int argc, char **argv) noexcept
{
    for (int i = 1; i < argc && argv; ++i)
        std::memset(argv[i], 0, std::strlen(argv[i]));
}

std::optional<ProcStat> read_proc_stat(pid_t pid)
{
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return std::nullopt;
    buf[n] = 0;
    const char *rp = std::strrchr(buf, ')');
    if (!rp)
        return std::nullopt;
    char state = 0;
    int ppid = 0, pgid = 0;
    unsigned long long start = 0;
    if (std::sscanf(rp + 1,
                    " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                    &state, &ppid, &pgid, &start) != 4)
        return std::nullopt;
    if (state == 'Z' || state == 'X')
        return std::nullopt;
    return ProcStat{pid_t(ppid), pid_t(pgid), start};
}

std::vector<pid_t> process_tree(pid_t root, pid_t pgid)
{
    std::vector<pid_t> out;
    for (const auto &[p, st] : collect_tree({root}, pgid))
        out.push_back(p);
    return out;
}

std::optional<std::string> find_program(const std::string &name)
{
    if (name.empty())
        return std::nullopt;
    if (name.find('/') != std::string::npos)
        return name;
    const char *env = std::getenv("PATH");
    std::string path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= path.size()) {
        size_t colon = path.find(':', start);
        std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        std::string cand = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(cand.c_str(), X_OK) == 0)
            return cand;
        if (colon == std::string::npos)
            break;
        start = colon + 1;
    }
    return std::nullopt;
}

std::string describe_wait_status(int st)
{
    if (WIFEXITED(st))
        return "exited with status " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st))
        return "killed by signal " + std::to_string(WTERMSIG(st)) + " (" + strsignal(WTERMSIG(st)) + ")";
    return "stopped";
}

std::string CommandResult::describe() const
{
    if (end == ChildEnd::Exited && exit_code)
        return "exited with status " + std::to_string(*exit_code);
    if (end == ChildEnd::Signaled && signal)
        return "killed by signal " + std::to_string(*signal) + " (" + strsignal(*signal) + ")";
    return std::string(kChildEnds[size_t(end)].name);
}

Result<std::unique_ptr<Subprocess>> Subprocess::spawn(const SpawnSpec &spec)
{
    if (spec.argv.empty())
        return Error{STOCKADE_RC_INTERNAL, "spawn: empty argv"};
    std::string exe = spec.argv[0];
    if (spec.search_path) {
        auto found = find_program(exe);
        if (!found)
            return Error{STOCKADE_RC_BAD_CONFIG, exec_failure(exe, "not found in PATH")};
        exe = *found;
    }
    std::unique_ptr<Subprocess> sp(new Subprocess(spec));
    ChildSetup setup = setup_for(spec);
    if (spec.stdout_to == ChildStream::Null || spec.stderr_to == ChildStream::Null)
        setup.devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    try {
        bp::pipe in, out, err;
        bp::environment env = spec.env ? bp::environment() : boost::this_process::environment();
        if (spec.env) {
            for (const auto &kv : *spec.env)
                if (auto eq = kv.find('='); eq != std::string::npos && eq > 0)
                    env[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        for (const auto &k : spec.env_unset)
            env.erase(k);
        for (const auto &[k, v] : spec.env_set)
            env[k] = v;
        std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
        bp::child c(bp::exe = exe, bp::args = args, env, bp::std_in < in, bp::std_out > out, bp::std_err > err,
                    bp::extend::on_exec_setup = [&setup](auto &) { apply_child_setup(setup, true); });
        sp->pid_ = c.id();
        c.detach(); // we reap it ourselves
        sp->in_ = ::dup(in.native_sink());
        if (spec.stdout_to == ChildStream::Pipe)
            sp->out_ = ::dup(out.native_source());
        if (spec.stderr_to == ChildStream::Pipe)
            sp->err_ = ::dup(err.native_source());
        // The parent's copies of the child's ends close when the bp::pipe objects go.
    } catch (const std::exception &e) {
        if (setup.devnull >= 0)
            ::close(setup.devnull);
        return Error{STOCKADE_RC_BAD_CONFIG, exec_failure(exe, e.what())};
    }
    if (setup.devnull >= 0)
        ::close(setup.devnull);
    if (!spec.new_session)
        ::setpgid(sp->pid_, sp->pid_); // also from the parent: the group exists before any kill
    sp->pidfd_ = open_pidfd(sp->pid_);
    for (int fd : {sp->in_, sp->out_, sp->err_})
        if (fd >= 0)
            set_nonblock_cloexec(fd);
    return sp;
}

Result<std::unique_ptr<Subprocess>> Subprocess::fork_function(const SpawnSpec &spec, const std::function<int()> &body)
{
    const std::string name = spec.argv.empty() ? "child" : spec.argv[0];
    std::unique_ptr<Subprocess> sp(new Subprocess(spec));
    ChildSetup setup = setup_for(spec);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    auto close_all = [&] {
        for (int *p : {in, out, err})
            for (int i : {0, 1})
                close_fd(p[i]);
        close_fd(setup.devnull);
    };
    bool ok = ::pipe2(in, O_CLOEXEC) == 0;
    ok = ok && (spec.stdout_to != ChildStream::Pipe || ::pipe2(out, O_CLOEXEC) == 0);
    ok = ok && (spec.stderr_to != ChildStream::Pipe || ::pipe2(err, O_CLOEXEC) == 0);
    if (ok && (spec.stdout_to == ChildStream::Null || spec.stderr_to == ChildStream::Null)) {
        setup.devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        ok = setup.devnull >= 0;
    }
    if (!ok) {
        int e = errno;
        close_all();
        return Error{STOCKADE_RC_INTERNAL, "cannot start " + name + ": " + std::strerror(e)};
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        close_all();
        return Error{STOCKADE_RC_INTERNAL, "cannot start " + name + ": fork: " + std::strerror(e)};
    }
    if (pid == 0) {
        enter_child(in[0], out[1], err[1], setup);
        int rc = 125;
        try {
            rc = body();
        } catch (...) {
        }
        ::_exit(rc);
    }
    if (!spec.new_session)
        ::setpgid(pid, pid);
    sp->pid_ = pid;
    sp->in_ = in[1];
    sp->out_ = out[0];
    sp->err_ = err[0];
    in[1] = out[0] = err[0] = -1;
    close_all();
    sp->pidfd_ = open_pidfd(pid);
    for (int fd : {sp->in_, sp->out_, sp->err_})
        if (fd >= 0)
            set_nonblock_cloexec(fd);
    return sp;
}

Result<std::unique_ptr<Subprocess>> Subprocess::adopt(pid_t pid, int in, int out, int err, const SpawnSpec &spec,
                                                     Reaper reap)
{
    std::unique_ptr<Subprocess> sp(new Subprocess(spec));
    sp->pid_ = pid;
    sp->in_ = in;
    sp->out_ = out;
    sp->err_ = err;
    sp->reaper_ = std::move(reap);
    for (int fd : {sp->in_, sp->out_, sp->err_})
        if (fd >= 0)
            set_nonblock_cloexec(fd);
    sp->pidfd_ = open_pidfd(pid);
    if (sp->pidfd_ < 0) {
        sp->unknown_ = true; // not ours to wait for: never signal its group by number
        return Error{STOCKADE_RC_INTERNAL, std::string("pidfd_open: ") + std::strerror(errno)};
    }
    return sp;
}

Subprocess::~Subprocess()
{
    close_fd(in_);
    if (!released_ && !status_ && !unknown_)
        kill_tree();
    close_fd(out_);
    close_fd(err_);
    close_fd(pidfd_);
}

void Subprocess::release()
{
    released_ = true;
    in_ = -1; // deliberately left open: the child's EOF on stdin means we are gone
    close_fd(out_);
    close_fd(err_);
    close_fd(pidfd_);
}

Status Subprocess::write_all(std::string_view data, int64_t deadline_ms)
{
    SigpipeGuard guard;
    while (!data.empty()) {
        if (in_ < 0)
            return Error{STOCKADE_RC_INTERNAL, "child stdin closed"};
        ssize_t n = ::write(in_, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(size_t(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return Error{STOCKADE_RC_INTERNAL, std::string("write to child: ") + std::strerror(errno)};
        if (past(deadline_ms))
            return Error{STOCKADE_RC_TIMEOUT, "timed out writing to child"};
        pollfd p{in_, POLLOUT, 0};
        ::poll(&p, 1, poll_slice(deadline_ms));
    }
    return {};
}

void Subprocess::close_stdin() { close_fd(in_); }

// Reads what is available from fd into buf (up to the cap); returns false on EOF (and closes fd).
bool Subprocess::drain_fd(int &fd, std::string &buf, bool is_err)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = ::read(fd, tmp, sizeof tmp);
        if (n > 0) {
            size_t room = buf.size() < cap_ ? cap_ - buf.size() : 0;
            buf.append(tmp, std::min(room, size_t(n)));
            if (size_t(n) > room)
                (is_err ? err_truncated_ : out_truncated_) = true;
            if (is_err && on_stderr) {
                size_t nl;
                while ((nl = buf.find('\n')) != std::string::npos) {
                    on_stderr(std::string_view(buf).substr(0, nl));
                    buf.erase(0, nl + 1);
                }
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (is_err && on_stderr && !buf.empty()) {
            on_stderr(buf);
            buf.clear();
        }
        close_fd(fd);
        ::explicit_bzero(tmp, sizeof tmp);
        return false;
    }
    ::explicit_bzero(tmp, sizeof tmp); // a password script's answer passes through here
    return true;
}

Subprocess::Read Subprocess::read_line(std::string &line, int64_t deadline_ms, const Cancel &cancel)
{
    for (;;) {
        if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
            line = out_buf_.substr(0, nl);
            out_buf_.erase(0, nl + 1);
            return Read::Line;
        }
        if (out_ < 0)
            return Read::Eof;
        if (cancel())
            return Read::Cancelled;
        if (past(deadline_ms))
            return Read::Timeout;
        pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
        nfds_t np = err_ >= 0 ? 2 : 1;
        if (::poll(p, np, poll_slice(deadline_ms)) <= 0)
            continue;
        if (np == 2 && p[1].revents)
            drain_fd(err_, err_buf_, true);
        if (p[0].revents)
            drain_fd(out_, out_buf_, false);
    }
}

Subprocess::Read Subprocess::read_all(std::string &out, std::string &err, int64_t deadline_ms, const Cancel &cancel)
{
    for (;;) {
        if (out_ < 0 && err_ < 0) {
            out += out_buf_;
            err += err_buf_;
            out_buf_.clear();
            err_buf_.clear();
            return Read::Eof;
        }
        if (cancel())
            return Read::Cancelled;
        if (past(deadline_ms))
            return Read::Timeout;
        pollfd p[2];
        nfds_t np = 0;
        if (out_ >= 0)
            p[np++] = {out_, POLLIN, 0};
        if (err_ >= 0)
            p[np++] = {err_, POLLIN, 0};
        if (::poll(p, np, poll_slice(deadline_ms)) <= 0)
            continue;
        for (nfds_t i = 0; i < np; ++i)
            if (p[i].revents)
                p[i].fd == out_ ? drain_fd(out_, out_buf_, false) : drain_fd(err_, err_buf_, false);
    }
}

// True while the leader is alive or an unreaped zombie: only then does its pid still name our
// process group.  ECHILD (someone else reaped it, e.g. SIGCHLD ignored) means it no longer does.
bool Subprocess::leader_unreaped() const
{
    if (pid_ <= 0 || status_ || unknown_)
        return false;
    if (reaper_)
        return true; // its parent reaps it only when we ask
    siginfo_t si{};
    return ::waitid(P_PID, id_t(pid_), &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

void Subprocess::reap(bool blocking)
{
    if (status_ || unknown_ || pid_ <= 0)
        return;
    if (reaper_) {
        pollfd p{pidfd_, POLLIN, 0};
        if (::poll(&p, 1, blocking ? -1 : 0) <= 0)
            return;
        status_ = reaper_(pid_);
        unknown_ = !status_;
        return;
    }
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, blocking ? 0 : WNOHANG);
        if (r == pid_) {
            status_ = st;
            return;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            unknown_ = true; // ECHILD: its exit status is lost -- never read as success
        return;
    }
}

std::optional<int> Subprocess::wait(int64_t deadline_ms)
{
    while (!status_ && !unknown_) {
        bool exited = false;
        if (pidfd_ >= 0) {
            pollfd p{pidfd_, POLLIN, 0};
            exited = ::poll(&p, 1, 0) > 0;
        } else {
            siginfo_t si{};
            int r = ::waitid(P_PID, id_t(pid_), &si, WEXITED | WNOHANG | WNOWAIT);
            exited = r != 0 || si.si_pid == pid_;
        }
        if (exited) {
            if (on_exit_ == OnExit::KillGroup && leader_unreaped())
                ::kill(-pid_, SIGKILL); // leftovers, while the zombie leader still pins the group id
            reap(true);
            break;
        }
        if (past(deadline_ms))
            return std::nullopt;
        if (pidfd_ >= 0) {
            pollfd p{pidfd_, POLLIN, 0};
            ::poll(&p, 1, deadline_ms > 0 ? int(std::clamp<int64_t>(deadline_ms - monotonic_ms(), 0, 1000)) : 1000);
        } else {
            ::usleep(5000);
        }
    }
    return status_;
}

ChildEnd Subprocess::end() const
{
    if (unknown_)
        return ChildEnd::Unknown;
    if (!status_)
        return ChildEnd::TimedOut;
    return WIFEXITED(*status_) ? ChildEnd::Exited : ChildEnd::Signaled;
}

void Subprocess::kill_tree()
{
    if (pid_ <= 0 || released_)
        return;
    const bool ours = leader_unreaped();
    const pid_t group = ours ? pid_ : 0;
    // Freeze first: everything found is SIGSTOPped, so nothing forks away while we look; look
    // again from everything found (a child that called setsid() is still a descendant) until
    // nothing new turns up.
    std::map<pid_t, unsigned long long> seen;
    if (ours)
        ::kill(-pid_, SIGSTOP);
    for (int round = 0; round < kFreezeRounds; ++round) {
        std::vector<pid_t> roots;
        if (ours)
            roots.push_back(pid_);
        for (const auto &[p, t] : seen)
            roots.push_back(p);
        bool grew = false;
        for (const auto &[p, st] : collect_tree(roots, group)) {
            if (seen.emplace(p, st.start_time).second) {
                ::kill(p, SIGSTOP);
                grew = true;
            }
        }
        if (!grew)
            break;
    }
    if (ours)
        ::kill(-pid_, SIGKILL);
    for (const auto &[p, t] : seen)
        if (same_process(p, t))
            ::kill(p, SIGKILL);
    if (!status_ && !unknown_) {
        wait(monotonic_ms() + kReapAfterKillMs);
        reap(false);
    }
    for (int round = 0; round < kGoneRounds; ++round) {
        bool left = false;
        for (const auto &[p, t] : seen)
            if (same_process(p, t)) {
                ::kill(p, SIGKILL);
                left = true;
            }
        for (const auto &[p, st] : collect_tree({}, group)) {
            ::kill(p, SIGKILL);
            left = true;
        }
        if (!left)
            break;
        ::usleep(5000);
    }
}

CommandResult Subprocess::communicate(std::string_view input, int64_t deadline_ms, const Cancel &cancel)
{
    CommandResult res;
    SigpipeGuard guard;
    if (input.empty())
        close_stdin();
    int64_t exited_at = -1;
    bool killed = false;
    for (;;) {
        const bool exited = exited_at >= 0;
        if (exited && out_ < 0 && err_ < 0)
            break;
        if (!exited && (past(deadline_ms) || cancel())) {
            res.cancelled = cancel();
            res.timed_out = !res.cancelled;
            kill_tree();
            killed = true;
            break;
        }
        if (exited && (monotonic_ms() - exited_at > kLeftoverGraceMs || past(deadline_ms))) {
            kill_tree(); // something it left behind still holds our pipes
            break;
        }
        pollfd p[4];
        int *fds[4];
        nfds_t np = 0;
        if (in_ >= 0) {
            p[np] = {in_, POLLOUT, 0};
            fds[np++] = &in_;
        }
        if (out_ >= 0) {
            p[np] = {out_, POLLIN, 0};
            fds[np++] = &out_;
        }
        if (err_ >= 0) {
            p[np] = {err_, POLLIN, 0};
            fds[np++] = &err_;
        }
        if (!exited && pidfd_ >= 0) {
            p[np] = {pidfd_, POLLIN, 0};
            fds[np++] = &pidfd_;
        }
        int slice = exited ? int(std::clamp<int64_t>(kLeftoverGraceMs - (monotonic_ms() - exited_at), 0, kPollSliceMs))
                           : poll_slice(deadline_ms);
        int n = ::poll(p, np, pidfd_ >= 0 ? slice : std::min(slice, 5));
        bool leader_done = false;
        if (n > 0) {
            for (nfds_t i = 0; i < np; ++i) {
                if (!p[i].revents)
                    continue;
                if (fds[i] == &in_) {
                    ssize_t w = ::write(in_, input.data(), input.size());
                    if (w > 0)
                        input.remove_prefix(size_t(w));
                    if ((w < 0 && errno != EAGAIN && errno != EINTR) || input.empty())
                        close_stdin(); // done, or it stopped reading (EPIPE): not an error by itself
                } else if (fds[i] == &out_) {
                    drain_fd(out_, out_buf_, false);
                } else if (fds[i] == &err_) {
                    drain_fd(err_, err_buf_, false);
                } else {
                    leader_done = true;
                }
            }
        }
        if (!exited && pidfd_ < 0) {
            siginfo_t si{};
            int r = ::waitid(P_PID, id_t(pid_), &si, WEXITED | WNOHANG | WNOWAIT);
            leader_done = r != 0 || si.si_pid == pid_;
        }
        if (leader_done && !exited) {
            exited_at = monotonic_ms();
            close_stdin();
            if (on_exit_ == OnExit::KillGroup && leader_unreaped())
                ::kill(-pid_, SIGKILL); // leftovers go before the leader is reaped
        }
    }
    if (!killed)
        reap(true);
    res.out = std::move(out_buf_);
    res.err = std::move(err_buf_);
    out_buf_.clear();
    err_buf_.clear();
    res.out_truncated = out_truncated_;
    res.err_truncated = err_truncated_;
    if (killed) {
        res.end = res.cancelled ? ChildEnd::Cancelled : ChildEnd::TimedOut;
        return res;
    }
    res.end = end();
    if (status_ && WIFEXITED(*status_))
        res.exit_code = WEXITSTATUS(*status_);
    else if (status_ && WIFSIGNALED(*status_))
        res.signal = WTERMSIG(*status_);
    return res;
}

Result<CommandResult> run_command_until(const SpawnSpec &spec, std::string_view input, int64_t deadline_ms,
                                        const Cancel &cancel)
{
    auto sp = Subprocess::spawn(spec);
    if (!sp)
        return sp.error();
    return sp.value()->communicate(input, deadline_ms, cancel);
}

Result<CommandResult> run_command(const SpawnSpec &spec, std::string_view input, std::chrono::milliseconds timeout,
                                  const Cancel &cancel)
{
    return run_command_until(spec, input, monotonic_ms() + timeout.count(), cancel);
}

} // namespace stockade
