// scsi_bench.cpp -- what a storage fence costs with stockade's scsi agent, against real user-space
// iSCSI targets started here (tgt; istgt with --istgt), in one run.
//
// A fence is PREEMPT (tgt) / PREEMPT AND ABORT (istgt) of one victim's key plus its confirmation
// (READ KEYS, READ RESERVATION, READ KEYS) on every LUN of a shared disk; measured across 1 and 8
// LUNs of one target:
//   - login included: the agent in-process (libstockade session, isolate=false): open + off + close,
//     and the fence-agents program `fence_stockade_scsi -o off` (process, isolated agent host);
//   - login excluded: one open agent session whose iSCSI login is done, timing only `off`.
// Between two fences the victim's key is registered again by a separate libiscsi client (untimed).
// Next to it, fence_scsi's way, one process per step: `sg_persist` cannot reach an iSCSI LUN
// without a kernel initiator (none on this machine), so the per-step cost is measured with
// libiscsi's own CLI (`iscsi-inq`: process start + login + one command + logout) and multiplied
// by the steps fence_scsi runs per device for a fence (sg_turs + READ KEYS, then per preempt
// sg_turs + PREEMPT AND ABORT, then per check sg_turs + READ KEYS and sg_turs + READ RESERVATION:
// 8 commands).  Also one PR IN on an already open session (the floor).  Not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "scsi_targets.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"

using namespace stockade;
using namespace stockade::scsitest;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kKeyA = 0xaa01, kKeyB = 0xbb02;
constexpr int kFenceScsiStepsPerDevice = 8;

