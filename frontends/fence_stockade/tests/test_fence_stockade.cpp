// fence_stockade end to end, with the real consumers: fence-agents' metadata schema (xmllint),
// the stdin and getopt contracts against the sim agent (whose nodes are local processes, so every
// claim is checked against the process table), secrets never visible on any argv or environment,
// deadlines kept under Pacemaker, and pacemaker-fenced itself driving the executables through
// stonith_admin, including a two-level topology whose first level fails.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

const std::string kRng = "/usr/share/cluster/relaxng/metadata.rng";

std::string prog(const std::string &name) { return test::bin_path(name); }

CommandResult run_stdin(const std::string &program, const std::string &input,
                        const std::vector<std::pair<std::string, std::string>> &env = {},
                        std::chrono::milliseconds timeout = 60s)
{
    return test::run({prog(program)}, input, timeout, env);
}

CommandResult run_args(const std::string &program, std::vector<std::string> args,
                       std::chrono::milliseconds timeout = 60s)
{
    args.insert(args.begin(), prog(program));
    return test::run(args, "", timeout);
}

bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

// The pid of a simulated node if its process is alive (the sim agent's <state_dir>/<node>.node).
pid_t node_pid(const std::string &state_dir, const std::string &node)
{
    std::ifstream f(state_dir + "/" + node + ".node");
    long long pid = 0;
    f >> pid;
    return pid > 0 && test::pid_alive(pid_t(pid)) ? pid_t(pid) : 0;
}

// Kills every simulated node left in a state folder (by the pid the agent recorded).
struct NodeReaper {
    std::string dir;
    ~NodeReaper()
    {
        DIR *d = ::opendir(dir.c_str());
        if (!d)
            return;
        while (dirent *e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.compare(n.size() - 5, 5, ".node") == 0)
                if (pid_t p = node_pid(dir, n.substr(0, n.size() - 5)))
                    ::kill(p, SIGKILL);
        }
        ::closedir(d);
    }
};

bool validates(const std::string &xml, const test::TempDir &d, const std::string &name, std::string *why = nullptr)
{
    std::string f = d.file(name + ".xml");
    test::write_file(f, xml);
    auto r = test::run({*test::which("xmllint"), "--noout", "--relaxng", kRng, f});
    if (why)
        *why = r.err;
    return r.exit_code == 0;
}

bool have_schema() { return test::which("xmllint") && std::ifstream(kRng).good(); }

std::string sim_input(const std::string &state_dir, const std::string &rest)
{
    return "state_dir=" + state_dir + "\n" + rest;
}

} // namespace

TEST_CASE("every agent folder has its fence_stockade_<agent> name next to the binary", "[frontend]")
{
    std::istringstream names(STOCKADE_FENCE_AGENT_NAMES);
    std::string all = STOCKADE_FENCE_AGENT_NAMES;
    CHECK(contains(all, "sim"));
    size_t count = 0;
    for (std::string n; names >> n;) {
        INFO(n);
        struct stat st {};
        REQUIRE(::stat(prog("fence_stockade_" + n).c_str(), &st) == 0);
        CHECK((st.st_mode & S_IXUSR));
        ++count;
    }
    CHECK(count >= 1);
}

