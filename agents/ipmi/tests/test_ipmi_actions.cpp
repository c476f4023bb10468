// Every action of the ipmi agent against a real ipmi_sim BMC, each outcome read back
// independently: ipmitool -I lanplus -C 3 for the BMC's view, and the node process itself (gone
// after off, a new process after reboot).
#include <catch2/catch.hpp>

#include <algorithm>

#include "ipmi_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

bool log_has(const SimBmc &b, const std::string &line)
{
    auto l = b.chassis_log();
    return std::find(l.begin(), l.end(), line) != l.end();
}

} // namespace

TEST_CASE("ipmi agent descriptor: parameters, aliases, secrets", "[ipmi]")
{
    const AgentInfo &a = ipmi_agent();
    CHECK(a.can(STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST |
                STOCKADE_CAP_MONITOR | STOCKADE_CAP_DIAG));
    CHECK(a.find_param("ipaddr")->name == "ip");
    CHECK(a.find_param("login")->name == "username");
    CHECK(a.find_param("userid")->name == "username");
    CHECK(a.find_param("passwd")->secret());
    CHECK(a.find_param("k_g")->secret());
    CHECK(a.find_param("hostname")->name == "hostlist"); // cluster-glue's node name, never the BMC address
    CHECK(a.find_param("plug")->name == "hostlist");
    CHECK(*a.find_param("lanplus")->default_value == "1");
    CHECK(*a.find_param("cipher")->default_value == "3");
    CHECK(*a.find_param("power_wait")->default_value == "0");
}

