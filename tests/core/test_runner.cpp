// Escalation runner tests against the test agent: level order, the all-devices rule, reboot on
// two devices, endless and bounded loops, hung and crashing agents, confirmation, secrets.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

#include "stockade/config.hpp"
#include "stockade/process.hpp"
#include "stockade/runner.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    test::TempDir dir;
    AgentRegistry registry;
    Logger logger;
    std::vector<std::string> lines;
    std::mutex mu;

    Fixture()
    {
        logger.set_level(STOCKADE_LOG_DEBUG);
        logger.add_sink([this](int, std::string_view l) {
            std::lock_guard lock(mu);
            lines.emplace_back(l);
        });
    }

    Config config(const std::string &json)
    {
        std::string text = json;
        for (size_t p; (p = text.find("@DIR@")) != std::string::npos;)
            text.replace(p, 5, dir.path().string());
        auto c = parse_config(text, "test.json");
        if (!c)
            FAIL(c.error().message);
        auto s = check_config_agents(*c, registry);
        if (!s)
            FAIL(s.error().message);
        return std::move(c.value());
    }

    std::vector<std::string> journal() const
    {
        std::vector<std::string> out;
        std::ifstream f(dir.file("journal"));
        for (std::string l; std::getline(f, l);)
            out.push_back(l);
        return out;
    }

    std::string all_log()
    {
        std::lock_guard lock(mu);
        std::string s;
        for (auto &l : lines)
            s += l + "\n";
        return s;
    }
};

std::vector<pid_t> read_pids(const std::string &path)
{
    std::vector<pid_t> out;
    std::ifstream f(path);
    for (long p; f >> p;)
        out.push_back(pid_t(p));
    return out;
}

} // namespace

