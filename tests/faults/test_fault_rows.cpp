// test_fault_rows.cpp -- rows of the fault matrix (docs/reliability.md) that no agent's own tests
// cover: what a misbehaving device program does to `stockade fence` end to end.  Each test checks
// what stockade reported, how long it took, that no process of the device is left, and that
// nothing was reported fenced that was not.  Devices are `command` devices (site command lines).
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

std::string config_with(const test::TempDir &d, const std::string &command, int timeout_s)
{
    std::string path = d.file("c.json");
    nlohmann::json c = {{"version", 1},
                        {"escalation", {{"retry_delay", 0.1}, {"max_loops", 1}}},
                        {"devices", {{"dev", {{"agent", "command"}, {"timeout", timeout_s}, {"params", {{"command", command}}}}}}},
                        {"nodes", {{"n1", {{"levels", {{"dev"}}}, {"action", "off"}}}}}};
    test::write_file(path, c.dump(), 0600);
    return path;
}

struct Fence {
    CommandResult r;
    int64_t ms = 0;
    nlohmann::json report;
};

Fence fence(const std::string &config)
{
    Fence f;
    int64_t t0 = monotonic_ms();
    f.r = test::run({test::bin_path("stockade"), "--config", config, "fence", "n1", "--json"}, "", 60s);
    f.ms = monotonic_ms() - t0;
    auto j = nlohmann::json::parse(f.r.out, nullptr, false);
    f.report = j.is_array() && !j.empty() ? j[0] : j;
    return f;
}

// Processes whose argv or environment holds `marker`, after a short grace for the reaper.
size_t left_with(const std::string &marker)
{
    for (int i = 0; i < 25 && !test::processes_exposing(marker).empty(); ++i)
        std::this_thread::sleep_for(40ms);
    return test::processes_exposing(marker).size();
}

// Live processes whose real uid is `uid`.
size_t processes_of_uid(const std::string &uid)
{
    size_t n = 0;
    DIR *d = ::opendir("/proc");
    if (!d)
        return 0;
    while (dirent *e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        std::string status = test::read_file(std::string("/proc/") + e->d_name + "/status");
        auto at = status.find("\nUid:\t");
        if (at != std::string::npos && status.compare(at + 6, uid.size() + 1, uid + "\t") == 0 &&
            status.find("\nState:\tZ") == std::string::npos)
            ++n;
    }
    ::closedir(d);
    return n;
}

std::string result_of(const Fence &f) { return f.report.is_object() ? f.report.value("result", "") : ""; }

} // namespace

TEST_CASE("fault: a device program writing 100 MB to stdout fails cleanly, bounded, nothing left", "[faults]")
{
    test::TempDir d;
    const std::string marker = "bigout" + std::to_string(::getpid());
    auto f = fence(config_with(d, "/bin/sh -c 'head -c 100000000 /dev/zero | tr \"\\\\0\" x; exit 1' " + marker, 30));
    INFO(f.r.out << f.r.err);
    CHECK(f.r.exit_code == 1);
    CHECK(result_of(f) != "fenced");
    CHECK(f.r.err.size() < 64 * 1024); // the flood is not relayed whole
    CHECK(left_with(marker) == 0);
    WARN("100 MB to stdout: reported failed in " << f.ms << " ms");
}

TEST_CASE("fault: a fork bomb under a process limit is killed whole at the device timeout", "[faults]")
{
    if (::access("/usr/bin/setpriv", X_OK) != 0 || ::access("/usr/bin/prlimit", X_OK) != 0) {
        WARN("SKIPPED: util-linux setpriv/prlimit missing");
        return;
    }
    test::TempDir d;
    const std::string marker = "forkbomb" + std::to_string(::getpid());
    // As an unprivileged user of its own (root ignores RLIMIT_NPROC, and the limit counts every
    // process of the uid), at most 64 processes.
    const std::string uid = std::to_string(200000 + ::getpid() % 100000);
    auto cfg = config_with(d,
                           "/usr/bin/prlimit --nproc=64 -- /usr/bin/setpriv --reuid=" + uid + " --regid=" + uid +
                               " --clear-groups /bin/sh -c 'f() { f | f & }; f; sleep 300' " + marker,
                           3);
    size_t peak = 0;
    std::thread watch([&] {
        for (int i = 0; i < 40; ++i) {
            peak = std::max(peak, processes_of_uid(uid));
            std::this_thread::sleep_for(50ms);
        }
    });
    auto f = fence(cfg);
    watch.join();
    INFO(f.r.out << f.r.err);
    CHECK(f.r.exit_code == 1);
    CHECK(result_of(f) != "fenced");
    // How far the bomb gets depends on the machine (under the agent host its first forks already
    // failed in one run); the row asserts what stockade owes: a bounded failure, nothing left.
    CHECK(f.ms < 3000 + 4000);
    for (int i = 0; i < 25 && processes_of_uid(uid) > 0; ++i)
        std::this_thread::sleep_for(40ms);
    CHECK(processes_of_uid(uid) == 0); // the bomb's sleeps do not carry the marker: count the uid
    WARN("fork bomb (nproc 64, own uid, peak " << peak << " processes): failed in " << f.ms << " ms");
}

// A child that leaves the process group with setsid() survived the group kill until the one
// child-process API (issue 13) made kill_tree() reach every descendant.
TEST_CASE("fault: a device child that escapes with setsid is killed too", "[faults]")
{
    test::TempDir d;
    const std::string marker = "escapee" + std::to_string(::getpid());
    std::string pidfile = d.file("esc.pid");
    auto f = fence(config_with(d, "/bin/sh -c 'setsid sleep 300 & echo $! > " + pidfile + "; sleep 300' " + marker, 2));
    INFO(f.r.out << f.r.err);
    CHECK(f.r.exit_code == 1);
    CHECK(result_of(f) != "fenced");
    pid_t esc = pid_t(std::atol(test::read_file(pidfile).c_str()));
    REQUIRE(esc > 0);
    for (int i = 0; i < 25 && test::pid_alive(esc); ++i)
        std::this_thread::sleep_for(40ms);
    bool alive = test::pid_alive(esc);
    if (alive)
        ::kill(esc, SIGKILL); // ours: never leave it behind
    CHECK_FALSE(alive);
}

TEST_CASE("fault: the config file removed mid-run does not change a running fence", "[faults]")
{
    test::TempDir d;
    std::string cfg = config_with(d, "/bin/sh -c 'sleep 2; exit 0'", 10);
    SpawnSpec spec;
    spec.argv = {test::bin_path("stockade"), "--config", cfg, "fence", "n1", "--json"};
    auto t0 = monotonic_ms();
    auto proc = Subprocess::spawn(spec);
    REQUIRE(proc.ok());
    std::this_thread::sleep_for(500ms);
    REQUIRE(::unlink(cfg.c_str()) == 0);
    std::string out, err;
    (*proc)->read_all(out, err, monotonic_ms() + 20000);
    auto status = (*proc)->wait(monotonic_ms() + 10000);
    auto ms = monotonic_ms() - t0;
    INFO(out << err);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(out.find("\"fenced\"") != std::string::npos);
    CHECK(ms >= 2000);
    WARN("config removed mid-run: fenced in " << ms << " ms (read once at start)");
}