TEST_CASE("-o metadata validates against fence-agents' metadata.rng", "[frontend]")
{
    if (!have_schema()) {
        WARN("SKIPPED: xmllint or " << kRng << " missing (packages libxml2-utils, fence-agents)");
        return;
    }
    test::TempDir d;
    std::string why;
    auto sim = run_args("fence_stockade_sim", {"-o", "metadata"});
    REQUIRE(sim.exit_code == 0);
    CHECK(validates(sim.out, d, "sim", &why));
    INFO(why);
    CHECK(contains(sim.out, "<resource-agent name=\"fence_stockade_sim\""));
    CHECK(contains(sim.out, "<action name=\"reboot\" />"));
    CHECK(contains(sim.out, "<action name=\"list\" />"));
    CHECK(contains(sim.out, "<parameter name=\"state_dir\" unique=\"0\" required=\"1\">"));
    // Every agent built here, under its own name.
    std::istringstream names(STOCKADE_FENCE_AGENT_NAMES);
    for (std::string n; names >> n;) {
        INFO("fence_stockade_" << n);
        auto m = run_args("fence_stockade_" + n, {"-o", "metadata"});
        CHECK(m.exit_code == 0);
        CHECK(validates(m.out, d, n, &why));
        INFO(why);
    }
    // The same from stdin, as Pacemaker asks (action=metadata, nothing else).
    auto sim2 = run_stdin("fence_stockade_sim", "action=metadata\n");
    CHECK(sim2.out == sim.out);
    CHECK(sim2.err.empty()); // tools read stdout only, but we keep stderr quiet too

    auto generic = run_stdin("fence_stockade", "action=meta-data\n");
    REQUIRE(generic.exit_code == 0);
    CHECK(validates(generic.out, d, "generic", &why));
    CHECK(contains(generic.out, "<parameter name=\"agent\" unique=\"0\" required=\"0\">")); // config= replaces it

    auto ta = run_stdin("fence_stockade", "agent=testagent\naction=metadata\n");
    REQUIRE(ta.exit_code == 0);
    CHECK(validates(ta.out, d, "testagent", &why));
    CHECK(contains(ta.out, "<parameter name=\"passwd\" unique=\"0\" required=\"0\" deprecated=\"1\">"));
    CHECK(contains(ta.out, "<parameter name=\"password\" unique=\"0\" required=\"0\" obsoletes=\"passwd\">"));
    CHECK(contains(ta.out, "<parameter name=\"password_script\""));
}

TEST_CASE("stdin contract against sim: on, status, off, already off, reboot; nodes are processes", "[frontend]")
{
    test::TempDir d;
    std::string st = d.file("st");
    NodeReaper reaper{st};

    // on, with comments, quotes, an unknown key and fenced's agent= line.
    auto on = run_stdin("fence_stockade_sim", "# from fenced\nagent=fence_stockade_sim\nstate_dir=\"" + st +
                                                  "\"\n  port=n1  \naction=on\ncolour=blue\nnodename=ignored\n");
    INFO(on.err);
    CHECK(on.exit_code == 0);
    CHECK(on.out == "Success: Powered ON\n");
    CHECK(contains(on.err, "Parse error: Ignoring unknown option 'colour=blue'"));
    pid_t first = node_pid(st, "n1");
    REQUIRE(first > 0);

    auto status_on = run_stdin("fence_stockade_sim", sim_input(st, "nodename=n1\naction=status\n"));
    CHECK(status_on.exit_code == 0);
    CHECK(status_on.out == "Status: ON\n");

    auto off = run_stdin("fence_stockade_sim", sim_input(st, "nodename=n1\nplug=n1\naction=off\n"));
    CHECK(off.exit_code == 0);
    CHECK(off.out == "Success: Powered OFF\n");
    CHECK_FALSE(test::pid_alive(first));
    CHECK(node_pid(st, "n1") == 0);

    auto status_off = run_stdin("fence_stockade_sim", sim_input(st, "port=n1\naction=status\n"));
    CHECK(status_off.exit_code == 2);
    CHECK(status_off.out == "Status: OFF\n");

    auto again = run_stdin("fence_stockade_sim", sim_input(st, "port=n1\naction=off\n"));
    CHECK(again.exit_code == 0);
    CHECK(again.out == "Success: Already OFF\n");

    auto on2 = run_stdin("fence_stockade_sim", sim_input(st, "port=n1\naction=on\n"));
    CHECK(on2.out == "Success: Powered ON\n");
    auto already_on = run_stdin("fence_stockade_sim", sim_input(st, "port=n1\naction=on\n"));
    CHECK(already_on.out == "Success: Already ON\n");
    pid_t before = node_pid(st, "n1");
    REQUIRE(before > 0);

    // reboot is the default action.
    auto reboot = run_stdin("fence_stockade_sim", sim_input(st, "port=n1\n"));
    CHECK(reboot.exit_code == 0);
    CHECK(reboot.out == "Success: Rebooted\n");
    CHECK_FALSE(test::pid_alive(before));
    pid_t after = node_pid(st, "n1");
    CHECK(after > 0);
    CHECK(after != before);

    // Several plugs: all are switched off; status is on if any is on.
    run_stdin("fence_stockade_sim", sim_input(st, "port=n2\naction=on\n"));
    auto multi = run_stdin("fence_stockade_sim", sim_input(st, "port=n1,n2\naction=off\n"));
    CHECK(multi.out == "Success: Powered OFF\n");
    CHECK(node_pid(st, "n1") == 0);
    CHECK(node_pid(st, "n2") == 0);
}

