// The real consumer: Pacemaker's fencer (pacemaker-fenced, stand-alone) runs fence_stockade_sim
// through a wrapper it finds in /usr/sbin, driven by stonith_admin: metadata, validate, register,
// monitor, unfence, fence, reboot, and a two-level topology whose first level (an unreachable
// simulated switch) fails so that the second one must fence.  Every claim is checked against the
// process table (the simulated node is a process).  The fencer is stopped by PID and the wrapper
// removed, whatever happens.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

const std::string kFencer = "/usr/lib/pacemaker/pacemaker-fenced";

pid_t sim_node(const std::string &state_dir, const std::string &node)
{
    std::ifstream f(state_dir + "/" + node + ".node");
    long long pid = 0;
    f >> pid;
    return pid > 0 && test::pid_alive(pid_t(pid)) ? pid_t(pid) : 0;
}

// Processes whose /proc/<pid>/comm starts with `comm` (pacemaker-fenced shows as "pacemaker-fence").
std::vector<pid_t> running(const std::string &comm, pid_t ours = 0)
{
    std::vector<pid_t> out;
    DIR *d = ::opendir("/proc");
    if (!d)
        return out;
    while (dirent *e = ::readdir(d)) {
        char *end = nullptr;
        long p = std::strtol(e->d_name, &end, 10);
        if (!end || *end || p <= 0 || p == ours)
            continue;
        if (test::read_file(std::string("/proc/") + e->d_name + "/comm").rfind(comm, 0) == 0 &&
            test::pid_alive(pid_t(p)))
            out.push_back(pid_t(p));
    }
    ::closedir(d);
    return out;
}

struct Timing {
    std::string command;
    int rc;
    double seconds;
};

class FencerFixture {
public:
    test::TempDir dir;
    std::string state_dir = dir.file("st");
    std::string log = dir.file("fenced.log");
    std::string wrapper_name;
    std::string wrapper_path;
    std::string corosync_log = dir.file("corosync.log");
    std::unique_ptr<Subprocess> corosync;
    std::unique_ptr<Subprocess> fencer;
    bool ringid_existed = true;
    std::vector<Timing> timings;

    static void stop(std::unique_ptr<Subprocess> &p)
    {
        if (!p)
            return;
        ::kill(p->pid(), SIGTERM);
        (void)p->wait(monotonic_ms() + 10000); // then the destructor kills what is left
        p.reset();
    }

