// redfish_bench.cpp -- stockade's redfish agent against fence-agents' fence_redfish, in one run, on
// the Redfish test service (agents/redfish/tests/redfish_service.py, HTTPS on 127.0.0.1, verified
// TLS for both: fence_redfish gets the test CA through REQUESTS_CA_BUNDLE).
//
// Measured: status, off, on and reboot of one BMC through fence_stockade_redfish (the drop-in: a
// new process per action, as Pacemaker runs it), through the agent in-process (library floor) and
// through fence_redfish with its defaults; then N BMCs at once (stockade status/fence of N nodes
// in one CLI run vs N fence_redfish processes started together).  Every off/on/reboot is verified
// from the node process (off: the node is gone; on: a node runs; reboot: a new node runs), and a
// run that fails verification counts as failed.  Peak RSS is wait4()'s ru_maxrss of the command
// (the largest process of its tree).  Credentials travel on stdin, never argv.
//
//   redfish_bench --stockade-bin DIR [--runs N] [--bmcs N] [--transition-ms MS]
// --transition-ms makes the service report PoweringOff/PoweringOn that long, as a real BMC does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <regex>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "redfish_service_fixture.hpp"
#include "bench_stats.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"

extern char **environ;

using namespace stockade;
using namespace stockade::test;
using namespace stockade::bench;
namespace fs = std::filesystem;

namespace {

struct Run {
    double ms = 0;
    long maxrss_kb = 0;
    int exit_code = -1;
};

pid_t spawn_with_input(const std::vector<std::string> &argv, const std::string &input,
                       const std::vector<std::string> &extra_env)
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<char *> args;
    for (const auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store = extra_env;
    for (char **e = environ; *e; ++e)
        env_store.emplace_back(*e);
    std::vector<char *> envp;
    for (auto &e : env_store)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[0]);
    if (pid > 0 && !input.empty())
        (void)!::write(p[1], input.data(), input.size()); // far below the pipe's buffer
    ::close(p[1]);
    return pid;
}

Run finish(pid_t pid, Clock::time_point t0)
{
    Run r;
    int st = 0;
    rusage ru{};
    if (pid > 0 && wait4(pid, &st, 0, &ru) == pid) {
        r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        r.maxrss_kb = ru.ru_maxrss;
    }
    r.ms = since_ms(t0);
    return r;
}


std::string stdin_params(const RedfishService &s, const std::string &action, bool ours)
{
    std::string in = "ip=" + s.address() + "\nipport=" + std::to_string(s.port()) +
                     "\nusername=admin\npassword=secret\naction=" + action + "\n";
    if (ours)
        in += "ssl_ca_file=" + s.ca_file() + "\n";
    return in;
}

// Puts the node in the state an action starts from (untimed), and checks what it left.
struct Verify {
    std::function<void()> prepare;
    std::function<bool()> check;
};

Verify verify_for(RedfishService &s, const std::string &action)
{
    auto before = std::make_shared<pid_t>(0);
    if (action == "off")
        return {[&s] { s.set_power("1", true); }, [&s] { return !s.node_alive(); }};
    if (action == "on")
        return {[&s] { s.set_power("1", false); }, [&s] { return s.node_alive(); }};
    if (action == "reboot")
        return {[&s, before] {
                    s.set_power("1", true);
                    *before = s.node_pid();
                },
                [&s, before] { return s.node_alive() && s.node_pid() != *before && ::kill(*before, 0) != 0; }};
    return {[] {}, [] { return true; }};
}

