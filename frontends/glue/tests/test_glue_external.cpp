// The external plugin shim against its real consumers: Debian's cluster-glue `stonith` command
// (-n, -m, -l, -S, -T on|off|reset, name=value and -E) and Pacemaker's fence_legacy path
// (the shared FencerFixture's pacemaker-fenced + stonith_admin), fencing sim nodes (local processes) and checking the
// process table afterwards.  The plugin is installed for the test under a unique name into
// cluster-glue's external folder (a 0755 wrapper exec'ing the build-tree binary) and removed after.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "fencer_fixture.hpp"
#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

const std::string kPluginDir = "/usr/lib/stonith/plugins/external";
const std::string kStonith = "/usr/sbin/stonith";

// A wrapper in cluster-glue's plugin folder that runs the build-tree shim as `as_name`.
struct InstalledPlugin {
    std::string type; // "external/<unique>"
    std::string path;
    bool ok = false;
    std::string why;

    explicit InstalledPlugin(const std::string &as_name)
    {
        static int counter = 0;
        std::string unique = "stockade-test" + std::to_string(getpid()) + "-" + std::to_string(++counter);
        type = "external/" + unique;
        path = kPluginDir + "/" + unique;
        if (access(kStonith.c_str(), X_OK) != 0) {
            why = "cluster-glue's stonith command is not installed";
            return;
        }
        if (access(kPluginDir.c_str(), W_OK) != 0) {
            why = kPluginDir + " is not writable (the test needs root)";
            return;
        }
        std::string text = "#!/bin/bash\n"
                           "export STOCKADE_AGENT_PATH='" + test::env_or_fail("STOCKADE_AGENT_PATH") + "'\n"
                           "export STOCKADE_AGENT_HOST='" + test::env_or_fail("STOCKADE_AGENT_HOST") + "'\n"
                           "exec -a " + as_name + " '" + test::bin_path("stockade-glue-external") + "' \"$@\"\n";
        test::write_file(path, text, 0755);
        chmod(path.c_str(), 0755); // cluster-glue refuses group/other-writable plugins
        ok = true;
    }
    ~InstalledPlugin()
    {
        if (ok)
            unlink(path.c_str());
    }
};

pid_t node_pid(const test::TempDir &d, const std::string &node)
{
    std::ifstream f(d.file("state/" + node + ".node"));
    long pid = 0;
    f >> pid;
    return pid_t(pid);
}

CommandResult stonith(const std::vector<std::string> &args, const std::vector<std::pair<std::string, std::string>> &env = {})
{
    std::vector<std::string> argv{kStonith};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, "", 60s, env);
}

std::string info(const CommandResult &r) { return "stdout: " + r.out + "\nstderr: " + r.err; }

} // namespace

TEST_CASE("stonith -n and -m show the agent's parameters from the ABI table", "[glue]")
{
    InstalledPlugin plugin("stockade-sim");
    if (!plugin.ok) {
        WARN("SKIPPED: " << plugin.why);
        return;
    }
    auto n = stonith({"-t", plugin.type, "-n"});
    INFO(info(n));
    REQUIRE(n.exit_code == 0);
    CHECK(n.out.find("state_dir  hostlist  reachable  power_timeout  stockade_timeout") != std::string::npos);

    auto m = stonith({"-t", plugin.type, "-m"});
    INFO(info(m));
    REQUIRE(m.exit_code == 0);
    CHECK(m.out.find("<shortdesc lang=\"en\">stockade sim STONITH device") != std::string::npos);
    CHECK(m.out.find("<parameter name=\"state_dir\" unique=\"0\" required=\"1\">") != std::string::npos);
    CHECK(m.out.find("<parameter name=\"power_timeout\" unique=\"0\" required=\"0\">\n<content type=\"integer\" "
                     "default=\"10\" />") != std::string::npos);
    CHECK(m.out.find("pcmk_host_list") != std::string::npos); // aliases are documented

    // The generic name lists `agent` first, and the agent's own names once it is known.
    InstalledPlugin generic("stockade");
    auto g = stonith({"-t", generic.type, "-n"});
    CHECK(g.out.find("agent  stockade_timeout") != std::string::npos);
    auto g2 = stonith({"-t", generic.type, "-n"}, {{"agent", "sim"}});
    CHECK(g2.out.find("agent  state_dir  hostlist") != std::string::npos);
}

