// Every action of the redfish agent against the Redfish test service, each outcome read back from
// the process table (the node is a process) and from the service's own PowerState: status, off,
// on, reboot (onoff and cycle), diag; ResetTypes chosen from AllowableValues or an ActionInfo; 202
// tasks; Basic and session auth (the session deleted at the end); one TLS connection for a whole
// fence; several systems behind one service; systems_uri; port_as_ip.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "redfish_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

TEST_CASE("status, off, on, reboot and diag, read back from the node process", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    REQUIRE(node > 0);
    auto s = open_redfish(rf_params(*svc));

    OpResult st = s->status("node1", 10s);
    INFO(st.message);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);

    OpResult off = s->power(PowerAction::Off, "node1", 15s);
    INFO(off.message);
    REQUIRE(off.ok());
    CHECK((off.verified & STOCKADE_VERIFIED_OFF) != 0);
    CHECK_FALSE(pid_alive(node));
    CHECK(svc->node_pid() == 0);
    CHECK(svc->read_power_state("1") == "Off");
    CHECK(s->status("node1", 10s).power_state == STOCKADE_POWER_OFF);

    // Already off: nothing is sent.
    OpResult again = s->power(PowerAction::Off, "node1", 15s);
    CHECK(again.ok());
    CHECK(svc->resets() == std::vector<std::string>{"ForceOff"});

    OpResult on = s->power(PowerAction::On, "node1", 15s);
    INFO(on.message);
    REQUIRE(on.ok());
    CHECK((on.verified & STOCKADE_VERIFIED_ON) != 0);
    pid_t up = svc->node_pid();
    CHECK(up > 0);
    CHECK(svc->read_power_state("1") == "On");

    OpResult rb = s->power(PowerAction::Reboot, "node1", 20s);
    INFO(rb.message);
    REQUIRE(rb.ok());
    CHECK(rb.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK_FALSE(pid_alive(up));
    CHECK(svc->node_pid() > 0);
    CHECK(svc->resets() == std::vector<std::string>{"ForceOff", "On", "ForceOff", "On"});

    OpResult diag = s->power(PowerAction::Diag, "node1", 10s);
    CHECK(diag.ok());
    CHECK(svc->resets().back() == "Nmi");
    s->close();
}

TEST_CASE("reboot with method=cycle is one ForceRestart, confirmed only by seeing Off", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    svc->control(R"({"restart_off_ms": 600})");
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc, {{"method", "cycle"}}));
    OpResult rb = s->power(PowerAction::Reboot, "node1", 20s);
    INFO(rb.message);
    REQUIRE(rb.ok());
    CHECK(rb.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK_FALSE(pid_alive(node));
    CHECK(svc->node_pid() > 0);
    CHECK(svc->resets() == std::vector<std::string>{"ForceRestart"});

    // A BMC that allows no ForceRestart but PowerCycle: that one is used.
    TempDir d2;
    RedfishServiceOptions o;
    o.allowable = {"On", "ForceOff", "PowerCycle"};
    auto svc2 = RedfishService::start(d2.path(), o);
    svc2->control(R"({"restart_off_ms": 600})");
    auto s2 = open_redfish(rf_params(*svc2, {{"method", "cycle"}}));
    OpResult rb2 = s2->power(PowerAction::Reboot, "node1", 20s);
    INFO(rb2.message);
    CHECK(rb2.ok());
    CHECK(svc2->resets() == std::vector<std::string>{"PowerCycle"});
}

