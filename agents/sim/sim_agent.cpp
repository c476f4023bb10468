// sim_agent.cpp -- a simulated power switch whose "nodes" are local processes.
//
// cluster-glue ships a null plugin and libvirt a test driver for the same reason: people must be
// able to watch fencing happen, and rehearse it, without a data centre.  Each node is a process
// recorded in <state_dir>/<node>.node as "pid starttime"; powered on = that exact process is
// alive (the start time guards against pid reuse).  off kills it and waits until it is gone; on
// starts a new one (double fork + setsid, so it outlives the agent's process tree).  Unlike a
// toy, it verifies what it claims: off is confirmed by reading the process table back.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"

namespace {

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "state_dir", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .description = "Folder holding one <node>.node file per simulated node (created if missing)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "hostlist", .type = STOCKADE_PARAM_STRING, .aliases = "pcmk_host_list",
     .description = "Nodes this switch powers (separated by spaces, commas or semicolons); empty = any"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "reachable", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "1",
     .description = "0 simulates a device that does not answer (every operation fails as unreachable)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "power_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "10",
     .description = "Seconds to wait for a node process to die or start"},
};

struct Sim {
    std::string state_dir;
    std::vector<std::string> hosts;
    bool reachable = true;
    int power_timeout_s = 10;
};

using stockade::agent::set_err;
using stockade::agent::log;
using stockade::text::ascii_lower;
using stockade::agent::cancelled;

bool valid_node_name(const std::string &n)
{
    if (n.empty() || n.size() > 64 || n[0] == '.')
        return false;
    for (char c : n)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
            return false;
    return true;
}

// Start time (clock ticks since boot) of a live, non-zombie process; 0 if none.
unsigned long long start_time(pid_t pid)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s))
        return 0;
    auto rp = s.rfind(')');
    if (rp == std::string::npos || rp + 2 >= s.size() || s[rp + 2] == 'Z' || s[rp + 2] == 'X')
        return 0;
    // Fields after ')': state(3) ... starttime is field 22 overall, i.e. the 20th after ')'.
    const char *p = s.c_str() + rp + 2;
    for (int field = 3; field < 22 && *p; ++field) {
        p = std::strchr(p, ' ');
        if (!p)
            return 0;
        ++p;
    }
    return std::strtoull(p, nullptr, 10);
}

struct NodeRecord {
    pid_t pid = 0;
    unsigned long long started = 0;
};

std::string node_file(const Sim &s, const std::string &node) { return s.state_dir + "/" + ascii_lower(node) + ".node"; }

NodeRecord read_record(const Sim &s, const std::string &node)
{
    NodeRecord r;
    std::ifstream f(node_file(s, node));
    long long pid = 0;
    f >> pid >> r.started;
    r.pid = pid_t(pid);
    return r;
}

bool is_running(const NodeRecord &r) { return r.pid > 0 && r.started && start_time(r.pid) == r.started; }

uint32_t check_target(const Sim &s, const stockade_ctx *ctx, const std::string &target)
{
    if (!s.reachable) {
        set_err(ctx, "simulated device does not answer (reachable=0)");
        return STOCKADE_RC_UNREACHABLE;
    }
    if (!valid_node_name(target)) {
        set_err(ctx, "invalid node name '" + target + "'");
        return STOCKADE_RC_UNKNOWN_TARGET;
    }
    if (!s.hosts.empty()) {
        bool found = false;
        for (const auto &h : s.hosts)
            found = found || h == ascii_lower(target);
        if (!found) {
            set_err(ctx, "node '" + target + "' is not powered by this switch (hostlist)");
            return STOCKADE_RC_UNKNOWN_TARGET;
        }
    }
    return STOCKADE_RC_OK;
}

bool wait_until(const stockade_ctx *ctx, int64_t until, bool (*done)(const NodeRecord &), const NodeRecord &r)
{
    while (!done(r)) {
        if (stockade_monotonic_ms() >= until || stockade_remaining_ms(ctx) == 0 || cancelled(ctx))
            return false;
        usleep(5000);
    }
    return true;
}

// Starts a node process that outlives this agent: fork, setsid, fork again.
NodeRecord spawn_node(const std::string &name)
{
    int fds[2];
    NodeRecord rec;
    if (pipe(fds) != 0)
        return rec;
    pid_t mid = fork();
    if (mid == 0) {
        setsid();
        pid_t node = fork();
        if (node == 0) {
            int nul = open("/dev/null", O_RDWR);
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
            syscall(SYS_close_range, 3U, ~0U, 0U);
            std::string title = "simnode-" + name;
            prctl(PR_SET_NAME, title.substr(0, 15).c_str());
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_IGN);
            for (;;)
                pause();
        }
        pid_t p = node;
        ssize_t w = write(fds[1], &p, sizeof p);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    pid_t p = 0;
    if (mid > 0 && read(fds[0], &p, sizeof p) == ssize_t(sizeof p))
        rec.pid = p;
    close(fds[0]);
    if (mid > 0)
        waitpid(mid, nullptr, 0);
    for (int i = 0; i < 200 && rec.pid > 0 && !(rec.started = start_time(rec.pid)); ++i)
        usleep(1000);
    return rec;
}

