// node_lock.cpp -- one escalation per node at a time (see node_lock.hpp for the protocol).
#include "stockade/node_lock.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "stockade/process.hpp"
#include "stockade/text.hpp"
#include "strings.hpp"

namespace stockade {

namespace {

// FNV-1a: a short, stable name for the scope (a path or a cluster name) in a file name.
uint64_t fnv1a(std::string_view s)
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// The node as a file name: lower-case, anything outside [a-z0-9._-] as '_', plus a hash of the
// exact lower-case name so two names that map to the same text stay apart.
std::string file_stem(const std::string &scope, const std::string &node)
{
    std::string low = text::ascii_lower(node);
    std::string safe;
    for (char c : low)
        safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
    if (safe.size() > 64)
        safe.resize(64);
    return fmt::format("{:016x}-{}-{:08x}", fnv1a(scope), safe, uint32_t(fnv1a(low)));
}

std::string read_all(int fd)
{
    std::string out;
    char buf[512];
    if (::lseek(fd, 0, SEEK_SET) < 0)
        return out;
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        out.append(buf, size_t(n));
    return out;
}

std::string first_line(const std::string &s)
{
    return s.substr(0, s.find('\n'));
}

std::string new_token()
{
    std::random_device rd;
    return fmt::format("{}-{:08x}{:08x}", ::getpid(), rd(), rd());
}

pid_t pid_of_token(const std::string &token)
{
    return pid_t(std::atol(token.c_str()));
}

// The lock is ours: say who holds it, for waiters.  Empty, or why it could not be written (a full
// filesystem: the lock still holds, waiters just cannot see who holds it).
std::string write_token(int fd, const std::string &token, const std::string &path)
{
    // Written over the old token, then cut to length: never truncated to 0 first, because ext4
    // (a /run that is not a tmpfs) flushes a file emptied and rewritten to disk when it is closed
    // (auto_da_alloc).  Readers take the first line, so a moment of "new\nold tail" is harmless.
    std::string line = token + "\n";
    if (::pwrite(fd, line.data(), line.size(), 0) != ssize_t(line.size()) || ::ftruncate(fd, off_t(line.size())) != 0) {
        int e = errno;
        (void)!::ftruncate(fd, 0); // never half a token
        return fmt::format("cannot write to the lock {}: {}; a second request for this node will wait for this "
                           "fence but cannot share its outcome",
                           path, e ? std::strerror(e) : "short write");
    }
    return {};
}

std::optional<nlohmann::json> read_result(const std::string &path)
{
    std::ifstream f(path);
    if (!f)
        return std::nullopt;
    std::stringstream ss;
    ss << f.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (!j.is_object())
        return std::nullopt;
    return j;
}

} // namespace

std::string default_lock_dir()
{
    const char *d = std::getenv("STOCKADE_RUN_DIR");
    return d && *d ? std::string(d) : std::string("/run/stockade");
}

NodeLease::NodeLease(int fd, std::string result_path, std::string token)
    : fd_(fd), result_path_(std::move(result_path)), token_(std::move(token))
{
}

NodeLease::NodeLease(NodeLease &&o) noexcept
    : fd_(std::exchange(o.fd_, -1)), result_path_(std::move(o.result_path_)), token_(std::move(o.token_))
{
}

NodeLease &NodeLease::operator=(NodeLease &&o) noexcept
{
    if (this != &o) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        result_path_ = std::move(o.result_path_);
        token_ = std::move(o.token_);
    }
    return *this;
}

NodeLease::~NodeLease()
{
    if (fd_ >= 0)
        ::close(fd_); // closing the last descriptor releases the flock
}