TEST_CASE("ResetType comes from what the system allows (AllowableValues or ActionInfo)", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    SECTION("no On: ForceOn")
    {
        TempDir d;
        RedfishServiceOptions o;
        o.allowable = {"ForceOff", "ForceOn", "ForceRestart"};
        o.initially_on = {"none"};
        auto svc = RedfishService::start(d.path(), o);
        REQUIRE(svc->node_pid() == 0);
        auto s = open_redfish(rf_params(*svc));
        OpResult on = s->power(PowerAction::On, "n", 15s);
        INFO(on.message);
        CHECK(on.ok());
        CHECK(svc->resets() == std::vector<std::string>{"ForceOn"});
        CHECK(svc->node_pid() > 0);
    }
    SECTION("no ForceOff: refused as unsupported, the node untouched, nothing sent")
    {
        TempDir d;
        RedfishServiceOptions o;
        o.allowable = {"On", "GracefulShutdown", "PushPowerButton"};
        o.action_info = true;
        auto svc = RedfishService::start(d.path(), o);
        pid_t node = svc->node_pid();
        auto s = open_redfish(rf_params(*svc));
        OpResult off = s->power(PowerAction::Off, "n", 15s);
        CHECK(off.rc == STOCKADE_RC_UNSUPPORTED);
        CHECK(off.verified == 0);
        CHECK_THAT(off.message, Catch::Contains("ForceOff"));
        CHECK_THAT(off.message, Catch::Contains("GracefulShutdown"));
        CHECK(pid_alive(node));
        CHECK(svc->resets().empty());
        CHECK(svc->requests_matching("ResetActionInfo") == 1);
    }
}

TEST_CASE("a reset answered 202 Accepted is followed to the end of its task", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    svc->control(R"({"fault": "task", "task_ms": 500})");
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc));
    OpResult off = s->power(PowerAction::Off, "n", 15s);
    INFO(off.message);
    REQUIRE(off.ok());
    CHECK_FALSE(pid_alive(node));
    CHECK(svc->requests_matching("/Monitor") >= 2);

    // A task that ends in Exception is a failure, and the node still runs.
    svc->control(R"({"fault": "task-fails", "task_ms": 300})");
    OpResult on = s->power(PowerAction::On, "n", 15s);
    CHECK(on.rc == STOCKADE_RC_FAILED);
    CHECK_THAT(on.message, Catch::Contains("Exception"));
    CHECK(svc->node_pid() == 0);
}

TEST_CASE("one TLS connection and (with sessions) one login for a whole fence; the session is deleted", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    for (const char *auth : {"basic", "session"}) {
        DYNAMIC_SECTION("auth_type=" << auth)
        {
            svc->set_power("1", true);
            svc->clear_log();
            auto s = open_redfish(rf_params(*svc, {{"auth_type", auth}}));
            REQUIRE(s->status("n", 10s).ok());
            OpResult rb = s->power(PowerAction::Reboot, "n", 20s);
            INFO(rb.message);
            REQUIRE(rb.ok());
            REQUIRE(s->status("n", 10s).power_state == STOCKADE_POWER_ON);
            if (std::string(auth) == "session")
                CHECK(svc->open_sessions() == 1);
            s->close();
            CHECK(svc->connections() == 1);
            CHECK(svc->open_sessions() == 0);
            CHECK(svc->requests_matching("POST /redfish/v1/SessionService/Sessions") ==
                  (std::string(auth) == "session" ? 1u : 0u));
            if (std::string(auth) == "session") {
                CHECK(svc->requests_matching("DELETE /redfish/v1/SessionService/Sessions/") == 1);
                CHECK(svc->requests_matching("auth=basic") == 0);
            }
        }
    }
}