TEST_CASE("getopt contract against sim, and failures in fence-agents' words", "[frontend]")
{
    test::TempDir d;
    std::string st = d.file("st");
    NodeReaper reaper{st};

    auto on = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "on"});
    CHECK(on.exit_code == 0);
    CHECK(node_pid(st, "n1") > 0);
    auto status = run_args("fence_stockade_sim", {"--state-dir=" + st, "--plug=n1", "--action=status"});
    CHECK(status.exit_code == 0);
    CHECK(status.out == "Status: ON\n");
    auto list = run_args("fence_stockade_sim", {"--state-dir", st, "-o", "list"});
    CHECK(list.exit_code == 0);
    CHECK(list.out == "n1,\n");
    auto ls = run_args("fence_stockade_sim", {"--state-dir", st, "-o", "list-status", "-C", ";"});
    CHECK(ls.out == "n1;;on\n");
    auto mon = run_args("fence_stockade_sim", {"--state-dir", st, "-o", "monitor"});
    CHECK(mon.exit_code == 0);
    CHECK(mon.out.empty());
    auto off = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "off", "-v"});
    CHECK(off.exit_code == 0);
    CHECK(off.out == "Success: Powered OFF\n");
    CHECK(node_pid(st, "n1") == 0);
    CHECK(contains(off.err, "INFO: fence_stockade_sim: killing simulated node n1"));

    auto bad = run_args("fence_stockade_sim", {"--state-dir", st, "--colour=red"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err == "Parse error: option --colour not recognized\nPlease use '-h' for usage\n");
    CHECK(bad.out.empty());
    auto act = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "dance"});
    CHECK(act.exit_code == 1);
    CHECK(contains(act.err, "Failed: Unrecognised action 'dance'"));
    auto noplug = run_args("fence_stockade_sim", {"--state-dir", st, "-o", "off"});
    CHECK(noplug.exit_code == 1);
    CHECK(contains(noplug.err, "Failed: You have to enter plug number or machine identification"));
    auto secs = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "--power-timeout=soon"});
    CHECK(secs.exit_code == 1);
    CHECK(contains(secs.err, "Failed: The value you have entered for --power-timeout is not a valid time in seconds"));

    // An unreachable device: status is 1 (never 2, which would mean "off"), off fails.
    run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "on"});
    auto ustat = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "status", "--reachable=0"});
    CHECK(ustat.exit_code == 1);
    CHECK(ustat.out.empty());
    CHECK(contains(ustat.err, "ERROR: Unable to connect/login to fencing device"));
    auto uoff = run_args("fence_stockade_sim", {"--state-dir", st, "-n", "n1", "-o", "off", "--reachable=no"});
    CHECK(uoff.exit_code == 1);
    CHECK(uoff.out.empty());
    CHECK(node_pid(st, "n1") > 0); // nothing happened to the node

    auto help = run_args("fence_stockade_sim", {"-h"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "--state-dir=[state_dir]"));
    auto version = run_args("fence_stockade_sim", {"-V"});
    CHECK(version.exit_code == 0);
    CHECK(version.out == "1.0\n");
}

TEST_CASE("validate-all: the agent checks its parameters; errors listed, then 'validate-all failed'", "[frontend]")
{
    test::TempDir d;
    auto ok = run_stdin("fence_stockade_sim", sim_input(d.file("st"), "action=validate-all\nnodename=node1\nplug=node1\n"));
    CHECK(ok.exit_code == 0);
    CHECK(ok.out.empty());
    auto rel = run_stdin("fence_stockade_sim", "state_dir=relative\naction=validate-all\n");
    CHECK(rel.exit_code == 1);
    CHECK(contains(rel.err, "state_dir must be an absolute path"));
    CHECK(contains(rel.err, "validate-all failed\nPlease use '-h' for usage\n"));
    auto missing = run_stdin("fence_stockade_sim", "action=validate-all\npower_timeout=x\n");
    CHECK(missing.exit_code == 1);
    CHECK(contains(missing.err, "Failed: The value you have entered for --power-timeout is not a valid time in seconds"));
    CHECK(contains(missing.err, "validate-all failed"));
}

