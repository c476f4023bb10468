// Runner levels holding foreign devices: a real fence_ipmilan (Debian's fence-agents) against a
// dead port fails within its device timeout and the sim level fences; a cluster-glue external
// script gets its parameters in its environment (never argv); cluster-glue's compiled meatware
// plugin runs through `stonith -F` and is confirmed by Debian's real meatclient.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>> &vars)
{
    for (const auto &[k, v] : vars)
        for (size_t p; (p = text.find(k)) != std::string::npos;)
            text.replace(p, k.size(), v);
    return text;
}

pid_t sim_pid(const test::TempDir &d, const std::string &node)
{
    long p = 0;
    std::ifstream(d.file("sim/" + node + ".node")) >> p;
    return pid_t(p);
}

CommandResult stockade_cmd(const std::vector<std::string> &args, std::chrono::milliseconds timeout = 60s)
{
    std::vector<std::string> argv{test::bin_path("stockade")};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, "", timeout);
}

std::string info(const CommandResult &r) { return "stdout: " + r.out + "\nstderr: " + r.err; }

} // namespace

TEST_CASE("a level holding fence_ipmilan (dead port) fails within its timeout, the sim level fences", "[glue]")
{
    if (access("/usr/sbin/fence_ipmilan", X_OK) != 0) {
        WARN("SKIPPED: fence-agents' fence_ipmilan is not installed");
        return;
    }
    test::TempDir d;
    std::string conf = d.file("c.json");
    test::write_file(conf, fill(R"({"version": 1, "escalation": {"retry_delay": 0.1, "max_loops": 1},
      "devices": {
        "bmc": {"agent": "foreign_fence", "timeout": 3,
                "params": {"agent": "fence_ipmilan", "ip": "127.0.0.1", "ipport": "@PORT@", "username": "admin",
                           "password": "Ipmi5ecretPw", "lanplus": "1"}},
        "pdu": {"agent": "sim", "timeout": 10, "params": {"state_dir": "@DIR@/sim"}}},
      "nodes": {"n1": {"levels": [["bmc"], ["pdu"]], "action": "off"}}})",
                                {{"@PORT@", std::to_string(test::free_udp_port())}, {"@DIR@", d.path().string()}}));
    auto on = stockade_cmd({"--config", conf, "fence", "n1", "--action", "on"});
    INFO(info(on));
    REQUIRE(on.exit_code == 0);
    pid_t p = sim_pid(d, "n1");
    REQUIRE(test::pid_alive(p));

    auto t0 = std::chrono::steady_clock::now();
    auto r = stockade_cmd({"--config", conf, "fence", "n1", "--json"});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    INFO(info(r));
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out).at(0); // --json: an array, one record per node
    CHECK(j["result"] == "fenced");
    CHECK(j["level"] == 2);
    bool ipmi_failed = false;
    for (const auto &s : j["steps"])
        if (s["device"] == "bmc") {
            ipmi_failed = s["result"] != "ok";
            CHECK(s["elapsed_ms"].get<int64_t>() < 4000); // killed at its 3 s timeout, not fence_ipmilan's 20 s
        }
    CHECK(ipmi_failed);
    CHECK_FALSE(test::pid_alive(p));
    CHECK(ms < 8000);
    CHECK(r.out.find("Ipmi5ecretPw") == std::string::npos);
    CHECK(r.err.find("Ipmi5ecretPw") == std::string::npos);
    WARN("fence_ipmilan level (3 s timeout, dead port) then sim level: fenced in " << ms << " ms");
}

