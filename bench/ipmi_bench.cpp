// ipmi_bench.cpp -- measures the ipmi agent against the tools people use today, in one run,
// against real ipmi_sim BMCs on 127.0.0.1 (started here, stopped by PID at the end).
//
// Single BMC: status, off and reboot through `stockade` (CLI, and the library in-process), a bare
// libfreeipmi session (the floor), fence_ipmilan -C 3, ipmitool -C 3 and ipmipower -W opensesspriv.
// Many BMCs: status of N BMCs at once through `stockade status` and the runner, vs ipmipower with a
// host list and a loop of fence_ipmilan.  Issue 14's rows: one status as a whole process (the CLI
// vs bench/bare_ipmi.c), fence of N nodes at once (the CLI vs bare_ipmi's one thread per node, off
// + confirm), escalation overhead (10 failing `sim` levels before a working 11th, minus the 11th
// alone); every answer is checked (exit code, each node's line, each node process gone), and a
// closing table compares with the targets.  Beside each target, its floor: bare_ipmi run
// as a process per operation (--fork; for one status, bare_ipmi_cxx --fork, with libstdc++ loaded
// as in any C++ program) -- the least stockade's isolation can cost on this machine.  Prints
// medians, ratios and peak RSS (GNU time) as Markdown.  Not a test: numbers depend on the machine; the point is that every column comes from this run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <optional>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <freeipmi/freeipmi.h>
#include <nlohmann/json.hpp>

#include "ipmi_sim_fixture.hpp"
#include "stockade/config.hpp"
#include "bench_stats.hpp"
#include "stockade/registry.hpp"
#include "stockade/runner.hpp"
#include "stockade/session.hpp"

extern char **environ;

using namespace stockade;
using namespace stockade::test;
using Clock = std::chrono::steady_clock;
using namespace stockade::bench;
namespace fs = std::filesystem;

