// Failure cases of the ipmi agent against real ipmi_sim BMCs: wrong password, wrong user, too
// little privilege, nobody listening, a BMC frozen (SIGSTOP) before and in the middle of a fence,
// a BMC whose management controller is disabled (console mc_disable), and the password never
// visible in any process's command line or environment.  Each case asserts the exact error class,
// and that no failure ever comes back as "fenced".
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <signal.h>
#include <thread>

#include "ipmi_test_util.hpp"
#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

TEST_CASE("ipmi: wrong password, wrong user and too little privilege are access-denied with the cause", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    SimBmcOptions o;
    o.users = {{"admin", "secret", "admin"}, {"viewer", "viewpw", "user"}};
    auto bmc = SimBmc::start(d.path(), o);

    SECTION("wrong password")
    {
        auto s = open_ipmi(sim_params(*bmc, {{"password", "not-it"}}));
        OpResult r = s->power(PowerAction::Off, "node1", 20s);
        CHECK(r.rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK_THAT(r.message, Catch::Contains("wrong password"));
        CHECK_THAT(r.message, !Catch::Contains("not-it"));
        CHECK(r.verified == 0);
    }
    SECTION("wrong user")
    {
        auto s = open_ipmi(sim_params(*bmc, {{"username", "mallory"}}));
        OpResult r = s->power(PowerAction::Off, "node1", 20s);
        CHECK(r.rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK_THAT(r.message, Catch::Contains("wrong user") && Catch::Contains("mallory"));
    }
    SECTION("session at privilege level user cannot control the chassis")
    {
        auto s = open_ipmi(sim_params(*bmc, {{"privlvl", "user"}}));
        OpResult st = s->status("node1", 10s); // reading is allowed at user level
        CHECK(st.ok());
        OpResult r = s->power(PowerAction::Off, "node1", 20s);
        CHECK(r.rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK_THAT(r.message, Catch::Contains("privilege too low") && Catch::Contains("0xd4"));
        CHECK(r.verified == 0);
    }
    SECTION("without the opensesspriv workaround the session still opens, as ipmitool's does")
    {
        // ipmi_sim answers Open Session with maximum privilege 0; ipmitool ignores that field and
        // so does the agent.  The user-level account at privlvl=user then reads status but is
        // refused the power-off by the BMC itself.
        auto s = open_ipmi(sim_params(*bmc, {{"username", "viewer"}, {"password", "viewpw"}, {"workarounds", ""},
                                             {"privlvl", "user"}}));
        OpResult st = s->status("node1", 10s);
        CHECK(st.ok());
        OpResult r = s->power(PowerAction::Off, "node1", 20s);
        CHECK(r.rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK_THAT(r.message, Catch::Contains("privilege too low"));
    }
    CHECK(bmc->node_alive());
    CHECK(bmc->ipmitool_power_status() == "on");
}

TEST_CASE("ipmi: nobody listening is unreachable after the configured session timeout (+-20%)", "[ipmi]")
{
    RawParams p{{"ip", "127.0.0.1"}, {"ipport", std::to_string(free_udp_port())}, {"username", "admin"},
                {"password", "secret"}, {"workarounds", "opensesspriv"}, {"hostlist", "node1"}};
    for (int timeout_ms : {1000, 2500}) {
        p.emplace_back("session_timeout", std::to_string(timeout_ms));
        auto s = open_ipmi(p, false);
        auto t0 = std::chrono::steady_clock::now();
        OpResult r = s->power(PowerAction::Off, "node1", 30s);
        long ms = ms_since(t0);
        INFO(r.message << " after " << ms << " ms");
        CHECK(r.rc == STOCKADE_RC_UNREACHABLE);
        CHECK(r.verified == 0);
        CHECK_THAT(r.message, Catch::Contains("unreachable"));
        CHECK(ms >= timeout_ms * 8 / 10);
        CHECK(ms <= timeout_ms * 12 / 10);
        p.pop_back();
    }
}

TEST_CASE("ipmi: the operation deadline cuts a long session timeout short", "[ipmi]")
{
    RawParams p{{"ip", "127.0.0.1"}, {"ipport", std::to_string(free_udp_port())}, {"hostlist", "node1"},
                {"session_timeout", "20000"}, {"retransmission_timeout", "500"}};
    auto s = open_ipmi(p, false);
    auto t0 = std::chrono::steady_clock::now();
    OpResult r = s->status("node1", 1500ms);
    long ms = ms_since(t0);
    INFO(r.message);
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK(ms < 2000);
}

TEST_CASE("ipmi: a frozen BMC (SIGSTOP) is unreachable, never fenced", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    auto s = open_ipmi(sim_params(*bmc, {{"session_timeout", "1500"}}));

    SECTION("frozen before the fence")
    {
        bmc->freeze();
        auto t0 = std::chrono::steady_clock::now();
        OpResult r = s->power(PowerAction::Off, "node1", 20s);
        long ms = ms_since(t0);
        bmc->thaw();
        INFO(r.message);
        CHECK(r.rc == STOCKADE_RC_UNREACHABLE);
        CHECK(r.verified == 0);
        CHECK(ms < 2500);
        CHECK(bmc->node_alive());
    }
    SECTION("frozen between the power-down and its confirmation")
    {
        // power_wait holds the agent between the command and the first status poll; the BMC is
        // frozen inside that window, so the power-off cannot be confirmed.
        auto s2 = open_ipmi(sim_params(*bmc, {{"session_timeout", "1000"}, {"power_wait", "1"}, {"power_timeout", "3"}}));
        std::atomic<bool> done{false};
        OpResult r;
        long ms = 0;
        std::thread t([&] {
            auto t0 = std::chrono::steady_clock::now();
            r = s2->power(PowerAction::Off, "node1", 20s);
            ms = ms_since(t0);
            done = true;
        });
        struct JoinAtExit {
            std::thread &t;
            ~JoinAtExit()
            {
                if (t.joinable())
                    t.join();
            }
        } join_at_exit{t};
        // Freeze as soon as ipmi_sim has run the power-down.
        for (int i = 0; i < 200 && bmc->node_alive(); ++i)
            std::this_thread::sleep_for(10ms);
        std::this_thread::sleep_for(300ms); // the reply is out; the agent sits in power_wait
        bmc->freeze();
        t.join();
        bmc->thaw();
        INFO(r.message);
        CHECK_FALSE(r.ok());
        CHECK((r.verified & STOCKADE_VERIFIED_OFF) == 0);
        CHECK_THAT(r.message, Catch::Contains("power_timeout"));
        CHECK(ms < 7000);
        // After thawing, the BMC answers again and reports the truth.
        CHECK(bmc->ipmitool_power_status() == "off");
    }
}

TEST_CASE("ipmi: commands failing on the BMC (mc_disable) are a failure with the completion code", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    bmc->console("mc_disable 0x20");
    auto s = open_ipmi(sim_params(*bmc));
    OpResult r = s->power(PowerAction::Off, "node1", 20s);
    INFO(r.message);
    CHECK(r.rc == STOCKADE_RC_FAILED);
    CHECK_THAT(r.message, Catch::Contains("completion code 0x"));
    CHECK(r.verified == 0);
    CHECK(bmc->node_alive());
    OpResult st = s->status("node1", 10s);
    CHECK(st.rc == STOCKADE_RC_FAILED);
    CHECK(st.power_state == STOCKADE_POWER_UNKNOWN);

    bmc->console("mc_enable 0x20");
    OpResult st2 = s->status("node1", 10s);
    CHECK(st2.ok());
    CHECK(st2.power_state == STOCKADE_POWER_ON);
}

TEST_CASE("ipmi: the password is never in any process's argv or environment", "[ipmi][secrets]")
{
    IPMI_SKIP_IF_NO_SIM();
    const std::string pw = "Stk-7f3a9-Pw"; // distinctive, so a hit cannot be a coincidence
    TempDir d;
    SimBmcOptions o;
    o.users = {{"admin", pw, "admin"}};
    auto bmc = SimBmc::start(d.path(), o);

    // The scanner must be able to see an exposure (positive control).
    {
        SpawnSpec spec;
        spec.argv = {"/bin/sleep", "5"};
        spec.env_set = {{"LEAK", pw}};
        auto child = Subprocess::spawn(spec);
        REQUIRE(child.ok());
        std::this_thread::sleep_for(50ms);
        CHECK_FALSE(processes_exposing(pw).empty());
    }

    std::atomic<bool> stop{false};
    std::atomic<int> scans{0};
    std::vector<pid_t> seen;
    std::thread scanner([&] {
        while (!stop) {
            auto hits = processes_exposing(pw);
            seen.insert(seen.end(), hits.begin(), hits.end());
            ++scans;
        }
    });
    struct JoinAtExit { // a failed REQUIRE must not leave a joinable thread (std::terminate)
        std::atomic<bool> &stop;
        std::thread &t;
        ~JoinAtExit()
        {
            stop = true;
            if (t.joinable())
                t.join();
        }
    } join_at_exit{stop, scanner};

    const std::string pwfile = d.file("pw");
    write_file(pwfile, pw + "\n", 0600);
    {
        auto s = open_ipmi(sim_params(*bmc)); // isolated: the password crosses a pipe only
        CHECK(s->status("node1", 10s).ok());
        CHECK(s->power(PowerAction::Reboot, "node1", 30s).ok());
    }
    {
        RawParams p = sim_params(*bmc);
        std::erase_if(p, [](auto &kv) { return kv.first == "password"; });
        p.emplace_back("password_script", "cat " + pwfile);
        auto s = open_ipmi(p);
        OpResult off = s->power(PowerAction::Off, "node1", 30s);
        INFO(off.message);
        CHECK(off.ok());
        CHECK_FALSE(bmc->node_alive());
    }
    {
        RawParams p = sim_params(*bmc);
        std::erase_if(p, [](auto &kv) { return kv.first == "password"; });
        p.emplace_back("passwd_method", "file");
        p.emplace_back("password_file", pwfile);
        auto s = open_ipmi(p);
        CHECK(s->power(PowerAction::On, "node1", 30s).ok());
        CHECK(bmc->node_alive());
    }
    stop = true;
    if (scanner.joinable())
        scanner.join();
    // A full /proc scan takes tens of ms on a loaded machine and the three operations little more
    // (fork server): require that scanning went on across them, not a count that load decides.
    INFO("scans: " << scans.load());
    CHECK(scans.load() >= 2);
    CHECK(seen.empty());
}

TEST_CASE("ipmi: password_script failures and hangs are bounded and clear", "[ipmi][secrets]")
{
    RawParams base{{"ip", "127.0.0.1"}, {"hostlist", "node1"}};
    auto open_with = [&](const std::string &script, std::chrono::milliseconds timeout) {
        RawParams p = base;
        p.emplace_back("password_script", script);
        auto params = resolve_params(ipmi_agent(), p, UnknownParams::Reject);
        REQUIRE(params.ok());
        SessionOptions o;
        o.isolate = false;
        auto s = make_session(ipmi_agent(), o);
        return s->open(*params, timeout);
    };
    OpResult r = open_with("exit 3", 5s);
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("exited with status 3"));
    r = open_with("true", 5s);
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("no password"));

    auto t0 = std::chrono::steady_clock::now();
    r = open_with("exec sleep 31.4159", 1500ms);
    long ms = ms_since(t0);
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK(ms < 2500);
    std::this_thread::sleep_for(100ms);
    CHECK(processes_exposing("31.4159").empty()); // the script was killed, not left behind
}

TEST_CASE("ipmi: passwd_method=env reads IPMI_PASSWORD when no password is configured", "[ipmi][secrets]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    RawParams p = sim_params(*bmc);
    std::erase_if(p, [](auto &kv) { return kv.first == "password"; });
    p.emplace_back("passwd_method", "env");
    ::unsetenv("IPMI_PASSWORD");
    ::unsetenv("IPMITOOL_PASSWORD");
    OpResult r;
    auto s0 = open_ipmi(p, false, &r);
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    ::setenv("IPMI_PASSWORD", "secret", 1);
    auto s = open_ipmi(p, false);
    ::unsetenv("IPMI_PASSWORD");
    OpResult st = s->status("node1", 10s);
    INFO(st.message);
    CHECK(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);
}

TEST_CASE("ipmi: capture_console is best effort; a BMC without Serial-over-LAN never blocks the fence", "[ipmi]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    const std::string path = d.file("console.log");
    auto s = open_ipmi(sim_params(*bmc, {{"capture_console", path}, {"capture_seconds", "2"}}));
    auto t0 = std::chrono::steady_clock::now();
    OpResult off = s->power(PowerAction::Off, "node1", 30s);
    long ms = ms_since(t0);
    INFO(off.message << " after " << ms << " ms");
    REQUIRE(off.ok());
    CHECK(off.verified & STOCKADE_VERIFIED_OFF);
    CHECK_FALSE(bmc->node_alive());
    CHECK(bmc->ipmitool_power_status() == "off");
    CHECK(ms < 2000 + 2000 + 2500); // session timeout + capture budget + the off itself
}
