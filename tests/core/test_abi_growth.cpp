// ABI growth: the test agent built in the frozen 1.0 layout and as if from a later minor (larger
// descriptor, larger parameter rows, an entry point and a capability bit today's host does not
// know) both load and fence through today's host, in-process and isolated; unknown flag bits are
// refused by STOCKADE_CHECK_FLAGS; the agent's own time statement reaches the host; ABI 1.2's
// prepare runs once per process before the first open (in the fork server before it forks the
// sessions), is never looked for in a 1.1 descriptor, and a prepare that leaves a thread running
// does not stop the agent from fencing.
#include <catch2/catch.hpp>

#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "stockade/time_budget.hpp"

#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

std::string agents_dir(const char *variant)
{
    return test::env_or_fail("STOCKADE_BUILD_DIR") + "/tests/" + variant;
}

// off, read back, on, list and monitor against a state file: the whole life of a device.
void fence_and_read_back(const AgentInfo &a, bool isolate, const std::string &state, const std::string &journal)
{
    auto params = resolve_params(a, {{"state_file", state}, {"hostlist", "n1 n2"}, {"journal", journal}},
                                 UnknownParams::Reject);
    REQUIRE(params.ok());
    SessionOptions o;
    o.isolate = isolate;
    auto s = make_session(a, o);
    REQUIRE(s->open(*params, 5s).ok());
    auto off = s->power(PowerAction::Off, "n1", 5s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    CHECK(test::read_file(state) == "off\n");
    auto st = s->status("n1", 5s);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_OFF);
    REQUIRE(s->power(PowerAction::On, "n1", 5s).ok());
    CHECK(s->status("n1", 5s).power_state == STOCKADE_POWER_ON);
    auto l = s->list(5s);
    REQUIRE(l.ok());
    REQUIRE(l.targets.size() == 2);
    CHECK(l.targets[0].name == "n1");
    CHECK(s->monitor(5s).ok());
    CHECK(s->power(PowerAction::Off, "n3", 5s).rc == STOCKADE_RC_UNKNOWN_TARGET);
    s->close();
}

} // namespace

TEST_CASE("an agent built against ABI 1.0 loads and fences through today's host", "[abi][growth]")
{
    AgentRegistry reg({agents_dir("agents-v1_0")});
    auto a = reg.find("testagent");
    REQUIRE(a.ok());
    CHECK((*a)->abi_minor == 0);
    CHECK((*a)->desc_v1_0 != nullptr);
    CHECK((*a)->desc == nullptr);
    CHECK((*a)->time_needed == nullptr); // 1.0 had no such entry point
    CHECK((*a)->prepare == nullptr);
    for (bool isolate : {false, true}) {
        DYNAMIC_SECTION("isolate=" << isolate)
        {
            test::TempDir d;
            // The agent reads {name, value} pairs: had the host handed it 1.1's versioned
            // parameters it would read a size as a pointer and fail (or crash) in open().
            fence_and_read_back(**a, isolate, d.file("state"), d.file("journal"));
            CHECK_THAT(test::read_file(d.file("journal")), Catch::Contains("test open abi-1.0"));
        }
    }
    // A 1.0 agent states no time of its own: the caller's formula applies.
    auto params = resolve_params(**a, {}, UnknownParams::Reject);
    REQUIRE(params.ok());
    auto cap = operation_cap(**a, *params, STOCKADE_ACTION_OFF, 25s);
    REQUIRE(cap.ok());
    CHECK(*cap == 25s);
}

