// run_child.hpp -- the little process control that wrapper agents (foreign_fence, glue) need:
// start a program in its own process group with stdin/stdout/stderr on pipes, feed it its input,
// collect its output, and SIGKILL its whole tree when the agent's deadline passes.
//
// Why a header here instead of libstockade's Subprocess: agents must not link libstockade (an agent
// is a plain-C-ABI plugin loaded by any host; dragging the core's C++ objects, Boost and globals into
// every agent would tie agents to one build of the core and duplicate its singletons inside the
// agent host).  This is ~150 lines of POSIX, compiled into each agent that includes it, with hidden
// visibility, so there is nothing to keep in step.  Deliberately small: no shell, execve with a
// proper argv and an explicit environment, every other descriptor closed in the child.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"

namespace stockade_exec {

struct ChildResult {
    bool started = false;
    bool timed_out = false;
    bool cancelled = false;
    int exit_code = -1; // >= 0 when it exited normally
    int signal = 0;     // set when a signal ended it
    std::string out, err;
    std::string spawn_error; // why it could not start
};

// Every descendant of root (by walking /proc parent links), for killing children that left the group.
inline std::vector<pid_t> descendants(pid_t root)
{
    std::vector<std::pair<pid_t, pid_t>> all; // pid, ppid
    if (DIR *d = opendir("/proc")) {
        while (dirent *e = readdir(d)) {
            char *end = nullptr;
            long pid = std::strtol(e->d_name, &end, 10);
            if (!end || *end || pid <= 0)
                continue;
            char path[64];
            std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
            int fd = ::open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            char buf[512];
            ssize_t n = ::read(fd, buf, sizeof buf - 1);
            ::close(fd);
            if (n <= 0)
                continue;
            buf[n] = 0;
            const char *rp = std::strrchr(buf, ')');
            long ppid = 0;
            if (rp && std::sscanf(rp + 2, "%*c %ld", &ppid) == 1)
                all.emplace_back(pid_t(pid), pid_t(ppid));
        }
        closedir(d);
    }
    std::vector<pid_t> out{root};
    for (size_t i = 0; i < out.size(); ++i)
        for (const auto &[p, pp] : all)
            if (pp == out[i])
                out.push_back(p);
    out.erase(out.begin());
    return out;
}

inline void kill_tree(pid_t pid)
{
    for (pid_t d : descendants(pid))
        ::kill(d, SIGKILL);
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
}

// Runs argv[0] (a path; no PATH search) with exactly `env`, writing `input` to its stdin and
// closing it.  Stops at deadline_ms (CLOCK_MONOTONIC ms, 0 = none) or when cancelled() turns
// true, killing the process group and every descendant.
inline ChildResult run_child(const std::vector<std::string> &argv, const std::vector<std::string> &env,
                             const std::string &input, int64_t deadline_ms,
                             const std::function<bool()> &cancelled = {})
{
    ChildResult r;
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
        r.spawn_error = std::strerror(errno);
        return r;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        r.spawn_error = std::strerror(errno);
        ::close(in[0]);
        ::close(in[1]);
        return r;
    }
    // Everything the child needs is prepared before fork (no allocation after it).
    std::vector<char *> cargv, cenv;
    for (const auto &a : argv)
        cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto &e : env)
        cenv.push_back(const_cast<char *>(e.c_str()));
    cenv.push_back(nullptr);

    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        signal(SIGPIPE, SIG_DFL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execve(cargv[0], cargv.data(), cenv.data());
        const char msg[] = "exec failed\n";
        ssize_t w = ::write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (pid < 0) {
        r.spawn_error = std::strerror(errno);
        ::close(in[1]);
        ::close(out[0]);
        ::close(err[0]);
        return r;
    }
    setpgid(pid, pid); // both sides, so there is no race with an early kill
    r.started = true;

    int wfd = in[1];
    fcntl(wfd, F_SETFL, O_NONBLOCK);
    size_t written = 0;
    if (input.empty()) {
        ::close(wfd);
        wfd = -1;
    }
    int fds[2] = {out[0], err[0]};
    std::string *bufs[2] = {&r.out, &r.err};
    bool reaped = false;
    int status = 0;
    int64_t reaped_at = 0;
    for (;;) {
        if (!reaped) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                reaped_at = stockade_monotonic_ms();
            }
        }
        bool open_pipes = fds[0] >= 0 || fds[1] >= 0;
        // Done when it exited and its output is drained; stragglers holding the pipes get 1 s.
        if (reaped && (!open_pipes || stockade_monotonic_ms() - reaped_at > 1000))
            break;
        int64_t now = stockade_monotonic_ms();
        if ((deadline_ms > 0 && now >= deadline_ms) || (cancelled && cancelled())) {
            r.timed_out = !(cancelled && cancelled());
            r.cancelled = !r.timed_out;
            kill_tree(pid);
            if (!reaped)
                waitpid(pid, &status, 0);
            reaped = true;
            break;
        }
        pollfd p[3];
        int n = 0;
        int idx[3];
        for (int i = 0; i < 2; ++i)
            if (fds[i] >= 0) {
                p[n] = {fds[i], POLLIN, 0};
                idx[n++] = i;
            }
        if (wfd >= 0) {
            p[n] = {wfd, POLLOUT, 0};
            idx[n++] = 2;
        }
        int wait_ms = 50;
        if (n == 0) {
            usleep(20000);
            continue;
        }
        if (poll(p, nfds_t(n), wait_ms) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; ++k) {
            if (!p[k].revents)
                continue;
            if (idx[k] == 2) {
                // A program that exits without reading its input must not kill us with SIGPIPE:
                // block it for this write and swallow the one it raised (agents never install
                // signal handlers).
                sigset_t pipe_set, old_set;
                sigemptyset(&pipe_set);
                sigaddset(&pipe_set, SIGPIPE);
                pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
                ssize_t w = ::write(wfd, input.data() + written, input.size() - written);
                if (w < 0 && errno == EPIPE) {
                    timespec zero{0, 0};
                    sigtimedwait(&pipe_set, nullptr, &zero);
                }
                pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
                if (w > 0)
                    written += size_t(w);
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
                    ::close(wfd);
                    wfd = -1;
                }
                continue;
            }
            char buf[4096];
            ssize_t got = ::read(fds[idx[k]], buf, sizeof buf);
            if (got > 0)
                bufs[idx[k]]->append(buf, size_t(got));
            else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                ::close(fds[idx[k]]);
                fds[idx[k]] = -1;
            }
        }
    }
    // Something it left behind still holds our pipes after the grace period: that goes too.
    // (A program's background children that let go of the pipes are left alone, as fenced does.)
    if (!r.timed_out && !r.cancelled && (fds[0] >= 0 || fds[1] >= 0))
        kill_tree(pid);
    if (wfd >= 0)
        ::close(wfd);
    for (int fd : fds)
        if (fd >= 0)
            ::close(fd);
    if (!r.timed_out && !r.cancelled) {
        if (WIFEXITED(status))
            r.exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
            r.signal = WTERMSIG(status);
    }
    return r;
}

