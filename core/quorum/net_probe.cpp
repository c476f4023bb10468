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

#include "stockade/icmp_probe.hpp"
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
    // The one ICMP probe (stockade/icmp_probe.hpp) takes numeric addresses; a witness node may be
    // configured by name, so resolve it here first.
    std::string numeric = host;
    if (in6_addr a6{}; ::inet_pton(AF_INET, host.c_str(), &a6) != 1 && ::inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        addrinfo *res = nullptr;
        if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
            return no_answer(fmt::format("cannot resolve '{}'", host));
        char buf[INET6_ADDRSTRLEN] = {};
        const void *src = res->ai_family == AF_INET
                              ? static_cast<const void *>(&reinterpret_cast<sockaddr_in *>(res->ai_addr)->sin_addr)
                              : static_cast<const void *>(&reinterpret_cast<sockaddr_in6 *>(res->ai_addr)->sin6_addr);
        ::inet_ntop(res->ai_family, src, buf, sizeof buf);
        freeaddrinfo(res);
        numeric = buf;
    }
    std::vector<icmp::ProbeTarget> targets;
    std::string error;
    if (!icmp::parse_probe_targets(numeric, targets, error))
        return no_answer(error);
    icmp::ProbeOptions o;
    o.trials = 1;
    o.interval = timeout;
    icmp::ProbeResult r = icmp::probe_all(targets, o);
    if (r.verdict == icmp::ProbeVerdict::alive)
        return {Reach::Answered, "echo reply"};
    if (r.verdict == icmp::ProbeVerdict::all_silent)
        return no_answer(fmt::format("no echo reply within {} ms", timeout.count()));
    return no_answer(r.message);
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
