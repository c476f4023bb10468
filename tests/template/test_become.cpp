// test_become.cpp -- the last session of a process served by the fork template itself
// (SessionOptions::last_of_process, what a fence_* front-end asks for its one device): the same
// isolation as a forked session -- the agent runs in a process of its own that is its own process
// group, with the front-end's memory as it was before the template was forked (a global counter
// starts at 0), its deadline kills its whole tree (a setsid() child too), a crash is a failed
// device -- and the template is used up: it serves nothing after it, and a session opened anyway
// starts through the agent host's fork server, fresh again.  Its own binary: each case uses up
// the template its main (template_main.cpp) or the case itself forked.
#include <catch2/catch.hpp>

#include <filesystem>
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

std::unique_ptr<AgentSession> open_last(const AgentInfo &a, const RawParams &raw)
{
    auto params = resolve_params(a, raw, UnknownParams::Reject);
    REQUIRE(params.ok());
    SessionOptions o;
    o.last_of_process = true;
    auto s = make_session(a, o);
    REQUIRE(s->open(*params, 10s).ok());
    return s;
}

pid_t template_child_now()
{
    for (const auto &e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        auto st = read_proc_stat(pid_t(std::stoi(name)));
        if (st && st->ppid == ::getpid() &&
            test::read_file(e.path().string() + "/comm").rfind("stockade-tmpl", 0) == 0)
            return pid_t(std::stoi(name));
    }
    return 0;
}

// Our child named stockade-tmpl (the template start_fork_template forked: it names itself once
// it runs, so look for up to 5 s), or 0.
pid_t template_child()
{
    for (int i = 0; i < 500; ++i) {
        if (pid_t p = template_child_now())
            return p;
        std::this_thread::sleep_for(10ms);
    }
    return 0;
}

} // namespace

TEST_CASE("last session: the template runs it, isolated, and is used up", "[session][isolation][template]")
{
    (void)start_fork_template(); // the case's own template (main's, for the first case to run)
    const pid_t tmpl = template_child();
    REQUIRE(tmpl > 0);
    AgentRegistry reg;
    const AgentInfo &c = **reg.find("counteragent");

    auto s = open_last(c, {});
    test::CounterCalls first = test::parse_counter(s->status("n1", 10s).message);
    test::CounterCalls second = test::parse_counter(s->status("n1", 10s).message);
    s->close();
    CHECK(first.calls == 1); // the template's memory is ours from before it was forked
    CHECK(second.calls == 2);
    CHECK(first.pid == tmpl); // no fork in between: the template itself, our child
    CHECK(first.ppid == ::getpid());
    CHECK(first.pgid == first.pid);  // a process group of its own
    CHECK(first.loaded_by == first.pid);
    CHECK_FALSE(test::pid_alive(first.pid)); // gone with its session

    // Opened anyway: the agent host's fork server forks it (exec'd stockade-agent-host), fresh.
    auto again = test::open_session(c, {});
    test::CounterCalls other = test::parse_counter(again->status("n1", 10s).message);
    again->close();
    CHECK(other.calls == 1);
    CHECK(other.ppid != ::getpid());
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(other.ppid) + "/exe").filename() ==
          "stockade-agent-host");
}

TEST_CASE("last session in the template: its deadline kills its whole tree", "[session][isolation][template]")
{
    REQUIRE(start_fork_template().ok());
    const pid_t tmpl = template_child();
    REQUIRE(tmpl > 0);
    test::TempDir d;
    AgentRegistry reg;
    test::check_hang_killed_with_setsid_child(**reg.find("testagent"), d, /*last_of_process=*/true);
    std::istringstream in(test::read_file(d.file("pids")));
    long first = 0;
    in >> first;
    CHECK(pid_t(first) == tmpl); // the hung session was the template
    CHECK_FALSE(test::pid_alive(tmpl));
}

TEST_CASE("last session in the template: a crash is one failed device", "[session][isolation][template]")
{
    REQUIRE(start_fork_template().ok());
    const pid_t tmpl = template_child();
    REQUIRE(tmpl > 0);
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    auto s = open_last(a, {{"mode", "crash"}});
    OpResult r = s->power(PowerAction::Off, "n1", 5s);
    CHECK(r.rc != STOCKADE_RC_OK);
    CHECK_THAT(r.message, Catch::Contains("signal 11"));
    s->close();
    CHECK_FALSE(test::pid_alive(tmpl)); // it was the template that crashed
}