TEST_CASE("an agent built as if from a later minor loads and fences through today's host", "[abi][growth]")
{
    AgentRegistry reg({agents_dir("agents-later")});
    auto a = reg.find("testagent");
    REQUIRE(a.ok());
    CHECK((*a)->abi_minor == STOCKADE_ABI_MINOR + 1);
    REQUIRE((*a)->desc != nullptr);
    CHECK((*a)->desc->struct_size > sizeof(stockade_agent));       // a larger descriptor ...
    CHECK((*a)->desc->param_struct_size > sizeof(stockade_param_desc)); // ... and larger rows
    // Rows were read with the agent's stride: every one of them, names and defaults intact.
    REQUIRE((*a)->params.size() == 7);
    CHECK((*a)->params[6].name == "needed_ms");
    CHECK((*a)->find_param("label")->default_value == "later");
    CHECK((*a)->find_param("pcmk_host_list")->name == "hostlist");
    // The capability this host does not know is carried, never acted on.
    CHECK((*a)->can(STOCKADE_CAP_OFF | STOCKADE_CAP_MONITOR));
    CHECK(((*a)->capabilities & 0x40000000u) != 0);
    for (bool isolate : {false, true}) {
        DYNAMIC_SECTION("isolate=" << isolate)
        {
            test::TempDir d;
            fence_and_read_back(**a, isolate, d.file("state"), d.file("journal"));
            // The fields the later minor appended to stockade_param / stockade_ctx are not in this
            // host's structs, and the agent saw that through STOCKADE_HAS_FIELD.
            CHECK_THAT(test::read_file(d.file("journal")), Catch::Contains("later open later-fields-absent"));
        }
    }
    // Its time_needed (a 1.1 entry point) is found at the same place by today's host.
    auto params = resolve_params(**a, {{"needed_ms", "90000"}}, UnknownParams::Reject);
    REQUIRE(params.ok());
    auto need = agent_time_needed(**a, *params, STOCKADE_ACTION_OFF);
    REQUIRE(need.ok());
    REQUIRE(need->has_value());
    CHECK(**need == 90000ms + kHostSlack);
    // Its prepare (a 1.2 entry point) too: run once, before the first open of each process.
    CHECK((*a)->prepare != nullptr);
}

namespace {

// Two sessions one after the other, each opened with report_prepare=1: what each one's journal
// said about prepare.
std::vector<test::PrepareReport> two_sessions_report(const AgentInfo &a, bool isolate)
{
    test::TempDir d;
    for (int i = 0; i < 2; ++i) {
        auto s = test::open_session(a, {{"journal", d.file("journal")}, {"report_prepare", "1"}}, isolate);
        CHECK(s->status("n1", 5s).ok());
        s->close();
    }
    return test::prepare_reports(d.file("journal"));
}

} // namespace

TEST_CASE("prepare (ABI 1.2) runs once per process, before the first open, and is inherited by forked sessions",
          "[abi][prepare]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    CHECK(a.abi_minor == STOCKADE_ABI_MINOR);
    REQUIRE(a.prepare != nullptr);
    SECTION("in-process: this process prepares once, whatever the number of sessions")
    {
        auto r = two_sessions_report(a, false);
        REQUIRE(r.size() == 2);
        for (const auto &x : r) {
            CHECK(x.count == 1);
            CHECK(x.by == ::getpid());
            CHECK(x.in == ::getpid());
        }
    }
    SECTION("isolated: the fork server prepared before forking; its sessions inherit it")
    {
        auto r = two_sessions_report(a, true);
        REQUIRE(r.size() == 2);
        for (const auto &x : r) {
            CHECK(x.count == 1);
            CHECK(x.by != x.in); // prepared in the server, not in the session
            CHECK(x.by != ::getpid());
        }
        CHECK(r[0].by == r[1].by); // one server, prepared once
        CHECK(r[0].in != r[1].in);
    }
}

TEST_CASE("an agent built against ABI 1.1 loads, fences, and is never asked to prepare", "[abi][growth][prepare]")
{
    AgentRegistry reg({agents_dir("agents-v1_1")});
    auto a = reg.find("testagent");
    REQUIRE(a.ok());
    CHECK((*a)->abi_minor == 1);
    REQUIRE((*a)->desc != nullptr);
    CHECK((*a)->desc->struct_size == offsetof(stockade_agent, prepare));
    CHECK((*a)->time_needed != nullptr);
    // Its static descriptor does hold a prepare pointer past struct_size: the host must not see it.
    CHECK((*a)->prepare == nullptr);
    for (bool isolate : {false, true}) {
        DYNAMIC_SECTION("isolate=" << isolate)
        {
            test::TempDir d;
            fence_and_read_back(**a, isolate, d.file("state"), d.file("journal"));
            auto r = two_sessions_report(**a, isolate);
            REQUIRE(r.size() == 2);
            CHECK(r[0].count == 0);
            CHECK(r[1].count == 0);
        }
    }
}

