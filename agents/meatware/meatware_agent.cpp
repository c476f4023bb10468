// meatware_agent.cpp -- the "meatware" agent: the operator's last resort.
//
// When every automatic device has failed, the cluster must not guess.  This agent logs, once and
// at critical level, that a human has to power the node off by hand, then waits until that human
// confirms through the same named pipe cluster-glue's meatware plugin uses (/run/meatware.<host>,
// see meatware_channel.hpp), so Debian's `meatclient -c <host>` and our `stockade-meatclient`
// both work.  Unlike cluster-glue it never blocks in open() (the FIFO is opened O_NONBLOCK and
// polled), honours the deadline and cancellation, accepts only a whole-name match, refuses unsafe
// host names before building a path, and removes the FIFO on every way out.
//
// What a FIFO can and cannot tell us about the writer: a FIFO carries no sender credentials
// (no SO_PEERCRED), so the check happens at open() time: the FIFO is created 0600 and owned by
// us (root) in a root-owned directory, so only root (or CAP_DAC_OVERRIDE) can open it to write.
// While waiting we re-check that the path still names our FIFO and that its owner and mode are
// unchanged; a chmod/chown/replacement aborts the wait instead of trusting what follows.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "meatware_channel.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"

namespace mw = stockade::meatware;

namespace {

constexpr int64_t kPollStepMs = 100; // how often cancellation and FIFO integrity are re-checked

struct Meatware {
    std::vector<std::string> hosts; // lower-case, validated
    int64_t timeout_ms = 600 * 1000;
};

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "hostlist", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "pcmk_host_list hostnames",
     .description = "Nodes an operator may be asked to power off by hand (separated by spaces, commas or semicolons; case-insensitive)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "600",
     .aliases = "wait_timeout",
     .description = "Seconds to wait for the operator's confirmation (the device timeout also applies)"},
};

// How each supported action is put to the operator.
struct ActionWords {
    uint32_t action;
    const char *request; // what the operator must do
    const char *done;    // what the confirmation means
};
constexpr ActionWords kActionWords[] = {
    {STOCKADE_ACTION_OFF, "power off", "powered off"},
    {STOCKADE_ACTION_REBOOT, "power-cycle", "power-cycled"},
};

const ActionWords *action_words(uint32_t action)
{
    for (const auto &w : kActionWords)
        if (w.action == action)
            return &w;
    return nullptr;
}

using stockade::agent::set_err;
using stockade::agent::log;
using stockade::agent::cancelled;

std::string errno_text(int e)
{
    return std::strerror(e);
}

bool listed(const Meatware &m, const std::string &lower_host)
{
    for (const auto &h : m.hosts)
        if (h == lower_host)
            return true;
    return false;
}

// Validates and lower-cases a target; on failure fills errbuf and returns the rc.
uint32_t check_target(const Meatware &m, const stockade_ctx *ctx, const std::string &target, std::string &lower)
{
    const std::string &raw = target;
    if (auto why = mw::host_name_problem(raw); !why.empty()) {
        set_err(ctx, "meatware: refusing target name '" + mw::ascii_lower(raw.substr(0, 64)) + "': it " + why);
        return STOCKADE_RC_BAD_CONFIG;
    }
    lower = mw::ascii_lower(raw);
    if (!listed(m, lower)) {
        set_err(ctx, "meatware: target '" + lower + "' is not in hostlist");
        return STOCKADE_RC_UNKNOWN_TARGET;
    }
    return STOCKADE_RC_OK;
}

// The request FIFO we created; closing it removes the path, but only while the path still names
// our FIFO (never someone else's file put there meanwhile).
class RequestFifo {
public:
    RequestFifo(std::string path, int fd, dev_t dev, ino_t ino) : path_(std::move(path)), fd_(fd), dev_(dev), ino_(ino)
    {
    }
    ~RequestFifo()
    {
        // Compare while our descriptor still pins the inode, so its number cannot be reused.
        struct stat st {};
        if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
            ::unlink(path_.c_str());
        if (fd_ >= 0)
            ::close(fd_);
    }
    RequestFifo(const RequestFifo &) = delete;
    RequestFifo &operator=(const RequestFifo &) = delete;

    int fd() const { return fd_; }
    const std::string &path() const { return path_; }

