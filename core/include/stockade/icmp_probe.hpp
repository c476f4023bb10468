// icmp_probe.hpp -- "is any of these addresses alive?" by ICMP echo, all targets at once.
//
// The death check of stonith_helper and sfex_wrapper.  pm_extras forked one `ping` per target and
// polled their exit codes, which lost a live answer when a live and a dead child were reaped in
// the same pass.  Here one process sends the echoes on one socket per target and waits on all of
// them with poll(): the first echo reply from any target ends the check as "alive", so one live
// target always wins.  Only a full round of silence (trials x interval) is "all dead", and any
// condition that prevents the check from running (no ICMP socket, a refused send, the deadline)
// is reported as an error, never as dead.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace stockade::icmp {

struct ProbeTarget {
    std::string text;  // as configured, e.g. "fe80::1%eth0"
    std::string address;
    std::string iface; // "" when none
    int family = 0;    // AF_INET / AF_INET6
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
};

// Parses a list of IPv4/IPv6 addresses (numeric only, optional %iface), separated by spaces or
// commas.  False with a one-line reason naming the bad entry.  An %iface must exist now.
bool parse_probe_targets(const std::string &list, std::vector<ProbeTarget> &out, std::string &error);

enum class ProbeVerdict { alive, all_silent, error, cancelled, timeout };

struct ProbeResult {
    ProbeVerdict verdict = ProbeVerdict::error;
    std::string responder; // the target that answered (alive)
    std::string message;   // reason for error/timeout, summary otherwise
    int64_t elapsed_ms = 0;
};

struct ProbeOptions {
    int trials = 5;                                // echoes per target
    std::chrono::milliseconds interval{1000};      // between tries, and the wait after the last
    int64_t deadline_ms = 0;                       // CLOCK_MONOTONIC ms, 0 = none
    std::function<bool()> cancelled;               // polled while waiting
    std::function<void(int level, const std::string &)> log; // syslog levels
};

ProbeResult probe_all(const std::vector<ProbeTarget> &targets, const ProbeOptions &options);

// The longest probe_all can take with `trials` rounds at the default interval (targets are probed
// in parallel, so their number does not count), plus a little for sockets and scheduling.  What
// the helper agents state as the death check's share of their time_needed.
inline int64_t probe_all_budget_ms(int trials)
{
    return int64_t(std::max(1, trials)) * ProbeOptions{}.interval.count() + 500;
}

const char *verdict_name(ProbeVerdict v);

} // namespace stockade::icmp
