// ipmi_bench.cpp -- measures the ipmi agent against the tools people use today, in one run,
// against real ipmi_sim BMCs on 127.0.0.1 (started here, stopped by PID at the end).
//
// Single BMC: status, off and reboot through `stockade` (CLI, and the library in-process), a bare
// libfreeipmi session (the floor), fence_ipmilan -C 3, ipmitool -C 3 and ipmipower -W opensesspriv.
// Many BMCs: status of N BMCs at once through `stockade status` and the runner, vs ipmipower with a
// host list and a loop of fence_ipmilan.  Prints medians, ratios and peak RSS as a Markdown table.
// Not a test: numbers depend on the machine; the point is that every column comes from this run.
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
    long maxrss_kb = 0;
    int exit_code = -1;
};

// Runs a command with stdout/stderr discarded; wall time, exit code and peak RSS (with children).
Run run_cmd(const std::vector<std::string> &argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
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
    rusage ru{};
    wait4(pid, &st, 0, &ru);
    r.ms = since_ms(t0);
    r.maxrss_kb = ru.ru_maxrss;
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
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

nlohmann::json device_json(const SimBmc &b, const std::string &node, bool many)
{
    nlohmann::json p = {{"ip", b.address()},         {"ipport", b.port()},     {"username", kUser},
                        {"password", kPass},         {"workarounds", "opensesspriv"}, {"hostlist", node}};
    if (many) {
        p["session_timeout"] = kManySessionMs;
        p["retransmission_timeout"] = kManyRetransmitMs;
    }
    return {{"agent", "ipmi"}, {"timeout", 60}, {"params", p}};
}

std::string write_config(const fs::path &dir, std::vector<std::unique_ptr<SimBmc>> &bmcs, size_t n,
                         const std::string &name, bool isolate = true)
{
    nlohmann::json devices = nlohmann::json::object(), nodes = nlohmann::json::object();
    for (size_t i = 0; i < n; ++i) {
        std::string node = "node" + std::to_string(i + 1);
        devices["bmc" + std::to_string(i + 1)] = device_json(*bmcs[i], node, n > 1);
        if (!isolate)
            devices["bmc" + std::to_string(i + 1)]["isolate"] = false;
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

struct Args {
    int runs = 7;
    int reboot_runs = 3;
    std::vector<size_t> counts{1, 16, 64, 256};
    std::string stockade;
    bool single = true;
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
        } else {
            std::fprintf(stderr, "usage: ipmi_bench --stockade PATH [--runs N] [--reboot-runs N] [--counts 1,16,64,256]\n");
            return 2;
        }
    }
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
    const size_t max_n = *std::max_element(a.counts.begin(), a.counts.end());
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
                c.maxrss_kb = std::max(c.maxrss_kb, r.maxrss_kb);
                if (!check(r))
                    ++c.failures;
            }
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
        std::printf("### Status of N BMCs at once (median of %d runs; fence_ipmilan loop: 1 run; N > 1: stockade and ipmipower "
                    "both with 10 s session / 1.5 s resend timeouts)\n\n", std::min(a.runs, 3));
        std::printf("| N | stockade status (CLI, concurrency N) | stockade CLI, agent host exec'd per device "
                    "(STOCKADE_FORK_SERVER=0) | stockade CLI, devices isolate=false | stockade runner in-process | "
                    "ipmipower host list (fanout N) | loop of fence_ipmilan | stockade CLI / ipmipower | "
                    "exec per device / ipmipower | CLI isolate=false / ipmipower | runner in-process / ipmipower | "
                    "loop / stockade CLI | stockade CLI peak RSS |\n"
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (size_t n : a.counts) {
            std::fprintf(stderr, "status of %zu BMCs...\n", n);
            const std::string cfg = write_config(dir, bmcs, n, "n" + std::to_string(n) + ".json");
            int runs = std::min(a.runs, 3);
            const std::string cfg_noiso = write_config(dir, bmcs, n, "n" + std::to_string(n) + "-noiso.json", false);
            Cell cli, cli_exec, cli_noiso, inproc, ipp, loop;
            for (int i = 0; i < runs; ++i) {
                Run r = run_cmd({a.stockade, "--config", cfg, "-q", "status"});
                cli.ms.push_back(r.ms);
                cli.maxrss_kb = std::max(cli.maxrss_kb, r.maxrss_kb);
                cli.failures += r.exit_code != 0;
                ::setenv("STOCKADE_FORK_SERVER", "0", 1); // the agent host exec'd per device, as before
                r = run_cmd({a.stockade, "--config", cfg, "-q", "status"});
                ::unsetenv("STOCKADE_FORK_SERVER");
                cli_exec.ms.push_back(r.ms);
                cli_exec.maxrss_kb = std::max(cli_exec.maxrss_kb, r.maxrss_kb);
                cli_exec.failures += r.exit_code != 0;
                r = run_cmd({a.stockade, "--config", cfg_noiso, "-q", "status"});
                cli_noiso.ms.push_back(r.ms);
                cli_noiso.maxrss_kb = std::max(cli_noiso.maxrss_kb, r.maxrss_kb);
                cli_noiso.failures += r.exit_code != 0;
            }
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
            std::string hosts;
            for (size_t i = 0; i < n; ++i)
                hosts += (i ? "," : "") + bmcs[i]->endpoint();
            for (int i = 0; i < runs; ++i) {
                Run r = run_cmd(ipmipower(hosts, "--stat", std::max<size_t>(n, 1)));
                ipp.ms.push_back(r.ms);
                ipp.failures += r.exit_code != 0;
            }
            {
                auto t0 = Clock::now();
                for (size_t i = 0; i < n; ++i) {
                    Run r = run_cmd(fence_ipmilan(*bmcs[i], "status"));
                    loop.failures += r.exit_code != 0;
                }
                loop.ms.push_back(since_ms(t0));
            }
            std::printf("| %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f MB |\n", n, fmt_ms(cli).c_str(),
                        fmt_ms(cli_exec).c_str(), fmt_ms(cli_noiso).c_str(), fmt_ms(inproc).c_str(), fmt_ms(ipp).c_str(),
                        fmt_ms(loop).c_str(), ratio(cli, ipp).c_str(), ratio(cli_exec, ipp).c_str(),
                        ratio(cli_noiso, ipp).c_str(), ratio(inproc, ipp).c_str(), ratio(loop, cli).c_str(),
                        double(cli.maxrss_kb) / 1024.0);
            std::fflush(stdout);
        }
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
