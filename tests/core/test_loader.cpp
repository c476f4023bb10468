// Loader and session tests: descriptor checks, ABI mismatch, file safety, parameter resolution,
// in-process and isolated sessions against the test agent.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "stockade/registry.hpp"
#include "stockade/process.hpp"
#include "stockade/session.hpp"

#include <thread>
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

TEST_CASE("test agent loads and its parameter table is read", "[abi][loader]")
{
    AgentRegistry reg;
    auto a = reg.find("testagent");
    REQUIRE(a.ok());
    CHECK((*a)->name == "testagent");
    CHECK((*a)->can(STOCKADE_CAP_OFF | STOCKADE_CAP_STATUS));
    REQUIRE((*a)->find_param("behaviour") != nullptr);
    CHECK((*a)->find_param("behaviour")->name == "mode");
    CHECK((*a)->find_param("PASSWD")->secret());
    CHECK((*a)->find_param("delay-ms") != nullptr);
}

TEST_CASE("an agent built for another ABI major is refused, naming both versions", "[abi][loader]")
{
    AgentRegistry reg({test::env_or_fail("STOCKADE_BUILD_DIR") + "/tests/agents-abi2"});
    auto a = reg.find("testagent");
    REQUIRE_FALSE(a.ok());
    CHECK_THAT(a.error().message, Catch::Contains("built for stockade ABI 2") &&
                                      Catch::Contains("this host implements ABI 1"));
}

TEST_CASE("agent files writable by group or others are refused", "[loader]")
{
    test::TempDir d;
    std::string src = test::env_or_fail("STOCKADE_BUILD_DIR") + "/tests/agents/testagent.so";
    std::string dst = d.file("testagent.so");
    test::write_file(dst, test::read_file(src), 0775);
    ::chmod(dst.c_str(), 0775);
    AgentRegistry reg({d.path().string()});
    auto a = reg.find("testagent");
    REQUIRE_FALSE(a.ok());
    CHECK_THAT(a.error().message, Catch::Contains("writable by group or others"));
}

TEST_CASE("unknown agent names give a clear error", "[loader]")
{
    AgentRegistry reg;
    auto a = reg.find("nosuchagent");
    REQUIRE_FALSE(a.ok());
    CHECK_THAT(a.error().message, Catch::Contains("agent 'nosuchagent' not found"));
}

TEST_CASE("parameters are resolved by alias, typed, defaulted, and errors name them", "[params]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    auto ok = resolve_params(a, {{"behaviour", "FAIL"}, {"verify", "no"}}, UnknownParams::Reject);
    REQUIRE(ok.ok());
    auto get = [&](const std::string &k) {
        for (auto &[n, v] : *ok)
            if (n == k)
                return v;
        return std::string("<unset>");
    };
    CHECK(get("mode") == "fail");
    CHECK(get("verify") == "0");
    CHECK(get("delay_ms") == "0");

    auto bad = resolve_params(a, {{"delay_ms", "soon"}}, UnknownParams::Reject);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message == "parameter 'delay_ms': 'soon' is not an integer");

    auto unknown = resolve_params(a, {{"colour", "red"}}, UnknownParams::Reject);
    REQUIRE_FALSE(unknown.ok());
    CHECK_THAT(unknown.error().message, Catch::Contains("'colour'"));

    std::vector<std::string> ignored;
    REQUIRE(resolve_params(a, {{"colour", "red"}}, UnknownParams::Ignore, &ignored).ok());
    CHECK(ignored == std::vector<std::string>{"colour"});

    auto sel = resolve_params(a, {{"mode", "explode"}}, UnknownParams::Reject);
    REQUIRE_FALSE(sel.ok());
    CHECK_THAT(sel.error().message, Catch::Contains("'mode'") && Catch::Contains("succeed|fail"));
}

TEST_CASE("in-process and isolated sessions give the same answers", "[session]")
{
    test::TempDir d;
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    for (bool isolate : {false, true}) {
        DYNAMIC_SECTION("isolate=" << isolate)
        {
            std::string state = d.file(isolate ? "iso" : "inproc");
            auto params = resolve_params(a, {{"state_file", state}, {"hostlist", "n1 n2"}}, UnknownParams::Reject);
            REQUIRE(params.ok());
            SessionOptions o;
            o.isolate = isolate;
            auto s = make_session(a, o);
            REQUIRE(s->open(*params, 5s).ok());
            auto st = s->status("n1", 5s);
            REQUIRE(st.ok());
            CHECK(st.power_state == STOCKADE_POWER_ON);
            auto off = s->power(PowerAction::Off, "n1", 5s);
            REQUIRE(off.ok());
            CHECK(off.verified == STOCKADE_VERIFIED_OFF);
            CHECK(s->status("n1", 5s).power_state == STOCKADE_POWER_OFF);
            auto unknown = s->power(PowerAction::Off, "n3", 5s);
            CHECK(unknown.rc == STOCKADE_RC_UNKNOWN_TARGET);
            CHECK_THAT(unknown.message, Catch::Contains("'n3'"));
            auto l = s->list(5s);
            REQUIRE(l.targets.size() == 2);
            CHECK(l.targets[1].name == "n2");
            s->close();
        }
    }
}

TEST_CASE("cancelling an isolated operation asks the agent to stop, then kills it", "[session][isolation]")
{
    test::TempDir d;
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    // delay_ms sleeps in slices and stops early once ctx->is_cancelled() says so.
    auto params = resolve_params(a, {{"delay_ms", "20000"}, {"journal", d.file("j")}}, UnknownParams::Reject);
    REQUIRE(params.ok());
    std::atomic<bool> cancel{false};
    SessionOptions o;
    o.cancel = &cancel;
    auto s = make_session(a, o);
    REQUIRE(s->open(*params, 5s).ok());
    std::thread t([&] {
        std::this_thread::sleep_for(300ms);
        cancel = true;
    });
    int64_t t0 = monotonic_ms();
    auto r = s->status("n1", 30s);
    int64_t took = monotonic_ms() - t0;
    t.join();
    CHECK(r.rc == STOCKADE_RC_CANCELLED);
    CHECK(took < 2500); // 0.3 s + at most the 1 s grace, with room for a loaded machine
    s->close();
}

TEST_CASE("a child that exits without reading its input does not kill the caller with SIGPIPE", "[process]")
{
    SpawnSpec spec;
    spec.argv = {"/bin/true"};
    std::string big(1 << 20, 'x');
    auto r = run_command(spec, big, 5s);
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
}
