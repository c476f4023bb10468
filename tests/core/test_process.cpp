// test_process.cpp -- the one child-process API (stockade/process.hpp): outcomes are never
// guessed, the whole tree dies at the deadline (setsid children too), leftovers in the group die
// before the leader is reaped, descriptors do not leak, output is capped, stdin and stdout flow
// at the same time.
#include <catch2/catch.hpp>

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

pid_t first_pid(const std::string &text) { return pid_t(std::atol(text.c_str())); }

bool gone_soon(pid_t pid)
{
    for (int i = 0; i < 100 && test::pid_alive(pid); ++i)
        std::this_thread::sleep_for(20ms);
    return !test::pid_alive(pid);
}

} // namespace

TEST_CASE("an exit status reaped behind our back is Unknown, never success", "[process]")
{
    SECTION("someone else reaped it")
    {
        SpawnSpec spec;
        spec.argv = {"/bin/true"};
        auto p = Subprocess::spawn(spec);
        REQUIRE(p);
        int st = 0;
        REQUIRE(::waitpid((*p)->pid(), &st, 0) == (*p)->pid()); // the thief
        CHECK_FALSE((*p)->wait(monotonic_ms() + 5000));
        CHECK((*p)->end() == ChildEnd::Unknown);
    }
    SECTION("SIGCHLD ignored: the kernel reaps it")
    {
        struct sigaction ign {}, old {};
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        ::sigaction(SIGCHLD, &ign, &old);
        SpawnSpec spec;
        spec.argv = {"/bin/sh", "-c", "exit 0"};
        auto r = run_command(spec, "", 10s);
        ::sigaction(SIGCHLD, &old, nullptr);
        REQUIRE(r);
        CHECK(r->end == ChildEnd::Unknown);
        CHECK_FALSE(r->exit_code);
        CHECK_FALSE(r->success());
        CHECK_THAT(r->describe(), Catch::Contains("unknown"));
    }
}

TEST_CASE("at the deadline the whole tree dies, a child that called setsid() too", "[process]")
{
    SpawnSpec spec;
    spec.argv = {"tree"};
    auto p = Subprocess::fork_function(spec, [] {
        pid_t c = ::fork();
        if (c == 0) {
            ::setsid();
            for (;;)
                ::pause();
        }
        std::string line = std::to_string(c) + "\n";
        if (::write(1, line.data(), line.size()) < 0)
            return 1;
        for (;;)
            ::pause();
    });
    REQUIRE(p);
    std::string line;
    REQUIRE((*p)->read_line(line, monotonic_ms() + 5000) == Subprocess::Read::Line);
    pid_t escaped = first_pid(line);
    REQUIRE(escaped > 0);
    REQUIRE(test::pid_alive(escaped));
    int64_t t0 = monotonic_ms();
    CommandResult r = (*p)->communicate("", monotonic_ms() + 500);
    CHECK(r.end == ChildEnd::TimedOut);
    CHECK(r.timed_out);
    CHECK_FALSE(r.exit_code);
    CHECK_FALSE(r.success());
    CHECK(monotonic_ms() - t0 < 5000); // rules out "waited for it anyway"
    CHECK(gone_soon(escaped));
}

TEST_CASE("leftovers in the child's group die when it exits; output is capped, not blocked", "[process]")
{
    SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", "sleep 60 & echo $! >&2; head -c 3000000 /dev/zero; exit 3"};
    spec.output_cap = 1000;
    auto r = run_command(spec, "", 20s);
    REQUIRE(r);
    CHECK(r->end == ChildEnd::Exited);
    CHECK(r->exit_code == 3);
    CHECK(r->out.size() == 1000);
    CHECK(r->out_truncated);
    CHECK_FALSE(r->err_truncated);
    pid_t leftover = first_pid(r->err);
    REQUIRE(leftover > 0);
    CHECK(gone_soon(leftover));
}

TEST_CASE("OnExit::LeaveGroup leaves a background child that let go of our pipes alone", "[process]")
{
    SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 </dev/null & echo $!"};
    spec.on_exit = OnExit::LeaveGroup;
    auto r = run_command(spec, "", 20s);
    REQUIRE(r);
    CHECK(r->success());
    pid_t bg = first_pid(r->out);
    REQUIRE(bg > 0);
    CHECK(test::pid_alive(bg));
    ::kill(bg, SIGKILL);
}

TEST_CASE("stdin and stdout flow at once: a megabyte through cat", "[process]")
{
    std::string big(1 << 20, 'x');
    for (size_t i = 0; i < big.size(); i += 997)
        big[i] = char('a' + i % 26);
    SpawnSpec spec;
    spec.argv = {"cat"};
    spec.search_path = true;
    auto r = run_command(spec, big, 20s);
    REQUIRE(r);
    CHECK(r->success());
    CHECK(r->out == big);
}