TEST_CASE("generic fence_stockade takes agent=; never a false success", "[frontend]")
{
    test::TempDir d;
    std::string state = d.file("state");
    auto noagent = run_stdin("fence_stockade", "action=off\nplug=x\n");
    CHECK(noagent.exit_code == 1);
    CHECK(contains(noagent.err, "Failed: You have to set agent or config"));
    auto unknown = run_stdin("fence_stockade", "agent=nosuch\naction=off\nplug=x\n");
    CHECK(unknown.exit_code == 1);
    CHECK(contains(unknown.err, "nosuch"));

    auto off = run_stdin("fence_stockade", "agent=fence_stockade_testagent\nstate_file=" + state + "\nplug=t1\naction=off\n");
    CHECK(off.exit_code == 0);
    CHECK(off.out == "Success: Powered OFF\n");
    CHECK(test::read_file(state) == "off\n");
    auto st = run_args("fence_stockade", {"--agent=testagent", "--state-file", state, "-n", "t1", "-o", "status"});
    CHECK(st.exit_code == 2);
    CHECK(st.out == "Status: OFF\n");

    // The agent says OK but did not confirm, and the state reads back on: that is a failure.
    auto liar = run_stdin("fence_stockade", "agent=testagent\nverify=0\nstatus_mode=on\nplug=t1\naction=off\n");
    CHECK(liar.exit_code == 1);
    CHECK(liar.out.empty());
    CHECK(contains(liar.err, "Failed: Timed out waiting to power OFF"));
    auto liar_reboot = run_stdin("fence_stockade", "agent=testagent\nverify=0\nstatus_mode=on\nplug=t1\n");
    CHECK(liar_reboot.exit_code == 1);
    CHECK(liar_reboot.out.empty());
    // A device that fails the off: 1, with the reason on stderr.
    auto failing = run_stdin("fence_stockade", "agent=testagent\nmode=fail\nstatus_mode=on\nplug=t1\naction=off\n");
    CHECK(failing.exit_code == 1);
    CHECK(contains(failing.err, "simulated failure"));
    auto on = run_stdin("fence_stockade", "agent=testagent\nstate_file=" + state + "\nplug=t1\naction=on\n");
    CHECK(on.out == "Success: Powered ON\n");
    CHECK(test::read_file(state) == "on\n");
}

TEST_CASE("generic fence_stockade: agent= or config=, exactly one; the metadata requires neither", "[frontend]")
{
    // pcs refuses a device that lacks a parameter the metadata marks required, so neither may be.
    auto meta = run_args("fence_stockade", {"-o", "metadata"});
    REQUIRE(meta.exit_code == 0);
    CHECK(contains(meta.out, "<parameter name=\"agent\" unique=\"0\" required=\"0\">"));
    CHECK(contains(meta.out, "<parameter name=\"config\" unique=\"0\" required=\"0\">"));

    test::TempDir d;
    std::string cfg = d.file("stockade.json");
    test::write_file(cfg, R"({"devices": {"p1": {"agent": "testagent", "params": {"state_file": ")" + d.file("a") +
                              R"("}}}, "nodes": {"n1": {"levels": [["p1"]]}}})");
    // config= alone: validate-all and monitor check the file and its agents.
    auto v = run_stdin("fence_stockade", "action=validate-all\nconfig=" + cfg + "\n");
    INFO(v.err);
    CHECK(v.exit_code == 0);
    CHECK(run_args("fence_stockade", {"--config", cfg, "-o", "validate-all"}).exit_code == 0);
    CHECK(run_stdin("fence_stockade", "action=monitor\nconfig=" + cfg + "\n").exit_code == 0);
    // agent= alone, as before.
    CHECK(run_stdin("fence_stockade", "action=validate-all\nagent=testagent\n").exit_code == 0);
    // Neither: named, in validate-all's format.
    auto neither = run_stdin("fence_stockade", "action=validate-all\n");
    CHECK(neither.exit_code == 1);
    CHECK(contains(neither.err, "Failed: You have to set agent or config"));
    CHECK(contains(neither.err, "validate-all failed"));
    // Both: refused, nothing runs.
    auto both = run_stdin("fence_stockade", "action=off\nplug=n1\nagent=testagent\nconfig=" + cfg + "\n");
    CHECK(both.exit_code == 1);
    CHECK(contains(both.err, "agent= and config= exclude each other"));
    CHECK_FALSE(std::filesystem::exists(d.file("a")));
    // A broken file: every error, then 'validate-all failed'.
    test::write_file(d.file("bad.json"), R"({"devices": {"p1": {"agent": "testagent"}}, "nodes": {"n1": {"levels": [["p2"], ["p3"]]}}})");
    auto bad = run_stdin("fence_stockade", "action=validate-all\nconfig=" + d.file("bad.json") + "\n");
    INFO(bad.err);
    CHECK(bad.exit_code == 1);
    CHECK(contains(bad.err, "Failed: " + d.file("bad.json") + ": /nodes/n1/levels/0/0: unknown device 'p2'"));
    CHECK(contains(bad.err, "Failed: " + d.file("bad.json") + ": /nodes/n1/levels/1/0: unknown device 'p3'"));
    CHECK(contains(bad.err, "validate-all failed"));
}

