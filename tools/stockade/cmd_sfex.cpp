// cmd_sfex.cpp -- `stockade sfex`: the SFEX lock tools (sfex_init, sfex_stat, sfex_daemon's lock
// steps) on top of the core's SFEX library, with the same flags and exit codes.
//
// Operators need to look at, create and (in tests or recovery) take or drop SFEX locks without
// resource-agents' tools, which refuse regular files and, for the daemon, need /proc/sysrq-trigger.
// Exit codes follow the tools: init 0/3/4; stat 0 = held by this node, 2 = not held by this node,
// 1 = format error, 3 = cannot open, 4 = bad arguments; acquire 0 = acquired, 2 = held by another
// node or collision; renew/release 1 when the lock is not ours.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command.hpp"
#include "stockade/sfex.hpp"

namespace {

using namespace stockade;
namespace sx = stockade::sfex;

constexpr int kExitArgs = 4;

struct Args {
    std::string op;
    std::string device;
    int index = 1;
    int numlocks = 1;
    std::string nodename;
    long collision_timeout = 1;
    long lock_timeout = 60;
};

void usage(FILE *to)
{
    fmt::print(to, "usage: stockade sfex init [-n numlocks] DEVICE\n"
                   "       stockade sfex stat [-i index] [-n nodename] DEVICE\n"
                   "       stockade sfex acquire [-i index] [-c collision_timeout] [-t lock_timeout] [-n nodename] DEVICE\n"
                   "       stockade sfex renew|release [-i index] [-n nodename] DEVICE\n"
                   "nodename defaults to uname -n; timeouts are seconds (defaults 1 and 60).\n");
}

bool number(const std::string &s, long min, long max, long &out)
{
    if (s.empty())
        return false;
    char *end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (*end || v < min || v > max)
        return false;
    out = v;
    return true;
}

int parse(std::vector<std::string> a, Args &out)
{
    if (a.empty() || a[0] == "-h" || a[0] == "--help") {
        usage(a.empty() ? stderr : stdout);
        return a.empty() ? kExitArgs : 0;
    }
    out.op = a[0];
    if (out.op != "init" && out.op != "stat" && out.op != "acquire" && out.op != "renew" && out.op != "release") {
        fmt::print(stderr, "stockade sfex: unknown operation '{}'\n", out.op);
        usage(stderr);
        return kExitArgs;
    }
    std::vector<std::string> positional;
    for (size_t i = 1; i < a.size(); ++i) {
        const std::string &o = a[i];
        auto value = [&](const char *what) -> const std::string * {
            if (i + 1 >= a.size()) {
                fmt::print(stderr, "stockade sfex: {} needs {}\n", o, what);
                return nullptr;
            }
            return &a[++i];
        };
        long v = 0;
        if (o == "-i") {
            const std::string *s = value("an index");
            if (!s)
                return kExitArgs;
            if (!number(*s, sx::kMinLocks, sx::kMaxLocks, v)) {
                fmt::print(stderr, "stockade sfex: index {} is out of range or invalid. it must be integer value "
                                   "between 1 and 999.\n", *s);
                return kExitArgs;
            }
            out.index = int(v);
        } else if (o == "-n" && out.op == "init") {
            const std::string *s = value("a number of locks");
            if (!s)
                return kExitArgs;
            if (!number(*s, sx::kMinLocks, sx::kMaxLocks, v)) {
                fmt::print(stderr, "stockade sfex: numlocks {} is out of range or invalid. it must be integer value "
                                   "between 1 and 999.\n", *s);
                return kExitArgs;
            }
            out.numlocks = int(v);
        } else if (o == "-n") {
            const std::string *s = value("a node name");
            if (!s)
                return kExitArgs;
            if (s->empty() || s->size() > sx::kMaxNodename) {
                fmt::print(stderr, "stockade sfex: nodename must be 1..255 bytes\n");
                return kExitArgs;
            }
            out.nodename = *s;
        } else if ((o == "-c" || o == "-t") && out.op == "acquire") {
            const std::string *s = value("seconds");
            if (!s)
                return kExitArgs;
            if (!number(*s, 1, 86400, v)) {
                fmt::print(stderr, "stockade sfex: {} {} is out of range or invalid (1..86400 seconds)\n",
                           o == "-c" ? "collision_timeout" : "lock_timeout", *s);
                return kExitArgs;
            }
            (o == "-c" ? out.collision_timeout : out.lock_timeout) = v;
        } else if (!o.empty() && o[0] == '-') {
            fmt::print(stderr, "stockade sfex {}: unknown option '{}'\n", out.op, o);
            usage(stderr);
            return kExitArgs;
        } else {
            positional.push_back(o);
        }
    }
    if (positional.size() != 1) {
        fmt::print(stderr, "stockade sfex {}: {}\n", out.op,
                   positional.empty() ? "no device specified" : "too many arguments");
        return kExitArgs;
    }
    out.device = positional[0];
    return -1;
}

int report(const sx::Status &s)
{
    fmt::print(stderr, "stockade sfex: {}\n", s.message);
    return sx::errc_info(s.code).tool_exit;
}

void print_stat(const sx::ControlData &c, const sx::LockData &l, int index)
{
    fmt::print("control data:\n"
               "  magic: 0x{:02x}, 0x{:02x}, 0x{:02x}, 0x{:02x}\n"
               "  version: {}\n  revision: {}\n  blocksize: {}\n  numlocks: {}\n",
               uint8_t(c.magic[0]), uint8_t(c.magic[1]), uint8_t(c.magic[2]), uint8_t(c.magic[3]), c.version,
               c.revision, c.blocksize, c.numlocks);
    fmt::print("lock data #{}:\n  status: {}\n  count: {}\n  nodename: {}\n", index, l.locked() ? "lock" : "unlock",
               l.count, l.nodename);
}

int cmd_sfex(const cli::GlobalOptions &g, std::vector<std::string> argv)
{
    Args a;
    if (int rc = parse(std::move(argv), a); rc >= 0)
        return rc;
    if (a.op == "init") {
        if (sx::Status s = sx::init(a.device, a.numlocks); !s.ok())
            return report(s);
        if (!g.quiet)
            fmt::print("{}: initialised {} lock{}\n", a.device, a.numlocks, a.numlocks == 1 ? "" : "s");
        return 0;
    }
    if (a.nodename.empty())
        if (sx::Status s = sx::local_nodename(a.nodename); !s.ok())
            return report(s);
    if (a.op == "stat") {
        sx::ControlData c;
        sx::LockData l;
        if (sx::Status s = sx::stat(a.device, a.index, c, l); !s.ok())
            return report(s);
        print_stat(c, l, a.index);
        bool ours = l.held_by(a.nodename);
        fmt::print("status is {}.\n", ours ? "LOCKED" : "UNLOCKED");
        return ours ? 0 : 2;
    }
    if (a.op == "acquire") {
        sx::Timing t;
        t.collision_timeout = std::chrono::seconds(a.collision_timeout);
        t.lock_timeout = std::chrono::seconds(a.lock_timeout);
        sx::LockData l;
        if (sx::Status s = sx::acquire(a.device, a.index, a.nodename, t, &l); !s.ok())
            return report(s);
        if (!g.quiet)
            fmt::print("lock #{} acquired by {} (count {})\n", a.index, a.nodename, l.count);
        return 0;
    }
    if (a.op == "renew") {
        sx::LockData l;
        if (sx::Status s = sx::renew(a.device, a.index, a.nodename, &l); !s.ok())
            return report(s);
        if (!g.quiet)
            fmt::print("lock #{} renewed by {} (count {})\n", a.index, a.nodename, l.count);
        return 0;
    }
    if (sx::Status s = sx::release(a.device, a.index, a.nodename); !s.ok())
        return report(s);
    if (!g.quiet)
        fmt::print("lock #{} released by {}\n", a.index, a.nodename);
    return 0;
}

} // namespace

STOCKADE_COMMAND("sfex", "sfex init|stat|acquire|renew|release [opts] DEVICE",
                 "SFEX shared-disk locks (sfex_init/sfex_stat compatible)", cmd_sfex);
