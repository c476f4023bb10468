// The ipmi agent over a lossy network: a BMC in one network namespace, the agent in another,
// 30 % of the UDP packets to the BMC dropped by iptables' statistic match.  Every answer must be
// right or a clear failure; a power-off reported done must have killed the node process.
#include <catch2/catch.hpp>

#include <vector>

#include "ipmi_test_util.hpp"
#include "netns_pair.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {
struct Attempt {
    std::string what;
    OpResult result;
    bool node_alive_after = false;
    long ms = 0;
};
} // namespace

TEST_CASE("ipmi: 30% UDP loss gives correct results or clear failures, never a false fenced", "[ipmi][netns]")
{
    IPMI_SKIP_IF_NO_SIM();
    std::string why;
    auto ns = NetnsPair::create(&why);
    if (!ns) {
        WARN("SKIPPED: " << why);
        return;
    }
    TempDir d;
    SimBmcOptions o;
    o.address = ns->server_address();
    o.netns = ns->server_ns();
    o.client_netns = ns->client_ns();
    o.console = false;
    auto bmc = SimBmc::start(d.path(), o);
    REQUIRE(bmc->ipmitool_power_status() == "on"); // the path works before the loss
    std::string err;
    REQUIRE(ns->add_udp_loss(bmc->port(), 30, &err));

    std::vector<Attempt> attempts;
    ns->run_in_client([&] {
        auto s = open_ipmi(sim_params(*bmc, {{"session_timeout", "5000"}, {"power_timeout", "20"}}), false);
        auto timed = [&](const std::string &what, auto &&op) {
            auto t0 = std::chrono::steady_clock::now();
            OpResult r = op();
            attempts.push_back({what, r, bmc->node_alive(), ms_since(t0)});
        };
        for (int i = 0; i < 10; ++i)
            timed("status", [&] { return s->status("node1", 30s); });
        for (int i = 0; i < 3; ++i) {
            timed("off", [&] { return s->power(PowerAction::Off, "node1", 60s); });
            timed("on", [&] { return s->power(PowerAction::On, "node1", 60s); });
        }
        timed("reboot", [&] { return s->power(PowerAction::Reboot, "node1", 60s); });
    });

    int ok = 0;
    long worst = 0;
    for (const Attempt &a : attempts) {
        INFO(a.what << ": rc " << a.result.rc << " in " << a.ms << " ms: " << a.result.message);
        worst = std::max(worst, a.ms);
        if (!a.result.ok()) {
            // A failure must be an honest one, and never carry a verified-off claim.
            CHECK((a.result.rc == STOCKADE_RC_UNREACHABLE || a.result.rc == STOCKADE_RC_FAILED));
            CHECK((a.result.verified & STOCKADE_VERIFIED_OFF) == 0);
            continue;
        }
        ++ok;
        if (a.what == "status")
            CHECK(a.result.power_state == STOCKADE_POWER_ON);
        if (a.what == "off") {
            CHECK(a.result.verified & STOCKADE_VERIFIED_OFF);
            CHECK_FALSE(a.node_alive_after); // "fenced" means the node process is gone
        }
        if (a.what == "on")
            CHECK(a.node_alive_after);
    }
    WARN("30% loss: " << ok << "/" << attempts.size() << " operations succeeded; slowest " << worst << " ms");
    // FreeIPMI's retransmissions carry nearly everything through 30 % loss (probe: 10/10).
    CHECK(ok >= int(attempts.size()) * 7 / 10);
    bmc->stop();
}
