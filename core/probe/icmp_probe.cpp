// icmp_probe.cpp -- parallel ICMP echo from one process (see icmp_probe.hpp for why).
//
// One socket per target, connect()ed to it so the kernel hands that socket only the target's
// packets.  An unprivileged ICMP datagram ("ping") socket is tried first (the kernel then owns
// the echo identifier and checksum); where net.ipv4.ping_group_range forbids it, a raw socket
// (root or CAP_NET_RAW), where replies are matched by our identifier.
#include "stockade/icmp_probe.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <unistd.h>

#include "stockade/text.hpp"

namespace stockade::icmp {

namespace {

// ICMP_FILTER from <linux/icmp.h>, which clashes with <netinet/ip_icmp.h>.
constexpr int kIcmpFilter = 1;

int64_t now_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint16_t inet_checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += uint32_t(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += uint32_t(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

// errno values of a send/connect that mean "no path to the target right now": the same as a
// silent target (ping exits non-zero for them too).  Anything else means the check itself failed.
// ENOBUFS is what IPv6 returns while the link has no carrier (neighbour discovery cannot queue).
bool is_unreachable_errno(int e)
{
    return e == ENETUNREACH || e == EHOSTUNREACH || e == EHOSTDOWN || e == ENODEV || e == ENXIO ||
           e == EADDRNOTAVAIL || e == ECONNREFUSED || e == ENETDOWN || e == ENOBUFS;
}

struct Socket {
    const ProbeTarget *target = nullptr;
    int fd = -1;
    bool raw = false;
    uint16_t ident = 0;
    uint16_t next_seq = 1;
    std::string last_problem; // why the last try could not be sent, for the summary
};

void close_socket(Socket &s)
{
    if (s.fd >= 0)
        ::close(s.fd);
    s.fd = -1;
}

// Opens and connects the socket of one target.  Returns 0, or an errno: unreachable ones make
// this try silent, the others fail the whole check.
int open_socket(Socket &s)
{
    const ProbeTarget &t = *s.target;
    int proto = t.family == AF_INET ? int(IPPROTO_ICMP) : int(IPPROTO_ICMPV6);
    int fd = ::socket(t.family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    s.raw = false;
    if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EPROTONOSUPPORT)) {
        fd = ::socket(t.family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
        s.raw = true;
    }
    if (fd < 0)
        return errno;
    if (s.raw && t.family == AF_INET) {
        // Only echo replies reach this socket (the filter is a bitmask of types to drop).
        uint32_t filter = ~(1u << ICMP_ECHOREPLY);
        (void)::setsockopt(fd, SOL_RAW, kIcmpFilter, &filter, sizeof filter);
    } else if (s.raw) {
        icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        (void)::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    }
    sockaddr_storage addr = t.addr;
    if (!t.iface.empty()) {
        unsigned idx = ::if_nametoindex(t.iface.c_str());
        if (idx == 0) {
            ::close(fd);
            return ENODEV; // the interface went away: nothing can be sent that way
        }
        if (t.family == AF_INET6)
            reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_scope_id = idx;
        if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, t.iface.c_str(), socklen_t(t.iface.size())) != 0) {
            int e = errno;
            ::close(fd);
            return e;
        }
    }
    if (::connect(fd, reinterpret_cast<const sockaddr *>(&addr), t.addr_len) != 0) {
        int e = errno;
        ::close(fd);
        return e;
    }
    s.fd = fd;
    return 0;
}

// Sends one echo request.  Returns 0 or an errno.
int send_echo(Socket &s)
{
    uint8_t pkt[8 + 16] = {0};
    pkt[0] = s.target->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
    pkt[4] = uint8_t(s.ident >> 8);
    pkt[5] = uint8_t(s.ident);
    pkt[6] = uint8_t(s.next_seq >> 8);
    pkt[7] = uint8_t(s.next_seq);
    std::memcpy(pkt + 8, "stockade-probe\0\0", 16);
    if (s.target->family == AF_INET) { // ICMPv6 checksums are always computed by the kernel
        uint16_t sum = inet_checksum(pkt, sizeof pkt);
        pkt[2] = uint8_t(sum >> 8);
        pkt[3] = uint8_t(sum);
    }
    ++s.next_seq;
    for (;;) {
        ssize_t n = ::send(s.fd, pkt, sizeof pkt, 0);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? errno : 0;
    }
}

// Drains the socket; true when an echo reply for us arrived.
bool read_replies(Socket &s)
{
    bool got = false;
    for (;;) {
        uint8_t buf[1500];
        ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            // EAGAIN: drained.  Other errors are queued ICMP errors (host unreachable...): silence.
            return got;
        }
        const uint8_t *icmp = buf;
        size_t len = size_t(n);
        if (s.raw && s.target->family == AF_INET) { // raw IPv4 sockets see the IP header
            if (len < 20)
                continue;
            size_t ihl = size_t(buf[0] & 0x0f) * 4;
            if (ihl < 20 || len < ihl)
                continue;
            icmp += ihl;
            len -= ihl;
        }
        if (len < 8)
            continue;
        uint8_t want = s.target->family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY;
        if (icmp[0] != want)
            continue;
        // A datagram socket's identifier belongs to the kernel, which already demultiplexed.
        uint16_t ident = uint16_t(icmp[4] << 8 | icmp[5]);
        if (s.raw && ident != s.ident)
            continue;
        got = true;
    }
}

} // namespace

