// fencer_fixture.cpp -- see fencer_fixture.hpp.
#include "fencer_fixture.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

namespace stockade::test {

namespace {

using namespace std::chrono_literals;

const std::string kFencer = "/usr/lib/pacemaker/pacemaker-fenced";

std::string ip_binary()
{
    auto ip = which("ip");
    return ip ? *ip : std::string("/usr/sbin/ip");
}

// Whether `text` appears in the log file within `tries` x 100 ms while `proc` runs.
bool log_shows(const std::string &log, const std::string &text, Subprocess &proc, int tries)
{
    for (int i = 0; i < tries; ++i) {
        if (read_file(log).find(text) != std::string::npos)
            return true;
        if (!pid_alive(proc.pid()))
            return false;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

} // namespace

pid_t FencerFixture::sim_node(const std::string &node) const
{
    std::ifstream f(state_dir + "/" + node + ".node");
    long long pid = 0;
    f >> pid;
    return pid > 0 && pid_alive(pid_t(pid)) ? pid_t(pid) : 0;
}

std::string FencerFixture::tail(const std::string &s)
{
    return s.size() > 1500 ? s.substr(s.size() - 1500) : s;
}

void FencerFixture::stop(std::unique_ptr<Subprocess> &p)
{
    if (!p)
        return;
    ::kill(p->pid(), SIGTERM);
    (void)p->wait(monotonic_ms() + 10000); // then the destructor kills what is left
    p.reset();
}

FencerFixture::~FencerFixture()
{
    stop(fencer_);
    stop(corosync_);
    if (!netns_.empty()) {
        // Whatever still runs in our own namespace (an agent the fencer started) is ours.
        auto pids = run({ip_binary(), "netns", "pids", netns_}, "", 10s);
        std::istringstream in(pids.out);
        for (long p; in >> p;)
            if (p > 1)
                ::kill(pid_t(p), SIGKILL);
        (void)run({ip_binary(), "netns", "del", netns_}, "", 10s);
    }
    for (const auto &w : wrappers_)
        ::unlink(w.c_str());
    // Keep the fencer's log for whoever reads a failure.
    if (const char *b = std::getenv("STOCKADE_BUILD_DIR"))
        write_file(std::string(b) + "/" + keep_log_as, read_file(log));
    DIR *d = ::opendir(state_dir.c_str());
    if (d) {
        while (dirent *e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.compare(n.size() - 5, 5, ".node") == 0)
                if (pid_t p = sim_node(n.substr(0, n.size() - 5)))
                    ::kill(p, SIGKILL);
        }
        ::closedir(d);
    }
}

std::string FencerFixture::add_wrapper(const std::string &program)
{
    std::random_device rd;
    std::string name = fmt::format("fence_stockade_test_{:08x}", rd());
    std::string path = "/usr/sbin/" + name;
    std::string host = env_or_fail("STOCKADE_AGENT_HOST");
    write_file(path,
               "#!/bin/sh\n# Test wrapper for stockade's frontend tests; removed by the test.\n"
               "STOCKADE_AGENT_HOST='" + host + "'\nexport STOCKADE_AGENT_HOST\n"
               "STOCKADE_RUN_DIR='" + dir.file("run") + "'\nexport STOCKADE_RUN_DIR\n"
               "exec '" + bin_path(program) + "' \"$@\"\n",
               0755);
    wrappers_.push_back(path);
    return name;
}

std::string FencerFixture::make_namespace()
{
    if (!which("ip"))
        return "ip (package iproute2) is missing";
    std::random_device rd;
    std::string ns = fmt::format("stkf{}-{:04x}", ::getpid(), rd() & 0xffff);
    auto add = run({ip_binary(), "netns", "add", ns}, "", 10s);
    if (add.exit_code != 0)
        return "cannot create a network namespace: " + add.err;
    netns_ = ns;
    auto up = run({ip_binary(), "netns", "exec", ns, ip_binary(), "link", "set", "lo", "up"}, "", 10s);
    if (up.exit_code != 0)
        return "cannot bring lo up in " + ns + ": " + up.err;
    return "";
}

std::string FencerFixture::start(const std::string &program)
{
    if (::geteuid() != 0)
        return "not root: the fencer only runs /usr/sbin/fence_* and needs root for its IPC";
    if (::access(kFencer.c_str(), X_OK) != 0 || !which("stonith_admin"))
        return kFencer + " or stonith_admin missing (packages pacemaker, pacemaker-cli-utils)";
    if (auto why = make_namespace(); !why.empty())
        return why;
    if (!program.empty())
        wrapper_name = add_wrapper(program);

    // Topology needs the fencer's cluster path (CPG), so a single-node corosync on 127.0.0.1
    // when one can run; otherwise the stand-alone fencer, which ignores topology.
    std::string mode = "-s";
    if (auto why = start_corosync(); why.empty())
        mode = "-c";
    else
        corosync_skip = why;
    SpawnSpec spec;
    spec.argv = {ip_binary(), "netns", "exec", netns_, "/bin/sh", "-c",
                 "exec " + kFencer + " " + mode + " >" + log + ".out 2>&1"};
    spec.env_set = {{"PCMK_logfile", log}}; // (with -l as well, every line would be there twice)
    auto p = Subprocess::spawn(spec);
    if (!p)
        return "cannot start pacemaker-fenced: " + p.error().message;
    fencer_ = std::move(p.value());
    if (log_shows(log, "successfully started", *fencer_, 200))
        return "";
    return "pacemaker-fenced did not start: " + read_file(log + ".out") + tail(read_file(log));
}

std::string FencerFixture::start_corosync()
{
    auto bin = which("corosync");
    if (!bin)
        return "corosync is not installed";
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    std::string conf = dir.file("corosync.conf"), corosync_log = dir.file("corosync.log");
    std::string var_lib = dir.file("var-lib-corosync");
    std::filesystem::create_directories(var_lib);
    write_file(conf, fmt::format(R"(totem {{
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
    // Its own /var/lib/corosync (the ringid file) and /run (corosync refuses to start while another
    // one holds /run/corosync.pid) in a private mount namespace: nothing of the machine's is
    // touched, and a corosync elsewhere -- another test's, a cluster's -- keeps its own.
    SpawnSpec spec;
    spec.argv = {ip_binary(), "netns", "exec", netns_, "unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                 "mount --bind '" + var_lib + "' /var/lib/corosync && mount -t tmpfs -o mode=0755 stkcorosync /run && "
                 "exec '" + *bin + "' -f -c '" + conf + "'"};
    auto p = Subprocess::spawn(spec);
    if (!p)
        return "cannot start corosync: " + p.error().message;
    corosync_ = std::move(p.value());
    if (log_shows(corosync_log, "ready to provide service", *corosync_, 100))
        return "";
    std::string why = "corosync did not become ready: " + tail(read_file(corosync_log));
    stop(corosync_);
    return why;
}

CommandResult FencerFixture::admin(std::vector<std::string> args, std::chrono::milliseconds timeout)
{
    std::string shown = "stonith_admin";
    for (const auto &a : args)
        shown += " " + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
    args.insert(args.begin(), {ip_binary(), "netns", "exec", netns_, *which("stonith_admin")});
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(args, "", timeout);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    timings_.push_back({shown, r.exit_code.value_or(-1), s});
    return r;
}

void FencerFixture::report(const std::string &file_name)
{
    std::string text;
    for (const auto &t : timings_)
        text += fmt::format("{:6.3f} s  rc={:<3} {}\n", t.seconds, t.rc, t.command);
    std::fprintf(stderr, "pacemaker-fenced timings:\n%s", text.c_str());
    if (const char *b = std::getenv("STOCKADE_BUILD_DIR"))
        write_file(std::string(b) + "/" + file_name, text);
}

} // namespace stockade::test
