// The real consumer: Pacemaker's fencer (pacemaker-fenced -s, stand-alone) runs
// fence_stockade_redfish through a wrapper it finds in /usr/sbin, driven by stonith_admin:
// register, monitor, fence, unfence, reboot against the Redfish test service, every claim checked
// against the node process; a device with a wrong password fails its monitor and its fence and
// leaves the node running.  The fencer is stopped by PID and the wrapper removed, whatever happens.
#include <catch2/catch.hpp>

#include <csignal>
#include <dirent.h>
#include <random>
#include <thread>
#include <unistd.h>

#include "redfish_test_util.hpp"
#include "stockade/process.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

const std::string kFencer = "/usr/lib/pacemaker/pacemaker-fenced";

bool fencer_running()
{
    DIR *d = ::opendir("/proc");
    if (!d)
        return false;
    bool found = false;
    while (dirent *e = ::readdir(d)) {
        char *end = nullptr;
        long p = std::strtol(e->d_name, &end, 10);
        if (!end || *end || p <= 0)
            continue;
        if (read_file(std::string("/proc/") + e->d_name + "/comm").rfind("pacemaker-fence", 0) == 0 && pid_alive(pid_t(p)))
            found = true;
    }
    ::closedir(d);
    return found;
}

struct Fencer {
    TempDir dir;
    std::string log = dir.file("fenced.log");
    std::string wrapper_name, wrapper_path;
    std::unique_ptr<Subprocess> proc;

    ~Fencer()
    {
        if (proc) {
            ::kill(proc->pid(), SIGTERM);
            (void)proc->wait(monotonic_ms() + 10000);
            proc.reset();
        }
        if (!wrapper_path.empty())
            ::unlink(wrapper_path.c_str());
        if (const char *b = std::getenv("STOCKADE_BUILD_DIR"))
            write_file(std::string(b) + "/redfish-fenced.log", read_file(log));
    }

    std::string start()
    {
        if (::geteuid() != 0)
            return "not root: the fencer only runs /usr/sbin/fence_* and needs root for its IPC";
        if (::access(kFencer.c_str(), X_OK) != 0 || !which("stonith_admin"))
            return kFencer + " or stonith_admin missing (packages pacemaker, pacemaker-cli-utils)";
        for (int i = 0; i < 90 && fencer_running(); ++i)
            std::this_thread::sleep_for(1s);
        if (fencer_running())
            return "another pacemaker-fenced is running on this machine; two fencers cannot share the stonith-ng IPC";
        std::random_device rd;
        wrapper_name = "fence_stockade_rftest_" + std::to_string(rd() % 100000000);
        wrapper_path = "/usr/sbin/" + wrapper_name;
        write_file(wrapper_path,
                   "#!/bin/sh\n# Test wrapper for stockade's redfish tests; removed by the test.\n"
                   "STOCKADE_AGENT_HOST='" + env_or_fail("STOCKADE_AGENT_HOST") + "'\nexport STOCKADE_AGENT_HOST\n"
                   "STOCKADE_AGENT_PATH='" + env_or_fail("STOCKADE_AGENT_PATH") + "'\nexport STOCKADE_AGENT_PATH\n"
                   "exec '" + bin_path("fence_stockade_redfish") + "' \"$@\"\n",
                   0755);
        SpawnSpec spec;
        spec.argv = {"/bin/sh", "-c", "exec " + kFencer + " -s -l " + log + " >" + log + ".out 2>&1"};
        spec.env_set = {{"PCMK_logfile", log}};
        auto p = Subprocess::spawn(spec);
        if (!p)
            return "cannot start pacemaker-fenced: " + p.error().message;
        proc = std::move(p.value());
        for (int i = 0; i < 200; ++i) {
            if (read_file(log).find("successfully started") != std::string::npos)
                return "";
            if (!pid_alive(proc->pid()))
                break;
            std::this_thread::sleep_for(100ms);
        }
        return "pacemaker-fenced did not start: " + read_file(log + ".out");
    }

    CommandResult admin(std::vector<std::string> args)
    {
        args.insert(args.begin(), *which("stonith_admin"));
        return run(args, "", 90s);
    }
};

} // namespace

TEST_CASE("pacemaker-fenced drives fence_stockade_redfish through stonith_admin", "[redfish][pacemaker]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    Fencer f;
    if (std::string skip = f.start(); !skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    INFO("fencer log: " << f.log);
    auto svc = RedfishService::start(f.dir.path() / "svc");
    const std::string W = f.wrapper_name;
    auto dev = [&](const std::string &name, const std::string &password) {
        return f.admin({"-R", name, "-a", W, "-o", "ip=" + svc->address(), "-o", "ipport=" + std::to_string(svc->port()),
                        "-o", "username=admin", "-o", "password=" + password, "-o", "ssl_ca_file=" + svc->ca_file(),
                        "-o", "pcmk_host_list=node1"});
    };

    auto meta = f.admin({"--metadata", "-a", W});
    REQUIRE(meta.exit_code == 0);
    CHECK_THAT(meta.out, Catch::Contains("<parameter name=\"systems_uri\""));
    CHECK_THAT(meta.out, Catch::Contains("<parameter name=\"ssl_insecure\""));

    REQUIRE(dev("st-rf", "secret").exit_code == 0);
    CHECK(f.admin({"-Q", "st-rf", "-t", "20"}).exit_code == 0);
    pid_t node = svc->node_pid();
    REQUIRE(node > 0);
    auto off = f.admin({"-F", "node1", "-t", "30"});
    INFO(off.out << off.err);
    CHECK(off.exit_code == 0);
    CHECK_FALSE(pid_alive(node));
    CHECK(svc->read_power_state("1") == "Off");
    CHECK(f.admin({"-U", "node1", "-t", "30"}).exit_code == 0);
    pid_t up = svc->node_pid();
    CHECK(up > 0);
    CHECK(f.admin({"-B", "node1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(pid_alive(up));
    CHECK(svc->node_pid() > 0);
    CHECK(svc->node_pid() != up);

    // A device with the wrong password: monitor and fence fail, the node keeps running.
    REQUIRE(f.admin({"-D", "st-rf"}).exit_code == 0);
    REQUIRE(dev("st-bad", "wrong").exit_code == 0);
    CHECK(f.admin({"-Q", "st-bad", "-t", "20"}).exit_code != 0);
    pid_t still = svc->node_pid();
    CHECK(f.admin({"-F", "node1", "-t", "20"}).exit_code != 0);
    CHECK(pid_alive(still));
    CHECK_THAT(read_file(f.log), Catch::Contains("401"));
}