uint32_t do_off(Sim &s, const stockade_ctx *ctx, const std::string &target, uint32_t *verified)
{
    NodeRecord r = read_record(s, target);
    if (is_running(r)) {
        log(ctx, STOCKADE_LOG_INFO, "killing simulated node " + target + " (pid " + std::to_string(r.pid) + ")");
        kill(r.pid, SIGKILL);
        int64_t until = stockade_monotonic_ms() + int64_t(s.power_timeout_s) * 1000;
        if (!wait_until(ctx, until, [](const NodeRecord &x) { return !is_running(x); }, r)) {
            set_err(ctx, "node " + target + " (pid " + std::to_string(r.pid) + ") still running after SIGKILL");
            return STOCKADE_RC_TIMEOUT;
        }
    } else {
        log(ctx, STOCKADE_LOG_INFO, "simulated node " + target + " is already off");
    }
    unlink(node_file(s, target).c_str());
    *verified |= STOCKADE_VERIFIED_OFF;
    return STOCKADE_RC_OK;
}

uint32_t do_on(Sim &s, const stockade_ctx *ctx, const std::string &target, uint32_t *verified)
{
    NodeRecord r = read_record(s, target);
    if (!is_running(r)) {
        r = spawn_node(target);
        if (!r.pid || !r.started) {
            set_err(ctx, "could not start simulated node " + target);
            return STOCKADE_RC_FAILED;
        }
        std::string tmp = node_file(s, target) + ".tmp";
        {
            std::ofstream f(tmp, std::ios::trunc);
            f << r.pid << ' ' << r.started << '\n';
            if (!f) {
                kill(r.pid, SIGKILL);
                set_err(ctx, "cannot write " + tmp + ": " + std::strerror(errno));
                return STOCKADE_RC_FAILED;
            }
        }
        rename(tmp.c_str(), node_file(s, target).c_str());
        log(ctx, STOCKADE_LOG_INFO, "started simulated node " + target + " (pid " + std::to_string(r.pid) + ")");
    }
    if (!is_running(read_record(s, target))) {
        set_err(ctx, "simulated node " + target + " did not stay up");
        return STOCKADE_RC_FAILED;
    }
    *verified |= STOCKADE_VERIFIED_ON;
    return STOCKADE_RC_OK;
}

struct SimDevice : Sim {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx, std::unique_ptr<SimDevice> &out)
    {
        auto s = std::make_unique<SimDevice>();
        for (const auto &[k, v] : stockade::agent::named_values(params, n)) {
            if (k == "state_dir")
                s->state_dir = v;
            else if (k == "hostlist") {
                for (const auto &h : stockade::text::split_list(v))
                    s->hosts.push_back(ascii_lower(h));
            } else if (k == "reachable")
                s->reachable = v == "1";
            else if (k == "power_timeout")
                s->power_timeout_s = std::stoi(v);
        }
        if (s->state_dir.empty() || s->state_dir[0] != '/') {
            set_err(ctx, "state_dir must be an absolute path");
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (s->reachable && mkdir(s->state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
            set_err(ctx, "cannot create state_dir " + s->state_dir + ": " + std::strerror(errno));
            return STOCKADE_RC_BAD_CONFIG;
        }
        out = std::move(s);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        Sim &s = *this;
        if (uint32_t rc = check_target(s, ctx, target); rc != STOCKADE_RC_OK)
            return rc;
        switch (action) {
        case STOCKADE_ACTION_OFF:
            return do_off(s, ctx, target, verified);
        case STOCKADE_ACTION_ON:
            return do_on(s, ctx, target, verified);
        case STOCKADE_ACTION_REBOOT: {
            uint32_t rc = do_off(s, ctx, target, verified);
            if (rc != STOCKADE_RC_OK)
                return rc;
            uint32_t on_verified = 0;
            if (do_on(s, ctx, target, &on_verified) != STOCKADE_RC_OK)
                log(ctx, STOCKADE_LOG_WARNING, "node " + target + " is off but did not power on again");
            *verified |= on_verified;
            return STOCKADE_RC_OK;
        }
        default:
            set_err(ctx, "unsupported action");
            return STOCKADE_RC_UNSUPPORTED;
        }
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *state)
    {
        Sim &s = *this;
        if (uint32_t rc = check_target(s, ctx, target); rc != STOCKADE_RC_OK)
            return rc;
        *state = is_running(read_record(s, target)) ? STOCKADE_POWER_ON : STOCKADE_POWER_OFF;
        return STOCKADE_RC_OK;
    }

    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *ectx)
    {
        Sim &s = *this;
        if (!s.reachable) {
            set_err(ctx, "simulated device does not answer (reachable=0)");
            return STOCKADE_RC_UNREACHABLE;
        }
        for (const auto &host : s.hosts)
            emit(ectx, host.c_str(), "");
        if (s.hosts.empty())
            if (DIR *d = opendir(s.state_dir.c_str())) {
                while (dirent *e = readdir(d)) {
                    std::string fn = e->d_name;
                    if (fn.size() > 5 && fn.compare(fn.size() - 5, 5, ".node") == 0)
                        emit(ectx, fn.substr(0, fn.size() - 5).c_str(), "");
                }
                closedir(d);
            }
        return STOCKADE_RC_OK;
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        Sim &s = *this;
        if (!s.reachable) {
            set_err(ctx, "simulated device does not answer (reachable=0)");
            return STOCKADE_RC_UNREACHABLE;
        }
        if (access(s.state_dir.c_str(), W_OK) != 0) {
            set_err(ctx, "state_dir " + s.state_dir + " is not writable");
            return STOCKADE_RC_UNREACHABLE;
        }
        return STOCKADE_RC_OK;
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR,
    .name = "sim",
    .version = "1.0",
    .summary = "Simulated power switch: each node is a local process (demos, drills)",
    .description =
        "Powers simulated nodes: on starts a process, off kills it and confirms it is gone. "
        "For rehearsing escalation configs and for the demo; fences nothing real.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(SimDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kDescriptor; }
