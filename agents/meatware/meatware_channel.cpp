// meatware_channel.cpp -- see meatware_channel.hpp.  Pure functions plus /proc and /run scans;
// shared by the agent (.so) and stockade-meatclient, so it depends on nothing but libc/libstdc++.
#include "meatware_channel.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/syscall.h>
#include <unistd.h>

namespace stockade::meatware {

namespace {

bool is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string read_small_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct DirCloser {
    void operator()(DIR *d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; ++s)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

// Access mode of descriptor `fd` of `pid`, from the octal "flags:" line of fdinfo; -1 if unknown.
int fd_access_mode(const std::string &pid, const std::string &fd)
{
    std::istringstream in(read_small_file("/proc/" + pid + "/fdinfo/" + fd));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags:", 0) == 0) {
            long flags = std::strtol(line.c_str() + 6, nullptr, 8);
            return int(flags & O_ACCMODE);
        }
    }
    return -1;
}

// When `pid` is blocked inside open()/openat() of `path`, the access mode it asked for; else -1.
// The path argument is read from the process's memory at the address /proc/<pid>/syscall shows.
int blocked_open_mode(const std::string &pid, const std::string &path)
{
    std::istringstream in(read_small_file("/proc/" + pid + "/syscall"));
    long nr = -1;
    std::string a[4];
    if (!(in >> nr >> a[0] >> a[1] >> a[2] >> a[3]))
        return -1; // "running", or not ours to see
    unsigned long long path_arg = 0, flags_arg = 0;
    if (nr == SYS_openat) {
        path_arg = std::strtoull(a[1].c_str(), nullptr, 16);
        flags_arg = std::strtoull(a[2].c_str(), nullptr, 16);
    }
#ifdef SYS_open
    else if (nr == SYS_open) {
        path_arg = std::strtoull(a[0].c_str(), nullptr, 16);
        flags_arg = std::strtoull(a[1].c_str(), nullptr, 16);
    }
#endif
    else
        return -1;
    int fd = ::open(("/proc/" + pid + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    // Never read across a page boundary in one go: the next page may be unmapped.
    std::string got;
    unsigned long long addr = path_arg;
    while (got.size() <= path.size()) {
        char buf[256];
        size_t chunk = std::min<size_t>(sizeof buf, 4096 - (addr % 4096));
        ssize_t n = ::pread(fd, buf, chunk, off_t(addr));
        if (n <= 0)
            break;
        got.append(buf, size_t(n));
        addr += static_cast<unsigned long long>(n);
        if (got.find('\0') != std::string::npos)
            break;
    }
    ::close(fd);
    if (auto nul = got.find('\0'); nul != std::string::npos)
        got.resize(nul);
    else
        return -1;
    if (!got.empty() && got[0] != '/') {
        char cwd[4096];
        ssize_t n = ::readlink(("/proc/" + pid + "/cwd").c_str(), cwd, sizeof cwd - 1);
        if (n <= 0)
            return -1;
        got = std::string(cwd, size_t(n)) + "/" + got;
    }
    return got == path ? int(flags_arg & O_ACCMODE) : -1;
}

} // namespace

std::string host_name_problem(std::string_view host)
{
    if (host.empty())
        return "is empty";
    if (host.size() > kMaxHostLength)
        return "is longer than " + std::to_string(kMaxHostLength) + " characters";
    if (host == ".")
        return "is '.'";
    if (host.find("..") != std::string_view::npos)
        return "contains '..'";
    for (char c : host) {
        auto u = static_cast<unsigned char>(c);
        if (c == '/')
            return "contains '/'";
        if (is_ascii_space(c))
            return "contains whitespace";
        if (u < 0x20 || u == 0x7f)
            return "contains a control character";
        if (u > 0x7f)
            return "contains a non-ASCII byte";
    }
    return {};
}

std::string fifo_path(std::string_view lower_host)
{
    std::string p(kRunDir);
    p += '/';
    p += kFifoPrefix;
    p += lower_host;
    return p;
}

std::array<char, kMessageSize> build_reply(std::string_view lower_host)
{
    std::array<char, kMessageSize> msg{}; // zero-filled: the padding is NULs, never stack garbage
    std::string text(kReplyWord1);
    text += ' ';
    text += kReplyWord2;
    text += ' ';
    text += lower_host.substr(0, kMaxHostLength);
    std::memcpy(msg.data(), text.data(), std::min(text.size(), kMessageSize - 1));
    return msg;
}

ParsedReply parse_reply(std::string_view bytes, std::string_view expected_lower_host)
{
    ParsedReply r;
    if (auto nul = bytes.find('\0'); nul != std::string_view::npos)
        bytes = bytes.substr(0, nul);
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < bytes.size()) {
        while (i < bytes.size() && is_ascii_space(bytes[i]))
            ++i;
        size_t start = i;
        while (i < bytes.size() && !is_ascii_space(bytes[i]))
            ++i;
        if (i > start)
            words.push_back(bytes.substr(start, i - start));
    }
    if (words.size() != 3 || words[0] != kReplyWord1 || words[1] != kReplyWord2) {
        r.problem = "not a meatware reply (expected \"meatware reply <host>\")";
        return r;
    }
    r.named_host = ascii_lower(words[2]);
    if (!host_name_problem(r.named_host).empty()) {
        r.named_host = "?";
        r.problem = "the reply names an invalid host";
        return r;
    }
    if (r.named_host != ascii_lower(expected_lower_host)) {
        r.verdict = ReplyVerdict::OtherHost;
        r.problem = "the reply confirms '" + r.named_host + "', not '" + std::string(expected_lower_host) + "'";
        return r;
    }
    r.verdict = ReplyVerdict::Confirmed;
    return r;
}

bool message_complete(std::string_view bytes)
{
    return bytes.size() >= kMessageSize || bytes.find('\0') != std::string_view::npos ||
           bytes.find('\n') != std::string_view::npos;
}

std::string fifo_problem(const struct stat &st, uid_t owner)
{
    if (!S_ISFIFO(st.st_mode))
        return "is not a FIFO";
    if (st.st_uid != owner)
        return "is owned by uid " + std::to_string(st.st_uid) + ", not uid " + std::to_string(owner);
    if ((st.st_mode & 07777) != kFifoMode) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%04o", unsigned(st.st_mode & 07777));
        return std::string("has mode ") + buf + ", not 0600";
    }
    return {};
}