    ~FencerFixture()
    {
        stop(fencer);
        stop(corosync);
        if (!ringid_existed)
            ::unlink("/var/lib/corosync/ringid_1");
        if (!wrapper_path.empty())
            ::unlink(wrapper_path.c_str());
        // Keep the fencer's log for whoever reads a failure.
        if (const char *b = std::getenv("STOCKADE_BUILD_DIR"))
            test::write_file(std::string(b) + "/frontend-fenced.log", test::read_file(log));
        DIR *d = ::opendir(state_dir.c_str());
        if (d) {
            while (dirent *e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n.size() > 5 && n.compare(n.size() - 5, 5, ".node") == 0)
                    if (pid_t p = sim_node(state_dir, n.substr(0, n.size() - 5)))
                        ::kill(p, SIGKILL);
            }
            ::closedir(d);
        }
    }

    // Returns "" when ready, else why the test must be skipped.
    std::string start(const std::string &program = "fence_stockade_sim")
    {
        if (::geteuid() != 0)
            return "not root: the fencer only runs /usr/sbin/fence_* and needs root for its IPC";
        if (::access(kFencer.c_str(), X_OK) != 0 || !test::which("stonith_admin"))
            return kFencer + " or stonith_admin missing (packages pacemaker, pacemaker-cli-utils)";
        for (int i = 0; i < 60 && !running("pacemaker-fence").empty(); ++i)
            std::this_thread::sleep_for(1s);
        if (!running("pacemaker-fence").empty())
            return "another pacemaker-fenced is running on this machine (pid " + std::to_string(running("pacemaker-fence")[0]) +
                   "); two fencers cannot share the stonith-ng IPC name";

        std::random_device rd;
        wrapper_name = fmt::format("fence_stockade_test_{:08x}", rd());
        wrapper_path = "/usr/sbin/" + wrapper_name;
        std::string host = test::env_or_fail("STOCKADE_AGENT_HOST");
        test::write_file(wrapper_path,
                         "#!/bin/sh\n# Test wrapper for stockade's frontend tests; removed by the test.\n"
                         "STOCKADE_AGENT_HOST='" + host + "'\nexport STOCKADE_AGENT_HOST\n"
                         "STOCKADE_RUN_DIR='" + dir.file("run") + "'\nexport STOCKADE_RUN_DIR\n"
                         "exec '" + test::bin_path(program) + "' \"$@\"\n",
                         0755);

        // Topology needs the fencer's cluster path (CPG), so a single-node corosync on 127.0.0.1
        // when one can run; otherwise the stand-alone fencer, which ignores topology.
        std::string mode = "-s";
        if (auto why = start_corosync(); why.empty())
            mode = "-c";
        else
            corosync_skip = why;
        SpawnSpec spec;
        spec.argv = {"/bin/sh", "-c", "exec " + kFencer + " " + mode + " -l " + log + " >" + log + ".out 2>&1"};
        spec.env_set = {{"PCMK_logfile", log}};
        auto p = Subprocess::spawn(spec);
        if (!p)
            return "cannot start pacemaker-fenced: " + p.error().message;
        fencer = std::move(p.value());
        for (int i = 0; i < 200; ++i) {
            if (test::read_file(log).find("successfully started") != std::string::npos)
                return "";
            if (!test::pid_alive(fencer->pid()))
                break;
            std::this_thread::sleep_for(100ms);
        }
        return "pacemaker-fenced did not start: " + test::read_file(log + ".out") + tail(test::read_file(log));
    }

    std::string corosync_skip; // why topology cannot be tested, "" when corosync runs

    std::string start_corosync()
    {
        auto bin = test::which("corosync");
        if (!bin)
            return "corosync is not installed";
        if (!running("corosync").empty())
            return "another corosync is running on this machine (its IPC names are machine-wide)";
        char host[256] = {0};
        ::gethostname(host, sizeof host - 1);
        std::string conf = dir.file("corosync.conf");
        test::write_file(conf, fmt::format(R"(totem {{
  version: 2
  cluster_name: stockadetest
  transport: knet
  crypto_cipher: none
  crypto_hash: none
}}
nodelist {{
  node {{
    ring0_addr: 127.0.0.1
    name: {}
    nodeid: 1
  }}
}}
quorum {{
  provider: corosync_votequorum
}}
logging {{
  to_logfile: yes
  logfile: {}
  to_syslog: no
  to_stderr: no
  timestamp: on
}}
)",
                                           host, corosync_log));
        ringid_existed = ::access("/var/lib/corosync/ringid_1", F_OK) == 0;
        SpawnSpec spec;
        spec.argv = {*bin, "-f", "-c", conf};
        auto p = Subprocess::spawn(spec);
        if (!p)
            return "cannot start corosync: " + p.error().message;
        corosync = std::move(p.value());
        for (int i = 0; i < 100; ++i) {
            if (test::read_file(corosync_log).find("ready to provide service") != std::string::npos)
                return "";
            if (!test::pid_alive(corosync->pid()))
                break;
            std::this_thread::sleep_for(100ms);
        }
        std::string why = "corosync did not become ready: " + tail(test::read_file(corosync_log));
        stop(corosync);
        return why;
    }

    static std::string tail(const std::string &s)
    {
        return s.size() > 1500 ? s.substr(s.size() - 1500) : s;
    }

    CommandResult admin(std::vector<std::string> args)
    {
        std::string shown = "stonith_admin";
        for (const auto &a : args)
            shown += " " + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
        args.insert(args.begin(), *test::which("stonith_admin"));
        auto t0 = std::chrono::steady_clock::now();
        auto r = test::run(args, "", 60s);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        timings.push_back({shown, r.exit_code.value_or(-1), s});
        return r;
    }

    void report()
    {
        std::string text;
        for (const auto &t : timings)
            text += fmt::format("{:6.3f} s  rc={:<3} {}\n", t.seconds, t.rc, t.command);
        std::fprintf(stderr, "pacemaker-fenced timings:\n%s", text.c_str());
        if (const char *b = std::getenv("STOCKADE_BUILD_DIR"))
            test::write_file(std::string(b) + "/frontend-pacemaker-timings.txt", text);
    }
};

} // namespace