TEST_CASE("a glue level runs an external plugin with its parameters in its environment", "[glue]")
{
    test::TempDir d;
    std::filesystem::create_directories(d.file("plugins"));
    std::filesystem::create_directories(d.file("pids"));
    std::string script = d.file("plugins/pidkill");
    test::write_file(script, fill(R"SH(#!/bin/sh
case "$1" in
  getconfignames) echo piddir; echo passwd ;;
  gethosts) echo n1; echo n2 ;;
  status) [ -d "$piddir" ] || exit 1; [ "$passwd" = Gl4eSecret ] || exit 2; exit 0 ;;
  off|reset)
    [ "$passwd" = Gl4eSecret ] || exit 2
    echo "$0 $*" > "$piddir/argv"
    echo "$HA_LOGTAG" > "$piddir/logtag"
    kill -9 "$(cat "$piddir/$2.pid")" || exit 1
    exit 0 ;;
  on) exit 0 ;;
  getinfo-*) echo pidkill ;;
  *) exit 1 ;;
esac
)SH", {}), 0755);
    chmod(script.c_str(), 0755);
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "300", nullptr);
        _exit(127);
    }
    test::write_file(d.file("pids/n1.pid"), std::to_string(victim));
    std::string conf = d.file("c.json");
    test::write_file(conf, fill(R"({"version": 1, "escalation": {"retry_delay": 0.1, "max_loops": 1},
      "devices": {"glue1": {"agent": "glue", "timeout": 10,
         "params": {"plugin": "external/pidkill", "plugin_dir": "@DIR@/plugins", "piddir": "@DIR@/pids",
                    "passwd": "Gl4eSecret"}}},
      "nodes": {"N1": {"levels": [["glue1"]], "action": "off"}}})",
                                {{"@DIR@", d.path().string()}}));
    auto r = stockade_cmd({"--config", conf, "fence", "N1"});
    INFO(info(r));
    CHECK(r.exit_code == 0);
    waitpid(victim, nullptr, 0);
    CHECK_FALSE(test::pid_alive(victim));
    // argv carried only the operation and the lower-cased target; the parameters came by environment.
    CHECK(test::read_file(d.file("pids/argv")) == script + " off n1\n");
    CHECK(test::read_file(d.file("pids/logtag")) == "external/pidkill\n");
    CHECK(r.err.find("Gl4eSecret") == std::string::npos);

    // A group-writable plugin is refused, as cluster-glue refuses it.
    chmod(script.c_str(), 0775);
    auto bad = stockade_cmd({"--config", conf, "fence", "N1"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("group- or world-writable") != std::string::npos);
}

TEST_CASE("a glue level runs cluster-glue's meatware through stonith -F; meatclient confirms", "[glue]")
{
    if (access("/usr/sbin/stonith", X_OK) != 0 || !test::which("meatclient")) {
        WARN("SKIPPED: cluster-glue (stonith, meatclient) is not installed");
        return;
    }
    if (geteuid() != 0) {
        WARN("SKIPPED: meatware's FIFO lives in /run, root only");
        return;
    }
    test::TempDir d;
    std::string host = "mwtest" + std::to_string(getpid());
    std::string other = "mwother" + std::to_string(getpid()); // a parameter value never on argv
    std::string conf = d.file("c.json");
    test::write_file(conf, fill(R"({"version": 1, "escalation": {"retry_delay": 0.1, "max_loops": 1},
      "devices": {"human": {"agent": "glue", "timeout": 30, "params": {"plugin": "meatware", "hostlist": "@HOST@ @OTHER@"}}},
      "nodes": {"@HOST@": {"levels": [["human"]], "action": "off"}}})",
                                {{"@HOST@", host}, {"@OTHER@", other}}));
    SpawnSpec spec;
    spec.argv = {test::bin_path("stockade"), "--config", conf, "fence", host};
    auto proc = Subprocess::spawn(spec);
    REQUIRE(proc.ok());
    std::string fifo = "/run/meatware." + host;
    struct stat st {};
    bool waiting = false;
    for (int i = 0; i < 200 && !waiting; ++i) {
        std::this_thread::sleep_for(50ms);
        waiting = stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
    }
    REQUIRE(waiting);
    // The parameters reached stonith through a 0600 file (-F), not argv.
    bool saw_file = false;
    for (auto &e : std::filesystem::directory_iterator("/tmp")) {
        if (e.path().filename().string().rfind("stockade-glue-", 0) != 0)
            continue;
        struct stat fst {};
        if (stat(e.path().c_str(), &fst) != 0 || test::read_file(e.path().string()) != host + " " + other + "\n")
            continue;
        saw_file = true;
        CHECK((fst.st_mode & 0777) == 0600);
    }
    CHECK(saw_file);
    bool saw_stonith = false;
    for (pid_t p : test::processes_exposing("meatware")) {
        std::string cmdline = test::read_file("/proc/" + std::to_string(p) + "/cmdline");
        if (cmdline.rfind("/usr/sbin/stonith", 0) != 0)
            continue;
        saw_stonith = true;
        CHECK(cmdline.find(std::string("-F\0/tmp/stockade-glue-", 22)) != std::string::npos);
        CHECK(cmdline.find(other) == std::string::npos);
    }
    CHECK(saw_stonith);
    auto client = test::run({*test::which("meatclient"), "-c", host}, "y\n", 20s);
    INFO("meatclient: " + client.out + client.err);
    CHECK(client.exit_code == 0);
    std::string out, err;
    (*proc)->read_all(out, err, monotonic_ms() + 30000);
    auto status = (*proc)->wait(monotonic_ms() + 10000);
    INFO(out + err);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(out.find("fence " + host + " success") != std::string::npos);
    unlink(fifo.c_str());
}

