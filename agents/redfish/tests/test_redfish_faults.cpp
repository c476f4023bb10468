// Faults of a Redfish BMC and what the agent makes of them; every case asserts that no false
// "fenced" comes out (the node process still runs unless the off really happened), that the
// deadline is honoured, and that the session token is deleted: wrong password (401, never
// retried), a user who may not reset (403), 503 (retried; persistent 503 is unreachable), a
// service that hangs, a reset accepted that never changes anything, a dead port; TLS: unknown CA,
// a certificate for another name, pinned fingerprints right and wrong (nothing sent on a
// mismatch), ssl_insecure (logged); the password in no argv, environment or log line.
#include <catch2/catch.hpp>

#include <thread>

#include "stockade/time_budget.hpp"
#include "redfish_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

// The service logs a failed handshake when its own side of it fails, which may be a moment after
// the client gave up: wait for the line (up to 5 s), never for its absence.
size_t requests_matching_soon(const RedfishService &svc, const std::string &needle)
{
    size_t n = 0;
    for (int i = 0; i < 500 && (n = svc.requests_matching(needle)) == 0; ++i)
        std::this_thread::sleep_for(10ms);
    return n;
}

} // namespace

TEST_CASE("wrong password: access denied at once, asked once, node untouched", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    for (const char *auth : {"basic", "session"}) {
        svc->clear_log();
        auto s = open_redfish(rf_params(*svc, {{"password", "wrong"}, {"auth_type", auth}, {"retries", "5"}}));
        auto t0 = std::chrono::steady_clock::now();
        OpResult off = s->power(PowerAction::Off, "n", 20s);
        INFO(auth << ": " << off.message);
        CHECK(off.rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK(off.verified == 0);
        CHECK(ms_since(t0) < 3000);
        CHECK_THAT(off.message, Catch::Contains("401"));
        CHECK(off.message.find("wrong") == std::string::npos); // the password is not in the message
        CHECK(svc->requests_matching("-> 401") == 1);          // never retried
        CHECK(pid_alive(node));
        s->close();
        CHECK(svc->open_sessions() == 0);
    }
}

TEST_CASE("a user who may not reset (403): access denied, node untouched, token deleted", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    RedfishServiceOptions o;
    o.users.push_back({"viewer", "look", "ReadOnly"});
    auto svc = RedfishService::start(d.path(), o);
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc, {{"username", "viewer"}, {"password", "look"}, {"auth_type", "session"}}));
    CHECK(s->status("n", 10s).power_state == STOCKADE_POWER_ON); // reading is allowed
    OpResult off = s->power(PowerAction::Off, "n", 15s);
    INFO(off.message);
    CHECK(off.rc == STOCKADE_RC_ACCESS_DENIED);
    CHECK_THAT(off.message, Catch::Contains("403"));
    CHECK(svc->requests_matching("-> 403") == 1);
    CHECK(pid_alive(node));
    CHECK(svc->open_sessions() == 1);
    s->close();
    CHECK(svc->open_sessions() == 0);
}

TEST_CASE("503: retried while it lasts a moment; a BMC that stays busy is unreachable", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    svc->control(R"({"fault": "503", "fail_count": 2})");
    auto s = open_redfish(rf_params(*svc));
    OpResult off = s->power(PowerAction::Off, "n", 15s);
    INFO(off.message);
    CHECK(off.ok());
    CHECK_FALSE(pid_alive(node));
    CHECK(svc->requests_matching("-> 503") == 2);

    svc->set_power("1", true);
    pid_t up = svc->node_pid();
    svc->control(R"({"fault": "503"})");
    OpResult busy = s->power(PowerAction::Off, "n", 15s);
    INFO(busy.message);
    CHECK(busy.rc == STOCKADE_RC_UNREACHABLE);
    CHECK(busy.verified == 0);
    CHECK_THAT(busy.message, Catch::Contains("503"));
    CHECK(pid_alive(up));
}

