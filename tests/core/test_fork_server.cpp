// test_fork_server.cpp -- isolation through the fork-server agent host (the default isolated
// path): every session starts from the pristine image the server loaded (a counter kept in a
// global by the counter agent starts at 0 in each session), the agent's code runs in the session
// child and never in the server, each session is its own process group whose deadline kills its
// whole tree but not the server, and a crash is a failed device with the server still serving.
#include <catch2/catch.hpp>

#include <cstdlib>
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

std::string cmdline(pid_t pid)
{
    std::string c = test::read_file("/proc/" + std::to_string(pid) + "/cmdline");
    for (auto &ch : c)
        ch = ch ? ch : ' ';
    return c;
}

} // namespace

TEST_CASE("fork server: no state leaks from one session to the next; agent code runs only in the child",
          "[session][isolation][forkserver]")
{
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("counteragent");
    auto [first, other] = test::two_counter_sessions(a);

    CHECK(first.ppid == other.ppid); // the same server forked both sessions
    CHECK(first.pid != other.pid);
    CHECK(first.pgid == first.pid); // each session a process group of its own
    CHECK(other.pgid == other.pid);
    CHECK(first.ppid != ::getpid());
    CHECK_THAT(cmdline(first.ppid), Catch::Contains("--serve") && Catch::Contains("counteragent"));
    CHECK(first.loaded_by == first.ppid); // loaded once, by the server...
    CHECK(test::pid_alive(first.ppid));
    CHECK(test::threads_of(first.ppid) == 1); // ...which forks only while it has a single thread
    CHECK_FALSE(test::pid_alive(first.pid));
}

TEST_CASE("STOCKADE_FORK_SERVER=0 starts the agent host per session", "[session][isolation][forkserver]")
{
    ::setenv("STOCKADE_FORK_SERVER", "0", 1);
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("counteragent");
    auto s = test::open_session(a, {});
    test::CounterCalls c = test::parse_counter(s->status("n1", 10s).message);
    s->close();
    ::unsetenv("STOCKADE_FORK_SERVER");
    CHECK(c.calls == 1);
    CHECK(c.ppid == ::getpid());
    CHECK(c.loaded_by == c.pid);
}

TEST_CASE("fork server: a session's deadline kills its whole tree (setsid child too), not the server",
          "[session][isolation][forkserver]")
{
    test::TempDir d;
    AgentRegistry reg;
    const AgentInfo &a = **reg.find("testagent");
    test::check_hang_killed_with_setsid_child(a, d);

    // The server that forked it still serves: a crash is one failed device, then a good session.
    auto crash = test::open_session(a, {{"mode", "crash"}});
    OpResult c = crash->power(PowerAction::Off, "n1", 5s);
    CHECK(c.rc != STOCKADE_RC_OK);
    CHECK_THAT(c.message, Catch::Contains("signal 11"));
    crash->close();
    auto good = test::open_session(a, {{"status_mode", "on"}});
    OpResult g = good->status("n1", 5s);
    CHECK(g.ok());
    CHECK(g.power_state == STOCKADE_POWER_ON);
}
