// process.cpp -- spawning with Boost.Process, pipes polled to our own deadline, tree kills.
#include "stockade/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <pthread.h>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#include <sys/syscall.h>

namespace bp = boost::process;

namespace stockade {

int64_t monotonic_ms()
{
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

void set_nonblock(int fd)
{
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void close_fd(int &fd)
{
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

int poll_timeout(int64_t deadline_ms)
{
    int64_t left = deadline_ms - monotonic_ms();
    if (left < 0)
        left = 0;
    return int(std::min<int64_t>(left, 50)); // wake regularly to check cancellation
}

// Parent pid and process group of a live process, from /proc/<pid>/stat.
bool read_stat(pid_t pid, pid_t &ppid, pid_t &pgid)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s))
        return false;
    auto rp = s.rfind(')');
    if (rp == std::string::npos)
        return false;
    char state = 0;
    int pp = 0, pg = 0;
    if (std::sscanf(s.c_str() + rp + 1, " %c %d %d", &state, &pp, &pg) != 3)
        return false;
    if (state == 'Z' || state == 'X')
        return false;
    ppid = pp;
    pgid = pg;
    return true;
}

} // namespace

std::vector<pid_t> process_tree(pid_t root, pid_t pgid)
{
    std::vector<std::pair<pid_t, std::pair<pid_t, pid_t>>> procs; // pid -> (ppid, pgid)
    if (DIR *d = ::opendir("/proc")) {
        while (dirent *e = ::readdir(d)) {
            char *end = nullptr;
            long p = std::strtol(e->d_name, &end, 10);
            if (!end || *end || p <= 0)
                continue;
            pid_t pp, pg;
            if (read_stat(pid_t(p), pp, pg))
                procs.push_back({pid_t(p), {pp, pg}});
        }
        ::closedir(d);
    }
    std::set<pid_t> tree;
    if (root > 0)
        tree.insert(root);
    bool grew = true;
    while (grew) {
        grew = false;
        for (const auto &[p, info] : procs) {
            if (tree.count(p))
                continue;
            if (tree.count(info.first) || (pgid > 0 && info.second == pgid)) {
                tree.insert(p);
                grew = true;
            }
        }
    }
    tree.erase(::getpid());
    return {tree.begin(), tree.end()};
}

Result<std::unique_ptr<Subprocess>> Subprocess::spawn(const SpawnSpec &spec)
{
    if (spec.argv.empty())
        return make_error(STOCKADE_RC_INTERNAL, "spawn: empty argv");
    std::unique_ptr<Subprocess> sp(new Subprocess());
    try {
        bp::pipe in, out, err;
        bp::environment env = boost::this_process::environment();
        for (const auto &k : spec.env_unset)
            env.erase(k);
        for (const auto &[k, v] : spec.env_set)
            env[k] = v;
        std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
        bp::child c(bp::exe = spec.argv[0], bp::args = args, env, bp::std_in < in, bp::std_out > out,
                    bp::std_err > err, bp::extend::on_exec_setup = [](auto &) {
                        ::setpgid(0, 0);
                        // Nothing but stdio crosses exec: other sessions' pipes must not leak in.
                        ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
                        ::signal(SIGPIPE, SIG_DFL);
                    });
        sp->pid_ = c.id();
        c.detach(); // we reap it ourselves
        sp->in_ = ::dup(in.native_sink());
        sp->out_ = ::dup(out.native_source());
        sp->err_ = ::dup(err.native_source());
        for (int fd : {sp->in_, sp->out_, sp->err_})
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        set_nonblock(sp->out_);
        set_nonblock(sp->err_);
        set_nonblock(sp->in_);
        // The parent's copies of the child's ends close when the bp::pipe objects go.
    } catch (const std::exception &e) {
        return make_error(STOCKADE_RC_INTERNAL, "cannot start {}: {}", spec.argv[0], e.what());
    }
    ::setpgid(sp->pid_, sp->pid_); // also from the parent, to close the race with an early kill
    return sp;
}

Subprocess::~Subprocess()
{
    close_fd(in_);
    if (!status_)
        kill_tree();
    close_fd(out_);
    close_fd(err_);
}

namespace {

// A child that exits without reading its stdin must not kill us with SIGPIPE.  Library code may
// not change the process's signal dispositions, so SIGPIPE is blocked for this thread around
// the write and a pending one is consumed before the mask is restored.
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

private:
    sigset_t old_, pending_before_;
};

} // namespace