const char *verdict_name(ProbeVerdict v)
{
    static constexpr const char *names[] = {"alive", "all silent", "error", "cancelled", "timeout"};
    return names[static_cast<int>(v)];
}

bool parse_probe_targets(const std::string &list, std::vector<ProbeTarget> &out, std::string &error)
{
    out.clear();
    std::string tok;
    auto flush = [&]() -> bool {
        if (tok.empty())
            return true;
        ProbeTarget t;
        t.text = tok;
        std::string addr = tok;
        if (auto pct = tok.find('%'); pct != std::string::npos) {
            addr = tok.substr(0, pct);
            t.iface = tok.substr(pct + 1);
            if (t.iface.empty() || t.iface.size() >= IF_NAMESIZE) {
                error = "address '" + tok + "': bad interface name after '%'";
                return false;
            }
            if (::if_nametoindex(t.iface.c_str()) == 0) {
                error = "address '" + tok + "': interface '" + t.iface + "' does not exist";
                return false;
            }
        }
        t.address = addr;
        auto *v4 = reinterpret_cast<sockaddr_in *>(&t.addr);
        auto *v6 = reinterpret_cast<sockaddr_in6 *>(&t.addr);
        if (::inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
            t.family = v4->sin_family = AF_INET;
            t.addr_len = sizeof(sockaddr_in);
        } else if (::inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
            t.family = v6->sin6_family = AF_INET6;
            t.addr_len = sizeof(sockaddr_in6);
            if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr) && t.iface.empty()) {
                error = "address '" + tok + "' is link-local: add %interface";
                return false;
            }
        } else {
            error = "address '" + tok + "' is not a numeric IPv4 or IPv6 address (host names are not accepted)";
            return false;
        }
        out.push_back(std::move(t));
        tok.clear();
        return true;
    };
    for (const std::string &entry : stockade::text::split_list(list)) {
        tok = entry;
        if (!flush())
            return false;
    }
    if (out.empty()) {
        error = "no address given";
        return false;
    }
    return true;
}