void wait_settled(RedfishService &s)
{
    for (int i = 0; i < 300 && s.read_power_state("1").rfind("Powering", 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// One timed run of a command line (the node put in the action's start state first, untimed),
// added to `c` when its outcome checks out, else counted as failed.  True when fence_redfish
// reported "on" before the node ran (then counted, see below).
bool cli_run(RedfishService &s, const std::vector<std::string> &argv, const std::string &action, bool ours,
             const std::vector<std::string> &env, const Verify &v, Cell &c)
{
    bool early = false;
    v.prepare();
    wait_settled(s);
    auto t0 = Clock::now();
    Run r = finish(spawn_with_input(argv, stdin_params(s, action, ours), env), t0);
    bool ok = (action == "status" ? (r.exit_code == 0 || r.exit_code == 2) : r.exit_code == 0) && v.check();
    if (!ok && r.exit_code == 0 && !ours && action != "off") {
        // fence_redfish takes PoweringOn for "on": it may report success before the node runs.
        // Count its time, and say how often (off is never excused: that is the fence).
        for (int k = 0; k < 500 && !ok; ++k) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            ok = v.check();
        }
        early = ok;
    }
    if (!ok)
        ++c.failures;
    else
        c.ms.push_back(r.ms);
    c.maxrss_kb = std::max(c.maxrss_kb, r.maxrss_kb);
    return early;
}

// One timed run of the agent in-process (open, the action, close), added to `c` or counted failed.
void library_run(RedfishService &s, const std::string &action, const Verify &v, Cell &c)
{
    static AgentRegistry reg;
    auto agent = reg.find("redfish");
    if (!agent) {
        ++c.failures;
        return;
    }
    RawParams raw{{"ip", s.address()}, {"ipport", std::to_string(s.port())}, {"username", "admin"},
                  {"password", "secret"}, {"ssl_ca_file", s.ca_file()}};
    auto params = resolve_params(**agent, raw, UnknownParams::Reject);
    v.prepare();
    wait_settled(s);
    auto t0 = Clock::now();
    SessionOptions o;
    o.isolate = false;
    auto sess = make_session(**agent, o);
    OpResult r = sess->open(*params, std::chrono::seconds(10));
    if (r.ok())
        r = action == "status" ? sess->status("node1", std::chrono::seconds(10))
                               : sess->power(action == "off"  ? PowerAction::Off
                                             : action == "on" ? PowerAction::On
                                                              : PowerAction::Reboot,
                                             "node1", std::chrono::seconds(30));
    sess->close();
    const double ms = since_ms(t0);
    if (r.ok() && v.check())
        c.ms.push_back(ms);
    else
        ++c.failures;
}

// OpenSSL's part of a front-end run, in a fresh process: libssl + libcrypto loaded (dlopen with
// RTLD_NOW, as the agent's load), OPENSSL_init_ssl and the first client SSL_CTX (the agent's
// prepare).  This process already has OpenSSL (the service fixture links libcurl), so python3's
// ctypes times it in a new one.
double openssl_start_ms()
{
    FILE *f = ::popen("/usr/bin/python3 -c 'import ctypes, time; t = time.perf_counter(); "
                      "s = ctypes.CDLL(\"libssl.so.3\"); s.OPENSSL_init_ssl(ctypes.c_uint64(0), None); "
                      "s.TLS_client_method.restype = ctypes.c_void_p; s.SSL_CTX_new.restype = ctypes.c_void_p; "
                      "s.SSL_CTX_new.argtypes = [ctypes.c_void_p]; s.SSL_CTX_new(s.TLS_client_method()); "
                      "print((time.perf_counter() - t) * 1000)'",
                      "r");
    if (!f)
        return 0;
    double ms = 0;
    if (std::fscanf(f, "%lf", &ms) != 1)
        ms = 0;
    ::pclose(f);
    return ms;
}

// Where the agent's part of a verified reboot goes, as fence_stockade runs it (open, status, reboot,
// close on one session), from the agent's own debug lines: a line per request with its time and,
// for a new connection, its TCP and TLS times.  In-process, so process start is not in it;
// OpenSSL's load and set-up are measured apart (paid once per front-end run).  Once with HTTP Basic
// (the default, as fence_redfish) and once with a Redfish session (login POST, DELETE at close).
enum ProfileCol { Total, Open, Tcp, Tls, Login, Discovery, Reads, Resets, Between, Close, SeenOff, SeenOn, NCols };

struct Profile {
    std::vector<double> col[NCols];
    std::vector<double> reads;
};

Profile profile_reboot(RedfishService &s, int runs, const std::string &auth)
{
    Profile out;
    static AgentRegistry reg;
    auto agent = reg.find("redfish");
    if (!agent)
        return out;
    RawParams raw{{"ip", s.address()},    {"ipport", std::to_string(s.port())}, {"username", "admin"},
                  {"password", "secret"}, {"ssl_ca_file", s.ca_file()},        {"auth_type", auth}};
    auto params = resolve_params(**agent, raw, UnknownParams::Reject);
    if (!params)
        return out;
    const std::regex req(R"re((GET|POST|DELETE) (\S+) -> (\d+) in ([0-9.]+) ms( \(new connection: TCP ([0-9.]+) ms, TLS ([0-9.]+) ms\))?)re");
    const std::regex confirmed(R"re(confirmed (On|Off) (\d+) ms after)re");
    Verify v = verify_for(s, "reboot");
    for (int i = 0; i < runs; ++i) {
        v.prepare();
        wait_settled(s);
        std::vector<std::string> lines;
        std::mutex mu;
        Logger lg;
        lg.set_level(STOCKADE_LOG_DEBUG);
        lg.add_sink([&](int, std::string_view l) {
            std::lock_guard<std::mutex> g(mu);
            lines.emplace_back(l);
        });
        SessionOptions o;
        o.isolate = false;
        o.logger = &lg;
        auto t0 = Clock::now();
        auto sess = make_session(**agent, o);
        OpResult r = sess->open(*params, std::chrono::seconds(10));
        const double t_open = since_ms(t0);
        if (r.ok())
            r = sess->status("node1", std::chrono::seconds(10));
        if (r.ok())
            r = sess->power(PowerAction::Reboot, "node1", std::chrono::seconds(30));
        const double t_power = since_ms(t0);
        sess->close();
        const double total = since_ms(t0);
        if (!r.ok() || !v.check())
            continue;
        double parts[NCols] = {0};
        parts[Total] = total;
        parts[Open] = t_open;
        parts[Close] = total - t_power;
        double reads = 0, in_requests = 0;
        for (const auto &l : lines) {
            std::smatch m;
            if (std::regex_search(l, m, req)) {
                const double ms = std::stod(m[4]);
                in_requests += ms;
                if (m[5].matched) {
                    parts[Tcp] += std::stod(m[6]);
                    parts[Tls] += std::stod(m[7]);
                }
                const std::string path = m[2];
                if (path.find("/SessionService/") != std::string::npos)
                    parts[Login] += ms;
                else if (m[1] == "POST")
                    parts[Resets] += ms;
                else if (path.find("/Systems/") != std::string::npos) {
                    parts[Reads] += ms;
                    ++reads;
                } else
                    parts[Discovery] += ms;
            } else if (std::regex_search(l, m, confirmed)) {
                parts[m[1] == "Off" ? SeenOff : SeenOn] = std::stod(m[2]);
            }
        }
        // The TCP and TLS parts are inside the first request's time: report them apart.
        parts[Discovery] -= parts[Tcp] + parts[Tls];
        parts[Between] = t_power - t_open - in_requests;
        for (int c = 0; c < NCols; ++c)
            out.col[c].push_back(parts[c]);
        out.reads.push_back(reads);
    }
    return out;
}

void print_profile(RedfishService &s, int runs)
{
    const char *names[NCols] = {"whole (open, status, reboot, close)",
                                "open (parameters; no I/O)",
                                "TCP connect (the TLS context is made meanwhile)",
                                "TLS handshake (server: python ssl)",
                                "session login POST",
                                "discovery GETs (Systems; with sessions also the service root)",
                                "system/PowerState reads (answer time)",
                                "Reset POSTs: ForceOff, On (answer time; the service kills/starts the node)",
                                "between requests (poll pauses, agent and library work)",
                                "close (connection shut; session DELETE)",
                                "ForceOff answered -> Off read back",
                                "On answered -> On read back"};
    Profile basic = profile_reboot(s, runs, "basic");
    Profile session = profile_reboot(s, runs, "session");
    std::vector<double> dl;
    for (int i = 0; i < runs; ++i)
        dl.push_back(openssl_start_ms());
    std::printf("### Where the agent's part of a verified reboot goes (in-process, as fence_stockade runs it: "
                "open, status, reboot, close; median of %zu/%zu runs; %.0f system/PowerState reads)\n\n",
                basic.col[Total].size(), session.col[Total].size(), median(basic.reads));
    std::printf("| part | auth_type=basic (default) | auth_type=session |\n|---|---|---|\n");
    for (int c = 0; c < NCols; ++c)
        std::printf("| %s | %.1f ms | %.1f ms |\n", names[c], median(basic.col[c]), median(session.col[c]));
    std::printf("| not in the above: libssl + libcrypto load, OpenSSL init and first SSL_CTX in a fresh process "
                "(once per front-end run: the load before the template's fork, the rest in its prepare) | %.1f ms | |\n\n",
                median(dl));
}

} // namespace

int main(int argc, char **argv)
{
    std::string bin;
    int runs = 7, bmcs = 16, transition_ms = 0;
    bool profile_only = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--stockade-bin")
            bin = v;
        else if (k == "--runs")
            runs = std::stoi(v);
        else if (k == "--bmcs")
            bmcs = std::stoi(v);
        else if (k == "--transition-ms")
            transition_ms = std::stoi(v);
        else if (k == "--profile-only") // the one-BMC table and the profile, no N-BMC part
            profile_only = v == "1";
    }
    if (bin.empty()) {
        std::fprintf(stderr, "usage: redfish_bench --stockade-bin DIR [--runs N] [--bmcs N] [--transition-ms MS]\n");
        return 2;
    }
    if (auto why = redfish_service_unavailable_reason()) {
        std::fprintf(stderr, "redfish_bench: %s\n", why->c_str());
        return 1;
    }
    char tmpl[] = "/tmp/stockade-redfish-bench-XXXXXX";
    if (!::mkdtemp(tmpl))
        return 1;
    const fs::path dir = tmpl;
    const std::string fence_redfish = "/usr/sbin/fence_redfish";
    const std::string ours = bin + "/fence_stockade_redfish";
    const std::string control = "{\"off_delay_ms\": " + std::to_string(transition_ms) +
                                ", \"on_delay_ms\": " + std::to_string(transition_ms) + "}";
    int rc = 0;
    {
        auto svc = RedfishService::start(dir / "one");
        svc->control(control);
        const std::vector<std::string> env{"REQUESTS_CA_BUNDLE=" + svc->ca_file(), "PYTHONWARNINGS=ignore"};
        std::printf("### One BMC (median of %d runs each, the three interleaved run by run; PowerState transitions take %d ms)\n\n", runs, transition_ms);
        std::printf("| action | fence_stockade_redfish | stockade library (in-process) | fence_redfish | "
                    "fence_redfish / fence_stockade_redfish | peak RSS stockade / fence_redfish |\n"
                    "|---|---|---|---|---|---|\n");
        for (const char *action : {"status", "off", "on", "reboot"}) {
            // Interleaved run by run, so drift in the machine's load hits all three alike.
            Cell st, lib, fr;
            int early = 0;
            const Verify v = verify_for(*svc, action);
            for (int i = 0; i < runs; ++i) {
                (void)cli_run(*svc, {ours}, action, true, env, v, st);
                library_run(*svc, action, v, lib);
                early += cli_run(*svc, {fence_redfish}, action, false, env, v, fr);
            }
            if (early)
                fr.note = " (" + std::to_string(early) + " reported before the node was on)";
            std::printf("| %s%s | %s | %s | %s%s | %s | %ld kB / %ld kB |\n", action,
                        std::string(action) == "reboot" ? " (verified)" : "", fmt_ms(st).c_str(),
                        fmt_ms(lib).c_str(), fmt_ms(fr).c_str(), fr.note.c_str(), ratio(fr, st).c_str(),
                        st.maxrss_kb, fr.maxrss_kb);
            if (st.failures || lib.failures)
                rc = 1;
        }
        std::printf("\n(every off/on/reboot verified from the node process; failed runs are not timed)\n\n");
        print_profile(*svc, runs);
    }
    if (profile_only) {
        std::error_code ec;
        fs::remove_all(dir, ec);
        return rc;
    }

    // N BMCs at once.
    std::vector<std::unique_ptr<RedfishService>> farm;
    RedfishServiceOptions shared;
    shared.cert_dir = (dir / "certs").string();
    for (int i = 0; i < bmcs; ++i) {
        farm.push_back(RedfishService::start(dir / ("bmc" + std::to_string(i)), shared));
        farm.back()->control(control);
    }
    const std::vector<std::string> env{"REQUESTS_CA_BUNDLE=" + farm[0]->ca_file(), "PYTHONWARNINGS=ignore"};
    nlohmann::json devices = nlohmann::json::object(), nodes = nlohmann::json::object();
    std::vector<std::string> node_names;
    for (int i = 0; i < bmcs; ++i) {
        const std::string n = "node" + std::to_string(i + 1);
        node_names.push_back(n);
        // No "timeout": the agent's own need (time_needed) is the cap, as for fence_redfish's defaults.
        devices["rf" + std::to_string(i + 1)] = {{"agent", "redfish"},
                                                  {"params",
                                                   {{"ip", farm[i]->address()},
                                                    {"ipport", farm[i]->port()},
                                                    {"username", "admin"},
                                                    {"password", "secret"},
                                                    {"ssl_ca_file", farm[i]->ca_file()}}}};
        nodes[n] = {{"levels", {{"rf" + std::to_string(i + 1)}}}};
    }
    const fs::path cfg = dir / "stockade.json";
    {
        nlohmann::json c = {{"version", 1}, {"concurrency", bmcs}, {"devices", devices}, {"nodes", nodes}};
        FILE *f = std::fopen(cfg.c_str(), "w");
        std::fputs(c.dump(2).c_str(), f);
        std::fclose(f);
        ::chmod(cfg.c_str(), 0600);
    }
    std::printf("### %d BMCs at once (median of %d runs)\n\n", bmcs, std::max(3, runs / 2));
    std::printf("| action | stockade (one CLI run, all nodes) | %d fence_redfish started together | fence_redfish / stockade "
                "| peak RSS stockade / one fence_redfish |\n|---|---|---|---|---|\n",
                bmcs);
    for (const char *action : {"status", "reboot"}) {
        Cell st, fr;
        const bool reboot = std::string(action) == "reboot";
        for (int k = 0; k < std::max(3, runs / 2); ++k) {
            for (int variant = 0; variant < 2; ++variant) {
                std::vector<pid_t> before;
                for (auto &s : farm) {
                    s->set_power("1", true);
                    before.push_back(s->node_pid());
                }
                for (auto &s : farm)
                    wait_settled(*s);
                auto t0 = Clock::now();
                bool ok = true;
                long rss = 0;
                if (variant == 0) {
                    std::vector<std::string> a = {bin + "/stockade", "--config", cfg.string(), "-q"};
                    if (reboot) {
                        a.insert(a.end(), {"fence", "--action", "reboot"});
                        a.insert(a.end(), node_names.begin(), node_names.end());
                    } else {
                        a.push_back("status");
                    }
                    Run r = finish(spawn_with_input(a, "", {}), t0);
                    ok = r.exit_code == 0;
                    rss = r.maxrss_kb;
                } else {
                    std::vector<pid_t> pids;
                    for (auto &s : farm)
                        pids.push_back(spawn_with_input({fence_redfish}, stdin_params(*s, action, false), env));
                    for (pid_t p : pids) {
                        Run r = finish(p, t0);
                        ok = ok && r.exit_code == 0;
                        rss = std::max(rss, r.maxrss_kb);
                    }
                }
                const double ms = since_ms(t0);
                auto all_rebooted = [&] {
                    for (size_t i = 0; i < farm.size(); ++i)
                        if (!farm[i]->node_alive() || farm[i]->node_pid() == before[i])
                            return false;
                    return true;
                };
                if (reboot && ok && !all_rebooted()) {
                    bool late = false;
                    for (int w = 0; w < 500 && variant == 1 && !late; ++w) { // see cli_run
                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                        late = all_rebooted();
                    }
                    ok = late;
                    if (late)
                        fr.note = " (reported before every node was on)";
                }
                Cell &c = variant == 0 ? st : fr;
                if (ok)
                    c.ms.push_back(ms);
                else
                    ++c.failures;
                c.maxrss_kb = std::max(c.maxrss_kb, rss);
            }
        }
        std::printf("| %s%s | %s | %s%s | %s | %ld kB / %ld kB |\n", action, reboot ? " (verified)" : "",
                    fmt_ms(st).c_str(), fmt_ms(fr).c_str(), fr.note.c_str(), ratio(fr, st).c_str(), st.maxrss_kb,
                    fr.maxrss_kb);
        if (st.failures)
            rc = 1;
    }
    farm.clear();
    std::error_code ec;
    fs::remove_all(dir, ec);
    return rc;
}
