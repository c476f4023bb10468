// net_probe.cpp -- deadline-bound TCP connects, ICMP echo and line I/O; see net_probe.hpp.
#include "net_probe.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stockade/process.hpp"

namespace stockade::net {

namespace {

struct Fd {
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
    int release()
    {
        int f = fd;
        fd = -1;
        return f;
    }
};

int remaining(int64_t deadline_ms)
{
    int64_t left = deadline_ms - monotonic_ms();
    return left > 0 ? int(std::min<int64_t>(left, 1 << 30)) : 0;
}

ReachResult no_answer(std::string detail) { return {Reach::NoAnswer, std::move(detail)}; }

// Errors after which we know the far host's kernel answered.
bool host_answered(int err) { return err == ECONNREFUSED; }

uint16_t icmp_checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += uint32_t(p[i]) << 8 | p[i + 1];
    if (n & 1)
        sum += uint32_t(p[n - 1]) << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons(uint16_t(~sum));
}

} // namespace

Result<std::pair<std::string, int>> split_host_port(const std::string &text)
{
    std::string host;
    std::string port;
    if (!text.empty() && text[0] == '[') {
        auto close = text.find("]:");
        if (close == std::string::npos)
            return make_error(STOCKADE_RC_BAD_CONFIG, "'{}' is not [address]:port", text);
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos || colon == 0)
            return make_error(STOCKADE_RC_BAD_CONFIG, "'{}' is not host:port", text);
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    char *end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || p < 1 || p > 65535)
        return make_error(STOCKADE_RC_BAD_CONFIG, "'{}': port must be 1-65535", text);
    return std::make_pair(host, int(p));
}

ReachResult tcp_connect(const std::string &host, int port, std::chrono::milliseconds timeout, int *fd_out)
{
    int64_t deadline = monotonic_ms() + timeout.count();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo *res = nullptr;
    std::string port_text = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res); rc != 0)
        return no_answer(fmt::format("cannot resolve '{}': {}", host, gai_strerror(rc)));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);

    ReachResult last = no_answer("no address");
    for (addrinfo *ai = res; ai; ai = ai->ai_next) {
        Fd s{::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)};
        if (s.fd < 0)
            return no_answer(fmt::format("socket: {}", std::strerror(errno)));
        int rc = ::connect(s.fd, ai->ai_addr, ai->ai_addrlen);
        int err = rc == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            pollfd p{s.fd, POLLOUT, 0};
            int n;
            do {
                n = ::poll(&p, 1, remaining(deadline));
            } while (n < 0 && errno == EINTR);
            if (n == 0)
                return no_answer(fmt::format("no answer within {} ms", timeout.count()));
            socklen_t len = sizeof(err);
            if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err == 0) {
            if (fd_out)
                *fd_out = s.release();
            return {Reach::Answered, "connected"};
        }
        if (host_answered(err))
            return {Reach::Refused, "refused (the host answered)"};
        last = no_answer(std::strerror(err));
        if (remaining(deadline) == 0)
            break;
    }
    return last;
}

ReachResult icmp_echo(const std::string &host, std::chrono::milliseconds timeout)
{
    int64_t deadline = monotonic_ms() + timeout.count();
    sockaddr_in to{};
    to.sin_family = AF_INET;
    if (::inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1) {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        addrinfo *res = nullptr;
        if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
            return no_answer(fmt::format("cannot resolve '{}' to IPv4", host));
        to.sin_addr = reinterpret_cast<sockaddr_in *>(res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    bool raw = true;
    Fd s{::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP)};
    if (s.fd < 0) {
        raw = false;
        s.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
        if (s.fd < 0)
            return no_answer(fmt::format("ICMP not available: {}", std::strerror(errno)));
    }
    uint16_t id = uint16_t(::getpid() ^ monotonic_ms());
    uint16_t seq = uint16_t(monotonic_ms() >> 3);
    uint8_t pkt[16] = {};
    pkt[0] = ICMP_ECHO;
    pkt[4] = uint8_t(id >> 8);
    pkt[5] = uint8_t(id);
    pkt[6] = uint8_t(seq >> 8);
    pkt[7] = uint8_t(seq);
    std::memcpy(pkt + 8, "stockade", 8);
    uint16_t ck = icmp_checksum(pkt, sizeof pkt);
    std::memcpy(pkt + 2, &ck, 2);
    if (::sendto(s.fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr *>(&to), sizeof to) < 0)
        return no_answer(fmt::format("cannot send echo: {}", std::strerror(errno)));
    for (;;) {
        pollfd p{s.fd, POLLIN, 0};
        int n = ::poll(&p, 1, remaining(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return no_answer(fmt::format("no echo reply within {} ms", timeout.count()));
        uint8_t buf[1500];
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        ssize_t r = ::recvfrom(s.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &fl);
        if (r <= 0)
            continue;
        const uint8_t *icmp = buf;
        size_t len = size_t(r);
        if (raw) { // raw sockets hand us the IP header too
            size_t ihl = size_t(buf[0] & 0x0f) * 4;
            if (len < ihl + 8)
                continue;
            icmp += ihl;
            len -= ihl;
        }
        if (len < 8 || from.sin_addr.s_addr != to.sin_addr.s_addr || icmp[0] != ICMP_ECHOREPLY)
            continue;
        // A ping socket rewrites the id; match the sequence (and the id on raw sockets).
        uint16_t rseq = uint16_t(icmp[6] << 8 | icmp[7]);
        uint16_t rid = uint16_t(icmp[4] << 8 | icmp[5]);
        if (rseq != seq || (raw && rid != id))
            continue;
        return {Reach::Answered, "echo reply"};
    }
}

Status write_all(int fd, std::string_view data, int64_t deadline_ms)
{
    size_t done = 0;
    while (done < data.size()) {
        pollfd p{fd, POLLOUT, 0};
        int n = ::poll(&p, 1, remaining(deadline_ms));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return make_error(STOCKADE_RC_TIMEOUT, "write timed out");
        ssize_t w = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return make_error(STOCKADE_RC_UNREACHABLE, "write: {}", std::strerror(errno));
        }
        done += size_t(w);
    }
    return {};
}

Result<std::string> read_line(int fd, size_t max_len, int64_t deadline_ms)
{
    std::string line;
    char buf[512];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, remaining(deadline_ms));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return make_error(STOCKADE_RC_TIMEOUT, "read timed out after {} bytes", line.size());
        // Peek, so we never consume past the newline.
        ssize_t r = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return make_error(STOCKADE_RC_UNREACHABLE, "read: {}", std::strerror(errno));
        }
        if (r == 0)
            return make_error(STOCKADE_RC_UNREACHABLE, "connection closed after {} bytes (truncated message)", line.size());
        auto nl = static_cast<const char *>(std::memchr(buf, '\n', size_t(r)));
        size_t take = nl ? size_t(nl - buf) + 1 : size_t(r);
        ssize_t got = ::recv(fd, buf, take, MSG_DONTWAIT);
        if (got <= 0)
            continue;
        line.append(buf, size_t(got));
        if (line.size() > max_len + 1)
            return make_error(STOCKADE_RC_FAILED, "message longer than {} bytes", max_len);
        if (line.back() == '\n') {
            line.pop_back();
            return line;
        }
    }
}

} // namespace stockade::net