std::vector<FifoHolder> processes_holding(dev_t dev, ino_t ino, const std::string &path, pid_t exclude)
{
    std::vector<FifoHolder> out;
    DirPtr proc(::opendir("/proc"));
    if (!proc)
        return out;
    while (dirent *pe = ::readdir(proc.get())) {
        if (!all_digits(pe->d_name))
            continue;
        pid_t pid = pid_t(std::strtol(pe->d_name, nullptr, 10));
        if (pid == exclude)
            continue;
        std::string fd_dir = std::string("/proc/") + pe->d_name + "/fd";
        DirPtr fds(::opendir(fd_dir.c_str()));
        if (!fds)
            continue; // gone, or not ours to see
        FifoHolder h;
        bool found = false;
        if (int mode = blocked_open_mode(pe->d_name, path); mode >= 0) {
            found = h.blocked_in_open = true;
            h.reads = mode == O_RDONLY || mode == O_RDWR;
            h.writes = mode == O_WRONLY || mode == O_RDWR;
        }
        while (dirent *fe = ::readdir(fds.get())) {
            if (!all_digits(fe->d_name))
                continue;
            struct stat st {};
            if (::stat((fd_dir + "/" + fe->d_name).c_str(), &st) != 0)
                continue;
            if (st.st_dev != dev || st.st_ino != ino)
                continue;
            found = true;
            int mode = fd_access_mode(pe->d_name, fe->d_name);
            h.reads |= mode == O_RDONLY || mode == O_RDWR;
            h.writes |= mode == O_WRONLY || mode == O_RDWR;
        }
        if (!found)
            continue;
        h.pid = pid;
        struct stat pst {};
        if (::stat((std::string("/proc/") + pe->d_name).c_str(), &pst) == 0)
            h.uid = pst.st_uid;
        h.command = read_small_file(std::string("/proc/") + pe->d_name + "/comm");
        while (!h.command.empty() && (h.command.back() == '\n' || h.command.back() == '\r'))
            h.command.pop_back();
        out.push_back(std::move(h));
    }
    std::sort(out.begin(), out.end(), [](const FifoHolder &a, const FifoHolder &b) { return a.pid < b.pid; });
    return out;
}

bool PendingRequest::has_waiter() const
{
    return std::any_of(holders.begin(), holders.end(), [](const FifoHolder &h) { return h.reads; });
}

std::vector<PendingRequest> pending_requests(std::string *error)
{
    std::vector<PendingRequest> out;
    std::string dir(kRunDir);
    DirPtr d(::opendir(dir.c_str()));
    if (!d) {
        if (error)
            *error = "cannot read " + dir + ": " + std::strerror(errno);
        return out;
    }
    while (dirent *e = ::readdir(d.get())) {
        std::string_view name(e->d_name);
        if (name.size() <= kFifoPrefix.size() || name.substr(0, kFifoPrefix.size()) != kFifoPrefix)
            continue;
        PendingRequest r;
        r.path = dir + "/" + std::string(name);
        r.host = std::string(name.substr(kFifoPrefix.size()));
        for (char &c : r.host)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                c = '?';
        struct statx sx {};
        if (::statx(AT_FDCWD, r.path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
            continue; // vanished meanwhile
        struct stat st {};
        if (::lstat(r.path.c_str(), &st) != 0)
            continue;
        r.since = (sx.stx_mask & STATX_BTIME) ? std::time_t(sx.stx_btime.tv_sec) : st.st_ctime;
        r.problem = fifo_problem(st, 0);
        if (S_ISFIFO(st.st_mode))
            r.holders = processes_holding(st.st_dev, st.st_ino, r.path);
        out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const PendingRequest &a, const PendingRequest &b) {
        return a.since != b.since ? a.since < b.since : a.host < b.host;
    });
    return out;
}

std::string run_dir_problem()
{
    std::string dir(kRunDir);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return dir + ": " + std::strerror(errno);
    if (!S_ISDIR(st.st_mode))
        return dir + " is not a directory";
    if (st.st_uid != 0)
        return dir + " is owned by uid " + std::to_string(st.st_uid) + ", not root";
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return dir + " is writable by group or others";
    return {};
}

} // namespace stockade::meatware