ProbeResult probe_all(const std::vector<ProbeTarget> &targets, const ProbeOptions &o)
{
    ProbeResult r;
    const int64_t start = now_ms();
    auto log = [&](int level, const std::string &m) {
        if (o.log)
            o.log(level, m);
    };
    auto finish = [&](ProbeVerdict v, std::string msg) {
        r.verdict = v;
        r.message = std::move(msg);
        r.elapsed_ms = now_ms() - start;
        return r;
    };
    if (targets.empty())
        return finish(ProbeVerdict::error, "no targets to check");
    const int trials = std::max(1, o.trials);
    const int64_t interval = std::max<int64_t>(10, o.interval.count());

    std::vector<Socket> socks(targets.size());
    uint16_t base = uint16_t(::getpid() * 31u + uint32_t(start));
    for (size_t i = 0; i < targets.size(); ++i) {
        socks[i].target = &targets[i];
        socks[i].ident = uint16_t(base + i);
    }
    struct Closer {
        std::vector<Socket> &v;
        ~Closer()
        {
            for (auto &s : v)
                close_socket(s);
        }
    } closer{socks};

    bool kind_logged = false;
    for (int trial = 1; trial <= trials; ++trial) {
        // One echo to every target, then listen on all of them until the next round is due.
        for (auto &s : socks) {
            int e = 0;
            if (s.fd < 0) {
                e = open_socket(s);
                if (e == 0 && !kind_logged) {
                    log(7, std::string("ICMP echo through ") +
                               (s.raw ? "raw sockets" : "datagram (ping) sockets"));
                    kind_logged = true;
                }
            }
            if (e == 0)
                e = send_echo(s);
            if (e == 0) {
                s.last_problem.clear();
                continue;
            }
            if (is_unreachable_errno(e)) {
                s.last_problem = std::strerror(e);
                log(7, "echo " + std::to_string(trial) + " to " + s.target->text + " not sent: " + s.last_problem);
                close_socket(s); // reopen next round: a route or interface may come back
                continue;
            }
            return finish(ProbeVerdict::error, "cannot check " + s.target->text + ": " + std::strerror(e) +
                                                   (e == EPERM || e == EACCES
                                                        ? " (ICMP needs root/CAP_NET_RAW or ping_group_range, "
                                                          "and no firewall rejecting our echo)"
                                                        : ""));
        }
        const int64_t round_end = now_ms() + interval;
        for (;;) {
            if (o.cancelled && o.cancelled())
                return finish(ProbeVerdict::cancelled, "cancelled during the death check");
            int64_t now = now_ms();
            if (o.deadline_ms > 0 && now >= o.deadline_ms)
                return finish(ProbeVerdict::timeout, "deadline reached after " + std::to_string(trial) +
                                                         " of " + std::to_string(trials) +
                                                         " echo rounds: cannot tell whether the targets are dead");
            if (now >= round_end)
                break;
            int64_t wait = std::min<int64_t>({round_end - now, 50,
                                              o.deadline_ms > 0 ? o.deadline_ms - now : int64_t(50)});
            std::vector<pollfd> fds;
            std::vector<Socket *> who;
            for (auto &s : socks)
                if (s.fd >= 0) {
                    fds.push_back({s.fd, POLLIN, 0});
                    who.push_back(&s);
                }
            int n = fds.empty() ? (::poll(nullptr, 0, int(wait)), 0) : ::poll(fds.data(), fds.size(), int(wait));
            if (n < 0 && errno != EINTR)
                return finish(ProbeVerdict::error, std::string("poll failed: ") + std::strerror(errno));
            for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
                if (!(fds[i].revents & (POLLIN | POLLERR)))
                    continue;
                if (read_replies(*who[i])) {
                    r.responder = who[i]->target->text;
                    return finish(ProbeVerdict::alive, who[i]->target->text + " answered echo round " +
                                                           std::to_string(trial));
                }
            }
        }
    }
    std::string summary = "no reply from";
    for (auto &s : socks)
        summary += " " + s.target->text + (s.last_problem.empty() ? "" : " (" + s.last_problem + ")");
    summary += " after " + std::to_string(trials) + " echo" + (trials == 1 ? "" : "s") + " each";
    return finish(ProbeVerdict::all_silent, summary);
}

} // namespace stockade::icmp