TEST_CASE("an agent whose prepare leaves a thread running still fences, isolated; its server forks no session",
          "[abi][prepare][forkserver]")
{
    AgentRegistry reg({agents_dir("agents-threaded")});
    const AgentInfo &a = **reg.find("testagent");
    REQUIRE(a.prepare != nullptr);
    test::TempDir d;
    fence_and_read_back(a, true, d.file("state"), d.file("journal"));
    // The fork server prepared and then had two threads: it refused to fork, and each session
    // was an agent host of its own, which prepared for itself.
    auto r = two_sessions_report(a, true);
    REQUIRE(r.size() == 2);
    for (const auto &x : r) {
        CHECK(x.count == 1);
        CHECK(x.by == x.in);
    }
}

TEST_CASE("the time an agent states for itself becomes the cap, and what cannot fit is refused", "[abi][budget]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    auto quiet = resolve_params(a, {}, UnknownParams::Reject);
    REQUIRE(quiet.ok());
    // needed_ms=0: the agent makes no statement, the caller's formula stays.
    CHECK(*operation_cap(a, *quiet, STOCKADE_ACTION_OFF, 25s) == 25s);
    auto waits = resolve_params(a, {{"needed_ms", "600000"}}, UnknownParams::Reject);
    REQUIRE(waits.ok());
    auto cap = operation_cap(a, *waits, STOCKADE_ACTION_OFF, 25s);
    REQUIRE(cap.ok());
    CHECK(*cap == 600000ms + kHostSlack);
    // Status makes no statement even then (the test agent says so for action 0).
    CHECK(*operation_cap(a, *waits, 0, 8s) == 8s);

    auto fits = check_fits("testagent", "off", *cap, "total_timeout", 55s);
    REQUIRE_FALSE(fits.ok());
    CHECK_THAT(fits.error().message, Catch::Contains("needs 602 s for off") &&
                                         Catch::Contains("total_timeout allows only 55 s"));
    CHECK(check_fits("testagent", "off", *cap, "total_timeout", 700s).ok());
    CHECK(check_fits("testagent", "off", *cap, "total_timeout", 0s).ok()); // no limit
}

TEST_CASE("unknown flag bits are refused by STOCKADE_CHECK_FLAGS, naming the entry point", "[abi][flags]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    REQUIRE(a.desc != nullptr);
    char err[256] = {0};
    stockade_ctx ctx{};
    ctx.abi_major = STOCKADE_ABI_MAJOR;
    ctx.struct_size = sizeof ctx;
    ctx.errbuf = err;
    ctx.errbuf_size = sizeof err;
    void *h = nullptr;
    stockade_param none{STOCKADE_ABI_MAJOR, sizeof(stockade_param), nullptr, nullptr};
    CHECK(a.desc->open(&none, 0, &ctx, 0x4u, &h) == STOCKADE_RC_BAD_CONFIG);
    CHECK(h == nullptr);
    CHECK_THAT(std::string(err), Catch::Contains("ta_open: unknown flag bits 0x4"));
    REQUIRE(a.desc->open(&none, 0, &ctx, 0, &h) == STOCKADE_RC_OK);
    uint32_t state = 0, verified = 0;
    CHECK(a.desc->status(h, &ctx, "n1", 0x100u, &state) == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(std::string(err), Catch::Contains("ta_status: unknown flag bits 0x100"));
    CHECK(a.desc->power(h, &ctx, STOCKADE_ACTION_OFF, "n1", 0x1u, &verified) == STOCKADE_RC_BAD_CONFIG);
    CHECK(verified == 0);
    CHECK(a.desc->monitor(h, &ctx, 0x80000000u) == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(std::string(err), Catch::Contains("0x80000000"));
    CHECK(a.desc->monitor(h, &ctx, 0) == STOCKADE_RC_OK);
    a.desc->close(h, 0);
}