TEST_CASE("deadlines are ours, also under pacemaker-fenced; delay only before off/reboot", "[frontend]")
{
    test::TempDir d;
    auto t0 = std::chrono::steady_clock::now();
    std::string pids = d.file("pids");
    auto hung = run_stdin("fence_stockade", "agent=testagent\nmode=hang\nstatus_mode=on\nplug=t1\naction=off\n"
                                            "total_timeout=2\nfork_child=1\npid_file=" + pids + "\n",
                          {{"PCMK_service", "pacemaker-fenced"}}, 30s);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(hung.exit_code == 1);
    CHECK(hung.out.empty());
    CHECK(contains(hung.err, "Failed: Timed out waiting to power OFF"));
    CHECK(took < 5s);
    CHECK(took >= 2s);
    // The hung agent and the child it started (in its own session) are gone: nothing outlives us.
    std::istringstream hung_pids(test::read_file(pids));
    int count = 0;
    for (long pid; hung_pids >> pid; ++count)
        CHECK_FALSE(test::pid_alive(pid_t(pid)));
    CHECK(count == 2);

    t0 = std::chrono::steady_clock::now();
    auto status_hang = run_stdin("fence_stockade", "agent=testagent\nstatus_mode=hang\nplug=t1\naction=status\n"
                                                   "login_timeout=1\nshell_timeout=1\n",
                                 {}, 30s);
    took = std::chrono::steady_clock::now() - t0;
    CHECK(status_hang.exit_code == 1); // never 2
    CHECK(took < 4s);

    auto explicit_disable = run_stdin("fence_stockade", "agent=testagent\nmode=hang\nstatus_mode=on\nplug=t1\n"
                                                        "action=off\ndisable_timeout=true\ntotal_timeout=1\n",
                                      {}, 30s);
    CHECK(explicit_disable.exit_code == 1);
    CHECK(contains(explicit_disable.err, "disable_timeout ignored"));

    std::string state = d.file("s");
    t0 = std::chrono::steady_clock::now();
    auto delayed = run_stdin("fence_stockade", "agent=testagent\nstate_file=" + state + "\nplug=t1\naction=off\ndelay=1\n");
    took = std::chrono::steady_clock::now() - t0;
    CHECK(delayed.exit_code == 0);
    CHECK(took >= 1s);
    t0 = std::chrono::steady_clock::now();
    auto undelayed = run_stdin("fence_stockade", "agent=testagent\nstate_file=" + state + "\nplug=t1\naction=status\n"
                                                 "delay=3\n");
    took = std::chrono::steady_clock::now() - t0;
    CHECK(undelayed.exit_code == 2);
    CHECK(took < 2s);
}