TEST_CASE("pacemaker-fenced drives fence_stockade_sim through stonith_admin", "[frontend][pacemaker]")
{
    FencerFixture f;
    std::string skip = f.start();
    if (!skip.empty()) {
        WARN("SKIPPED: " << skip << " (the stdin/metadata contract is tested directly in the other cases)");
        return;
    }
    const std::string &W = f.wrapper_name;
    const std::string &st = f.state_dir;
    INFO("fencer log: " << f.log);

    // Metadata, as the fencer and pcs read it.  The fencer adds its own start/stop actions (with
    // timeout attributes metadata.rng does not know), so the schema is checked on our output in
    // the other test file; here: the fencer parsed it and kept what it decides on.
    auto meta = f.admin({"--metadata", "-a", W});
    REQUIRE(meta.exit_code == 0);
    CHECK(meta.out.find("<action name=\"reboot\"") != std::string::npos);
    CHECK(meta.out.find("<action name=\"list\"") != std::string::npos);
    CHECK(meta.out.find("<parameter name=\"plug\"") != std::string::npos);
    CHECK(meta.out.find("<parameter name=\"state_dir\"") != std::string::npos);
    CHECK(f.admin({"--validate", "-a", W, "-o", "state_dir=" + st}).exit_code == 0);
    auto bad = f.admin({"--validate", "-a", W, "-o", "state_dir=relative"});
    CHECK(bad.exit_code != 0);

    // One good device.
    REQUIRE(f.admin({"-R", "st-good", "-a", W, "-o", "state_dir=" + st, "-o", "pcmk_host_list=simnode1 simnode3"})
                .exit_code == 0);
    CHECK(f.admin({"-Q", "st-good", "-t", "20"}).exit_code == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t up = sim_node(st, "simnode1");
    REQUIRE(up > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "20"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(up));
    CHECK(sim_node(st, "simnode1") == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t again = sim_node(st, "simnode1");
    REQUIRE(again > 0);
    CHECK(f.admin({"-B", "simnode1", "-t", "20"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(again));
    pid_t rebooted = sim_node(st, "simnode1");
    CHECK(rebooted > 0);
    CHECK(rebooted != again);

    if (!f.corosync_skip.empty()) {
        f.report();
        WARN("SKIPPED topology (the stand-alone fencer ignores it): " << f.corosync_skip);
        return;
    }

    // An unreachable switch: monitor fails, and as level 1 it fails so level 2 must fence.
    REQUIRE(f.admin({"-R", "st-bad", "-a", W, "-o", "state_dir=" + st, "-o", "reachable=0", "-o",
                     "pcmk_host_list=simnode1 simnode3"})
                .exit_code == 0);
    CHECK(f.admin({"-Q", "st-bad", "-t", "20"}).exit_code != 0);
    REQUIRE(f.admin({"-r", "simnode1", "-i", "1", "-v", "st-bad"}).exit_code == 0);
    REQUIRE(f.admin({"-r", "simnode1", "-i", "2", "-v", "st-good"}).exit_code == 0);
    pid_t before = sim_node(st, "simnode1");
    REQUIRE(before > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(before));
    CHECK(sim_node(st, "simnode1") == 0);
    std::string log = test::read_file(f.log);
    CHECK(log.find("using st-bad returned 1") != std::string::npos);
    CHECK(log.find("using st-good returned 0") != std::string::npos);
    CHECK(f.admin({"-B", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK(sim_node(st, "simnode1") > 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "30"}).exit_code == 0); // already on: level 2 says so
    CHECK(sim_node(st, "simnode1") > 0);

    // Only a failing level: the fence fails, and the node is untouched.
    CHECK(f.admin({"-U", "simnode3", "-t", "20"}).exit_code == 0); // no topology for simnode3 yet: st-good
    pid_t n3 = sim_node(st, "simnode3");
    REQUIRE(n3 > 0);
    REQUIRE(f.admin({"-r", "simnode3", "-i", "1", "-v", "st-bad"}).exit_code == 0);
    CHECK(f.admin({"-F", "simnode3", "-t", "15"}).exit_code != 0);
    CHECK(test::pid_alive(n3));
    CHECK(test::read_file(f.log).find("All fencing options targeting simnode3") != std::string::npos);

    f.report();
}

TEST_CASE("pacemaker-fenced runs a node's stockade levels through fence_stockade config=FILE", "[frontend][pacemaker]")
{
    FencerFixture f;
    std::string skip = f.start("fence_stockade");
    if (!skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    const std::string &W = f.wrapper_name;
    const std::string &st = f.state_dir;
    // Level 1 cannot reach its switch; level 2 fences.  The fencer knows one device, st-cfg.
    std::string cfg = f.dir.file("stockade.json");
    test::write_file(cfg, R"({"escalation": {"max_loops": 1},
      "devices": {"dead": {"agent": "sim", "params": {"state_dir": ")" + st + R"(", "reachable": false}},
                  "good": {"agent": "sim", "params": {"state_dir": ")" + st + R"("}}},
      "nodes": {"simnode1": {"levels": [["dead"], ["good"]]}}})");
    INFO("fencer log: " << f.log);
    CHECK(f.admin({"--validate", "-a", W, "-o", "config=" + cfg}).exit_code == 0);
    REQUIRE(f.admin({"-R", "st-cfg", "-a", W, "-o", "config=" + cfg, "-o", "pcmk_host_list=simnode1"}).exit_code == 0);
    CHECK(f.admin({"-Q", "st-cfg", "-t", "20"}).exit_code == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t up = sim_node(st, "simnode1");
    REQUIRE(up > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(up)); // the node's process is gone: really fenced, by level 2
    CHECK(sim_node(st, "simnode1") == 0);
    CHECK(test::read_file(f.log).find("using st-cfg returned 0") != std::string::npos);
    CHECK(f.admin({"-B", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK(sim_node(st, "simnode1") > 0); // rebooted: a new node process
    // A node the file does not know is a failure, never a success.
    CHECK(f.admin({"-F", "othernode", "-t", "20"}).exit_code != 0);
    f.report();
}