TEST_CASE("foreign list output is parsed as target[,alias] lines; fence_ipmilan has no list", "[glue][list]")
{
    test::TempDir d;
    std::string fake = d.file("fence_fake");
    test::write_file(fake, "#!/bin/sh\ncat >/dev/null\nprintf 'vm1,\\nvm2,Alias Two\\nWARNING: not a target\\n\\n'\n", 0755);
    std::string conf = d.file("c.json");
    bool have_ipmilan = access("/usr/sbin/fence_ipmilan", X_OK) == 0;
    test::write_file(conf, fill(R"({"version": 1, "devices": {
        @BMC@
        "fake": {"agent": "foreign_fence", "timeout": 10, "params": {"agent": "@FAKE@"}}},
      "nodes": {"n1": {"levels": [["fake"]]}}})",
                                {{"@FAKE@", fake},
                                 {"@BMC@", have_ipmilan ? R"("bmc": {"agent": "foreign_fence", "timeout": 10, "params":
                                    {"agent": "fence_ipmilan", "ip": "127.0.0.1", "username": "a"}},)"
                                                        : ""}}),
                     0600);
    auto r = stockade_cmd({"--config", conf, "list", "--targets"});
    INFO(info(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("fake: vm1\n") != std::string::npos);
    CHECK(r.out.find("fake: vm2,Alias Two\n") != std::string::npos);
    CHECK(r.out.find("WARNING") == std::string::npos);
    CHECK(r.out.find("NOTICE") == std::string::npos);
    CHECK(r.err.find("ignoring a line that is not target[,alias]: 'WARNING: not a target'") != std::string::npos);
    if (have_ipmilan)
        CHECK(r.err.find("device 'bmc' has no target list: fence_ipmilan has no list operation on this device") !=
              std::string::npos);
    else
        WARN("SKIPPED part: fence-agents' fence_ipmilan is not installed");

    // Output with no target line at all is a failure, not an empty list.
    test::write_file(fake, "#!/bin/sh\ncat >/dev/null\necho 'Unable to connect/login to fencing device'\n", 0755);
    auto bad = stockade_cmd({"--config", conf, "list", "--targets"});
    INFO(info(bad));
    CHECK(bad.exit_code == 1);
    CHECK(bad.out.find("Unable") == std::string::npos);
    CHECK(bad.err.find("list printed no target[,alias] line") != std::string::npos);
}
