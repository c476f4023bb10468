// One escalation per node: names deduplicated case-insensitively, and the per-node lock across
// processes -- a second `stockade fence` for a node being fenced waits and reports the running
// one's outcome; a holder killed by SIGKILL releases the lock (the kernel drops its flock) and the
// waiter fences itself; a waiter gives up at its own timeout.  The device is the test agent, whose
// journal counts the commands really sent.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

std::string config(const test::TempDir &d, const std::string &name, const std::string &extra, long delay_ms)
{
    std::string path = d.file(name);
    test::write_file(path, R"({"cluster_name": "lockc)" + std::to_string(::getpid()) + R"(", )" + extra +
                               R"( "devices": {"d": {"agent": "testagent", "params": {"journal": ")" + d.file("journal") +
                               R"(", "state_file": ")" + d.file("state") + R"(", "delay_ms": )" +
                               std::to_string(delay_ms) + R"(}}},
       "nodes": {"n1": {"levels": [["d"]], "action": "off"}}})");
    return path;
}

size_t journal_count(const test::TempDir &d, const std::string &line)
{
    std::ifstream f(d.file("journal"));
    size_t n = 0;
    for (std::string l; std::getline(f, l);)
        n += l == line;
    return n;
}

std::unique_ptr<Subprocess> start_fence(const std::string &cfg)
{
    SpawnSpec spec;
    spec.argv = {test::bin_path("stockade"), "-c", cfg, "fence", "n1"};
    auto p = Subprocess::spawn(spec);
    REQUIRE(p);
    return std::move(p.value());
}

struct Finished {
    int exit_code = -1;
    std::string out, err;
};

Finished finish(Subprocess &p)
{
    Finished f;
    int64_t deadline = monotonic_ms() + 60000;
    p.close_stdin();
    p.read_all(f.out, f.err, deadline);
    auto st = p.wait(deadline);
    if (st && WIFEXITED(*st))
        f.exit_code = WEXITSTATUS(*st);
    return f;
}

// Waits until the device received its first command (the first escalation holds the lock by then).
void wait_for_journal(const test::TempDir &d)
{
    for (int i = 0; i < 500 && journal_count(d, "test off n1") == 0; ++i)
        std::this_thread::sleep_for(20ms);
    REQUIRE(journal_count(d, "test off n1") == 1);
}

} // namespace

TEST_CASE("a node named twice, in any case, is fenced once", "[lock][cli]")
{
    test::TempDir d;
    std::string cfg = config(d, "c.json", "", 0);
    auto r = test::run({test::bin_path("stockade"), "-c", cfg, "fence", "n1", "N1", "n1"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(journal_count(d, "test off n1") == 1);
    CHECK(r.out.find("fence n1 success") != std::string::npos);
    CHECK(r.out.find('\n') == r.out.size() - 1); // one node, one line
}

TEST_CASE("a second fence of a node being fenced waits and reports the running one's outcome", "[lock][cli]")
{
    test::TempDir d;
    std::string cfg = config(d, "c.json", "", 1500);
    auto first = start_fence(cfg);
    wait_for_journal(d);
    auto second = start_fence(cfg);
    Finished b = finish(*second);
    Finished a = finish(*first);
    INFO("first:\n" << a.out << a.err << "\nsecond:\n" << b.out << b.err);
    CHECK(a.exit_code == 0);
    CHECK(b.exit_code == 0);
    CHECK(journal_count(d, "test off n1") == 1); // one escalation sent one off
    CHECK(b.err.find("already being fenced by pid " + std::to_string(first->pid())) != std::string::npos);
    CHECK(b.out.find("shared the outcome of the escalation already running in pid " + std::to_string(first->pid())) !=
          std::string::npos);
}

TEST_CASE("a lock holder killed by SIGKILL releases the node; the waiter fences it itself", "[lock][cli]")
{
    test::TempDir d;
    std::string cfg = config(d, "c.json", "", 1500);
    auto first = start_fence(cfg);
    wait_for_journal(d);
    auto second = start_fence(cfg);
    std::this_thread::sleep_for(300ms); // let it start waiting
    ::kill(first->pid(), SIGKILL);
    Finished a = finish(*first);
    Finished b = finish(*second);
    INFO("second:\n" << b.out << b.err);
    CHECK(b.exit_code == 0);
    CHECK(b.err.find("ended without an outcome we could read; fencing again") != std::string::npos);
    CHECK(journal_count(d, "test off n1") == 2); // the killed one's off, and the waiter's own
    CHECK(test::read_file(d.file("state")) == "off\n");
}

TEST_CASE("a waiter gives up at its own timeout", "[lock][cli]")
{
    test::TempDir d;
    std::string slow = config(d, "slow.json", "", 4000);
    std::string impatient = config(d, "impatient.json", R"("escalation": {"timeout": 0.5},)", 0);
    auto first = start_fence(slow); // same cluster_name: the same node
    wait_for_journal(d);
    int64_t t0 = monotonic_ms();
    auto r = test::run({test::bin_path("stockade"), "-c", impatient, "fence", "n1"});
    int64_t waited = monotonic_ms() - t0;
    Finished a = finish(*first);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("did not come within our own timeout") != std::string::npos);
    CHECK(waited < 3500); // it did not wait for the 4 s escalation
    CHECK(a.exit_code == 0);
    CHECK(journal_count(d, "test off n1") == 1);
}