TEST_CASE("a service that hangs: the deadline is honoured, nothing is claimed, the token still goes",
          "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    auto s = open_redfish(rf_params(*svc, {{"auth_type", "session"}}));
    REQUIRE(s->status("n", 10s).ok()); // logged in
    svc->control(R"({"fault": "hang"})");
    auto t0 = std::chrono::steady_clock::now();
    OpResult off = s->power(PowerAction::Off, "n", 3s);
    long ms = ms_since(t0);
    INFO(off.message);
    CHECK_FALSE(off.ok());
    CHECK(off.rc == STOCKADE_RC_TIMEOUT);
    CHECK(off.verified == 0);
    CHECK(ms >= 2500);
    CHECK(ms < 4500);
    CHECK(pid_alive(node));
    svc->control("{}");
    s->close(); // the DELETE goes out on a fresh connection
    CHECK(svc->open_sessions() == 0);

    // request_timeout bounds one request below the operation's deadline: a hung BMC is
    // unreachable after it (with no retry left), not after the whole deadline.
    svc->control(R"({"fault": "hang"})");
    auto s2 = open_redfish(rf_params(*svc, {{"request_timeout", "1"}, {"retries", "0"}}));
    t0 = std::chrono::steady_clock::now();
    OpResult st = s2->status("n", 20s);
    ms = ms_since(t0);
    INFO(st.message);
    CHECK(st.rc == STOCKADE_RC_UNREACHABLE);
    CHECK(ms < 3000);
    svc->control("{}");
}

TEST_CASE("a reset accepted that never changes anything fails after power_timeout", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    svc->control(R"({"fault": "stuck"})");
    auto s = open_redfish(rf_params(*svc, {{"power_timeout", "2"}}));
    auto t0 = std::chrono::steady_clock::now();
    OpResult off = s->power(PowerAction::Off, "n", 15s);
    long ms = ms_since(t0);
    INFO(off.message);
    CHECK(off.rc == STOCKADE_RC_FAILED);
    CHECK(off.verified == 0);
    CHECK_THAT(off.message, Catch::Contains("did not report PowerState Off within power_timeout=2"));
    CHECK(ms >= 1900);
    CHECK(ms < 6000);
    CHECK(pid_alive(node));
    CHECK(svc->read_power_state("1") == "On");

    // Reboot: the off part is not confirmed, so the reboot fails too (never "fenced").
    OpResult rb = s->power(PowerAction::Reboot, "n", 15s);
    CHECK(rb.rc == STOCKADE_RC_FAILED);
    CHECK(rb.verified == 0);
    CHECK(pid_alive(node));

    // A deadline shorter than power_timeout: a timeout, at the deadline.
    auto s2 = open_redfish(rf_params(*svc, {{"power_timeout", "20"}}));
    t0 = std::chrono::steady_clock::now();
    OpResult cut = s2->power(PowerAction::Off, "n", 2s);
    INFO(cut.message);
    CHECK(cut.rc == STOCKADE_RC_TIMEOUT);
    CHECK(ms_since(t0) < 3500);
    CHECK(pid_alive(node));
}

TEST_CASE("a BMC that drops every kept-alive connection: each request reconnects once, no reset is sent twice",
          "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t before = svc->node_pid();
    svc->control(R"({"drop_idle": true})");
    KeptLog kept;
    auto s = open_redfish(rf_params(*svc), true, &kept.logger);
    OpResult rb = s->power(PowerAction::Reboot, "n", 15s);
    INFO(rb.message << "\n" << kept.all());
    REQUIRE(rb.ok());
    CHECK_FALSE(kept.contains("trying again")); // reopened at once, not failed and retried later
    CHECK((rb.verified & STOCKADE_VERIFIED_OFF) != 0);
    CHECK_FALSE(pid_alive(before));
    CHECK(pid_alive(svc->node_pid())); // a new node runs
    CHECK(svc->node_pid() != before);
    // One TCP connection per request (the BMC closed each one after its answer) ...
    const size_t answered = svc->requests_matching(" -> ");
    CHECK(answered >= 5);
    CHECK(svc->connections() == answered);
    // ... and the reconnect never replayed a request the BMC had already answered.
    CHECK(svc->requests_matching("Reset") == 2); // ForceOff, On: once each
    CHECK(test::read_file((d.path() / "1.resets").string()) == "ForceOff\nOn\n");
}

