// net_probe.hpp -- the network primitives of quorum and witness checks (not public API).
//
// Every call has a deadline: a connect that hangs on a dead link must not hold up a fencing
// decision.  A TCP refusal counts as "the host answered" (its kernel sent the RST), which is
// exactly what a witness wants to know.
#pragma once

#include <chrono>
#include <string>

#include "stockade/result.hpp"

namespace stockade::net {

enum class Reach { Answered, Refused, NoAnswer };

struct ReachResult {
    Reach reach = Reach::NoAnswer;
    std::string detail; // "connected", "refused", "timed out after 1000 ms", "network unreachable"...
};

// TCP connect to host:port (host may be a name, IPv4 or IPv6 literal) within the timeout.
// On Answered, *fd_out (if given) receives the connected socket (caller closes); else it is closed.
ReachResult tcp_connect(const std::string &host, int port, std::chrono::milliseconds timeout, int *fd_out = nullptr);

// One ICMP echo to host (a name, IPv4 or IPv6 address) through the one ICMP probe,
// stockade/icmp_probe.hpp.
ReachResult icmp_echo(const std::string &host, std::chrono::milliseconds timeout);

// Splits "host:port" / "[v6]:port"; error names the text.
Result<std::pair<std::string, int>> split_host_port(const std::string &text);

// Writes all of data before the deadline (CLOCK_MONOTONIC ms).
Status write_all(int fd, std::string_view data, int64_t deadline_ms);
// Reads one '\n'-terminated line (without it), at most max_len bytes, before the deadline.
Result<std::string> read_line(int fd, size_t max_len, int64_t deadline_ms);

} // namespace stockade::net
