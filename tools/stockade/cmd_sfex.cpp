// cmd_sfex.cpp -- `stockade sfex`: the SFEX lock tools (sfex_init, sfex_stat, sfex_daemon's lock
// steps) on top of the core's SFEX library, with the same flags and exit codes.
//
// Operators need to look at, create and (in tests or recovery) take or drop SFEX locks without
// resource-agents' tools, which refuse regular files and, for the daemon, need /proc/sysrq-trigger.
// Exit codes follow the tools: init 0/3/4; stat 0 = held by this node, 2 = not held by this node,
// 1 = format error, 3 = cannot open, 4 = bad arguments; acquire 0 = acquired, 2 = held by another
// node or collision; renew/release 1 when the lock is not ours.
#include <cstdio>
#include <memory>
#include <optional>
#include <tuple>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
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

// The option values as given; checked by check() with sfex_init/sfex_stat's own messages.
struct RawArgs {
    std::string op;
    std::vector<std::string> device;
    std::optional<std::string> index, numlocks, nodename, collision_timeout, lock_timeout;
};

// -1 when `raw` is good (filled into `out`), else the exit code after printing why.
int check(const RawArgs &raw, Args &out)
{
    out.op = raw.op;
    long v = 0;
    if (raw.index) {
        if (!number(*raw.index, sx::kMinLocks, sx::kMaxLocks, v)) {
            fmt::print(stderr, "stockade sfex: index {} is out of range or invalid. it must be integer value "
                               "between 1 and 999.\n", *raw.index);
            return kExitArgs;
        }
        out.index = int(v);
    }
    if (raw.numlocks) {
        if (!number(*raw.numlocks, sx::kMinLocks, sx::kMaxLocks, v)) {
            fmt::print(stderr, "stockade sfex: numlocks {} is out of range or invalid. it must be integer value "
                               "between 1 and 999.\n", *raw.numlocks);
            return kExitArgs;
        }
        out.numlocks = int(v);
    }
    if (raw.nodename) {
        if (raw.nodename->empty() || raw.nodename->size() > sx::kMaxNodename) {
            fmt::print(stderr, "stockade sfex: nodename must be 1..255 bytes\n");
            return kExitArgs;
        }
        out.nodename = *raw.nodename;
    }
    for (auto [text, name, field] : {std::tuple{&raw.collision_timeout, "collision_timeout", &out.collision_timeout},
                                     std::tuple{&raw.lock_timeout, "lock_timeout", &out.lock_timeout}}) {
        if (!*text)
            continue;
        if (!number(**text, 1, 86400, v)) {
            fmt::print(stderr, "stockade sfex: {} {} is out of range or invalid (1..86400 seconds)\n", name, **text);
            return kExitArgs;
        }
        *field = v;
    }
    if (raw.device.size() != 1) {
        fmt::print(stderr, "stockade sfex {}: {}\n", out.op, raw.device.empty() ? "no device specified" : "too many arguments");
        return kExitArgs;
    }
    out.device = raw.device[0];
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

int cmd_sfex(const cli::GlobalOptions &g, const RawArgs &raw)
{
    Args a;
    if (int rc = check(raw, a); rc >= 0)
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

cli::CommandBody setup_sfex(CLI::App &app, const cli::GlobalOptions &g)
{
    auto raw = std::make_shared<RawArgs>();
    app.require_subcommand(1);
    app.footer("nodename defaults to uname -n; timeouts are seconds (defaults 1 and 60).  Exit codes as "
               "sfex_init/sfex_stat: 4 bad arguments, 3 cannot open; stat 0 held by this node, 2 not.");
    struct Op {
        const char *name, *summary;
        bool index, nodename, timeouts;
    };
    for (const Op &op : {Op{"init", "write empty control and lock blocks", false, false, false},
                         Op{"stat", "show a lock (exit 0 held by this node, 2 not)", true, true, false},
                         Op{"acquire", "take a lock (exit 2 held by another node)", true, true, true},
                         Op{"renew", "renew a lock this node holds", true, true, false},
                         Op{"release", "release a lock this node holds", true, true, false}}) {
        CLI::App *sub = app.add_subcommand(op.name, op.summary);
        sub->fallthrough(); // global options (-q, --config) may follow
        sub->callback([raw, name = std::string(op.name)] { raw->op = name; });
        sub->add_option("DEVICE", raw->device, "block device or file holding the SFEX blocks");
        if (op.index)
            sub->add_option("-i", raw->index, "lock index (1..999, default 1)");
        if (op.nodename)
            sub->add_option("-n", raw->nodename, "this node's name (default uname -n)");
        else
            sub->add_option("-n", raw->numlocks, "number of locks (1..999, default 1)");
        if (op.timeouts) {
            sub->add_option("-c", raw->collision_timeout, "collision timeout, seconds (default 1)");
            sub->add_option("-t", raw->lock_timeout, "lock timeout, seconds (default 60)");
        }
    }
    return [&g, raw] { return cmd_sfex(g, *raw); };
}

} // namespace

STOCKADE_COMMAND("sfex", "SFEX shared-disk locks (sfex_init/sfex_stat compatible)", setup_sfex, kExitArgs);