TEST_CASE("killed like Pacemaker kills at its timeout (SIGKILL to our group): the agent does not survive us",
          "[frontend]")
{
    test::TempDir d;
    std::string pids = d.file("pids");
    SpawnSpec spec;
    spec.argv = {prog("fence_stockade")}; // Subprocess puts it in a process group of its own
    auto p = Subprocess::spawn(spec);
    REQUIRE(p);
    CHECK((*p)->write_all("agent=testagent\nmode=hang\nstatus_mode=on\nplug=t1\naction=off\nfork_child=1\npid_file=" +
                              pids + "\n",
                          monotonic_ms() + 5000)
              .ok());
    (*p)->close_stdin();
    for (int i = 0; i < 100 && test::read_file(pids).size() < 4; ++i)
        std::this_thread::sleep_for(50ms);
    std::this_thread::sleep_for(500ms); // the guard's next snapshot sees the agent's child too
    std::istringstream in(test::read_file(pids));
    std::vector<pid_t> agent_pids;
    for (long x; in >> x;)
        agent_pids.push_back(pid_t(x));
    REQUIRE(agent_pids.size() == 2);
    for (pid_t x : agent_pids)
        CHECK(test::pid_alive(x));
    ::kill(-(*p)->pid(), SIGKILL);
    auto st = (*p)->wait(monotonic_ms() + 5000);
    REQUIRE(st);
    CHECK(WIFSIGNALED(*st));
    bool all_gone = false;
    for (int i = 0; i < 40 && !all_gone; ++i) {
        std::this_thread::sleep_for(50ms);
        all_gone = std::none_of(agent_pids.begin(), agent_pids.end(), [](pid_t x) { return test::pid_alive(x); });
    }
    CHECK(all_gone);
}

TEST_CASE("secrets from stdin, argv or password_script never appear on any argv or environment", "[frontend]")
{
    test::TempDir d;
    const std::string secret = "S3cr3t-" + std::to_string(::getpid()) + "-stdin";
    const std::string secret_argv = "S3cr3t-" + std::to_string(::getpid()) + "-argv";
    const std::string secret_script = "S3cr3t-" + std::to_string(::getpid()) + "-script";
    std::string script = d.file("pw.sh");
    test::write_file(script, "#!/bin/sh\necho ran > " + d.file("ran") + "\nprintf '%s\\n' '" + secret_script + "'\n",
                     0700);

    auto watch = [&](const std::vector<std::string> &argv, const std::string &input, const std::string &needle) {
        SpawnSpec spec;
        spec.argv = argv;
        auto p = Subprocess::spawn(spec);
        REQUIRE(p);
        CHECK((*p)->write_all(input, monotonic_ms() + 5000).ok());
        (*p)->close_stdin();
        std::vector<pid_t> seen;
        // While the agent sleeps (delay_ms, in status and in off), look at every process's
        // cmdline and environ, until the front-end exits.
        int scans = 0;
        std::optional<int> status;
        while (!(status = (*p)->wait(monotonic_ms() + 100)) && scans < 100) {
            for (pid_t x : test::processes_exposing(needle))
                if (x != ::getpid())
                    seen.push_back(x);
            ++scans;
        }
        std::string out, err;
        (*p)->read_all(out, err, monotonic_ms() + 20000);
        if (!status)
            status = (*p)->wait(monotonic_ms() + 20000);
        CHECK(scans >= 1);
        CHECK(seen.empty());
        CHECK(out == "Success: Powered OFF\n");
        CHECK_FALSE(contains(err, needle));
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
    };
    SECTION("stdin")
    {
        watch({prog("fence_stockade")},
              "agent=testagent\npasswd=" + secret + "\ndelay_ms=1200\nplug=t1\naction=off\nverbose=1\n", secret);
    }
    SECTION("argv is scrubbed once parsed")
    {
        watch({prog("fence_stockade"), "--agent=testagent", "-p", secret_argv, "--delay-ms=1200", "-n", "t1", "-o",
               "off", "-vv"},
              "", secret_argv);
    }
    SECTION("password_script")
    {
        watch({prog("fence_stockade")},
              "agent=testagent\npassword_script=" + script + "\ndelay_ms=1200\nplug=t1\naction=off\nverbose=2\n",
              secret_script);
        CHECK(test::read_file(d.file("ran")) == "ran\n");
    }
    SECTION("a failing password_script is a failure")
    {
        auto r = run_stdin("fence_stockade", "agent=testagent\npassword_script=exit 3\nplug=t1\naction=off\n");
        CHECK(r.exit_code == 1);
        CHECK(contains(r.err, "password script failed (exit 3)"));
    }
}

