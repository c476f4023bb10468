// test_fork_template.cpp -- isolation through the agent template a front-end forks from itself
// (start_fork_template, called by template_main.cpp before anything else): the same properties
// as the exec'd fork server (tests/core/test_fork_server.cpp) -- every session starts from the
// pristine template (a global counter starts at 0 each time), the agent's code runs only in the
// session child, each session is a process group of its own whose deadline kills its whole tree
// (a setsid() child too) but not the template, a crash is a failed device -- and no exec: the
// sessions' parent is the template, a single-threaded child of this process.  The runner and
// loader isolation cases (tests/core/test_runner.cpp, test_loader.cpp) run in this binary too.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "stockade/process.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "fork_server_support.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

// The template's pid: the parent of a counteragent session.
pid_t template_pid(const AgentRegistry &reg)
{
    auto probe = test::open_session(**reg.find("counteragent"), {});
    const pid_t tmpl = test::parse_counter(probe->status("n1", 10s).message).ppid;
    probe->close();
    return tmpl;
}

} // namespace


TEST_CASE("fork template: no state leaks between sessions, agent code only in the child, no exec",
          "[session][isolation][forkserver][template]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("counteragent");
    auto [first, other] = test::two_counter_sessions(a);

    const pid_t tmpl = first.ppid;
    CHECK(other.ppid == tmpl); // the same template forked both sessions
    CHECK(first.pid != other.pid);
    CHECK(first.pgid == first.pid); // each session a process group of its own
    CHECK(other.pgid == other.pid);
    REQUIRE(tmpl != ::getpid());
    auto st = read_proc_stat(tmpl);
    REQUIRE(st);
    CHECK(st->ppid == ::getpid()); // our own fork, not an exec'd stockade-agent-host
    CHECK(st->pgid == tmpl);       // in a group of its own
    CHECK_THAT(test::read_file("/proc/" + std::to_string(tmpl) + "/comm"), Catch::StartsWith("stockade-tmpl"));
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(tmpl) + "/exe") ==
          std::filesystem::read_symlink("/proc/self/exe"));
    CHECK(first.loaded_by == tmpl); // loaded once, by the template (our process never ran it here)...
    CHECK(test::threads_of(tmpl) == 1);   // ...which forks only while it has a single thread
    CHECK_FALSE(test::pid_alive(first.pid));
}

TEST_CASE("fork template: a session's deadline kills its whole tree (setsid child too), not the template",
          "[session][isolation][forkserver][template]")
{
    test::TempDir d;
    AgentRegistry reg;
    const pid_t tmpl = template_pid(reg);
    const AgentInfo &c = **reg.find("counteragent");

    const AgentInfo &a = **reg.find("testagent");
    test::check_hang_killed_with_setsid_child(a, d);
    CHECK(test::pid_alive(tmpl));

    // A crash is one failed device; the template still serves the next session.
    auto crash = test::open_session(a, {{"mode", "crash"}});
    OpResult cr = crash->power(PowerAction::Off, "n1", 5s);
    CHECK(cr.rc != STOCKADE_RC_OK);
    CHECK_THAT(cr.message, Catch::Contains("signal 11"));
    crash->close();
    auto again = test::open_session(c, {});
    test::CounterCalls after = test::parse_counter(again->status("n1", 10s).message);
    again->close();
    CHECK(after.ppid == tmpl);
    CHECK(after.calls == 1);
}

TEST_CASE("fork template: the password reaches the session over its pipe only", "[session][isolation][template]")
{
    test::TempDir d;
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    const std::string secret = "tmpl-Secret-" + std::to_string(::getpid());
    auto params = resolve_params(a, {{"mode", "hang"}, {"password", secret}, {"pid_file", d.file("pids")}},
                                 UnknownParams::Reject);
    REQUIRE(params.ok());
    auto s = make_session(a, {});
    REQUIRE(s->open(*params, 10s).ok());
    std::thread t([&] { (void)s->power(PowerAction::Off, "n1", 3000ms); });
    pid_t child = 0;
    for (int i = 0; i < 200 && !child; ++i) {
        std::istringstream in(test::read_file(d.file("pids")));
        long x = 0;
        if (in >> x)
            child = pid_t(x);
        else
            std::this_thread::sleep_for(10ms);
    }
    REQUIRE(child > 0);
    const std::string proc = "/proc/" + std::to_string(child);
    CHECK_THAT(test::read_file(proc + "/cmdline"), !Catch::Contains(secret));
    CHECK_THAT(test::read_file(proc + "/environ"), !Catch::Contains(secret));
    t.join();
    s->close();
}

TEST_CASE("fork template: an agent's prepare (ABI 1.2) runs once, in the template, before it forks sessions",
          "[session][isolation][template][prepare]")
{
    test::TempDir d;
    AgentRegistry reg;
    const pid_t tmpl = template_pid(reg);

    const AgentInfo &a = **reg.find("testagent");
    REQUIRE(a.prepare != nullptr);
    for (int i = 0; i < 2; ++i) {
        auto s = test::open_session(a, {{"journal", d.file("journal")}, {"report_prepare", "1"}});
        CHECK(s->status("n1", 5s).ok());
        s->close();
    }
    auto r = test::prepare_reports(d.file("journal"));
    REQUIRE(r.size() == 2);
    for (const auto &x : r) {
        CHECK(x.count == 1);  // once...
        CHECK(x.by == tmpl);  // ...by the template, inherited by each session it forked
        CHECK(x.in != tmpl);
    }
    CHECK(r[0].in != r[1].in);
    CHECK(test::threads_of(tmpl) == 1);
}
