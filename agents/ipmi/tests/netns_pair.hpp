// netns_pair.hpp -- two network namespaces joined by a veth pair, with 127.0.10.x addresses, for
// tests that need to inject packet loss between an IPMI client and a BMC (iptables' statistic
// match inside the BMC's namespace).  Created and deleted by the test; skipped when this machine
// forbids namespaces.  Nothing here touches the root namespace's interfaces or firewall.
#pragma once

#include <optional>
#include <string>

#include "test_support.hpp"

namespace stockade::test {

class NetnsPair {
public:
    // Returns the pair, or sets *why_not (and returns nullopt) when namespaces cannot be made here.
    static std::optional<NetnsPair> create(std::string *why_not);
    ~NetnsPair();
    NetnsPair(NetnsPair &&o) noexcept;
    NetnsPair(const NetnsPair &) = delete;
    NetnsPair &operator=(const NetnsPair &) = delete;
    NetnsPair &operator=(NetnsPair &&) = delete;

    const std::string &client_ns() const { return a_; }
    const std::string &server_ns() const { return b_; }
    std::string client_address() const { return "127.0.10.1"; }
    std::string server_address() const { return "127.0.10.2"; }

    // Runs a command inside a namespace ("ip netns exec NS ..."); returns its exit code and output.
    static std::pair<int, std::string> exec_in(const std::string &ns, const std::string &shell_command);

    // Drops `percent` % of UDP packets arriving at the server on `port` (iptables statistic).
    bool add_udp_loss(int port, int percent, std::string *error);

    // Runs fn on a thread that has joined the client namespace (sockets it opens live there).
    void run_in_client(const std::function<void()> &fn) const { in_netns(a_, fn); }

private:
    NetnsPair() = default;
    std::string a_, b_;
    bool owned_ = false;
};

} // namespace stockade::test
