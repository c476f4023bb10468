// netns_pair.cpp -- see netns_pair.hpp.
#include "netns_pair.hpp"

#include <unistd.h>

#include "test_support.hpp"

namespace stockade::test {

std::pair<int, std::string> NetnsPair::exec_in(const std::string &ns, const std::string &cmd)
{
    auto r = run({"/bin/sh", "-c", ns.empty() ? cmd : "exec ip netns exec " + ns + " sh -c '" + cmd + "'"}, "",
                 std::chrono::seconds(20));
    return {r.exit_code.value_or(-1), r.out + r.err};
}

std::optional<NetnsPair> NetnsPair::create(std::string *why_not)
{
    if (::geteuid() != 0) {
        *why_not = "network namespaces need root";
        return std::nullopt;
    }
    if (!which("ip") || !which("iptables")) {
        *why_not = "ip (iproute2) or iptables is not installed";
        return std::nullopt;
    }
    NetnsPair p;
    const std::string tag = std::to_string(::getpid());
    p.a_ = "stkipmi" + tag + "a";
    p.b_ = "stkipmi" + tag + "b";
    const std::string va = "sia" + tag, vb = "sib" + tag; // interface names: at most 15 bytes
    auto [rc, out] = exec_in("", "ip netns add " + p.a_ + " && ip netns add " + p.b_);
    if (rc != 0) {
        exec_in("", "ip netns del " + p.a_ + " 2>/dev/null; ip netns del " + p.b_ + " 2>/dev/null");
        *why_not = "cannot create network namespaces here: " + out;
        return std::nullopt;
    }
    p.owned_ = true;
    std::string script = "set -e; ip link add " + va + " type veth peer name " + vb + "; ip link set " + va +
                         " netns " + p.a_ + "; ip link set " + vb + " netns " + p.b_ + ";";
    for (auto [ns, dev, addr] : {std::tuple{p.a_, va, p.client_address()}, std::tuple{p.b_, vb, p.server_address()}})
        script += " ip netns exec " + ns + " sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf." + dev +
                  ".route_localnet=1; ip netns exec " + ns + " ip addr add " + addr + "/24 dev " + dev +
                  "; ip netns exec " + ns + " ip link set " + dev + " up; ip netns exec " + ns +
                  " ip link set lo up;";
    auto [rc2, out2] = exec_in("", script);
    if (rc2 != 0) {
        *why_not = "cannot set up the veth pair: " + out2;
        return std::nullopt; // p's destructor deletes the namespaces
    }
    return std::optional<NetnsPair>(std::move(p));
}

NetnsPair::NetnsPair(NetnsPair &&o) noexcept : a_(std::move(o.a_)), b_(std::move(o.b_)), owned_(o.owned_)
{
    o.owned_ = false;
}

NetnsPair::~NetnsPair()
{
    if (owned_)
        exec_in("", "ip netns del " + a_ + " 2>/dev/null; ip netns del " + b_ + " 2>/dev/null");
}

bool NetnsPair::add_udp_loss(int port, int percent, std::string *error)
{
    char prob[16];
    std::snprintf(prob, sizeof prob, "%.2f", percent / 100.0);
    auto [rc, out] = exec_in(b_, "iptables -A INPUT -p udp --dport " + std::to_string(port) +
                                     " -m statistic --mode random --probability " + prob + " -j DROP");
    if (rc != 0 && error)
        *error = out;
    return rc == 0;
}


} // namespace stockade::test
