// cluster.conf and fence_node end to end: two methods (a real fence_ipmilan against a dead port,
// then a fence agent script the test writes, which kills a real process), -U running every
// unfence device, undefined nodes, malformed XML, libfence's argument merge, secrets masked.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "cluster_conf.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

// A fence agent in the fence-agents calling convention: key=value on stdin; victims are
// processes whose pids are in <piddir>/<nodename>.pid.  It records its whole input.
const char *kAgentScript = R"(#!/bin/sh
action=reboot
# alive PID: the process exists and is not a zombie (PID 1 here may never reap it)
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }
while IFS= read -r line; do
  case "$line" in
    action=*) action=${line#action=} ;;
    nodename=*) node=${line#nodename=} ;;
    piddir=*) dir=${line#piddir=} ;;
    fail=1) fail=1 ;;
  esac
  input="$input$line
"
done
printf '%s---\n' "$input" >> "$dir.args"
[ -n "$fail" ] && { echo "Failed: told to fail" >&2; exit 1; }
pidfile="$dir/$node.pid"
case "$action" in
  off|reboot)
    pid=$(cat "$pidfile" 2>/dev/null)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    for i in 1 2 3 4 5 6 7 8 9 10; do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && exit 1
    echo "Success: Powered OFF"
    if [ "$action" = reboot ]; then setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$pidfile"; fi
    exit 0 ;;
  on) setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$pidfile"; echo "Success: Powered ON"; exit 0 ;;
  status) pid=$(cat "$pidfile" 2>/dev/null); alive "$pid" && { echo "Status: ON"; exit 0; }; echo "Status: OFF"; exit 2 ;;
  *) echo "Failed: Unrecognised action '$action'" >&2; exit 1 ;;
esac
)";

struct Site {
    test::TempDir dir;
    std::string agent = dir.file("fence_testpids");
    std::string piddir = dir.file("pids");
    std::vector<pid_t> started;

    Site()
    {
        test::write_file(agent, kAgentScript, 0755);
        std::filesystem::create_directories(piddir);
    }
    ~Site()
    {
        for (pid_t p : started)
            if (is_node(p))
                kill(p, SIGKILL);
        for (auto &e : std::filesystem::directory_iterator(piddir))
            if (e.path().extension() == ".pid") {
                long p = 0;
                std::ifstream(e.path()) >> p;
                if (is_node(pid_t(p)))
                    kill(pid_t(p), SIGKILL);
            }
    }
    // Only our own "sleep 300" node processes are ever killed (pids may be reused).
    static bool is_node(pid_t p)
    {
        return p > 0 && test::pid_alive(p) &&
               test::read_file("/proc/" + std::to_string(p) + "/cmdline") == std::string("sleep\0" "300\0", 10);
    }
    pid_t node_pid(const std::string &name)
    {
        long p = 0;
        std::ifstream(piddir + "/" + name + ".pid") >> p;
        return pid_t(p);
    }
    // A "node": a process whose pid the agent script finds.
    pid_t start_node(const std::string &name)
    {
        if (pid_t old = node_pid(name); is_node(old)) // one the agent script started earlier
            kill(old, SIGKILL);
        // Double fork: the node is not our child, so a killed node does not linger as a zombie
        // that `kill -0` would still find.
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t mid = fork();
        if (mid == 0) {
            setsid();
            pid_t node = fork();
            if (node == 0) {
                execl("/bin/sleep", "sleep", "300", nullptr);
                _exit(127);
            }
            ssize_t w = ::write(fds[1], &node, sizeof node);
            _exit(w == sizeof node ? 0 : 1);
        }
        close(fds[1]);
        pid_t p = 0;
        REQUIRE(::read(fds[0], &p, sizeof p) == sizeof p);
        close(fds[0]);
        waitpid(mid, nullptr, 0);
        started.push_back(p);
        test::write_file(piddir + "/" + name + ".pid", std::to_string(p) + "\n");
        return p;
    }
    bool gone(pid_t p)
    {
        for (int i = 0; i < 50 && test::pid_alive(p); ++i)
            std::this_thread::sleep_for(20ms);
        return !test::pid_alive(p);
    }
    std::string write(const std::string &name, std::string text)
    {
        for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
                 {"@AGENT@", agent}, {"@PIDS@", piddir}, {"@PORT@", std::to_string(test::free_udp_port())}})
            for (size_t p; (p = text.find(k)) != std::string::npos;)
                text.replace(p, k.size(), v);
        std::string path = dir.file(name);
        test::write_file(path, text);
        return path;
    }
};