    // Empty while the path is still our 0600 root FIFO; otherwise what changed.
    std::string tampering() const
    {
        struct stat st {};
        if (::fstat(fd_, &st) != 0)
            return "cannot fstat " + path_ + ": " + errno_text(errno);
        if (auto why = mw::fifo_problem(st, ::geteuid()); !why.empty())
            return path_ + " " + why + " now (changed while waiting)";
        struct stat lst {};
        if (::lstat(path_.c_str(), &lst) != 0)
            return path_ + " was removed while waiting";
        if (lst.st_dev != dev_ || lst.st_ino != ino_)
            return path_ + " was replaced by another file while waiting";
        return {};
    }

private:
    std::string path_;
    int fd_;
    dev_t dev_;
    ino_t ino_;
};

// Creates the FIFO fresh: a stale FIFO nobody reads is replaced; a FIFO another fence is waiting
// on, or anything that is not a FIFO, is refused.
uint32_t create_fifo(const std::string &path, const stockade_ctx *ctx, std::unique_ptr<RequestFifo> &out)
{
    if (auto why = mw::run_dir_problem(); !why.empty()) {
        set_err(ctx, "meatware: refusing to create " + path + ": " + why);
        return STOCKADE_RC_FAILED;
    }
    struct stat old {};
    if (::lstat(path.c_str(), &old) == 0) {
        if (!S_ISFIFO(old.st_mode)) {
            set_err(ctx, "meatware: " + path + " exists and is not a FIFO; refusing to touch it (remove it by hand)");
            return STOCKADE_RC_FAILED;
        }
        for (const auto &h : mw::processes_holding(old.st_dev, old.st_ino, path, ::getpid())) {
            if (h.reads) {
                set_err(ctx, "meatware: another fence request is already waiting on " + path + " (pid " +
                                 std::to_string(h.pid) + ", " + h.command + ")");
                return STOCKADE_RC_FAILED;
            }
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            set_err(ctx, "meatware: cannot remove stale " + path + ": " + errno_text(errno));
            return STOCKADE_RC_FAILED;
        }
        log(ctx, STOCKADE_LOG_NOTICE, "replaced stale " + path + " left by an earlier request");
    } else if (errno != ENOENT) {
        set_err(ctx, "meatware: cannot inspect " + path + ": " + errno_text(errno));
        return STOCKADE_RC_FAILED;
    }
    if (::mkfifo(path.c_str(), mw::kFifoMode) != 0) {
        int e = errno;
        set_err(ctx, "meatware: cannot create FIFO " + path + ": " + errno_text(e) +
                         (e == EACCES || e == EPERM ? " (the meatware agent must run as root)" : ""));
        return STOCKADE_RC_FAILED;
    }
    struct stat created {};
    if (::lstat(path.c_str(), &created) != 0) {
        set_err(ctx, "meatware: " + path + " vanished right after mkfifo: " + errno_text(errno));
        return STOCKADE_RC_FAILED;
    }
    // O_NONBLOCK: open() of a FIFO for reading returns at once even with no writer yet.
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        ::unlink(path.c_str());
        set_err(ctx, "meatware: cannot open FIFO " + path + ": " + errno_text(e));
        return STOCKADE_RC_FAILED;
    }
    struct stat st {};
    bool same = ::fstat(fd, &st) == 0 && st.st_dev == created.st_dev && st.st_ino == created.st_ino;
    auto fifo = std::make_unique<RequestFifo>(path, fd, created.st_dev, created.st_ino);
    if (!same) {
        set_err(ctx, "meatware: " + path + " was replaced between mkfifo and open; refusing");
        return STOCKADE_RC_FAILED;
    }
    // The umask may have removed bits; set exactly 0600 on the object we hold.
    if (::fchmod(fd, mw::kFifoMode) != 0) {
        set_err(ctx, "meatware: cannot set mode 0600 on " + path + ": " + errno_text(errno));
        return STOCKADE_RC_FAILED;
    }
    if (auto why = fifo->tampering(); !why.empty()) {
        set_err(ctx, "meatware: " + why);
        return STOCKADE_RC_FAILED;
    }
    out = std::move(fifo);
    return STOCKADE_RC_OK;
}