Status Subprocess::write_all(std::string_view data, int64_t deadline_ms)
{
    SigpipeGuard guard;
    while (!data.empty()) {
        if (in_ < 0)
            return make_error(STOCKADE_RC_INTERNAL, "child stdin closed");
        ssize_t n = ::write(in_, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(size_t(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return make_error(STOCKADE_RC_INTERNAL, "write to child: {}", std::strerror(errno));
        if (monotonic_ms() >= deadline_ms)
            return make_error(STOCKADE_RC_TIMEOUT, "timed out writing to child");
        pollfd p{in_, POLLOUT, 0};
        ::poll(&p, 1, poll_timeout(deadline_ms));
    }
    return {};
}

void Subprocess::close_stdin() { close_fd(in_); }

// Reads what is available from fd into buf; returns false on EOF (and closes fd).
bool Subprocess::drain_fd(int &fd, std::string &buf, bool is_err)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = ::read(fd, tmp, sizeof tmp);
        if (n > 0) {
            buf.append(tmp, size_t(n));
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
            return true;
        if (is_err && on_stderr && !buf.empty()) {
            on_stderr(buf);
            buf.clear();
        }
        close_fd(fd);
        return false;
    }
}

Subprocess::Read Subprocess::read_line(std::string &line, int64_t deadline_ms, const std::atomic<bool> *cancel)
{
    for (;;) {
        if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
            line = out_buf_.substr(0, nl);
            out_buf_.erase(0, nl + 1);
            return Read::Line;
        }
        if (out_ < 0)
            return Read::Eof;
        if (cancel && cancel->load())
            return Read::Cancelled;
        if (monotonic_ms() >= deadline_ms)
            return Read::Timeout;
        pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
        int np = err_ >= 0 ? 2 : 1;
        int r = ::poll(p, nfds_t(np), poll_timeout(deadline_ms));
        if (r <= 0)
            continue;
        if (np == 2 && p[1].revents)
            drain_fd(err_, err_buf_, true);
        if (p[0].revents)
            drain_fd(out_, out_buf_, false);
    }
}

Subprocess::Read Subprocess::read_all(std::string &out, std::string &err, int64_t deadline_ms,
                                      const std::atomic<bool> *cancel)
{
    for (;;) {
        if (out_ < 0 && err_ < 0) {
            out += out_buf_;
            err += err_buf_;
            out_buf_.clear();
            err_buf_.clear();
            return Read::Eof;
        }
        if (cancel && cancel->load())
            return Read::Cancelled;
        if (monotonic_ms() >= deadline_ms)
            return Read::Timeout;
        pollfd p[2];
        nfds_t np = 0;
        int *fds[2];
        std::string *bufs[2];
        if (out_ >= 0) {
            p[np] = {out_, POLLIN, 0};
            fds[np] = &out_;
            bufs[np++] = &out_buf_;
        }
        if (err_ >= 0) {
            p[np] = {err_, POLLIN, 0};
            fds[np] = &err_;
            bufs[np++] = &err_buf_;
        }
        if (::poll(p, np, poll_timeout(deadline_ms)) <= 0)
            continue;
        for (nfds_t i = 0; i < np; ++i)
            if (p[i].revents)
                drain_fd(*fds[i], *bufs[i], false);
    }
}

std::optional<int> Subprocess::wait(int64_t deadline_ms)
{
    while (!status_) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = st;
            break;
        }
        if (r < 0 && errno != EINTR) {
            status_ = 0;
            break;
        }
        if (monotonic_ms() >= deadline_ms)
            return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
}

void Subprocess::kill_tree()
{
    if (pid_ <= 0)
        return;
    // Snapshot the tree while the links through the child still exist (once it dies, orphans
    // are re-parented away), kill it all, then re-scan until the group and every process seen
    // are gone: a process forking while we kill would otherwise slip through.
    auto tree = process_tree(status_ ? -1 : pid_, pid_);
    ::kill(-pid_, SIGKILL);
    for (pid_t p : tree)
        ::kill(p, SIGKILL);
    if (!status_)
        wait(monotonic_ms() + 2000);
    for (int round = 0; round < 200; ++round) {
        std::vector<pid_t> left = process_tree(-1, pid_);
        for (pid_t p : tree) {
            pid_t pp, pg;
            if (read_stat(p, pp, pg))
                left.push_back(p);
        }
        if (left.empty())
            break;
        for (pid_t p : left)
            ::kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

Result<CommandResult> run_command(const SpawnSpec &spec, std::string_view input, std::chrono::milliseconds timeout,
                                  const std::atomic<bool> *cancel)
{
    int64_t deadline = monotonic_ms() + timeout.count();
    auto sp = Subprocess::spawn(spec);
    if (!sp)
        return sp.error();
    auto &p = *sp.value();
    CommandResult res;
    if (auto w = p.write_all(input, deadline); !w) {
        // A child that exits without reading its input is not an error by itself.
    }
    p.close_stdin();
    auto r = p.read_all(res.out, res.err, deadline, cancel);
    if (r == Subprocess::Read::Timeout || r == Subprocess::Read::Cancelled) {
        res.timed_out = r == Subprocess::Read::Timeout;
        res.cancelled = r == Subprocess::Read::Cancelled;
        p.kill_tree();
        return res;
    }
    auto st = p.wait(deadline);
    if (!st) {
        res.timed_out = true;
        p.kill_tree();
        return res;
    }
    if (WIFEXITED(*st))
        res.exit_code = WEXITSTATUS(*st);
    else if (WIFSIGNALED(*st))
        res.signal = WTERMSIG(*st);
    return res;
}

} // namespace stockade