TEST_CASE("nobody listening: unreachable, quickly", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    auto s = open_redfish({{"ip", "127.0.0.1"},
                           {"ipport", std::to_string(free_tcp_port())},
                           {"username", "admin"},
                           {"password", "secret"}});
    auto t0 = std::chrono::steady_clock::now();
    OpResult off = s->power(PowerAction::Off, "n", 10s);
    INFO(off.message);
    CHECK(off.rc == STOCKADE_RC_UNREACHABLE);
    CHECK_THAT(off.message, Catch::Contains("127.0.0.1"));
    CHECK(ms_since(t0) < 3000);
}

TEST_CASE("TLS: verified by default; CA file, pinned fingerprint, insecure only when asked", "[redfish][faults][tls]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path() / "good");
    RedfishServiceOptions wo;
    wo.wrong_name_certificate = true;
    wo.cert_dir = (d.path() / "good").string(); // same CA, certificate for another host name
    auto wrong = RedfishService::start(d.path() / "wrong", wo);
    pid_t node = svc->node_pid(), wnode = wrong->node_pid();

    SECTION("no CA given: the system store does not know the test CA; nothing is sent")
    {
        auto s = open_redfish(rf_params(*svc, {{"ssl_ca_file", "<unset>"}}));
        OpResult off = s->power(PowerAction::Off, "n", 10s);
        INFO(off.message);
        CHECK(off.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(off.message, Catch::Contains("not trusted"));
        CHECK(pid_alive(node));
        CHECK(svc->requests_matching(" GET ") == 0);
        CHECK(requests_matching_soon(*svc, "TLS-FAILED") >= 1);
    }
    SECTION("right CA, certificate for another name: refused")
    {
        auto s = open_redfish(rf_params(*wrong));
        OpResult off = s->power(PowerAction::Off, "n", 10s);
        INFO(off.message);
        CHECK(off.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK(pid_alive(wnode));
        CHECK(wrong->requests_matching(" GET ") == 0);
    }
    SECTION("pinned fingerprint: that certificate is accepted whatever its name")
    {
        auto s = open_redfish(rf_params(*wrong, {{"ssl_ca_file", "<unset>"}, {"ssl_fingerprint", wrong->fingerprint()}}));
        OpResult off = s->power(PowerAction::Off, "n", 10s);
        INFO(off.message);
        CHECK(off.ok());
        CHECK_FALSE(pid_alive(wnode));
    }
    SECTION("wrong fingerprint: refused inside the handshake, before any request")
    {
        auto s = open_redfish(rf_params(*wrong, {{"ssl_ca_file", "<unset>"}, {"ssl_fingerprint", svc->fingerprint()}}));
        OpResult off = s->power(PowerAction::Off, "n", 10s);
        INFO(off.message);
        CHECK(off.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(off.message, Catch::Contains("is not ssl_fingerprint"));
        CHECK_THAT(off.message, Catch::Contains("nothing was sent"));
        CHECK(pid_alive(wnode));
        CHECK(wrong->requests_matching(" GET ") == 0);
        CHECK(wrong->requests_matching(" POST ") == 0);
    }
    SECTION("ssl_insecure=1 works and says so in the log")
    {
        KeptLog kept;
        auto s = open_redfish(rf_params(*wrong, {{"ssl_ca_file", "<unset>"}, {"ssl_insecure", "1"}}), true,
                              &kept.logger);
        OpResult st = s->status("n", 10s);
        INFO(st.message);
        CHECK(st.ok());
        CHECK_THAT(kept.all(), Catch::Contains("ssl_insecure=1"));
        CHECK_THAT(kept.all(), Catch::Contains("NOT verified"));
    }
    SECTION("contradicting trust settings are refused at open")
    {
        auto params = resolve_params(redfish_agent(),
                                     rf_params(*svc, {{"ssl_insecure", "1"}}), UnknownParams::Reject);
        REQUIRE(params);
        auto s = make_session(redfish_agent(), SessionOptions{});
        OpResult r = s->open(*params, 5s);
        CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(r.message, Catch::Contains("ssl_insecure"));
    }
}

TEST_CASE("the password is in no argv, environment or log line, during and after a fence", "[redfish][faults]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    const std::string pw = "Pw-" + std::to_string(::getpid()) + "-redfish-zz";
    RedfishServiceOptions o;
    o.users = {{"admin", pw, "Administrator"}};
    auto svc = RedfishService::start(d.path(), o);
    svc->control(R"({"off_delay_ms": 800, "on_delay_ms": 800})");
    for (const char *auth : {"basic", "session"}) {
        KeptLog kept;
        auto s = open_redfish(rf_params(*svc, {{"password", pw}, {"auth_type", auth}}), true, &kept.logger);
        std::vector<pid_t> exposing;
        std::thread watch([&] {
            for (int i = 0; i < 20; ++i) {
                auto e = processes_exposing(pw);
                exposing.insert(exposing.end(), e.begin(), e.end());
                std::this_thread::sleep_for(50ms);
            }
        });
        OpResult rb = s->power(PowerAction::Reboot, "n", 20s);
        watch.join();
        INFO(auth << ": " << rb.message);
        CHECK(rb.ok());
        exposing.erase(std::remove(exposing.begin(), exposing.end(), ::getpid()), exposing.end());
        CHECK(exposing.empty());
        CHECK(kept.all().find(pw) == std::string::npos);
        CHECK_FALSE(kept.lines().empty());
        s->close();
    }
    CHECK(svc->open_sessions() == 0);
}

namespace {

// What the agent states through time_needed for these parameters (host slack included).
std::chrono::milliseconds need_for(const RawParams &raw, PowerAction action)
{
    auto params = resolve_params(redfish_agent(), raw, UnknownParams::Reject);
    REQUIRE(params.ok());
    auto need = agent_time_needed(redfish_agent(), *params, uint32_t(action));
    REQUIRE(need.ok());
    REQUIRE(need->has_value());
    return **need;
}

} // namespace

TEST_CASE("time_needed: the statement is the agent's own limits, per action", "[redfish][faults][budget]")
{
    // No service needed: the statement is pure arithmetic on the parameters.
    const RawParams defaults{{"ip", "127.0.0.1"}, {"username", "admin"}, {"password", "secret"}};
    const auto slack = kHostSlack.count();
    // login 5 + one request with its 2 retries (3 x 10 + 0.2 + 0.4) + power_wait 0 + power_timeout
    // 20 + the read in flight 10: 65.6 s; reboot: the second window (30 s) on the same connection.
    CHECK(need_for(defaults, PowerAction::Off).count() == 65600 + slack);
    CHECK(need_for(defaults, PowerAction::On).count() == 65600 + slack);
    CHECK(need_for(defaults, PowerAction::Reboot).count() == 95600 + slack);
    CHECK(need_for(defaults, PowerAction::Diag).count() == 65600 + slack);
    RawParams cycle = defaults;
    cycle.push_back({"method", "cycle"});
    CHECK(need_for(cycle, PowerAction::Reboot).count() == 95600 + slack);
    // Status: no statement (the front-end's query budget applies).
    auto params = resolve_params(redfish_agent(), defaults, UnknownParams::Reject);
    REQUIRE(params.ok());
    auto status = agent_time_needed(redfish_agent(), *params, 0);
    REQUIRE(status.ok());
    CHECK_FALSE(status->has_value());
    // Every limit counts: power_wait once per window, retries per attempt.
    RawParams slow = defaults;
    slow.insert(slow.end(), {{"power_wait", "3"}, {"retries", "0"}, {"request_timeout", "4"}, {"login_timeout", "2"},
                             {"power_timeout", "30"}});
    CHECK(need_for(slow, PowerAction::Off).count() == 2000 + 4000 + 3000 + 30000 + 4000 + slack);
    CHECK(need_for(slow, PowerAction::Reboot).count() == 2000 + 4000 + 2 * (3000 + 30000 + 4000) + slack);
    // Bad parameters: refused with the parameter named, not a number.
    RawParams bad = defaults;
    bad.push_back({"ssl_insecure", "1"});
    bad.push_back({"ssl_ca_file", "/x.pem"});
    auto badp = resolve_params(redfish_agent(), bad, UnknownParams::Reject);
    REQUIRE(badp.ok());
    auto refused = agent_time_needed(redfish_agent(), *badp, STOCKADE_ACTION_OFF);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message, Catch::Contains("ssl_insecure"));
}

TEST_CASE("time_needed: given exactly its statement, the agent's own limits end every slow case",
          "[redfish][faults][budget]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    // login 1 + one request with its retry (1 + 1 + 0.2) + power_wait 1 + power_timeout 2 + the last
    // read 1 = 7.2 s (+ the host's slack) for off.
    const RawParams tight = rf_params(*svc, {{"login_timeout", "1"}, {"request_timeout", "1"}, {"retries", "1"},
                                             {"power_wait", "1"}, {"power_timeout", "2"}});
    const auto off_need = need_for(tight, PowerAction::Off);
    CHECK(off_need.count() == 7200 + kHostSlack.count());
    // An off under exactly that deadline, and how long it took.
    auto timed_off = [&](std::unique_ptr<AgentSession> &s, long &ms) {
        s = open_redfish(tight);
        auto t0 = std::chrono::steady_clock::now();
        OpResult off = s->power(PowerAction::Off, "n", off_need);
        ms = ms_since(t0);
        return off;
    };
    std::unique_ptr<AgentSession> s;
    long ms = 0;

    SECTION("a change that takes 2.5 s lands inside power_wait + power_timeout (3 s): confirmed")
    {
        svc->control(R"({"off_delay_ms": 2500})");
        OpResult off = timed_off(s, ms);
        INFO(off.message);
        CHECK(off.ok());
        CHECK(off.verified == STOCKADE_VERIFIED_OFF);
        CHECK(ms >= 2400);
        CHECK_FALSE(pid_alive(node));
    }
    SECTION("a reset that changes nothing: the agent's own window ends it, not the deadline")
    {
        svc->control(R"({"fault": "stuck"})");
        OpResult off = timed_off(s, ms);
        INFO(off.message);
        CHECK(off.rc == STOCKADE_RC_FAILED); // its own verdict; a TIMEOUT would mean the statement was short
        CHECK_THAT(off.message, Catch::Contains("within power_wait=1 s + power_timeout=2 s"));
        CHECK(ms >= 2900);                   // power_wait, then power_timeout: both applied
        CHECK(ms < off_need.count());
        CHECK(off.verified == 0);
        CHECK(pid_alive(node));
        // Reboot: two windows stated; the off window alone ends it, still the agent's own verdict.
        OpResult rb = s->power(PowerAction::Reboot, "n", need_for(tight, PowerAction::Reboot));
        INFO(rb.message);
        CHECK(rb.rc == STOCKADE_RC_FAILED);
        CHECK(rb.verified == 0);
        CHECK(pid_alive(node));
    }
    SECTION("a service that hangs: request_timeout and the retry end it as unreachable, not the deadline")
    {
        svc->control(R"({"fault": "hang"})");
        OpResult off = timed_off(s, ms);
        svc->control("{}");
        INFO(off.message);
        CHECK(off.rc == STOCKADE_RC_UNREACHABLE);
        CHECK(ms >= 2000); // two attempts of 1 s
        CHECK(ms < off_need.count());
        CHECK(off.verified == 0);
        CHECK(pid_alive(node));
    }
}