// Judges a complete message; fills errbuf on rejection.
uint32_t judge(const std::string &msg, const std::string &host, const stockade_ctx *ctx)
{
    auto r = mw::parse_reply(msg, host);
    if (r.verdict == mw::ReplyVerdict::Confirmed)
        return STOCKADE_RC_OK;
    log(ctx, STOCKADE_LOG_ERR, "confirmation for " + host + " rejected: " + r.problem);
    set_err(ctx, "meatware: confirmation for '" + host + "' rejected: " + r.problem + "; not fenced");
    return STOCKADE_RC_FAILED;
}

uint32_t wait_for_operator(const Meatware &m, const stockade_ctx *ctx, const ActionWords &words,
                           const std::string &host)
{
    std::string path = mw::fifo_path(host);
    std::unique_ptr<RequestFifo> fifo;
    if (uint32_t rc = create_fifo(path, ctx, fifo); rc != STOCKADE_RC_OK)
        return rc;

    int64_t start = stockade_monotonic_ms();
    int64_t deadline = start + m.timeout_ms;
    if (ctx->deadline_ms > 0 && ctx->deadline_ms < deadline)
        deadline = ctx->deadline_ms;
    int64_t wait_s = (deadline - start + 999) / 1000;

    log(ctx, STOCKADE_LOG_CRIT,
        "OPERATOR INTERVENTION REQUIRED: " + std::string(words.request) + " node '" + host +
            "' by hand (or cut it off from all shared storage and networks), then confirm as root with "
            "\"meatclient -c " + host + "\" or \"stockade-meatclient -c " + host + "\"; waiting up to " +
            std::to_string(wait_s) + " s");

    std::string msg;
    for (;;) {
        if (cancelled(ctx)) {
            set_err(ctx, "meatware: cancelled while waiting for the operator to confirm '" + host + "'; not fenced");
            return STOCKADE_RC_CANCELLED;
        }
        int64_t now = stockade_monotonic_ms();
        if (now >= deadline) {
            set_err(ctx, "meatware: no operator confirmation for '" + host + "' within " + std::to_string(wait_s) +
                             " s; not fenced");
            return STOCKADE_RC_TIMEOUT;
        }
        struct pollfd p {fifo->fd(), POLLIN, 0};
        int n = ::poll(&p, 1, int(std::min<int64_t>(deadline - now, kPollStepMs)));
        if (n < 0 && errno != EINTR) {
            set_err(ctx, "meatware: poll on " + path + " failed: " + errno_text(errno));
            return STOCKADE_RC_INTERNAL;
        }
        if (auto why = fifo->tampering(); !why.empty()) {
            log(ctx, STOCKADE_LOG_ERR, why);
            set_err(ctx, "meatware: " + why + "; refusing any confirmation for '" + host + "'; not fenced");
            return STOCKADE_RC_FAILED;
        }
        if (n <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char buf[mw::kMessageSize];
        ssize_t got = ::read(fifo->fd(), buf, mw::kMessageSize - std::min(msg.size(), mw::kMessageSize - 1));
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            set_err(ctx, "meatware: read from " + path + " failed: " + errno_text(errno));
            return STOCKADE_RC_INTERNAL;
        }
        if (got == 0) {
            // Every writer closed.  With part of a message in hand, judge it; with nothing, the
            // operator's client left without confirming (meatclient answered 'n' or was killed).
            if (!msg.empty())
                return judge(msg, host, ctx);
            log(ctx, STOCKADE_LOG_ERR, "operator client closed " + path + " without confirming " + host);
            set_err(ctx, "meatware: the operator declined: a client opened " + path +
                             " and closed it without confirming; not fenced");
            return STOCKADE_RC_FAILED;
        }
        msg.append(buf, size_t(got));
        if (mw::message_complete(msg))
            return judge(msg.substr(0, mw::kMessageSize), host, ctx);
    }
}

