// ipmi_console.cpp -- see ipmi_console.hpp.
#include "ipmi_console.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <unistd.h>
#include <vector>

#include <ipmiconsole.h>

namespace stockade::ipmi {
namespace {

int console_privilege(uint8_t ipmi_privilege)
{
    switch (ipmi_privilege) {
    case 2: return IPMICONSOLE_PRIVILEGE_USER;
    case 3: return IPMICONSOLE_PRIVILEGE_OPERATOR;
    default: return IPMICONSOLE_PRIVILEGE_ADMIN;
    }
}

// The engine's threads live for the rest of the process (teardown is not safe while another
// handle may be capturing); one thread is plenty for one SOL session at a time per handle.
bool engine_ready(std::string &why)
{
    static std::once_flag once;
    static int rc = -1;
    static int err = 0;
    std::call_once(once, [] {
        rc = ipmiconsole_engine_init(1, 0);
        err = errno;
    });
    if (rc < 0)
        why = std::string("cannot start the libipmiconsole engine: ") + std::strerror(err);
    return rc == 0;
}

} // namespace

Result<size_t> capture_console(const IpmiConfig &cfg, const stockade_ctx *ctx, const std::string &target,
                                 int64_t budget_ms)
{
    const std::string where = "console capture from " + cfg.endpoint();
    if (!cfg.lanplus)
        return Error{STOCKADE_RC_UNSUPPORTED, where + ": Serial-over-LAN needs lanplus (IPMI 2.0)"};
    if (budget_ms <= 0)
        return Error{STOCKADE_RC_TIMEOUT, where + ": no time left before the power-off"};
    std::string why;
    if (!engine_ready(why))
        return Error{STOCKADE_RC_INTERNAL, where + ": " + why};

    // libipmiconsole wants mutable buffers; they are wiped before they are freed.
    std::vector<char> user(cfg.username.begin(), cfg.username.end()), pass(cfg.password.str().begin(),
                                                                           cfg.password.str().end());
    std::vector<unsigned char> kg(cfg.k_g.str().begin(), cfg.k_g.str().end());
    user.push_back(0);
    pass.push_back(0);
    struct Wipe {
        std::vector<char> &p;
        std::vector<unsigned char> &k;
        ~Wipe()
        {
            ::explicit_bzero(p.data(), p.size());
            if (!k.empty())
                ::explicit_bzero(k.data(), k.size());
        }
    } wipe{pass, kg};

    ipmiconsole_ipmi_config ipmi{};
    ipmi.username = cfg.username.empty() ? nullptr : user.data();
    ipmi.password = cfg.password.empty() ? nullptr : pass.data();
    ipmi.k_g = kg.empty() ? nullptr : kg.data();
    ipmi.k_g_len = unsigned(kg.size());
    ipmi.privilege_level = console_privilege(cfg.privilege);
    ipmi.cipher_suite_id = cfg.cipher;
    ipmi.workaround_flags = cfg.workaround_flags; // same bit values as FreeIPMI's 2.0 workarounds

    const int64_t timeout = std::min<int64_t>(cfg.session_timeout_ms, budget_ms);
    ipmiconsole_protocol_config proto{};
    proto.session_timeout_len = int(std::max<int64_t>(timeout, 100));
    proto.retransmission_timeout_len = int(std::min<int64_t>(cfg.retransmission_timeout_ms, timeout / 2));
    proto.retransmission_backoff_count = -1;
    proto.keepalive_timeout_len = -1;
    proto.retransmission_keepalive_timeout_len = -1;
    proto.acceptable_packet_errors_count = -1;
    proto.maximum_retransmission_count = -1;

    ipmiconsole_engine_config engine{};
    engine.engine_flags = 0;
    engine.behavior_flags = IPMICONSOLE_BEHAVIOR_ERROR_ON_SOL_INUSE; // never kick a console logger off
    engine.debug_flags = 0;

    const int64_t start = stockade_monotonic_ms();
    ipmiconsole_ctx_t c = ipmiconsole_ctx_create(cfg.endpoint().c_str(), &ipmi, &proto, &engine);
    if (!c)
        return Error{STOCKADE_RC_INTERNAL, where + ": cannot create a console context: " + std::strerror(errno)};
    struct Destroy {
        ipmiconsole_ctx_t c;
        ~Destroy() { ipmiconsole_ctx_destroy(c); }
    } destroy{c};

    if (ipmiconsole_engine_submit_block(c) < 0)
        return Error{STOCKADE_RC_FAILED, where + ": " + ipmiconsole_ctx_strerror(ipmiconsole_ctx_errnum(c))};
    int fd = ipmiconsole_ctx_fd(c);
    if (fd < 0)
        return Error{STOCKADE_RC_FAILED, where + ": " + ipmiconsole_ctx_strerror(ipmiconsole_ctx_errnum(c))};

    int out = ::open(cfg.capture_console.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        ::close(fd);
        return Error{STOCKADE_RC_BAD_CONFIG, where + ": cannot write '" + cfg.capture_console + "': " + std::strerror(e)};
    }
    char stamp[64];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    std::string header = "--- stockade: Serial-over-LAN of " + target + " via " + cfg.endpoint() + " at " + stamp +
                         " (before power-off) ---\n";
    (void)!::write(out, header.data(), header.size());

    size_t recorded = 0;
    const int64_t until = start + budget_ms;
    char buf[4096];
    for (;;) {
        int64_t left = until - stockade_monotonic_ms();
        if (left <= 0 || (ctx->is_cancelled && ctx->is_cancelled(ctx)))
            break;
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, int(std::min<int64_t>(left, 100)));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; // the SOL session ended
        if (::write(out, buf, size_t(n)) == n)
            recorded += size_t(n);
    }
    ::close(out);
    ::close(fd);
    return recorded;
}

} // namespace stockade::ipmi