// The current environment minus `drop` names, plus `set` (NAME=value) entries.
inline std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>> &set,
                                                 const std::vector<std::string> &drop = {})
{
    std::vector<std::string> out;
    for (char **e = ::environ; e && *e; ++e) {
        std::string s = *e;
        std::string name = s.substr(0, s.find('='));
        bool skip = false;
        for (const auto &d : drop)
            skip = skip || d == name;
        for (const auto &kv : set)
            skip = skip || kv.first == name;
        if (!skip)
            out.push_back(std::move(s));
    }
    for (const auto &[k, v] : set)
        out.push_back(k + "=" + v);
    return out;
}

// Replaces every occurrence of each secret value in text by "***".
inline std::string mask_secrets(std::string text, const std::vector<std::string> &secrets)
{
    for (const auto &s : secrets) {
        if (s.empty())
            continue;
        for (size_t p = 0; (p = text.find(s, p)) != std::string::npos;) {
            text.replace(p, s.size(), "***");
            p += 3;
        }
    }
    return text;
}

// True for parameter names the host treats as secret for wrapper agents (see agent.h,
// STOCKADE_CAP_EXTRA_PARAMS), so the agent masks the same values in what it logs.
inline bool secret_name(std::string_view name)
{
    const std::string n = stockade::text::ascii_lower(name);
    return n.find("pass") != std::string::npos || n.find("secret") != std::string::npos || n == "k_g";
}

// Logs each non-empty line of the child's stdout, then stderr, at INFO as "<name> stdout: <line>"
// with secrets masked -- what both wrapper agents show of the program they ran.
inline void log_output(const stockade_ctx *ctx, const std::string &name, const ChildResult &r,
                       const std::vector<std::string> &secrets)
{
    for (const std::string *s : {&r.out, &r.err}) {
        size_t start = 0;
        while (start < s->size()) {
            size_t nl = s->find('\n', start);
            std::string line = s->substr(start, nl == std::string::npos ? std::string::npos : nl - start);
            start = nl == std::string::npos ? s->size() : nl + 1;
            if (!line.empty())
                stockade::agent::log(ctx, STOCKADE_LOG_INFO,
                                     name + (s == &r.out ? " stdout: " : " stderr: ") + mask_secrets(line, secrets));
        }
    }
}

} // namespace stockade_exec