const char *kTwoMethods = R"(<?xml version="1.0"?>
<cluster name="c1" config_version="3">
  <clusternodes>
    <clusternode name="n1" nodeid="1">
      <fence>
        <method name="ipmi">
          <device name="bmc-n1"/>
        </method>
        <method name="script">
          <device name="pids" port="7" piddir="/wrong/place"/>
        </method>
      </fence>
      <unfence>
        <device name="broken" action="on"/>
        <device name="pids" action="on"/>
      </unfence>
    </clusternode>
    <clusternode name="n2" nodeid="2">
      <unfence>
        <device name="pids" action="on"/>
      </unfence>
    </clusternode>
    <clusternode name="n3" nodeid="3"/>
  </clusternodes>
  <fencedevices>
    <fencedevice name="bmc-n1" agent="fence_ipmilan" ipaddr="127.0.0.1" ipport="@PORT@" login="admin"
                 passwd="Sup3rSecretPw" lanplus="1" stockade_timeout="4"/>
    <fencedevice name="pids" agent="@AGENT@" piddir="@PIDS@" passwd="An0therSecret"/>
    <fencedevice name="broken" agent="@AGENT@" piddir="@PIDS@" fail="1"/>
  </fencedevices>
</cluster>
)";

CommandResult fence_node(const std::vector<std::string> &args)
{
    std::vector<std::string> argv{test::bin_path("stockade-fence-node")};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, "", 90s);
}

std::string info(const CommandResult &r) { return "stdout: " + r.out + "\nstderr: " + r.err; }

} // namespace

TEST_CASE("cluster.conf: methods become levels, device attributes merge as libfence's make_args", "[glue]")
{
    Site site;
    auto cc = load_cluster_conf(site.write("cluster.conf", kTwoMethods));
    REQUIRE(cc.ok());
    const NodeConfig *n1 = cc->config.find_node("N1");
    REQUIRE(n1);
    REQUIRE(n1->levels.size() == 2);
    CHECK(n1->levels[0][0].device == "bmc-n1");
    CHECK(n1->levels[1][0].device == "pids");
    // piddir is set by the fencedevice too: the fencedevice's value wins, the line's is dropped.
    RawParams merged = merged_params(cc->config.devices.at("pids"), n1->levels[1][0]);
    CHECK(std::count(merged.begin(), merged.end(), std::make_pair(std::string("piddir"), site.piddir)) == 1);
    for (const auto &[k, v] : merged)
        CHECK(v != "/wrong/place");
    CHECK(std::find(merged.begin(), merged.end(), std::make_pair(std::string("port"), std::string("7"))) != merged.end());
    CHECK(cc->config.devices.at("bmc-n1").timeout == 4s);
    CHECK(cc->find_unfence("n1")->size() == 2);
    CHECK(cc->config.find_node("n3")->levels.empty());

    // The dual power supply idiom becomes one level: off on both, then on on both (the runner).
    auto psu = parse_cluster_conf(R"(<cluster name="c"><clusternodes><clusternode name="a" nodeid="1"><fence>
        <method name="1"><device name="p1" port="3" action="off"/><device name="p2" port="3" action="off"/>
        <device name="p1" port="3" action="on"/><device name="p2" port="3" action="on"/></method></fence>
        </clusternode></clusternodes><fencedevices><fencedevice name="p1" agent="fence_apc"/>
        <fencedevice name="p2" agent="fence_apc"/></fencedevices></cluster>)", "psu.conf");
    REQUIRE(psu.ok());
    const auto &lvl = psu->config.find_node("a")->levels.at(0);
    REQUIRE(lvl.size() == 2);
    CHECK(lvl[0].params == RawParams{{"port", "3"}});
    CHECK(lvl[1].device == "p2");
}

TEST_CASE("fence_node: a failing fence_ipmilan method, then a script method fences the node", "[glue]")
{
    Site site;
    std::string conf = site.write("cluster.conf", kTwoMethods);
    pid_t victim = site.start_node("n1");
    auto t0 = std::chrono::steady_clock::now();
    auto r = fence_node({"-vv", "-c", conf, "n1"});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    INFO(info(r));
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("fence n1 dev 0.0 agent fence_ipmilan result: error from agent\n") != std::string::npos);
    CHECK(r.err.find("fence n1 dev 1.0 agent " + site.agent + " result: success\n") != std::string::npos);
    CHECK(r.err.find("agent args: port=7 nodename=n1 agent=" + site.agent + " piddir=" + site.piddir +
                     " passwd=***") != std::string::npos);
    CHECK(r.err.size() >= 17);
    CHECK(r.err.rfind("fence n1 success\n") == r.err.size() - 17);
    CHECK(r.err.find("Sup3rSecretPw") == std::string::npos);
    CHECK(r.err.find("An0therSecret") == std::string::npos);
    CHECK(site.gone(victim));
    // The agent got libfence's set of lines: the action, the device's piddir and passwd, the
    // line's port, nodename (no key twice, so their order does not matter to a fence agent).
    std::string args = test::read_file(site.piddir + ".args");
    INFO("agent input: " << args);
    CHECK(args.find("action=reboot\npiddir=" + site.piddir + "\npasswd=An0therSecret\nport=7\nnodename=n1\n---") !=
          std::string::npos);
    CHECK(args.find("/wrong/place") == std::string::npos);
    WARN("fence_node: fence_ipmilan (dead port) failed, script method fenced: " << ms << " ms");

    // Without -v only the result line.
    site.start_node("n1");
    auto quiet = fence_node({"-c", conf, "n1"});
    CHECK(quiet.exit_code == 0);
    CHECK(quiet.err.find("fence n1 success\n") != std::string::npos);
    CHECK(quiet.err.find(" dev ") == std::string::npos);
}