TEST_CASE("stonith -T on|off|reset fences sim nodes through the shim; -l and -S", "[glue]")
{
    InstalledPlugin plugin("stockade-sim");
    if (!plugin.ok) {
        WARN("SKIPPED: " << plugin.why);
        return;
    }
    test::TempDir d;
    std::vector<std::string> params{"state_dir=" + d.file("state"), "hostlist=n1 n2"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> a{"-t", plugin.type};
        a.insert(a.end(), params.begin(), params.end());
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };

    auto on = stonith(with({"-T", "on", "n1"}));
    INFO(info(on));
    REQUIRE(on.exit_code == 0);
    pid_t p1 = node_pid(d, "n1");
    REQUIRE(p1 > 0);
    CHECK(test::pid_alive(p1));

    auto list = stonith(with({"-l"}));
    CHECK(list.exit_code == 0);
    CHECK(list.out == "n1\nn2\n");

    auto st = stonith(with({"-S"}));
    CHECK(st.exit_code == 0);

    // reset: the old process is gone, a new one runs.  libstonith lower-cases the node name.
    auto reset = stonith(with({"-T", "reset", "N1"}));
    INFO(info(reset));
    REQUIRE(reset.exit_code == 0);
    pid_t p2 = node_pid(d, "n1");
    CHECK_FALSE(test::pid_alive(p1));
    CHECK(p2 > 0);
    CHECK(p2 != p1);
    CHECK(test::pid_alive(p2));

    auto off = stonith(with({"-T", "off", "n1"}));
    INFO(info(off));
    REQUIRE(off.exit_code == 0);
    CHECK_FALSE(test::pid_alive(p2));

    // A node outside the hostlist is refused (the shim does check the target; external.c
    // reports any failure of off as S_RESETFAIL = 5).
    auto bad = stonith(with({"-T", "off", "n9"}));
    CHECK(bad.exit_code == 5);
}

TEST_CASE("stonith -E takes the parameters from the environment; the generic name takes agent=", "[glue]")
{
    InstalledPlugin generic("stockade");
    if (!generic.ok) {
        WARN("SKIPPED: " << generic.why);
        return;
    }
    test::TempDir d;
    std::vector<std::pair<std::string, std::string>> env{
        {"agent", "sim"}, {"state_dir", d.file("state")}, {"hostlist", "n1"}};
    auto on = stonith({"-t", generic.type, "-E", "-T", "on", "n1"}, env);
    INFO(info(on));
    REQUIRE(on.exit_code == 0);
    pid_t p = node_pid(d, "n1");
    REQUIRE(test::pid_alive(p));
    auto off = stonith({"-t", generic.type, "-E", "-T", "off", "n1"}, env);
    INFO(info(off));
    REQUIRE(off.exit_code == 0);
    CHECK_FALSE(test::pid_alive(p));

    // No agent: a configuration error, nothing touched.
    auto none = stonith({"-t", generic.type, "state_dir=" + d.file("state"), "-T", "off", "n1"});
    CHECK(none.exit_code != 0);
}

TEST_CASE("an unreachable device fails -S and -T off and leaves the node running", "[glue]")
{
    InstalledPlugin plugin("stockade-sim");
    if (!plugin.ok) {
        WARN("SKIPPED: " << plugin.why);
        return;
    }
    test::TempDir d;
    auto on = stonith({"-t", plugin.type, "state_dir=" + d.file("state"), "-T", "on", "n1"});
    REQUIRE(on.exit_code == 0);
    pid_t p = node_pid(d, "n1");
    auto st = stonith({"-t", plugin.type, "state_dir=" + d.file("state"), "reachable=0", "-S"});
    CHECK(st.exit_code == 8); // S_OOPS: the device did not answer (status code is passed through raw)
    auto off = stonith({"-t", plugin.type, "state_dir=" + d.file("state"), "reachable=0", "-T", "off", "n1"});
    CHECK(off.exit_code == 5);
    CHECK(test::pid_alive(p));
    kill(p, SIGKILL);
}