TEST_CASE("a NUL byte in a stdin line is an error naming the key; nothing runs", "[frontend][nul]")
{
    using namespace std::string_literals;
    test::TempDir d;
    std::string st = d.file("st");
    NodeReaper reaper{st};
    auto on = run_stdin("fence_stockade_sim", sim_input(st, "plug=n1\naction=on\n"));
    REQUIRE(on.exit_code == 0);
    pid_t node = node_pid(st, "n1");
    REQUIRE(node > 0);

    // "plug=n1\0evil" once powered off n1; "action=sta\0tus" reported action 'sta'.
    auto cut_plug = run_stdin("fence_stockade_sim", sim_input(st, "plug=n1\0evil\naction=off\n"s));
    INFO(cut_plug.err);
    CHECK(cut_plug.exit_code == 1);
    CHECK(cut_plug.out.empty());
    CHECK(contains(cut_plug.err, "Parse error: option 'plug' contains a NUL byte"));
    CHECK(test::pid_alive(node)); // no action ran

    auto cut_action = run_stdin("fence_stockade_sim", sim_input(st, "plug=n1\naction=sta\0tus\n"s));
    CHECK(cut_action.exit_code == 1);
    CHECK(contains(cut_action.err, "option 'action' contains a NUL byte"));
    CHECK_FALSE(contains(cut_action.err, "Unrecognised action"));

    auto in_key = run_stdin("fence_stockade_sim", sim_input(st, "pl\0ug=n1\naction=off\n"s));
    CHECK(in_key.exit_code == 1);
    CHECK(contains(in_key.err, "option 'pl\\0ug' contains a NUL byte"));

    // A secret's value is never echoed, even when it holds the NUL.
    auto pw = run_stdin("fence_stockade_sim", sim_input(st, "plug=n1\npasswd=Hunter2\0x\naction=off\n"s));
    CHECK(pw.exit_code == 1);
    CHECK_FALSE(contains(pw.err, "Hunter2"));
    CHECK(test::pid_alive(node));
}

// Issue 18 item 4: when stonith_helper refuses because the node still answers, the first line
// fence_stockade prints (the one pacemaker-fenced logs first and pcs shows) is that reason, for
// off and for reboot, from stdin as Pacemaker calls it and from the command line; never
// fence-agents' "Timed out waiting to power OFF", which nobody had.  The answering node is
// 127.0.0.1; the standby wait is off so only the refusal is timed.
TEST_CASE("stonith_helper refusing a node that still answers: the first line names that reason", "[frontend][deadlines]")
{
    auto first_line = [](const std::string &s) { return s.substr(0, s.find('\n')); };
    const std::string params = "hostlist=n1\ndead_check_target=127.0.0.1\nrun_standby_wait=0\n";
    for (const std::string action : {"off", "reboot"}) {
        INFO("action " << action);
        auto r = run_stdin("fence_stockade_stonith_helper", params + "action=" + action + "\nnodename=n1\nplug=n1\n",
                           {{"PCMK_service", "pacemaker-fenced"}}, 30s);
        INFO(r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        CHECK_THAT(first_line(r.err), Catch::Contains("ERROR: Failed: n1 is not known to be dead (127.0.0.1 answered"));
        CHECK_FALSE(contains(r.err, "Timed out waiting to power"));
    }
    auto cli = run_args("fence_stockade_stonith_helper", {"--hostlist=n1", "--dead-check-target=127.0.0.1",
                                                          "--run-standby-wait=0", "-o", "off", "-n", "n1"});
    INFO(cli.err);
    CHECK(cli.exit_code == 1);
    CHECK_THAT(first_line(cli.err), Catch::Contains("ERROR: Failed: n1 is not known to be dead (127.0.0.1 answered"));
    CHECK_FALSE(contains(cli.err, "Timed out waiting to power"));
}
