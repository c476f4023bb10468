// fork_server_support.hpp -- what the fork-server and fork-template isolation tests share: the
// counter agent's answer ("calls=N pid=P ppid=Q loaded_by=L pgid=G") and a process's thread
// count (sessions come from test::open_session).
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>
#include <string>
#include <utility>

#include "test_support.hpp"

#include "stockade/registry.hpp"
#include "stockade/session.hpp"

namespace stockade::test {

struct CounterCalls {
    int calls = -1, pid = -1, ppid = -1, loaded_by = -1, pgid = -1;
};

inline CounterCalls parse_counter(const std::string &msg)
{
    CounterCalls c;
    std::smatch m;
    if (std::regex_search(msg, m, std::regex("calls=(\\d+) pid=(\\d+) ppid=(\\d+) loaded_by=(\\d+) pgid=(\\d+)")))
        c = {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5])};
    return c;
}

// Two isolated sessions on the counter agent, one after the other: its global counter must live
// exactly as long as one session (1, 2 in the first; 1 again in the second).  Returns the first
// session's first answer and the second session's answer.
inline std::pair<CounterCalls, CounterCalls> two_counter_sessions(const AgentInfo &a)
{
    using namespace std::chrono_literals;
    auto s1 = open_session(a, {});
    CounterCalls first = parse_counter(s1->status("n1", 10s).message);
    CounterCalls second = parse_counter(s1->status("n1", 10s).message);
    CHECK(first.calls == 1);
    CHECK(second.calls == 2); // state lives as long as its session
    s1->close();
    auto s2 = open_session(a, {});
    CounterCalls other = parse_counter(s2->status("n1", 10s).message);
    CHECK(other.calls == 1); // ...and not one session longer
    s2->close();
    return {first, other};
}

// A session on the test agent that hangs in power(off) after forking a child that calls setsid():
// at its 1.5 s deadline the operation ends TIMEOUT and both processes are gone.
// `last_of_process`: opened as a front-end's one session (the template serves it itself).
inline void check_hang_killed_with_setsid_child(const AgentInfo &a, const TempDir &d, bool last_of_process = false)
{
    using namespace std::chrono_literals;
    const RawParams raw = {{"mode", "hang"}, {"fork_child", "1"}, {"pid_file", d.file("pids")}};
    std::unique_ptr<AgentSession> hung;
    if (last_of_process) {
        auto params = resolve_params(a, raw, UnknownParams::Reject);
        REQUIRE(params.ok());
        SessionOptions o;
        o.last_of_process = true;
        hung = make_session(a, o);
        REQUIRE(hung->open(*params, 10s).ok());
    } else {
        hung = open_session(a, raw);
    }
    int64_t t0 = stockade_monotonic_ms();
    OpResult r = hung->power(PowerAction::Off, "n1", 1500ms);
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK(stockade_monotonic_ms() - t0 < 6000);
    std::vector<pid_t> pids;
    std::istringstream in(read_file(d.file("pids")));
    for (long x; in >> x;)
        pids.push_back(pid_t(x));
    REQUIRE(pids.size() == 2); // the session child and the child it forked (which called setsid)
    for (pid_t p : pids) {
        for (int i = 0; i < 100 && pid_alive(p); ++i)
            std::this_thread::sleep_for(20ms);
        CHECK_FALSE(pid_alive(p));
    }
    hung->close();
}

inline int threads_of(pid_t pid)
{
    int n = 0;
    for ([[maybe_unused]] const auto &e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
        ++n;
    return n;
}

} // namespace stockade::test