TEST_CASE("Pacemaker's fence_legacy path: pacemaker-fenced fences through external/<shim>", "[glue]")
{
    if (access("/usr/sbin/fence_legacy", X_OK) != 0) {
        WARN("SKIPPED: fence_legacy is not installed (package pacemaker)");
        return;
    }
    InstalledPlugin plugin("stockade-sim");
    if (!plugin.ok) {
        WARN("SKIPPED: " << plugin.why);
        return;
    }
    test::FencerFixture f; // no wrapper: the fencer runs /usr/sbin/fence_legacy, which runs `stonith`
    f.keep_log_as = "glue-fenced.log";
    if (std::string skip = f.start(""); !skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    std::string dev = "stockade-glue-" + std::to_string(getpid());
    auto reg = f.admin({"-R", dev, "-a", plugin.type, "-o", "state_dir=" + f.state_dir, "-o", "hostlist=n1 n2"}, 30s);
    INFO(info(reg));
    REQUIRE(reg.exit_code == 0);

    // Bring n1 up with the plugin itself, then fence it through the fencer.
    auto on = stonith({"-t", plugin.type, "state_dir=" + f.state_dir, "-T", "on", "n1"});
    INFO(info(on));
    REQUIRE(on.exit_code == 0);
    pid_t p = f.sim_node("n1");
    REQUIRE(p > 0);
    auto t0 = std::chrono::steady_clock::now();
    auto fence = f.admin({"-F", "n1", "-t", "30"}, 40s);
    INFO(info(fence) + "\nfenced log:\n" + test::FencerFixture::tail(test::read_file(f.log)));
    REQUIRE(fence.exit_code == 0);
    CHECK_FALSE(test::pid_alive(p));
    WARN("stonith_admin -F through fence_legacy + stonith + shim: " << test::ms_since(t0) << " ms");
    // Reboot through the fencer: fence_legacy maps it to `stonith -T reset`; the node comes back.
    auto b = f.admin({"-B", "n1", "-t", "30"}, 40s);
    INFO(info(b));
    CHECK(b.exit_code == 0);
    pid_t back = f.sim_node("n1");
    CHECK(back > 0);
    CHECK(back != p);
    // A node the device does not list is not fenced and the fencer says so.
    auto bad = f.admin({"-F", "n9", "-t", "20"}, 30s);
    CHECK(bad.exit_code != 0);
    CHECK(f.admin({"-D", dev}, 20s).exit_code == 0);
} // the fixture stops the fencer and kills what is left of n1

TEST_CASE("secrets from the plugin environment never reach the agent host; stockade_timeout kills a hung agent",
          "[glue]")
{
    InstalledPlugin generic("stockade");
    if (!generic.ok) {
        WARN("SKIPPED: " << generic.why);
        return;
    }
    test::TempDir d;
    const std::string secret = "Zq9GlueSecretPw";
    SpawnSpec spec;
    spec.argv = {kStonith, "-t", generic.type, "-E", "-T", "off", "n1"};
    spec.env_set = {{"agent", "testagent"}, {"passwd", secret}, {"mode", "hang"}, {"stockade_timeout", "3"}};
    auto t0 = std::chrono::steady_clock::now();
    auto proc = Subprocess::spawn(spec);
    REQUIRE(proc.ok());
    // While the agent hangs, look at every process: the agent host must not hold the secret.
    bool saw_host = false;
    for (int i = 0; i < 40 && !saw_host; ++i) {
        std::this_thread::sleep_for(50ms);
        for (pid_t p : test::processes_exposing("stockade-agent-host"))
            saw_host = saw_host || test::read_file("/proc/" + std::to_string(p) + "/comm").rfind("stockade-agent", 0) == 0;
    }
    CHECK(saw_host);
    // Nor the shim itself once it has read its parameters (its /proc/<pid>/environ is wiped, not
    // just unsetenv()ed).  What remains is cluster-glue's own: the stonith process and the shell
    // popen() starts hold the variables they were given (docs/input-rules.md).
    std::this_thread::sleep_for(300ms);
    for (pid_t p : test::processes_exposing(secret)) {
        std::string comm = test::read_file("/proc/" + std::to_string(p) + "/comm");
        if (!comm.empty() && comm.back() == '\n')
            comm.pop_back();
        INFO("pid " << p << " (" << comm << ") exposes the secret");
        CHECK(comm.rfind("stockade-agent", 0) != 0);
        CHECK(comm != generic.type.substr(generic.type.rfind('/') + 1));
        CHECK((comm == "stonith" || comm == "sh"));
    }
    std::string out, err;
    (*proc)->read_all(out, err, monotonic_ms() + 20000);
    auto status = (*proc)->wait(monotonic_ms() + 10000);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    INFO(out + err);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 5); // S_RESETFAIL: external.c's verdict on any failed off
    CHECK(ms < 8000);
    CHECK(err.find(secret) == std::string::npos);
}