TEST_CASE("fence_node -U runs every unfence device even after a failure", "[glue]")
{
    Site site;
    std::string conf = site.write("cluster.conf", kTwoMethods);
    auto r = fence_node({"-U", "-v", "-c", conf, "n1"});
    INFO(info(r));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("unfence n1 dev 0.0 agent " + site.agent + " result: error from agent\n") != std::string::npos);
    CHECK(r.err.find("unfence n1 dev 0.1 agent " + site.agent + " result: success\n") != std::string::npos);
    CHECK(r.err.find("unfence n1 failed\n") != std::string::npos);
    pid_t p = site.node_pid("n1");
    CHECK(p > 0);
    CHECK(test::pid_alive(p)); // the second device powered it on

    auto ok = fence_node({"-U", "-c", conf, "n2"});
    INFO(info(ok));
    CHECK(ok.exit_code == 0);
    CHECK(ok.err == "unfence n2 success\n");
    CHECK(test::pid_alive(site.node_pid("n2")));
}

TEST_CASE("fence_node: undefined nodes exit 2, usage errors 1", "[glue]")
{
    Site site;
    std::string conf = site.write("cluster.conf", kTwoMethods);
    auto r = fence_node({"-c", conf, "nosuchnode"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "fence nosuchnode undefined\n");
    auto n3 = fence_node({"-c", conf, "n3"}); // defined, but no method
    CHECK(n3.exit_code == 2);
    CHECK(n3.err == "fence n3 undefined\n");
    auto u3 = fence_node({"-U", "-c", conf, "n3"});
    CHECK(u3.exit_code == 2);
    CHECK(u3.err == "unfence n3 undefined\n");
    auto none = fence_node({"-c", conf});
    CHECK(none.exit_code == 1);
    CHECK(none.err == "fence_node: no node name specified\n");
    auto bad = fence_node({"-x"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err == "Please use '-h' for usage.\n");
}

TEST_CASE("cluster.conf errors are one line naming the line and the element", "[glue]")
{
    Site site;
    std::string broken = site.write("broken.conf", R"(<?xml version="1.0"?>
<cluster name="c1" config_version="1">
  <clusternodes>
    <clusternode name="n1" nodeid="1">
      <fence><method name="1"><device name="x"></method></fence>
    </clusternode>
  </clusternodes>
</cluster>
)");
    auto r = fence_node({"-c", broken, "n1"});
    INFO(info(r));
    CHECK(r.exit_code == 1);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(broken + ":5: malformed XML:") != std::string::npos);
    CHECK(r.err.find("device") != std::string::npos);

    auto cli = test::run({test::bin_path("stockade"), "fence", "--cluster-conf", broken, "n1"});
    CHECK(cli.exit_code == 2);
    CHECK(std::count(cli.err.begin(), cli.err.end(), '\n') == 1);
    CHECK(cli.err.find(":5: malformed XML:") != std::string::npos);

    std::string dangling = site.write("dangling.conf", R"(<cluster name="c1">
<clusternodes><clusternode name="n1" nodeid="1"><fence><method name="1">
<device name="nosuch" port="1"/></method></fence></clusternode></clusternodes>
<fencedevices/></cluster>)");
    auto d = parse_cluster_conf(test::read_file(dangling), "dangling.conf");
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().message == "dangling.conf:3: <device>: no <fencedevice name=\"nosuch\"> in <fencedevices>");
    auto noid = parse_cluster_conf(R"(<cluster><clusternodes><clusternode name="n1"/></clusternodes></cluster>)", "x.conf");
    REQUIRE_FALSE(noid.ok());
    CHECK(noid.error().message == "x.conf:1: <clusternode>: clusternode 'n1': attribute 'nodeid' is required");
}

TEST_CASE("stockade fence --cluster-conf runs the same levels", "[glue]")
{
    Site site;
    std::string conf = site.write("cluster.conf", kTwoMethods);
    pid_t victim = site.start_node("n1");
    auto r = test::run({test::bin_path("stockade"), "fence", "--cluster-conf", conf, "n1"}, "", 90s);
    INFO(info(r));
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("fence n1 success:") != std::string::npos);
    CHECK(r.out.find("level 2") != std::string::npos);
    CHECK(site.gone(victim));
    CHECK(r.err.find("Sup3rSecretPw") == std::string::npos);
    // The script's reboot started a new node process; status reads it through the same levels
    // (fence_ipmilan does not answer, the script method says on: exit 0).
    pid_t reborn = site.node_pid("n1");
    CHECK(reborn != victim);
    auto st = test::run({test::bin_path("stockade"), "status", "--cluster-conf", conf, "n1"}, "", 60s);
    INFO(info(st));
    CHECK(st.exit_code == 0);
    kill(reborn, SIGKILL);
    auto st2 = test::run({test::bin_path("stockade"), "status", "--cluster-conf", conf, "n1"}, "", 60s);
    CHECK(st2.exit_code == 2);
    auto u = test::run({test::bin_path("stockade"), "fence", "--cluster-conf", conf, "n3"});
    CHECK(u.exit_code == 2);
}