Status NodeLease::finish(const std::string &action, bool success, const std::string &reason)
{
    if (fd_ < 0)
        return {};
    // Written beside, then renamed: a waiter never reads half an outcome.  Reasons carry agents'
    // words, so bytes that are not UTF-8 are replaced rather than thrown at.
    nlohmann::json j{{"token", token_}, {"pid", ::getpid()}, {"action", action}, {"success", success},
                     {"reason", reason}};
    std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::string tmp = result_path_ + ".tmp";
    int e = 0;
    int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (tfd < 0 || ::write(tfd, text.data(), text.size()) != ssize_t(text.size()))
        e = errno ? errno : ENOSPC;
    if (tfd >= 0 && ::close(tfd) != 0 && !e)
        e = errno;
    // The old outcome goes first: ext4 (a /run that is not a tmpfs) writes a file's data back to
    // disk at once when a rename replaces another file (auto_da_alloc), a few ms per fenced node.
    // We still hold the lock, so no waiter reads in between.
    if (!e && ::unlink(result_path_.c_str()) != 0 && errno != ENOENT)
        e = errno;
    if (!e && ::rename(tmp.c_str(), result_path_.c_str()) != 0)
        e = errno;
    if (e)
        ::unlink(tmp.c_str());
    ::close(fd_); // releases the flock: waiters go on, with the outcome or without it
    fd_ = -1;
    if (e)
        return make_error(STOCKADE_RC_INTERNAL,
                          "cannot record the outcome in {}: {}; a request that waited for this fence runs its own",
                          result_path_, std::strerror(e));
    return {};
}

Result<NodeLockResult> lock_node(const std::string &dir, const std::string &scope, const std::string &node,
                                 const std::string &action, int64_t deadline_ms, const std::atomic<bool> *cancel,
                                 const std::function<void(pid_t holder)> &on_wait)
{
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return make_error(STOCKADE_RC_INTERNAL, "cannot create the lock folder {}: {}", dir, ec.message());
    ::chmod(dir.c_str(), 0755);
    std::string stem = dir + "/" + file_stem(scope, node);
    std::string lock_path = stem + ".lock", result_path = stem + ".result";
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return make_error(STOCKADE_RC_INTERNAL, "cannot open the lock {}: {}", lock_path, std::strerror(errno));

    NodeLockResult out;
    std::string token = new_token();
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
        out.warning = write_token(fd, token, lock_path);
        out.lease = NodeLease(fd, result_path, token);
        return out;
    }
    // Someone is fencing this node: wait for the lock, learning who holds it from its token (it
    // writes it right after taking the lock; on a full filesystem it cannot, and then the wait
    // starts without a name after a moment).  The deadline and the cancel hold throughout.
    std::string holder;
    bool announced = false;
    const int64_t name_wait_until = monotonic_ms() + 500;
    for (;;) {
        // The token first: a holder that finishes right now leaves it there with its outcome.
        if (holder.empty())
            holder = trim(first_line(read_all(fd)));
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (!announced && (!holder.empty() || monotonic_ms() >= name_wait_until)) {
            announced = true;
            out.waited_for = pid_of_token(holder);
            if (on_wait)
                on_wait(out.waited_for);
        }
        std::string who = out.waited_for ? fmt::format("pid {}", out.waited_for) : std::string("another process");
        if (cancel && cancel->load()) {
            ::close(fd);
            return make_error(STOCKADE_RC_CANCELLED, "cancelled while waiting for the escalation of '{}' in {}", node,
                              who);
        }
        if (deadline_ms && monotonic_ms() >= deadline_ms) {
            ::close(fd);
            return make_error(STOCKADE_RC_TIMEOUT,
                              "'{}' is being fenced by {}; its outcome did not come within our own timeout", node, who);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(holder.empty() ? 10 : 50));
    }
    if (!announced) { // it finished before we looked twice
        out.waited_for = pid_of_token(holder);
        if (on_wait)
            on_wait(out.waited_for);
    }
    // The lock is ours now.  Did the one we waited for leave its outcome?
    auto r = read_result(result_path);
    if (r && !holder.empty() && r->value("token", "") == holder && r->value("action", "") == action) {
        SharedOutcome s;
        s.pid = pid_t(r->value("pid", 0));
        s.action = r->value("action", "");
        s.success = r->value("success", false);
        s.reason = r->value("reason", "");
        out.shared = std::move(s);
        ::close(fd);
        return out;
    }
    out.holder_vanished = !r || r->value("token", "") != holder;
    out.warning = write_token(fd, token, lock_path);
    out.lease = NodeLease(fd, result_path, token);
    return out;
}

} // namespace stockade