TEST_CASE("ipmi: bad configurations are refused at open, naming the parameter", "[ipmi]")
{
    RawParams base{{"ip", "127.0.0.1"}, {"hostlist", "node1"}, {"username", "admin"}, {"password", "x"}};
    auto open_with = [&](RawParams extra) {
        RawParams p = base;
        for (auto &e : extra)
            p.push_back(e);
        OpResult r;
        auto s = open_ipmi(p, false, &r);
        return r;
    };
    OpResult r = open_with({{"cipher", "0"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("cipher") && Catch::Contains("allow_cipher_zero=1"));
    CHECK(open_with({{"cipher", "0"}, {"allow_cipher_zero", "1"}}).ok());
    r = open_with({{"cipher", "5"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    r = open_with({{"workarounds", "opensesspriv,bogus"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("'bogus'"));
    r = open_with({{"lanplus", "0"}, {"auth", "none"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    // retransmission_timeout is an upper bound, fitted under session_timeout.
    CHECK(open_with({{"retransmission_timeout", "3000"}, {"session_timeout", "2000"}}).ok());
    r = open_with({{"password_script", "echo x"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("not both"));
    // hostlist is optional (one BMC, one node, as fence_ipmilan); the rest stays checked.
    CHECK(resolve_params(ipmi_agent(), {{"ip", "127.0.0.1"}}, UnknownParams::Reject).ok());
    r = open_with({{"target", "0x21"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("'target'"));
    r = open_with({{"k_g", "abc"}, {"hexadecimal_kg", "0011"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("not both"));
    r = open_with({{"ipmitool_timeout", "0"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("'ipmitool_timeout'"));
}

TEST_CASE("ipmi: status, off, on against ipmi_sim, read back with ipmitool and the node process", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    REQUIRE(bmc->ipmitool_power_status() == "on");
    pid_t node = bmc->node_pid();
    REQUIRE(bmc->node_alive());

    auto s = open_ipmi(sim_params(*bmc));
    OpResult st = s->status("node1", 10s);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);
    CHECK(s->monitor(10s).ok());
    OpResult l = s->list(5s);
    REQUIRE(l.ok());
    REQUIRE(l.targets.size() == 1);
    CHECK(l.targets[0].name == "node1");

    OpResult off = s->power(PowerAction::Off, "node1", 30s);
    INFO(off.message);
    REQUIRE(off.ok());
    CHECK(off.verified & STOCKADE_VERIFIED_OFF);
    CHECK(bmc->ipmitool_power_status() == "off");
    CHECK(pid_gone_within(node, std::chrono::seconds(5)));
    CHECK_FALSE(bmc->node_alive());
    CHECK(s->status("node1", 10s).power_state == STOCKADE_POWER_OFF);

    // Off again: confirmed off.  No status is read first (one BMC exchange less per fence): the
    // power-down goes out, changes nothing, and the confirming read says off.
    size_t sets_before = bmc->chassis_log().size();
    OpResult off2 = s->power(PowerAction::Off, "node1", 30s);
    REQUIRE(off2.ok());
    CHECK(off2.verified & STOCKADE_VERIFIED_OFF);
    auto log2 = bmc->chassis_log();
    std::vector<std::string> after_off(log2.begin() + long(sets_before), log2.end());
    CHECK(after_off.size() >= 2);
    CHECK(after_off.front() == "set power 0"); // no status read before it
    CHECK(std::none_of(after_off.begin(), after_off.end(), [](const std::string &x) { return x == "set power 1"; }));
    CHECK_FALSE(bmc->node_alive());
    CHECK(bmc->ipmitool_power_status() == "off");

    OpResult on = s->power(PowerAction::On, "node1", 30s);
    INFO(on.message);
    REQUIRE(on.ok());
    CHECK(on.verified & STOCKADE_VERIFIED_ON);
    CHECK(bmc->ipmitool_power_status() == "on");
    CHECK(bmc->node_alive());
    CHECK(bmc->node_pid() != node);
    s->close();
}

TEST_CASE("ipmi: reboot (onoff) gives a new node process; from off it is off, confirmed, then on", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    pid_t node = bmc->node_pid();
    auto s = open_ipmi(sim_params(*bmc));
    auto t0 = std::chrono::steady_clock::now();
    OpResult r = s->power(PowerAction::Reboot, "node1", 30s);
    long ms = ms_since(t0);
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(r.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK(pid_gone_within(node, std::chrono::seconds(5)));
    CHECK(bmc->node_alive());
    CHECK(bmc->node_pid() != node);
    CHECK(bmc->ipmitool_power_status() == "on");
    CHECK(log_has(*bmc, "set power 0"));
    CHECK(log_has(*bmc, "set power 1"));
    WARN("reboot (onoff, isolated session) took " << ms << " ms");

    // Node off: the power-down (sent without a status read first) changes nothing, the off is
    // confirmed, then the node is powered on.
    REQUIRE(s->power(PowerAction::Off, "node1", 30s).ok());
    size_t mark = bmc->chassis_log().size();
    OpResult r2 = s->power(PowerAction::Reboot, "node1", 30s);
    REQUIRE(r2.ok());
    CHECK(r2.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    auto log = bmc->chassis_log();
    std::vector<std::string> after(log.begin() + long(mark), log.end());
    auto down = std::find(after.begin(), after.end(), "set power 0");
    auto up = std::find(after.begin(), after.end(), "set power 1");
    CHECK(up != after.end());
    CHECK(down < up); // off first, on last: never the other way round
    CHECK(bmc->node_alive());
}

TEST_CASE("ipmi: method=cycle is confirmed off, and never sent to a node that is off", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    pid_t node = bmc->node_pid();
    auto s = open_ipmi(sim_params(*bmc, {{"method", "cycle"}}));
    OpResult r = s->power(PowerAction::Reboot, "node1", 30s);
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(r.verified & STOCKADE_VERIFIED_OFF);
    CHECK(r.verified & STOCKADE_VERIFIED_ON);
    CHECK(pid_gone_within(node, std::chrono::seconds(5)));
    CHECK(bmc->node_alive());
    CHECK(bmc->ipmitool_power_status() == "on");

    REQUIRE(s->power(PowerAction::Off, "node1", 30s).ok());
    size_t mark = bmc->chassis_log().size();
    OpResult r2 = s->power(PowerAction::Reboot, "node1", 30s);
    REQUIRE(r2.ok());
    auto log = bmc->chassis_log();
    std::vector<std::string> after(log.begin() + long(mark), log.end());
    // A cycle would show as "set power 0" (ipmi_sim powers down first); only a power-up was sent.
    CHECK(std::find(after.begin(), after.end(), "set power 0") == after.end());
    CHECK(std::find(after.begin(), after.end(), "set power 1") != after.end());
    CHECK(bmc->node_alive());
}

TEST_CASE("ipmi: a target outside hostlist is refused and nothing is powered", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    auto s = open_ipmi(sim_params(*bmc, {{"hostlist", "node1,node1-alt"}}));
    OpResult r = s->power(PowerAction::Off, "node2", 30s);
    CHECK(r.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK_THAT(r.message, Catch::Contains("node2") && Catch::Contains("node1"));
    CHECK(s->status("node2", 10s).rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(bmc->node_alive());
    CHECK(bmc->chassis_log().empty()); // the BMC was not even asked
    CHECK(s->status("NODE1-ALT", 10s).ok()); // names compare case-insensitively
}

TEST_CASE("ipmi: diag sends the NMI and reports the BMC's refusal with its completion code", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    auto s = open_ipmi(sim_params(*bmc));
    OpResult r = s->power(PowerAction::Diag, "node1", 10s);
    // ipmi_sim has no diagnostic interrupt: it answers "invalid data field" (0xcc).
    CHECK(r.rc == STOCKADE_RC_FAILED);
    CHECK_THAT(r.message, Catch::Contains("completion code 0xcc"));
    CHECK(r.verified == 0);
    CHECK(bmc->node_alive());

    // nmi_before_off: the NMI failure never blocks the fence.
    auto s2 = open_ipmi(sim_params(*bmc, {{"nmi_before_off", "1"}}));
    OpResult off = s2->power(PowerAction::Off, "node1", 30s);
    INFO(off.message);
    REQUIRE(off.ok());
    CHECK_FALSE(bmc->node_alive());
}

TEST_CASE("ipmi: IPMI 1.5 (lanplus=0) works too", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    auto s = open_ipmi(sim_params(*bmc, {{"lanplus", "0"}, {"workarounds", ""}}));
    OpResult st = s->status("node1", 10s);
    INFO(st.message);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);
    OpResult off = s->power(PowerAction::Off, "node1", 30s);
    REQUIRE(off.ok());
    CHECK(bmc->ipmitool_power_status() == "off");
}

TEST_CASE("ipmi: in-process library calls work like isolated ones", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    pid_t node = bmc->node_pid();
    auto s = open_ipmi(sim_params(*bmc), false);
    OpResult st = s->status("node1", 10s);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);
    OpResult r = s->power(PowerAction::Reboot, "node1", 30s);
    REQUIRE(r.ok());
    CHECK(pid_gone_within(node, std::chrono::seconds(5)));
    CHECK(bmc->node_alive());
}