double ms_since(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::string iqn(const std::string &node)
{
    return "iqn.2024-01.bench.stockade:" + node;
}

struct Bench {
    Target &t;
    int runs;
    std::string bindir;
    const AgentInfo *agent = nullptr;

    RawParams params(const std::string &node, int luns) const
    {
        return {{"devices", t.urls(luns)}, {"initiator", iqn(node)}, {"local_node", node},
                {"keys", "node-a=aa01 node-b=bb02"}};
    }

    // Registers node-b's key again on every LUN from its own client (untimed, between fences).
    bool rearm(int luns)
    {
        auto b = data_path(t, iqn("node-b"), kKeyB, luns);
        if (!t.session_bound_registrations())
            for (int i = 0; i < luns; ++i)
                b->pr_out(i, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, kKeyB);
        return has_key(b->keys(luns - 1), kKeyB);
    }

    bool fenced(int luns)
    {
        PrClient o(t, iqn("observer"));
        for (int i = 0; i < luns; ++i)
            if (has_key(o.keys(i), kKeyB))
                return false;
        return true;
    }

    std::unique_ptr<AgentSession> open_session(const std::string &node, int luns)
    {
        auto p = resolve_params(*agent, params(node, luns), UnknownParams::Reject);
        if (!p)
            return nullptr;
        SessionOptions o;
        o.isolate = false;
        auto s = make_session(*agent, o);
        if (!s->open(*p, 10s).ok())
            return nullptr;
        return s;
    }

    // One fence, login included, in-process.
    std::vector<double> library_login_included(int luns)
    {
        std::vector<double> out;
        for (int r = 0; r < runs; ++r) {
            if (!rearm(luns))
                return {};
            auto t0 = Clock::now();
            auto s = open_session("node-a", luns);
            bool ok = s && s->power(PowerAction::Off, "node-b", 30s).ok();
            if (s)
                s->close();
            double ms = ms_since(t0);
            if (!ok || !fenced(luns))
                return {};
            out.push_back(ms);
        }
        return out;
    }

    std::vector<double> library_login_excluded(int luns)
    {
        std::vector<double> out;
        auto s = open_session("node-a", luns);
        if (!s || !s->monitor(30s).ok()) // logs in
            return {};
        for (int r = 0; r < runs; ++r) {
            if (!rearm(luns))
                return {};
            auto t0 = Clock::now();
            bool ok = s->power(PowerAction::Off, "node-b", 30s).ok();
            double ms = ms_since(t0);
            if (!ok || !fenced(luns))
                return {};
            out.push_back(ms);
        }
        s->close();
        return out;
    }

    std::vector<double> cli(int luns)
    {
        std::vector<double> out;
        for (int r = 0; r < runs; ++r) {
            if (!rearm(luns))
                return {};
            auto t0 = Clock::now();
            auto res = test::run({bindir + "/fence_stockade_scsi", "-o", "off", "-n", "node-b",
                                  "--devices=" + t.urls(luns), "--initiator=" + iqn("node-a"), "--local-node=node-a",
                                  "--keys=node-a=aa01 node-b=bb02"},
                                 "", 60s);
            double ms = ms_since(t0);
            if (res.exit_code != 0 || !fenced(luns)) {
                std::fprintf(stderr, "cli fence failed: %s%s\n", res.out.c_str(), res.err.c_str());
                return {};
            }
            out.push_back(ms);
        }
        return out;
    }

    // One libiscsi CLI command: process + login + INQUIRY + logout (fence_scsi's per-step shape).
    std::vector<double> one_command_process()
    {
        std::vector<double> out;
        for (int r = 0; r < runs; ++r) {
            auto t0 = Clock::now();
            auto res = test::run({"/usr/bin/iscsi-inq", "-i", iqn("probe"), t.url(0)}, "", 30s);
            double ms = ms_since(t0);
            if (res.exit_code != 0)
                return {};
            out.push_back(ms);
        }
        return out;
    }

    std::vector<double> pr_in_on_open_session()
    {
        std::vector<double> out;
        PrClient c(t, iqn("probe"));
        for (int r = 0; r < std::max(runs, 20); ++r) {
            auto t0 = Clock::now();
            bool ok = c.keys(0).has_value();
            double ms = ms_since(t0);
            if (!ok)
                return {};
            out.push_back(ms);
        }
        return out;
    }
};

std::string cell(const std::vector<double> &v)
{
    return v.empty() ? "failed" : fmt::format("{:.2f} ms", median(v));
}

int bench_target(Target &t, int runs, const std::string &bindir)
{
    Bench b{t, runs, bindir};
    AgentRegistry reg;
    auto a = reg.find("scsi");
    if (!a) {
        std::fprintf(stderr, "scsi agent not found: %s\n", a.error().message.c_str());
        return 1;
    }
    b.agent = *a;
    // Both nodes unfenced once (node-a holds the reservation) on all 8 LUNs.
    for (const char *n : {"node-a", "node-b"}) {
        auto s = b.open_session(n, 8);
        if (!s || !s->power(PowerAction::On, n, 30s).ok()) {
            std::fprintf(stderr, "unfencing %s failed\n", n);
            return 1;
        }
        s->close();
    }
    auto step = b.one_command_process();
    auto floor = b.pr_in_on_open_session();
    std::printf("\n### %s: median of %d fences (victim re-registered between runs, untimed)\n\n", t.name().c_str(), runs);
    std::printf("| LUNs | stockade library, login included | stockade library, login excluded | fence_stockade_scsi (process) "
                "| one-process-per-step estimate (%d x LUNs x iscsi-inq) |\n|---|---|---|---|---|\n",
                kFenceScsiStepsPerDevice);
    for (int luns : {1, 8}) {
        auto inc = b.library_login_included(luns);
        auto exc = b.library_login_excluded(luns);
        auto cli = b.cli(luns);
        std::string est = step.empty() ? "failed"
                                       : fmt::format("{:.1f} ms", median(step) * kFenceScsiStepsPerDevice * luns);
        std::printf("| %d | %s | %s | %s | %s |\n", luns, cell(inc).c_str(), cell(exc).c_str(), cell(cli).c_str(),
                    est.c_str());
    }
    std::printf("\nper step: `iscsi-inq` (process + login + INQUIRY + logout) %s; one READ KEYS on an open "
                "session %s\n",
                cell(step).c_str(), fmt::format("{:.3f} ms", median(floor)).c_str());
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    int runs = 7;
    bool istgt = false;
    std::string bindir;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc)
            runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--istgt")
            istgt = true;
        else if (a == "--bindir" && i + 1 < argc)
            bindir = argv[++i];
        else {
            std::fprintf(stderr, "usage: scsi_bench --bindir DIR [--runs N] [--istgt]\n");
            return 2;
        }
    }
    if (bindir.empty()) {
        std::fprintf(stderr, "scsi_bench: --bindir is required (the build's bin/)\n");
        return 2;
    }
    test::TempDir d;
    TgtTarget tgt(d.path().string());
    if (auto why = tgt.start(8); !why.empty()) {
        std::fprintf(stderr, "tgt cannot run: %s\n", why.c_str());
        return 1;
    }
    int rc = bench_target(tgt, runs, bindir);
    tgt.stop();
    if (istgt && rc == 0) {
        test::TempDir d2;
        IstgtTarget it(d2.path().string());
        if (auto why = it.start(8); !why.empty()) {
            std::fprintf(stderr, "istgt cannot run: %s\n", why.c_str());
            return 1;
        }
        rc = bench_target(it, std::min(runs, 3), bindir);
        it.stop();
    }
    return rc;
}