// Redfish fixes the Systems collection at /redfish/v1/Systems: read there at once (one request
// fewer); the service root only when the collection is elsewhere, or for session auth's login URI.
TEST_CASE("the Systems collection is read at its fixed URI; the service root only when needed", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    SECTION("where Redfish puts it")
    {
        auto svc = RedfishService::start(d.path());
        svc->clear_log();
        auto s = open_redfish(rf_params(*svc));
        CHECK(s->status("n", 10s).power_state == STOCKADE_POWER_ON);
        s->close();
        CHECK(svc->requests_matching("GET /redfish/v1 ") == 0);
        CHECK(svc->requests_matching("GET /redfish/v1/Systems auth=basic:admin -> 200") == 1);
    }
    SECTION("elsewhere: found through the service root")
    {
        RedfishServiceOptions o;
        o.systems_collection = "/redfish/v1/Computers";
        auto svc = RedfishService::start(d.path(), o);
        svc->clear_log();
        auto s = open_redfish(rf_params(*svc));
        OpResult off = s->power(PowerAction::Off, "n", 15s);
        INFO(off.message);
        CHECK(off.ok());
        s->close();
        CHECK(svc->requests_matching("GET /redfish/v1/Systems auth=basic:admin -> 404") == 1);
        CHECK(svc->requests_matching("GET /redfish/v1 auth=none -> 200") == 1);
        CHECK(svc->requests_matching("GET /redfish/v1/Computers auth=basic:admin -> 200") == 1);
        CHECK(svc->read_power_state("1") == "Off");
    }
    SECTION("session auth: the root names the login URI")
    {
        auto svc = RedfishService::start(d.path());
        svc->clear_log();
        auto s = open_redfish(rf_params(*svc, {{"auth_type", "session"}}));
        CHECK(s->status("n", 10s).power_state == STOCKADE_POWER_ON);
        s->close();
        CHECK(svc->requests_matching("GET /redfish/v1 auth=none -> 200") == 1);
    }
    SECTION("a wrong redfish_uri is still named as such")
    {
        auto svc = RedfishService::start(d.path());
        auto s = open_redfish(rf_params(*svc, {{"redfish_uri", "/redfish/v9"}}));
        OpResult st = s->status("n", 10s);
        CHECK(st.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK(st.message.find("check redfish_uri") != std::string::npos);
        s->close();
    }
}

// fence-agents (and fence_stockade) read the state, then act at once: the action starts from that
// read instead of reading the system again -- but only right after it, and only once.
TEST_CASE("a power action right after status starts from that read; later ones read again", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    // GETs of the system before the first Reset POST of this action.
    auto reads_before_reset = [&] {
        size_t n = 0;
        for (const auto &l : svc->requests()) {
            if (l.find("POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset") != std::string::npos)
                break;
            n += l.find("GET /redfish/v1/Systems/1 ") != std::string::npos;
        }
        return n;
    };
    auto s = open_redfish(rf_params(*svc));
    svc->clear_log();
    const auto t0 = std::chrono::steady_clock::now();
    OpResult st = s->status("n", 10s);
    // The read is reused within 250 ms: a machine that stalls this long reads again, rightly.
    const bool quick = std::chrono::steady_clock::now() - t0 < 150ms;
    REQUIRE(st.ok());
    REQUIRE(st.power_state == STOCKADE_POWER_ON);
    OpResult rb = s->power(PowerAction::Reboot, "n", 20s);
    INFO(rb.message);
    REQUIRE(rb.ok());
    CHECK(rb.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    if (quick)
        CHECK(reads_before_reset() == 1); // status's read, not a second one
    else
        WARN("status took 150 ms or more here: the reuse is not checked");

    SECTION("a second action after the same status reads again")
    {
        svc->clear_log();
        OpResult off = s->power(PowerAction::Off, "n", 15s);
        REQUIRE(off.ok());
        CHECK(reads_before_reset() == 1);
        CHECK_FALSE(pid_alive(svc->node_pid()));
    }
    SECTION("an old status is read again: the state changed meanwhile, nothing is sent")
    {
        REQUIRE(s->status("n", 10s).power_state == STOCKADE_POWER_ON);
        svc->set_power("1", false); // behind our back
        std::this_thread::sleep_for(400ms);
        svc->clear_log();
        OpResult off = s->power(PowerAction::Off, "n", 15s);
        REQUIRE(off.ok());
        CHECK(reads_before_reset() == 1);
        CHECK(svc->requests_matching("POST") == 0);
        // The reboot's two, then set_power's: none from this off.
        CHECK(svc->resets() == std::vector<std::string>{"ForceOff", "On", "ForceOff"});
    }
    s->close();
}

TEST_CASE("several systems behind one service: the target names the system", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    RedfishServiceOptions o;
    o.systems = {"node1", "node2", "Blade.3"};
    auto svc = RedfishService::start(d.path(), o);
    pid_t n1 = svc->node_pid("node1"), n2 = svc->node_pid("node2"), n3 = svc->node_pid("Blade.3");
    REQUIRE((n1 > 0 && n2 > 0 && n3 > 0));
    auto s = open_redfish(rf_params(*svc));

    OpResult off = s->power(PowerAction::Off, "node2", 15s);
    INFO(off.message);
    REQUIRE(off.ok());
    CHECK(pid_alive(n1));
    CHECK_FALSE(pid_alive(n2));
    CHECK(pid_alive(n3));
    CHECK(s->status("node1", 10s).power_state == STOCKADE_POWER_ON);
    CHECK(s->status("NODE2", 10s).power_state == STOCKADE_POWER_OFF); // ids compare case-insensitively
    CHECK(s->power(PowerAction::Off, "blade.3", 15s).ok());
    CHECK_FALSE(pid_alive(n3));
    CHECK(pid_alive(n1));

    // A name no system has: unknown target, nothing touched.
    OpResult bad = s->power(PowerAction::Off, "node9", 15s);
    CHECK(bad.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK_THAT(bad.message, Catch::Contains("node1, node2, Blade.3"));
    CHECK(pid_alive(n1));
    // No target at all with several systems: a configuration error, never "the last one".
    OpResult none = s->power(PowerAction::Off, "", 15s);
    CHECK(none.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(pid_alive(n1));

    // systems_uri pins one system whatever the target.
    auto pinned = open_redfish(rf_params(*svc, {{"systems_uri", "/redfish/v1/Systems/node1"}}));
    CHECK(pinned->power(PowerAction::Off, "whatever", 15s).ok());
    CHECK_FALSE(pid_alive(n1));
    // A systems_uri that does not exist: bad config, named.
    auto wrong = open_redfish(rf_params(*svc, {{"systems_uri", "/redfish/v1/Systems/nope"}}));
    OpResult w = wrong->status("x", 10s);
    CHECK(w.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(w.message, Catch::Contains("systems_uri"));
}

TEST_CASE("port_as_ip: the target is the BMC's address; fence_redfish's ip:port form", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc, {{"ip", "<unset>"}, {"port_as_ip", "1"}}));
    OpResult off = s->power(PowerAction::Off, svc->address(), 15s);
    INFO(off.message);
    CHECK(off.ok());
    CHECK_FALSE(pid_alive(node));

    auto colon = open_redfish(rf_params(*svc, {{"ip", svc->endpoint()}, {"ipport", "<unset>"}}));
    OpResult st = colon->status("n", 10s);
    INFO(st.message);
    CHECK(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_OFF);
}

TEST_CASE("the agent also runs in-process (library use)", "[redfish]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc), /*isolate=*/false);
    OpResult off = s->power(PowerAction::Off, "n", 15s);
    INFO(off.message);
    CHECK(off.ok());
    CHECK_FALSE(pid_alive(node));
}

TEST_CASE("reading the agent's descriptor does not load libcurl (front-ends load every agent)", "[redfish]")
{
    // glibc's loader reports every object it maps with LD_DEBUG=files.
    auto meta = run({bin_path("stockade"), "metadata", "redfish"}, "", 30s, {{"LD_DEBUG", "files"}});
    REQUIRE(meta.exit_code == 0);
    CHECK_THAT(meta.err, Catch::Contains("redfish.so"));
    CHECK(meta.err.find("libcurl") == std::string::npos);
    CHECK(meta.err.find("libgnutls") == std::string::npos);
}