TEST_CASE("levels are tried in order and the first level that succeeds ends the escalation", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "a": {"agent": "testagent", "params": {"mode": "fail", "label": "a", "journal": "@DIR@/journal"}},
        "b": {"agent": "testagent", "params": {"label": "b", "journal": "@DIR@/journal", "state_file": "@DIR@/s"}},
        "c": {"agent": "testagent", "params": {"label": "c", "journal": "@DIR@/journal"}}
      },
      "nodes": {"n1": {"levels": [["a"], ["b"], ["c"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport r = runner.fence("N1"); // names are case-insensitive
    CHECK(r.success);
    CHECK(r.level == 2);
    CHECK(r.node == "n1");
    CHECK(fx.journal() == std::vector<std::string>{"a off n1", "b off n1"});
    CHECK(test::read_file(fx.dir.file("s")) == "off\n");
}

TEST_CASE("a level succeeds only if every device in it succeeds", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "p1": {"agent": "testagent", "params": {"label": "p1", "journal": "@DIR@/journal"}},
        "p2": {"agent": "testagent", "params": {"mode": "fail", "label": "p2", "journal": "@DIR@/journal"}},
        "p3": {"agent": "testagent", "params": {"label": "p3", "journal": "@DIR@/journal"}},
        "last": {"agent": "testagent", "params": {"label": "last", "journal": "@DIR@/journal"}}
      },
      "nodes": {"n1": {"levels": [["p1", "p2", "p3"], ["last"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport r = runner.fence("n1");
    CHECK(r.success);
    CHECK(r.level == 2);
    // p3 is never tried once p2 failed: the level is already lost.
    CHECK(fx.journal() == std::vector<std::string>{"p1 off n1", "p2 off n1", "last off n1"});
}

TEST_CASE("reboot on a two-device level is off on both, then on on both", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "devices": {
        "psu1": {"agent": "testagent", "params": {"label": "psu1", "journal": "@DIR@/journal", "state_file": "@DIR@/psu1"}},
        "psu2": {"agent": "testagent", "params": {"label": "psu2", "journal": "@DIR@/journal", "state_file": "@DIR@/psu2"}}
      },
      "nodes": {"n1": {"levels": [["psu1", "psu2"]]}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport r = runner.fence("n1", PowerAction::Reboot);
    REQUIRE(r.success);
    CHECK_FALSE(r.power_on_failed);
    CHECK(fx.journal() == std::vector<std::string>{"psu1 off n1", "psu2 off n1", "psu1 on n1", "psu2 on n1"});
}

TEST_CASE("an off that is not confirmed is a failed level, never a fence", "[runner][safety]")
{
    Fixture fx;
    // Both agents say "done" without verifying; one's status still reads on (a lying device).
    Config c = fx.config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "liar": {"agent": "testagent", "params": {"verify": false, "status_mode": "on"}},
        "honest": {"agent": "testagent", "params": {"verify": false, "state_file": "@DIR@/s"}}
      },
      "nodes": {"n1": {"levels": [["liar"]], "action": "off"},
                "n2": {"levels": [["honest"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport liar = runner.fence("n1");
    CHECK_FALSE(liar.success);
    REQUIRE(liar.steps.size() == 2);
    CHECK(liar.steps[1].op == "verify");
    CHECK_THAT(liar.steps[1].message, Catch::Contains("status reads on after off"));

    FenceReport honest = runner.fence("n2"); // confirmed by the status read-back
    CHECK(honest.success);
    CHECK(honest.steps.back().op == "verify");
    CHECK(honest.steps.back().power_state == STOCKADE_POWER_OFF);
}

TEST_CASE("the endless loop stops only on success", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"retry_delay": 0.1},
      "devices": {"d": {"agent": "testagent", "params": {"fail_until_file": "@DIR@/go", "journal": "@DIR@/journal"}}},
      "nodes": {"n1": {"levels": [["d"]], "action": "off"}}
    })");
    std::atomic<bool> cancel{false};
    EscalationRunner runner(c, fx.registry, fx.logger);
    runner.set_cancel(&cancel);
    std::thread release([&] { // let it fail three passes, then let the device work
        while (fx.journal().size() < 3 && !cancel.load())
            std::this_thread::sleep_for(20ms);
        test::write_file(fx.dir.file("go"), "");
    });
    // A watchdog bounds the test itself should the runner never stop.
    std::thread watchdog([&] {
        for (int i = 0; i < 300 && !cancel.load(); ++i)
            std::this_thread::sleep_for(100ms);
        cancel = true;
    });
    FenceReport r = runner.fence("n1");
    cancel = true;
    release.join();
    watchdog.join();
    CHECK(r.success);
    CHECK(r.loops >= 4); // three failed passes before the device was allowed to work
    CHECK(fx.journal().size() == r.loops);
}

TEST_CASE("a bounded loop gives up after max_loops; an overall timeout and cancel stop endless ones", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"retry_delay": 0.05, "max_loops": 3},
      "devices": {"d": {"agent": "testagent", "params": {"mode": "fail", "journal": "@DIR@/journal"}},
                  "e": {"agent": "testagent", "params": {"mode": "unreachable", "journal": "@DIR@/journal", "label": "e"}}},
      "nodes": {"n1": {"levels": [["d"], ["e"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport r = runner.fence("n1");
    CHECK_FALSE(r.success);
    CHECK(r.loops == 3);
    CHECK(fx.journal().size() == 6);
    CHECK(r.reason == "all 2 levels failed in 3 loops");

    Config endless = fx.config(R"({
      "escalation": {"retry_delay": 0.05, "timeout": 0.5},
      "devices": {"d": {"agent": "testagent", "params": {"mode": "fail"}}},
      "nodes": {"n1": {"levels": [["d"]], "action": "off"}}
    })");
    EscalationRunner timed(endless, fx.registry, fx.logger);
    int64_t t0 = monotonic_ms();
    FenceReport t = timed.fence("n1");
    int64_t took = monotonic_ms() - t0;
    CHECK_FALSE(t.success);
    CHECK_THAT(t.reason, Catch::Contains("overall timeout"));
    CHECK(took < 3000); // 0.5 s budget; generous bound for a loaded CI machine

    Config forever = fx.config(R"({
      "escalation": {"retry_delay": 0.05},
      "devices": {"d": {"agent": "testagent", "params": {"mode": "fail"}}},
      "nodes": {"n1": {"levels": [["d"]], "action": "off"}}
    })");
    std::atomic<bool> cancel{false};
    EscalationRunner cancellable(forever, fx.registry, fx.logger);
    cancellable.set_cancel(&cancel);
    std::thread stopper([&] {
        std::this_thread::sleep_for(400ms);
        cancel = true;
    });
    FenceReport f = cancellable.fence("n1");
    stopper.join();
    CHECK_FALSE(f.success);
    CHECK(f.reason == "cancelled");
}

TEST_CASE("a hanging agent is killed with every process it started, and escalation goes on", "[runner][isolation]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "hung": {"agent": "testagent", "timeout": 1,
                 "params": {"mode": "hang", "fork_child": true, "pid_file": "@DIR@/pids", "password": "s3cr3t-hang-pw"}},
        "good": {"agent": "testagent", "params": {"state_file": "@DIR@/s"}}
      },
      "nodes": {"n1": {"levels": [["hung"], ["good"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    std::vector<pid_t> exposing;
    std::atomic<bool> done{false};
    std::thread spy([&] { // while the agent hangs, its secret must not be visible in any process
        while (!done.load()) {
            for (pid_t p : test::processes_exposing("s3cr3t-hang-pw"))
                exposing.push_back(p);
            std::this_thread::sleep_for(50ms);
        }
    });
    int64_t t0 = monotonic_ms();
    FenceReport r = runner.fence("n1");
    int64_t took = monotonic_ms() - t0;
    done = true;
    spy.join();
    CHECK(r.success);
    CHECK(r.level == 2);
    REQUIRE(r.steps.size() >= 2);
    CHECK(r.steps[0].rc == STOCKADE_RC_TIMEOUT);
    CHECK(took >= 1000);
    CHECK(took < 5000); // killed at 1 s, then level 2 runs; bound only rules out "never killed"
    auto pids = read_pids(fx.dir.file("pids"));
    REQUIRE(pids.size() == 2); // the agent process and the child it forked (which left the group)
    for (pid_t p : pids)
        CHECK_FALSE(test::pid_alive(p));
    CHECK(exposing.empty());
    CHECK(fx.all_log().find("s3cr3t-hang-pw") == std::string::npos);
}

TEST_CASE("a crashing or aborting agent is a failed device, and the runner moves to the next level", "[runner][isolation]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "segv": {"agent": "testagent", "params": {"mode": "crash"}},
        "abrt": {"agent": "testagent", "params": {"mode": "abort"}},
        "good": {"agent": "testagent", "params": {"state_file": "@DIR@/s"}}
      },
      "nodes": {"n1": {"levels": [["segv"], ["abrt"], ["good"]], "action": "off"}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    FenceReport r = runner.fence("n1");
    CHECK(r.success);
    CHECK(r.level == 3);
    REQUIRE(r.steps.size() >= 3);
    CHECK_THAT(r.steps[0].message, Catch::Contains("signal 11"));
    CHECK_THAT(r.steps[1].message, Catch::Contains("signal 6"));
}

TEST_CASE("status reads through the first level whose devices answer", "[runner]")
{
    Fixture fx;
    test::write_file(fx.dir.file("s"), "off\n");
    Config c = fx.config(R"({
      "concurrency": 4,
      "devices": {
        "dead": {"agent": "testagent", "params": {"status_mode": "fail"}},
        "psu1": {"agent": "testagent", "params": {"state_file": "@DIR@/s"}},
        "psu2": {"agent": "testagent", "params": {"status_mode": "on"}},
        "slow": {"agent": "testagent", "params": {"delay_ms": 1000}}
      },
      "nodes": {"n1": {"levels": [["dead"], ["psu1"]]},
                "n2": {"levels": [["psu1", "psu2"]]},
                "n3": {"levels": [["dead"]]},
                "s1": {"levels": [["slow"]]}, "s2": {"levels": [["slow"]]}, "s3": {"levels": [["slow"]]},
                "s4": {"levels": [["slow"]]}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    auto n1 = runner.status("n1");
    CHECK(n1.power_state == STOCKADE_POWER_OFF);
    CHECK(n1.level == 2);
    CHECK(runner.status("n2").power_state == STOCKADE_POWER_ON); // any device on = on
    auto n3 = runner.status("n3");
    CHECK(n3.power_state == STOCKADE_POWER_UNKNOWN);
    CHECK_THAT(n3.reason, Catch::Contains("simulated status failure"));

    int64_t t0 = monotonic_ms();
    auto all = runner.status_all(); // 4 slow nodes of 1 s each, 4 at once
    int64_t took = monotonic_ms() - t0;
    REQUIRE(all.size() == 7);
    CHECK(all[3].power_state == STOCKADE_POWER_ON);
    CHECK(took < 3200); // clearly parallel: the four slow nodes alone would take 4 s in series
}

TEST_CASE("a gate refuses a fence before any device is touched", "[runner]")
{
    Fixture fx;
    Config c = fx.config(R"({
      "devices": {"d": {"agent": "testagent", "params": {"journal": "@DIR@/journal"}}},
      "nodes": {"n1": {"levels": [["d"]]}}
    })");
    EscalationRunner runner(c, fx.registry, fx.logger);
    runner.add_gate("quorum", [](const std::string &, PowerAction) -> Status {
        return make_error(STOCKADE_RC_ACCESS_DENIED, "no quorum (1 of 3 nodes reachable)");
    });
    FenceReport r = runner.fence("n1");
    CHECK_FALSE(r.success);
    CHECK(r.refused);
    CHECK(r.reason == "refused by quorum: no quorum (1 of 3 nodes reachable)");
    CHECK(fx.journal().empty());
}

TEST_CASE("agents declaring extra parameters receive unknown names unchanged", "[params]")
{
    AgentRegistry reg;
    AgentInfo a = **reg.find("testagent");
    a.capabilities |= STOCKADE_CAP_EXTRA_PARAMS;
    auto p = resolve_params(a, {{"ipaddr", "x"}, {"passwd", "y"}, {"ipaddr", "z"}, {"mode", "fail"}}, UnknownParams::Reject);
    REQUIRE(p.ok());
    CHECK(std::count(p->begin(), p->end(), std::pair<std::string, std::string>{"ipaddr", "z"}) == 1);
    CHECK(std::count_if(p->begin(), p->end(), [](auto &x) { return x.first == "ipaddr"; }) == 1);
    CHECK(is_secret_param(a, "passwd"));          // "passwd" is the test agent's alias of password
    CHECK(is_secret_param(a, "snmp_password"));   // unknown, but named like a secret
    CHECK_FALSE(is_secret_param(a, "ipaddr"));
}