TEST_CASE("no descriptor leaks into a child, exec'd or forked", "[process]")
{
    int leak[2];
    REQUIRE(::pipe(leak) == 0); // deliberately without O_CLOEXEC
    SECTION("exec")
    {
        SpawnSpec spec;
        spec.argv = {"/bin/sleep", "30"};
        auto p = Subprocess::spawn(spec);
        REQUIRE(p);
        std::string proc = "/proc/" + std::to_string((*p)->pid());
        for (int i = 0; i < 250 && test::read_file(proc + "/comm") != "sleep\n"; ++i)
            std::this_thread::sleep_for(20ms); // until the exec happened
        REQUIRE(test::read_file(proc + "/comm") == "sleep\n");
        // The kernel renames the process before it closes the close-on-exec descriptors (both
        // in begin_new_exec), so a look right after the rename can still see them: look until
        // they are gone; a real leak stays for the whole 5 s.
        auto open_fds = [&] {
            std::set<std::string> fds;
            for (const auto &e : std::filesystem::directory_iterator(proc + "/fd"))
                fds.insert(e.path().filename().string());
            return fds;
        };
        const std::set<std::string> stdio{"0", "1", "2"};
        for (int i = 0; i < 250 && open_fds() != stdio; ++i)
            std::this_thread::sleep_for(20ms);
        CHECK(open_fds() == stdio);
    }
    SECTION("fork_function, with the one descriptor it keeps")
    {
        int keep = ::dup(leak[0]);
        SpawnSpec spec;
        spec.argv = {"forked"};
        spec.keep_fds = {keep};
        auto p = Subprocess::fork_function(spec, [&] {
            bool leaked = ::fcntl(leak[0], F_GETFD) != -1 || ::fcntl(leak[1], F_GETFD) != -1;
            bool kept = ::fcntl(keep, F_GETFD) != -1;
            return !leaked && kept ? 7 : 1;
        });
        REQUIRE(p);
        CommandResult r = (*p)->communicate("", monotonic_ms() + 10000);
        CHECK(r.exit_code == 7);
        ::close(keep);
    }
    ::close(leak[0]);
    ::close(leak[1]);
}

TEST_CASE("a program that cannot start is an error naming it; nothing is guessed", "[process]")
{
    SpawnSpec spec;
    spec.argv = {"/nonexistent/program"};
    auto r = run_command(spec, "", 5s);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("cannot run /nonexistent/program"));
    spec.argv = {"no-such-program-anywhere"};
    spec.search_path = true;
    auto s = run_command(spec, "", 5s);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message, Catch::Contains("not found in PATH"));
}

TEST_CASE("cancellation kills the tree and says so", "[process]")
{
    std::atomic<bool> stop{false};
    std::thread t([&] {
        std::this_thread::sleep_for(200ms);
        stop = true;
    });
    SpawnSpec spec;
    spec.argv = {"/bin/sleep", "60"};
    auto r = run_command(spec, "", 30s, &stop);
    t.join();
    REQUIRE(r);
    CHECK(r->end == ChildEnd::Cancelled);
    CHECK(r->cancelled);
    CHECK_FALSE(r->success());
}

TEST_CASE("raise_open_file_limit raises the soft limit; programs exec'd get the old one back", "[process]")
{
    struct rlimit rl {};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= 256) {
        WARN("SKIPPED: hard descriptor limit " << uint64_t(rl.rlim_max) << " leaves nothing to raise");
        return;
    }
    // In a forked child, so this test process keeps its own limit.
    SpawnSpec spec;
    spec.argv = {"raise"};
    auto p = Subprocess::fork_function(spec, [] {
        struct rlimit low {};
        ::getrlimit(RLIMIT_NOFILE, &low);
        low.rlim_cur = 256;
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0)
            return 1;
        const rlim_t want = std::min<rlim_t>(low.rlim_max, rlim_t(1) << 20);
        if (raise_open_file_limit() != want)
            return 2;
        struct rlimit now {};
        ::getrlimit(RLIMIT_NOFILE, &now);
        if (now.rlim_cur != want)
            return 3;
        SpawnSpec sh;
        sh.argv = {"/bin/sh", "-c", "ulimit -Sn"};
        auto child = Subprocess::spawn(sh);
        if (!child)
            return 4;
        CommandResult r = (*child)->communicate("", monotonic_ms() + 10000);
        return r.exit_code == 0 && r.out == "256\n" ? 7 : 5;
    });
    REQUIRE(p);
    CommandResult r = (*p)->communicate("", monotonic_ms() + 20000);
    CHECK(r.exit_code == 7); // 2/3: not raised; 5: the exec'd program kept the raised limit
}