struct MeatwareDevice : Meatware {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                            std::unique_ptr<MeatwareDevice> &out)
    {
        auto m = std::make_unique<MeatwareDevice>();
        bool have_hostlist = false;
        for (const auto &[name, value] : stockade::agent::named_values(params, n)) {
            if (name == "hostlist") {
                have_hostlist = true;
                for (const auto &h : stockade::text::split_list(value)) {
                    if (auto why = mw::host_name_problem(h); !why.empty()) {
                        set_err(ctx, "parameter 'hostlist': host name '" + h.substr(0, 64) + "' " + why);
                        return STOCKADE_RC_BAD_CONFIG;
                    }
                    std::string lower = mw::ascii_lower(h);
                    if (!listed(*m, lower))
                        m->hosts.push_back(lower);
                }
            } else if (name == "timeout") {
                char *end = nullptr;
                errno = 0;
                long long s = std::strtoll(value.c_str(), &end, 10);
                if (errno || !end || *end || value.empty() || s < 1 || s > 7 * 24 * 3600) {
                    set_err(ctx, "parameter 'timeout': '" + value + "' is not a number of seconds between 1 and 604800");
                    return STOCKADE_RC_BAD_CONFIG;
                }
                m->timeout_ms = int64_t(s) * 1000;
            } else {
                set_err(ctx, "unknown parameter '" + name + "'");
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        if (!have_hostlist || m->hosts.empty()) {
            set_err(ctx, "parameter 'hostlist': at least one host is required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        out = std::move(m);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        auto *m = this;
        std::string host;
        if (uint32_t rc = check_target(*m, ctx, target, host); rc != STOCKADE_RC_OK)
            return rc;
        const ActionWords *words = action_words(action);
        if (!words) {
            set_err(ctx, "meatware: only off and reboot are supported (a human cannot be asked to switch '" + host +
                             "' on through this channel)");
            return STOCKADE_RC_UNSUPPORTED;
        }
        if (uint32_t rc = wait_for_operator(*m, ctx, *words, host); rc != STOCKADE_RC_OK)
            return rc;
        *verified = STOCKADE_VERIFIED_OFF; // the operator's confirmation is this agent's verification
        log(ctx, STOCKADE_LOG_NOTICE, "operator confirmed that '" + host + "' was " + words->done + " by hand");
        if (action == STOCKADE_ACTION_REBOOT)
            log(ctx, STOCKADE_LOG_WARNING,
                "reboot of '" + host + "': whether it is back on cannot be verified by meatware");
        return STOCKADE_RC_OK;
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *power_state)
    {
        auto *m = this;
        std::string host;
        if (uint32_t rc = check_target(*m, ctx, target, host); rc != STOCKADE_RC_OK)
            return rc;
        *power_state = STOCKADE_POWER_ON; // a human switch cannot be read; like cluster-glue, report on
        set_err(ctx, "meatware cannot observe power state; 'on' is assumed");
        return STOCKADE_RC_OK;
    }

    uint32_t list(const stockade_ctx * /*ctx*/, stockade_list_fn emit, void *emit_ctx)
    {
        for (const auto &h : hosts)
            emit(emit_ctx, h.c_str(), "");
        return STOCKADE_RC_OK;
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        if (auto why = mw::run_dir_problem(); !why.empty()) {
            set_err(ctx, "meatware: cannot create request FIFOs: " + why);
            return STOCKADE_RC_FAILED;
        }
        std::string dir(mw::kRunDir);
        if (::access(dir.c_str(), W_OK) != 0) {
            set_err(ctx, "meatware: cannot create request FIFOs in " + dir + ": " + errno_text(errno) +
                             " (the agent must run as root)");
            return STOCKADE_RC_ACCESS_DENIED;
        }
        return STOCKADE_RC_OK;
    }

    // The operator's time to answer is the whole of meatware's work: it states `timeout` as its need,
    // so no front-end cap cuts the wait short (issue #18).  Status, list and monitor: no statement.
    uint32_t time_needed(const stockade_ctx * /*ctx*/, uint32_t action, uint32_t *needed_ms) const
    {
        if (!action_words(action))
            return STOCKADE_RC_UNSUPPORTED;
        *needed_ms = uint32_t(std::min<int64_t>(timeout_ms + kPollStepMs, UINT32_MAX));
        return STOCKADE_RC_OK;
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_WAITS,
    .name = "meatware",
    .version = "1.0",
    .summary = "Ask a human operator to power a node off and wait for the confirmation",
    .description =
        "Last resort of an escalation: logs at critical level what the operator must do, then waits for "
        "`meatclient -c <host>` (cluster-glue) or `stockade-meatclient -c <host>` on the FIFO "
        "/run/meatware.<host>, byte-compatible with cluster-glue's meatware plugin.  Only a confirmation "
        "naming exactly the target counts; the wait ends at the timeout or when cancelled.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(MeatwareDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &kDescriptor;
}