namespace {

constexpr const char *kUser = "admin";
constexpr const char *kPass = "secret";

struct Run {
    double ms = 0;
    int exit_code = -1;
    std::string out; // stdout, for checking every answer
};

std::string g_out_file; // where run_cmd puts a command's stdout (a file: no pipe to drain while timing)

// Runs a command with stderr discarded; wall time, exit code and stdout.
Run run_cmd(const std::vector<std::string> &argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, g_out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<char *> args;
    for (const auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store{"PYTHONWARNINGS=ignore"};
    for (char **e = environ; *e; ++e)
        env_store.emplace_back(*e);
    std::vector<char *> envp;
    for (auto &e : env_store)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    Run r;
    pid_t pid;
    auto t0 = Clock::now();
    if (posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.ms = since_ms(t0);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (FILE *f = std::fopen(g_out_file.c_str(), "r")) {
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
            r.out.append(buf, n);
        std::fclose(f);
    }
    return r;
}

// Peak RSS of one run of argv (the largest process among it and the children it waited for), read
// by GNU time.  Not wait4's ru_maxrss of our own child: posix_spawn shares our address space until
// exec, and the kernel counts that (the bench's own RSS) into the child's high-water mark.
long peak_rss_kb(const std::vector<std::string> &argv)
{
    const std::string rss_file = g_out_file + ".rss";
    std::vector<std::string> cmd{"/usr/bin/time", "-f", "%M", "-o", rss_file};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    (void)run_cmd(cmd);
    long kb = 0;
    if (FILE *f = std::fopen(rss_file.c_str(), "r")) {
        if (std::fscanf(f, "%ld", &kb) != 1)
            kb = 0;
        std::fclose(f);
    }
    return kb;
}

// How many lines of `out` contain `needle`.
size_t count_lines(const std::string &out, const std::string &needle)
{
    size_t n = 0;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        n += line.find(needle) != std::string::npos;
    return n;
}


// A bare libfreeipmi session: the floor any IPMI client pays (open, Get Chassis Status, close).
bool bare_status(const SimBmc &b)
{
    ipmi_ctx_t c = ipmi_ctx_create();
    std::string host = b.endpoint();
    bool ok = false;
    if (ipmi_ctx_open_outofband_2_0(c, host.c_str(), kUser, kPass, nullptr, 0, IPMI_PRIVILEGE_LEVEL_ADMIN, 3, 5000, 400,
                                    IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE, IPMI_FLAGS_DEFAULT) == 0) {
        fiid_obj_t o = fiid_obj_create(tmpl_cmd_get_chassis_status_rs);
        uint64_t on = 0;
        ok = ipmi_cmd_get_chassis_status(c, o) == 0 && FIID_OBJ_GET(o, "current_power_state.power_is_on", &on) == 1;
        fiid_obj_destroy(o);
        ipmi_ctx_close(c);
    }
    ipmi_ctx_destroy(c);
    return ok;
}

// Many BMCs at once on a 2-core machine overload ipmi_sim (one process per BMC, a shell script
// per power read); short resends then snowball (a duplicated RAKP restarts the handshake).  So the
// many-BMC runs give every tool the same longer timeouts: 10 s session, 1.5 s resend.
constexpr int kManySessionMs = 10000, kManyRetransmitMs = 1500;

nlohmann::json device_json(const SimBmc &b, const std::string &node, bool many, bool isolate = true)
{
    nlohmann::json p = {{"ip", b.address()},         {"ipport", b.port()},     {"username", kUser},
                        {"password", kPass},         {"workarounds", "opensesspriv"}, {"hostlist", node}};
    if (many) {
        p["session_timeout"] = kManySessionMs;
        p["retransmission_timeout"] = kManyRetransmitMs;
    }
    nlohmann::json d = {{"agent", "ipmi"}, {"timeout", 60}, {"params", p}};
    if (!isolate)
        d["isolate"] = false;
    return d;
}

std::string write_config(const fs::path &dir, std::vector<std::unique_ptr<SimBmc>> &bmcs, size_t n,
                         const std::string &name, bool isolate = true)
{
    nlohmann::json devices = nlohmann::json::object(), nodes = nlohmann::json::object();
    for (size_t i = 0; i < n; ++i) {
        std::string node = "node" + std::to_string(i + 1);
        devices["bmc" + std::to_string(i + 1)] = device_json(*bmcs[i], node, n > 1, isolate);
        nodes[node] = {{"levels", {{"bmc" + std::to_string(i + 1)}}}, {"action", "reboot"}};
    }
    nlohmann::json cfg = {{"version", 1},
                          {"concurrency", std::max<size_t>(n, 1)},
                          {"escalation", {{"max_loops", 1}, {"retry_delay", 0}}},
                          {"devices", devices},
                          {"nodes", nodes}};
    fs::path p = dir / name;
    FILE *f = std::fopen(p.c_str(), "w");
    std::fputs(cfg.dump(2).c_str(), f);
    std::fclose(f);
    ::chmod(p.c_str(), 0600);
    return p.string();
}

std::vector<std::string> fence_ipmilan(const SimBmc &b, const char *action)
{
    return {"fence_ipmilan", "-a", b.address(), "-u", std::to_string(b.port()), "-l", kUser, "-p", kPass,
            "--lanplus", "-C", "3", "-o", action};
}
std::vector<std::string> ipmitool(const SimBmc &b, const std::string &pwfile, const char *op)
{
    return {"ipmitool", "-I", "lanplus", "-C", "3", "-H", b.address(), "-p", std::to_string(b.port()), "-U", kUser,
            "-f", pwfile, "chassis", "power", op};
}
std::vector<std::string> ipmipower(const std::string &hosts, const char *op, size_t fanout = 0)
{
    std::vector<std::string> v{"ipmipower", "-D", "LAN_2_0", "-h", hosts, "-u", kUser, "-p", kPass, "-W", "opensesspriv", op};
    if (fanout > 1) {
        v.insert(v.end(), {"-F", std::to_string(fanout), "--session-timeout=" + std::to_string(kManySessionMs),
                           "--retransmission-timeout=" + std::to_string(kManyRetransmitMs)});
    }
    return v;
}

// One row of the closing "against issue 14's targets" table.
struct Target {
    std::string what, result, target;
    bool met = false;
    std::string floor = "-"; // the same ratio for the least any process-per-operation program pays
};

struct Args {
    int runs = 7;
    int reboot_runs = 3;
    std::vector<size_t> counts{1, 16, 64, 256};
    std::string stockade;
    bool single = true;
    std::vector<size_t> fence_counts{16, 64};
    bool hold = false; // start the BMCs, write the configs, print their paths, wait for EOF on stdin (profiling)
};

} // namespace

int main(int argc, char **argv)
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (k == "--runs")
            a.runs = std::atoi(next().c_str());
        else if (k == "--reboot-runs")
            a.reboot_runs = std::atoi(next().c_str());
        else if (k == "--many-only")
            a.single = false;
        else if (k == "--hold")
            a.hold = true;
        else if (k == "--stockade")
            a.stockade = next();
        else if (k == "--counts") {
            a.counts.clear();
            std::stringstream ss(next());
            std::string x;
            while (std::getline(ss, x, ','))
                a.counts.push_back(std::stoul(x));
        } else if (k == "--fence-counts") {
            a.fence_counts.clear();
            std::stringstream ss(next());
            std::string x;
            while (std::getline(ss, x, ','))
                a.fence_counts.push_back(std::stoul(x));
        } else {
            std::fprintf(stderr, "usage: ipmi_bench --stockade PATH [--runs N] [--reboot-runs N] [--counts 1,16,64,256] [--fence-counts 16,64]\n");
            return 2;
        }
    }
    // Like every front-end: in-process isolated sessions (the escalation rows) fork from this.
    (void)start_fork_template();
    if (a.stockade.empty()) {
        std::fprintf(stderr, "ipmi_bench: --stockade PATH is required\n");
        return 2;
    }
    if (auto why = sim_unavailable_reason()) {
        std::fprintf(stderr, "ipmi_bench: %s\n", why->c_str());
        return 1;
    }
    char tmpl[] = "/tmp/stockade-ipmi-bench-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    size_t max_n = *std::max_element(a.counts.begin(), a.counts.end());
    for (size_t n : a.fence_counts)
        max_n = std::max(max_n, n);
    g_out_file = (dir / "stdout.txt").string();
    const std::string bare = (fs::absolute(argv[0]).parent_path() / "bare_ipmi").string();
    const std::string bare_cxx = bare + "_cxx"; // the same program with libstdc++ loaded
    std::vector<Target> summary;
    std::fprintf(stderr, "starting %zu ipmi_sim BMCs...\n", max_n);
    auto t_start = Clock::now();
    std::vector<std::unique_ptr<SimBmc>> bmcs;
    int rc = 0;
    try {
        for (size_t i = 0; i < std::max<size_t>(max_n, 1); ++i)
        {
            SimBmcOptions o;
            o.console = false;
            bmcs.push_back(SimBmc::start(dir, o));
        }
        std::fprintf(stderr, "  %zu BMCs up in %.1f s\n", bmcs.size(), since_ms(t_start) / 1000);
        SimBmc &b = *bmcs[0];
        const std::string pwfile = (dir / "ipmitool.pw").string();
        {
            FILE *f = std::fopen(pwfile.c_str(), "w");
            std::fprintf(f, "%s\n", kPass);
            std::fclose(f);
            ::chmod(pwfile.c_str(), 0600);
        }
        const std::string cfg1 = write_config(dir, bmcs, 1, "one.json");
        if (a.hold) {
            for (size_t n : a.counts) {
                std::printf("%s\n", write_config(dir, bmcs, n, "n" + std::to_string(n) + ".json").c_str());
                std::printf("%s\n", write_config(dir, bmcs, n, "n" + std::to_string(n) + "-noiso.json", false).c_str());
            }
            std::fflush(stdout);
            while (std::getchar() != EOF) {
            }
            bmcs.clear();
            fs::remove_all(dir);
            return 0;
        }

        AgentRegistry reg;
        auto agent = reg.find("ipmi");
        if (!agent) {
            std::fprintf(stderr, "ipmi_bench: %s\n", agent.error().message.c_str());
            return 1;
        }
        auto params = resolve_params(**agent, {{"ip", b.address()}, {"ipport", std::to_string(b.port())},
                                               {"username", kUser}, {"password", kPass},
                                               {"workarounds", "opensesspriv"}, {"hostlist", "node1"}},
                                     UnknownParams::Reject);
        SessionOptions so;
        so.isolate = false;
        auto lib = make_session(**agent, so);
        if (!lib->open(*params, std::chrono::seconds(10)).ok()) {
            std::fprintf(stderr, "ipmi_bench: cannot open the ipmi agent in-process\n");
            return 1;
        }

        // ---- single BMC --------------------------------------------------------------------
        if (a.single) {
        std::map<std::string, std::map<std::string, Cell>> table; // op -> tool -> cell
        auto ext = [&](const std::string &op, const std::string &tool, const std::vector<std::string> &cmd, int runs,
                       const std::function<void()> &before, const std::function<bool(const Run &)> &check) {
            Cell &c = table[op][tool];
            for (int i = 0; i < runs; ++i) {
                if (before)
                    before();
                Run r = run_cmd(cmd);
                c.ms.push_back(r.ms);
                if (!check(r))
                    ++c.failures;
            }
            if (before)
                before();
            c.maxrss_kb = peak_rss_kb(cmd);
        };
        auto libcall = [&](const std::string &op, int runs, const std::function<void()> &before,
                           const std::function<bool()> &call) {
            Cell &c = table[op]["stockade library"];
            for (int i = 0; i < runs; ++i) {
                if (before)
                    before();
                auto t0 = Clock::now();
                bool ok = call();
                c.ms.push_back(since_ms(t0));
                if (!ok)
                    ++c.failures;
            }
        };
        auto node_on = [&] { b.set_node_power(true); };
        auto node_dead = [&] { return !b.node_alive(); };
        const std::string sk = a.stockade;

        std::fprintf(stderr, "single BMC: status...\n");
        node_on();
        ext("status", "stockade CLI", {sk, "--config", cfg1, "-q", "status", "node1"}, a.runs, nullptr,
            [](const Run &r) { return r.exit_code == 0; });
        libcall("status", a.runs, nullptr, [&] {
            auto r = lib->status("node1", std::chrono::seconds(10));
            return r.ok() && r.power_state == STOCKADE_POWER_ON;
        });
        {
            Cell &c = table["status"]["bare libfreeipmi"];
            for (int i = 0; i < a.runs; ++i) {
                auto t0 = Clock::now();
                bool ok = bare_status(b);
                c.ms.push_back(since_ms(t0));
                c.failures += !ok;
            }
        }
        ext("status", "fence_ipmilan -C 3", fence_ipmilan(b, "status"), a.runs, nullptr,
            [](const Run &r) { return r.exit_code == 0; });
        ext("status", "ipmitool -C 3", ipmitool(b, pwfile, "status"), a.runs, nullptr,
            [](const Run &r) { return r.exit_code == 0; });
        ext("status", "ipmipower", ipmipower(b.endpoint(), "--stat"), a.runs, nullptr,
            [](const Run &r) { return r.exit_code == 0; });

        std::fprintf(stderr, "single BMC: off...\n");
        ext("off", "stockade CLI", {sk, "--config", cfg1, "-q", "fence", "node1", "--action", "off"}, a.runs, node_on,
            [&](const Run &r) { return r.exit_code == 0 && node_dead(); });
        libcall("off", a.runs, node_on, [&] {
            auto r = lib->power(PowerAction::Off, "node1", std::chrono::seconds(30));
            return r.ok() && node_dead();
        });
        ext("off", "fence_ipmilan -C 3", fence_ipmilan(b, "off"), a.runs, node_on,
            [&](const Run &r) { return r.exit_code == 0 && node_dead(); });
        ext("off", "ipmitool -C 3", ipmitool(b, pwfile, "off"), a.runs, node_on,
            [&](const Run &r) { return r.exit_code == 0 && node_dead(); });
        ext("off", "ipmipower", ipmipower(b.endpoint(), "--off"), a.runs, node_on,
            [&](const Run &r) { return r.exit_code == 0 && node_dead(); });

        std::fprintf(stderr, "single BMC: reboot...\n");
        pid_t before_pid = 0;
        auto mark = [&] {
            node_on();
            before_pid = b.node_pid();
        };
        auto rebooted = [&] { return b.node_alive() && b.node_pid() != before_pid; };
        ext("reboot", "stockade CLI", {sk, "--config", cfg1, "-q", "fence", "node1", "--action", "reboot"},
            a.reboot_runs, mark, [&](const Run &r) { return r.exit_code == 0 && rebooted(); });
        libcall("reboot", a.reboot_runs, mark, [&] {
            auto r = lib->power(PowerAction::Reboot, "node1", std::chrono::seconds(30));
            return r.ok() && rebooted();
        });
        ext("reboot", "fence_ipmilan -C 3", fence_ipmilan(b, "reboot"), a.reboot_runs, mark,
            [&](const Run &r) { return r.exit_code == 0 && rebooted(); });
        // ipmitool and ipmipower: one unconfirmed reset command (they have no verified reboot).
        ext("reboot", "ipmitool -C 3", ipmitool(b, pwfile, "reset"), a.reboot_runs, mark,
            [&](const Run &r) { return r.exit_code == 0; });
        ext("reboot", "ipmipower", ipmipower(b.endpoint(), "--reset"), a.reboot_runs, mark,
            [&](const Run &r) { return r.exit_code == 0; });
        lib->close();
        node_on();

        const std::vector<std::string> tools{"stockade CLI",       "stockade library", "bare libfreeipmi",
                                             "fence_ipmilan -C 3", "ipmitool -C 3",    "ipmipower"};
        std::printf("### One BMC: median wall time (%d runs; reboot %d runs)\n\n", a.runs, a.reboot_runs);
        std::printf("| operation |");
        for (const auto &t : tools)
            std::printf(" %s |", t.c_str());
        std::printf(" fence_ipmilan / stockade CLI | fence_ipmilan / stockade library | stockade library / bare libfreeipmi |\n|---|");
        for (size_t i = 0; i < tools.size() + 3; ++i)
            std::printf("---|");
        std::printf("\n");
        for (const char *op : {"status", "off", "reboot"}) {
            auto &row = table[op];
            std::printf("| %s |", op);
            for (const auto &t : tools)
                std::printf(" %s |", fmt_ms(row[t]).c_str());
            std::printf(" %s | %s | %s |\n", ratio(row["fence_ipmilan -C 3"], row["stockade CLI"]).c_str(),
                        ratio(row["fence_ipmilan -C 3"], row["stockade library"]).c_str(),
                        std::string(op) == "status" ? ratio(row["stockade library"], row["bare libfreeipmi"]).c_str() : "-");
        }
        std::printf("\noff and reboot of stockade and fence_ipmilan are confirmed (status read back; the bench also "
                    "checks the node process). ipmitool/ipmipower off and reset are single unconfirmed commands.\n\n");

        std::printf("### Peak RSS of one call (max over the runs, with children)\n\n| tool | status | off | reboot |\n|---|---|---|---|\n");
        for (const auto &t : {"stockade CLI", "fence_ipmilan -C 3", "ipmitool -C 3", "ipmipower"}) {
            std::printf("| %s |", t);
            for (const char *op : {"status", "off", "reboot"})
                std::printf(" %.1f MB |", double(table[op][t].maxrss_kb) / 1024.0);
            std::printf("\n");
        }
        std::printf("\n");
        }

        // ---- many BMCs at once -----------------------------------------------------------------
        std::printf("### Status of N BMCs at once (median of %d runs for N <= 16, %d up to 64, %d above; fence_ipmilan loop: 1 run; N > 1: stockade and ipmipower "
                    "both with 10 s session / 1.5 s resend timeouts; the CLI and ipmipower runs interleaved)\n\n", std::max(a.runs * 2, 3), std::max(a.runs, 3), std::min(a.runs, 3));
        std::printf("| N | stockade status (CLI, concurrency N) | stockade CLI, agent host exec'd per device "
                    "(STOCKADE_FORK_SERVER=0) | stockade CLI, devices isolate=false | stockade runner in-process | "
                    "ipmipower host list (fanout N) | loop of fence_ipmilan | stockade CLI / ipmipower | "
                    "exec per device / ipmipower | CLI isolate=false / ipmipower | runner in-process / ipmipower | "
                    "loop / stockade CLI | stockade CLI peak RSS | ipmipower peak RSS | bare libfreeipmi, a fork per BMC "
                    "| fork per BMC / ipmipower |\n"
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (size_t n : a.counts) {
            std::fprintf(stderr, "status of %zu BMCs...\n", n);
            const std::string cfg = write_config(dir, bmcs, n, "n" + std::to_string(n) + ".json");
            Cell cli, cli_exec, cli_noiso, inproc, ipp, loop, forks;
            // Short runs get more samples (a 16-BMC status takes ~40 ms; three samples of it were
            // at the mercy of one busy moment), and the CLI and ipmipower runs are interleaved so
            // both see the same machine.
            const int runs = n <= 16 ? std::max(a.runs * 2, 3) : n <= 64 ? std::max(a.runs, 3) : std::min(a.runs, 3);
            std::string hosts;
            for (size_t i = 0; i < n; ++i)
                hosts += (i ? "," : "") + bmcs[i]->endpoint();
            auto ipp_run = [&] {
                Run r = run_cmd(ipmipower(hosts, "--stat", std::max<size_t>(n, 1)));
                ipp.ms.push_back(r.ms);
                ipp.failures += r.exit_code != 0 || count_lines(r.out, ": on") != n;
            };
            const std::string cfg_noiso = write_config(dir, bmcs, n, "n" + std::to_string(n) + "-noiso.json", false);
            // Every answer checked: exit 0 and one "nodeK: on (...)" line per node.
            auto cli_run = [&](Cell &c, const std::string &config) {
                Run r = run_cmd({a.stockade, "--config", config, "-q", "status"});
                c.ms.push_back(r.ms);
                c.failures += r.exit_code != 0 || count_lines(r.out, ": on (") != n;
            };
            // The floor of isolation: bare libfreeipmi, each BMC's session in a child forked for it.
            std::vector<std::string> forks_cmd{bare, "status", "--fork", kUser, pwfile, std::to_string(kManySessionMs),
                                               std::to_string(kManyRetransmitMs)};
            for (size_t i = 0; i < n; ++i)
                forks_cmd.push_back(bmcs[i]->endpoint());
            auto forks_run = [&] {
                Run r = run_cmd(forks_cmd);
                forks.ms.push_back(r.ms);
                forks.failures += r.exit_code != 0 || (n == 1 ? r.out != "on\n" : count_lines(r.out, ": on") != n);
            };
            for (int i = 0; i < runs; ++i) {
                cli_run(cli, cfg);
                ipp_run();
                forks_run();
                ::setenv("STOCKADE_FORK_SERVER", "0", 1); // the agent host exec'd per device, as before
                cli_run(cli_exec, cfg);
                ::unsetenv("STOCKADE_FORK_SERVER");
                cli_run(cli_noiso, cfg_noiso);
            }
            cli.maxrss_kb = peak_rss_kb({a.stockade, "--config", cfg, "-q", "status"});
            {
                auto parsed = stockade::load_config(cfg);
                if (parsed) {
                    for (auto &[name, dev] : parsed->devices)
                        dev.isolate = false;
                    EscalationRunner runner(*parsed, reg, Logger::null());
                    for (int i = 0; i < runs; ++i) {
                        auto t0 = Clock::now();
                        auto reps = runner.status_all();
                        inproc.ms.push_back(since_ms(t0));
                        for (auto &rep : reps)
                            if (rep.power_state != STOCKADE_POWER_ON) {
                                if (!inproc.failures)
                                    std::fprintf(stderr, "  in-process %s: %s\n", rep.node.c_str(), rep.reason.c_str());
                                ++inproc.failures;
                            }
                    }
                }
            }
            ipp.maxrss_kb = peak_rss_kb(ipmipower(hosts, "--stat", std::max<size_t>(n, 1)));
            {
                auto t0 = Clock::now();
                for (size_t i = 0; i < n; ++i) {
                    Run r = run_cmd(fence_ipmilan(*bmcs[i], "status"));
                    loop.failures += r.exit_code != 0;
                }
                loop.ms.push_back(since_ms(t0));
            }
            std::printf("| %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f MB | %.1f MB | %s | %s |\n", n,
                        fmt_ms(cli).c_str(), fmt_ms(cli_exec).c_str(), fmt_ms(cli_noiso).c_str(), fmt_ms(inproc).c_str(),
                        fmt_ms(ipp).c_str(), fmt_ms(loop).c_str(), ratio(cli, ipp).c_str(), ratio(cli_exec, ipp).c_str(),
                        ratio(cli_noiso, ipp).c_str(), ratio(inproc, ipp).c_str(), ratio(loop, cli).c_str(),
                        double(cli.maxrss_kb) / 1024.0, double(ipp.maxrss_kb) / 1024.0, fmt_ms(forks).c_str(),
                        ratio(forks, ipp).c_str());
            summary.push_back({"status of " + std::to_string(n) + " BMCs: CLI / ipmipower", ratio(cli, ipp), "<= 1.00x",
                               cli.med() <= ipp.med() && !cli.failures, ratio(forks, ipp) + " (bare, a fork per BMC)"});
            std::fflush(stdout);
        }
        if (a.single) {
            // ---- one status, whole processes: the CLI vs a bare libfreeipmi program ----------------
            std::fprintf(stderr, "single status, whole process...\n");
            const std::string cfg_t = write_config(dir, bmcs, 1, "one-timeouts.json"); // same timeouts as bare_ipmi
            const std::string cfg_t_noiso = write_config(dir, bmcs, 1, "one-timeouts-noiso.json", false);
            const int runs = std::max(a.runs * 3, 9);
            Cell cli, cli_noiso, bare_p, bare_cxx_p, bare_cxx_fork;
            const std::vector<std::string> bare_args{"status", kUser, pwfile, std::to_string(kManySessionMs),
                                                     std::to_string(kManyRetransmitMs), b.endpoint()};
            auto bare_run = [&](Cell &c, const std::string &program, bool fork) {
                std::vector<std::string> cmd{program};
                cmd.insert(cmd.end(), bare_args.begin(), bare_args.end());
                if (fork)
                    cmd.insert(cmd.begin() + 2, "--fork");
                Run r = run_cmd(cmd);
                c.ms.push_back(r.ms);
                c.failures += r.exit_code != 0 || r.out != "on\n";
            };
            for (int i = 0; i < runs; ++i) { // interleaved, so drift in the machine's load hits all of them
                for (auto [c, config] : {std::pair{&cli, &cfg_t}, std::pair{&cli_noiso, &cfg_t_noiso}}) {
                    Run r = run_cmd({a.stockade, "--config", *config, "-q", "status", "node1"});
                    c->ms.push_back(r.ms);
                    c->failures += r.exit_code != 0 || count_lines(r.out, "node1: on (") != 1;
                }
                bare_run(bare_p, bare, false);
                bare_run(bare_cxx_p, bare_cxx, false);
                bare_run(bare_cxx_fork, bare_cxx, true);
            }
            cli.maxrss_kb = peak_rss_kb({a.stockade, "--config", cfg_t, "-q", "status", "node1"});
            cli_noiso.maxrss_kb = peak_rss_kb({a.stockade, "--config", cfg_t_noiso, "-q", "status", "node1"});
            bare_p.maxrss_kb = peak_rss_kb({bare, "status", kUser, pwfile, std::to_string(kManySessionMs),
                                            std::to_string(kManyRetransmitMs), b.endpoint()});
            std::printf("\n### One status as a whole process (median of %d runs, interleaved; 10 s session / 1.5 s "
                        "resend for both)\n\n| program | time | peak RSS | / bare libfreeipmi process |\n|---|---|---|---|\n"
                        "| stockade CLI (isolated agent, forked from the template) | %s | %.1f MB | %s |\n"
                        "| stockade CLI, device isolate=false | %s | %.1f MB | %s |\n"
                        "| bare libfreeipmi process (bench/bare_ipmi.c) | %s | %.1f MB | 1.00x |\n"
                        "| the same with libstdc++ loaded (bare_ipmi_cxx: what any C++ program pays) | %s | - | %s |\n"
                        "| the same, its session in a forked child (bare_ipmi_cxx --fork: the least isolation costs) | %s | - | %s |\n",
                        runs, fmt_ms(cli).c_str(), double(cli.maxrss_kb) / 1024.0, ratio(cli, bare_p).c_str(),
                        fmt_ms(cli_noiso).c_str(), double(cli_noiso.maxrss_kb) / 1024.0, ratio(cli_noiso, bare_p).c_str(),
                        fmt_ms(bare_p).c_str(), double(bare_p.maxrss_kb) / 1024.0, fmt_ms(bare_cxx_p).c_str(),
                        ratio(bare_cxx_p, bare_p).c_str(), fmt_ms(bare_cxx_fork).c_str(), ratio(bare_cxx_fork, bare_p).c_str());
            std::fflush(stdout);
            summary.push_back({"one status, CLI / bare libfreeipmi process", ratio(cli, bare_p), "<= 1.15x",
                               cli.med() <= 1.15 * bare_p.med() && !cli.failures,
                               ratio(bare_cxx_fork, bare_p) + " (bare with libstdc++, its session forked)"});
        }

        // ---- fence N nodes at once (each its own BMC): the CLI vs a threaded bare program ----------
        if (!a.fence_counts.empty()) {
            std::printf("\n### Fence N nodes at once, off confirmed (median of %d runs up to 64 nodes, 3 above; 10 s session / 1.5 s resend for "
                        "both, interleaved; every node checked gone after every run)\n\n| N | stockade fence (CLI, concurrency N) | "
                        "threaded bare libfreeipmi (off + confirm) | CLI / bare | bare, a fork per node | fork per node / threaded bare | "
                        "stockade CLI peak RSS |\n|---|---|---|---|---|---|---|\n",
                        std::max(a.runs, 3));
        }
        for (size_t n : a.fence_counts) {
            std::fprintf(stderr, "fence of %zu nodes...\n", n);
            const std::string cfg = write_config(dir, bmcs, n, "fence" + std::to_string(n) + ".json");
            std::vector<std::string> fence_cmd{a.stockade, "--config", cfg, "-q", "fence", "--action", "off"};
            std::vector<std::string> bare_cmd{bare, "off", kUser, pwfile, std::to_string(kManySessionMs),
                                              std::to_string(kManyRetransmitMs)};
            for (size_t i = 0; i < n; ++i) {
                fence_cmd.push_back("node" + std::to_string(i + 1));
                bare_cmd.push_back(bmcs[i]->endpoint());
            }
            auto all_on = [&] {
                for (size_t i = 0; i < n; ++i)
                    bmcs[i]->set_node_power(true);
            };
            auto all_dead = [&] {
                for (size_t i = 0; i < n; ++i)
                    if (bmcs[i]->node_alive())
                        return false;
                return true;
            };
            Cell cli, bare_f, bare_forks;
            std::vector<std::string> forks_cmd = bare_cmd;
            forks_cmd.insert(forks_cmd.begin() + 2, "--fork");
            for (int i = 0; i < (n <= 64 ? std::max(a.runs, 3) : 3); ++i) {
                all_on();
                Run r = run_cmd(fence_cmd);
                cli.ms.push_back(r.ms);
                cli.failures += r.exit_code != 0 || !all_dead();
                all_on();
                r = run_cmd(bare_cmd);
                bare_f.ms.push_back(r.ms);
                bare_f.failures += r.exit_code != 0 || count_lines(r.out, ": off") != n || !all_dead();
                all_on();
                r = run_cmd(forks_cmd);
                bare_forks.ms.push_back(r.ms);
                bare_forks.failures += r.exit_code != 0 || count_lines(r.out, ": off") != n || !all_dead();
            }
            all_on();
            cli.maxrss_kb = peak_rss_kb(fence_cmd);
            all_on();
            std::printf("| %zu | %s | %s | %s | %s | %s | %.1f MB |\n", n, fmt_ms(cli).c_str(), fmt_ms(bare_f).c_str(),
                        ratio(cli, bare_f).c_str(), fmt_ms(bare_forks).c_str(), ratio(bare_forks, bare_f).c_str(),
                        double(cli.maxrss_kb) / 1024.0);
            std::fflush(stdout);
            summary.push_back({"fence " + std::to_string(n) + " nodes at once: CLI / threaded bare", ratio(cli, bare_f),
                               "<= 1.20x", cli.med() <= 1.2 * bare_f.med() && !cli.failures,
                               ratio(bare_forks, bare_f) + " (bare, a fork per node)"});
        }

        // ---- escalation overhead: 10 levels that fail at once, then a working 11th ----------------
        {
            std::fprintf(stderr, "escalation overhead...\n");
            const std::string state = (dir / "sim-state").string();
            nlohmann::json devices = nlohmann::json::object(), levels = nlohmann::json::array();
            for (int i = 1; i <= 10; ++i) {
                devices["dead" + std::to_string(i)] = {{"agent", "sim"}, {"params", {{"state_dir", state}, {"reachable", "0"}}}};
                levels.push_back({"dead" + std::to_string(i)});
            }
            devices["good"] = {{"agent", "sim"}, {"params", {{"state_dir", state}}}};
            levels.push_back({"good"});
            nlohmann::json cfg = {{"version", 1},
                                  {"escalation", {{"max_loops", 1}, {"retry_delay", 0}}},
                                  {"devices", devices},
                                  {"nodes", {{"eleven", {{"levels", levels}, {"action", "off"}}},
                                             {"alone", {{"levels", {{"good"}}}, {"action", "off"}}}}}};
            const std::string path = (dir / "escalation.json").string();
            {
                FILE *f = std::fopen(path.c_str(), "w");
                std::fputs(cfg.dump(2).c_str(), f);
                std::fclose(f);
            }
            const int runs = std::max(a.runs * 3, 9);
            Cell eleven, alone, eleven_lib, alone_lib;
            for (int i = 0; i < runs; ++i) {
                for (auto [c, node] : {std::pair{&eleven, "eleven"}, std::pair{&alone, "alone"}}) {
                    Run r = run_cmd({a.stockade, "--config", path, "--json", "fence", node});
                    c->ms.push_back(r.ms);
                    // fenced, and (for "eleven") by level 11 after ten failed levels
                    c->failures += r.exit_code != 0 || r.out.find("\"level\": " + std::string(c == &eleven ? "11" : "1") + ",") ==
                                                           std::string::npos;
                }
            }
            if (auto parsed = stockade::load_config(path)) {
                EscalationRunner runner(*parsed, reg, Logger::null());
                for (int i = 0; i < runs; ++i)
                    for (auto [c, node, level] : {std::tuple{&eleven_lib, "eleven", 11u}, std::tuple{&alone_lib, "alone", 1u}}) {
                        auto t0 = Clock::now();
                        FenceReport rep = runner.fence(node);
                        c->ms.push_back(since_ms(t0));
                        c->failures += !rep.success || rep.level != level;
                    }
            }
            auto per_level = [](const Cell &with, const Cell &without) {
                return (with.med() - without.med()) / 10.0;
            };
            std::printf("\n### Escalation overhead: 10 levels of `sim` devices with reachable=0, then a working 11th "
                        "(median of %d runs; isolated sessions)\n\n| runs through | 11 levels | the 11th level alone | "
                        "overhead per failed level |\n|---|---|---|---|\n"
                        "| stockade CLI (`stockade fence`) | %s | %s | %.2f ms |\n"
                        "| runner in-process (EscalationRunner::fence, bench process's template) | %s | %s | %.2f ms |\n",
                        runs, fmt_ms(eleven).c_str(), fmt_ms(alone).c_str(), per_level(eleven, alone),
                        fmt_ms(eleven_lib).c_str(), fmt_ms(alone_lib).c_str(), per_level(eleven_lib, alone_lib));
            std::fflush(stdout);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.2f ms (runner %.2f ms)", per_level(eleven, alone),
                          per_level(eleven_lib, alone_lib));
            summary.push_back({"escalation overhead per failed level (CLI)", buf, "< 1 ms",
                               per_level(eleven, alone) < 1.0 && !eleven.failures && !alone.failures});
        }

        std::printf("\n### Against issue 14's targets (this run)\n\n\"floor\": the same ratio for bench/bare_ipmi.c "
                    "run with one process per operation, as stockade's isolation runs it (nothing else of stockade's).\n\n"
                    "| measure | result | target | met? | floor |\n|---|---|---|---|---|\n");
        for (const auto &t : summary)
            std::printf("| %s | %s | %s | %s | %s |\n", t.what.c_str(), t.result.c_str(), t.target.c_str(),
                        t.met ? "yes" : "**no**", t.floor.c_str());

        rusage self{};
        getrusage(RUSAGE_SELF, &self);
        std::printf("\nbench process (fixture + in-process agent calls) peak RSS: %.1f MB\n", double(self.ru_maxrss) / 1024.0);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "ipmi_bench: %s\n", e.what());
        rc = 1;
    }
    bmcs.clear(); // stops every ipmi_sim and node by PID
    std::error_code ec;
    fs::remove_all(dir, ec);
    return rc;
}
