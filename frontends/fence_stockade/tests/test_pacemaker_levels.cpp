// Issue 18, items 3 and 4, through the real consumer: pacemaker-fenced with a fencing topology of
// the OSC2013 example's three levels -- fence_stockade_stonith_helper, fence_stockade_libvirt,
// fence_stockade_meatware -- every agent with its defaults, and the Pacemaker settings
// `validate-all` advises for the waiting ones (pcmk_off_timeout from the agent's own need,
// pcmk_off_retries=1).  The helper finds the node still answering (127.0.0.1) and, as the standby
// node, waits its standby_wait_time; libvirt's test:///default has no such domain; the operator
// confirms with stockade-meatclient a minute after the fence began.  Checked: stonith_admin reports
// success only after that answer; the one request FIFO the operator answered was the same object
// for the whole meatware level (a single long attempt, no retry that replaced it); the helper's
// first line in the fencer's log names its real reason.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <regex>
#include <string>
#include <sys/stat.h>
#include <thread>

#include <fmt/format.h>

#include "fencer_fixture.hpp"

using namespace stockade;
using stockade::test::FencerFixture;
using namespace std::chrono_literals;

namespace {

size_t count_of(const std::string &hay, const std::string &needle)
{
    size_t n = 0;
    for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size()))
        ++n;
    return n;
}

// The "pcmk_off_timeout=NNNs pcmk_off_retries=1" validate-all advises, or "" when it advises none.
std::string advised_off_settings(const CommandResult &validate)
{
    std::smatch m;
    std::string text = validate.out + validate.err;
    static const std::regex kAdvice("pcmk_off_timeout=([0-9]+)s pcmk_off_retries=1");
    return std::regex_search(text, m, kAdvice) ? m[0].str() : std::string();
}

long advised_seconds(const std::string &settings)
{
    return settings.empty() ? 0 : std::atol(settings.c_str() + std::string("pcmk_off_timeout=").size());
}

// What the operator's side saw of the request FIFO /run/meatware.<node> while the fence ran.
struct FifoWatch {
    double first_seen_s = -1; // since the fence began
    double confirmed_s = -1;  // when the operator's answer was written
    ino_t first_inode = 0;
    int inodes_seen = 0;      // distinct FIFOs: 1 = one attempt held the request the whole time
    int vanished = 0;         // times the path was gone again after it had appeared
    int meatclient_rc = -1;
    std::string meatclient_out;
};

} // namespace

TEST_CASE("pacemaker-fenced: helper, libvirt, meatware levels with their defaults; the operator confirms a minute in",
          "[frontend][pacemaker][deadlines]")
{
    FencerFixture f;
    f.keep_log_as = "frontend-fenced-levels.log";
    std::string skip = f.start("fence_stockade_stonith_helper");
    if (!skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    if (!f.corosync_skip.empty()) {
        WARN("SKIPPED: fencing topology needs corosync: " << f.corosync_skip);
        return;
    }
    INFO("fencer log: " << f.log);
    const std::string helper = f.wrapper_name;
    const std::string hypervisor = f.add_wrapper("fence_stockade_libvirt");
    const std::string operator_ = f.add_wrapper("fence_stockade_meatware");
    std::random_device rd;
    const std::string node = fmt::format("dlnode{}x{:04x}", ::getpid(), rd() & 0xffff);
    const std::string fifo = "/run/meatware." + node;
    REQUIRE(::access(fifo.c_str(), F_OK) != 0);

    // The helper: the victim still answers (127.0.0.1 in the fencer's namespace), and this node is
    // the standby one, so it waits standby_wait_time (25 s default) before giving up.
    const std::vector<std::string> helper_params = {"-o", "hostlist=" + node, "-o", "dead_check_target=127.0.0.1",
                                                    "-o", "standby_check_command=exit 1"};
    const std::vector<std::string> hypervisor_params = {"-o", "hypervisor_uri=test:///default"};
    const std::vector<std::string> operator_params = {"-o", "hostlist=" + node};
    auto with = [](std::vector<std::string> a, const std::vector<std::string> &b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };

    // What validate-all advises, as an admin reads it from stonith_admin --validate.
    auto v_helper = f.admin(with({"--validate", "-a", helper}, helper_params));
    auto v_hyp = f.admin(with({"--validate", "-a", hypervisor}, hypervisor_params));
    auto v_op = f.admin(with({"--validate", "-a", operator_}, operator_params));
    INFO("validate: " << v_helper.out << v_helper.err << v_op.out << v_op.err);
    REQUIRE(v_helper.exit_code == 0);
    REQUIRE(v_hyp.exit_code == 0);
    REQUIRE(v_op.exit_code == 0);
    const std::string helper_advice = advised_off_settings(v_helper);
    const std::string operator_advice = advised_off_settings(v_op);
    CHECK(advised_off_settings(v_hyp).empty()); // a plain power device: no advice
    REQUIRE_FALSE(helper_advice.empty());
    REQUIRE_FALSE(operator_advice.empty());
    CHECK(advised_seconds(helper_advice) >= 5 + 10 + 25); // death check + standby check + standby wait
    CHECK(advised_seconds(operator_advice) >= 600);       // meatware's default wait for the operator

    // The cluster configuration, with the advice applied as given.
    auto settings = [](const std::string &advice) {
        std::vector<std::string> o;
        for (size_t at = 0, sp; at < advice.size(); at = sp + 1) {
            sp = advice.find(' ', at);
            if (sp == std::string::npos)
                sp = advice.size();
            o.push_back("-o");
            o.push_back(advice.substr(at, sp - at));
        }
        return o;
    };
    REQUIRE(f.admin(with(with({"-R", "helper", "-a", helper, "-o", "pcmk_host_list=" + node}, helper_params),
                         settings(helper_advice)))
                .exit_code == 0);
    REQUIRE(f.admin(with({"-R", "hypervisor", "-a", hypervisor, "-o", "pcmk_host_list=" + node}, hypervisor_params))
                .exit_code == 0);
    REQUIRE(f.admin(with(with({"-R", "operator", "-a", operator_, "-o", "pcmk_host_list=" + node}, operator_params),
                         settings(operator_advice)))
                .exit_code == 0);
    REQUIRE(f.admin({"-r", node, "-i", "1", "-v", "helper"}).exit_code == 0);
    REQUIRE(f.admin({"-r", node, "-i", "2", "-v", "hypervisor"}).exit_code == 0);
    REQUIRE(f.admin({"-r", node, "-i", "3", "-v", "operator"}).exit_code == 0);

    // The operator: watches the request FIFO from the start, and answers 60 s after the fence began.
    const auto t0 = std::chrono::steady_clock::now();
    auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    FifoWatch w;
    std::atomic<bool> stop{false};
    std::thread operator_thread([&] {
        bool present = false;
        ino_t last = 0;
        while (!stop.load() && since() < 60.0) {
            struct stat st {};
            if (::lstat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
                if (w.first_seen_s < 0) {
                    w.first_seen_s = since();
                    w.first_inode = st.st_ino;
                }
                if (!present || st.st_ino != last)
                    ++w.inodes_seen;
                present = true;
                last = st.st_ino;
            } else if (present) {
                present = false;
                ++w.vanished;
            }
            std::this_thread::sleep_for(50ms);
        }
        if (stop.load())
            return;
        w.confirmed_s = since();
        auto r = test::run({test::bin_path("stockade-meatclient"), "-c", node, "--yes"}, "", 20s);
        w.meatclient_rc = r.exit_code.value_or(-1);
        w.meatclient_out = r.out + r.err;
    });
    auto fence = f.admin({"-F", node, "-t", "60"}, 150s);
    const double fence_s = since();
    stop.store(true);
    operator_thread.join();
    f.report("frontend-pacemaker-levels-timings.txt");

    const std::string log = test::read_file(f.log);
    INFO("stonith_admin -F: rc " << fence.exit_code.value_or(-1) << " " << fence.out << fence.err);
    INFO("meatclient at " << w.confirmed_s << " s: rc " << w.meatclient_rc << " " << w.meatclient_out);
    INFO("FIFO first seen at " << w.first_seen_s << " s; " << w.inodes_seen << " FIFO(s), vanished " << w.vanished
                               << " time(s); fence returned at " << fence_s << " s");
    INFO("fencer log (tail): " << FencerFixture::tail(log));

    // Test 1: the operator who confirms a minute in succeeds, and stonith_admin says so.
    CHECK(w.meatclient_rc == 0);
    CHECK(fence.exit_code == 0);
    CHECK(fence_s >= w.confirmed_s); // success only once the operator had answered
    CHECK(::access(fifo.c_str(), F_OK) != 0); // the request is gone once answered
    auto history = f.admin({"-H", node, "--verbose"});
    CHECK(history.out.find("turning off of " + node + " successful") != std::string::npos);
    CHECK(log.find("targeting " + node + " using helper returned 1") != std::string::npos);
    CHECK(log.find("targeting " + node + " using hypervisor returned 1") != std::string::npos);
    CHECK(log.find("targeting " + node + " using operator returned 0") != std::string::npos);

    // Test 2 (pcmk_off_retries=1, as advised): the answer, ~35 s into the meatware level -- past
    // the 25 s after which a capped first attempt used to end and Pacemaker's retry replaced the
    // FIFO -- reached the one request that had been waiting since the level began.
    CHECK(w.first_seen_s >= 20.0); // the helper's standby wait ran first, not cut to nothing
    CHECK(w.inodes_seen == 1);
    CHECK(w.vanished == 0);
    CHECK(w.confirmed_s - w.first_seen_s > 10.0); // ~34 s here; a loaded machine only starts it later
    CHECK(count_of(log, "Attempt 2 to execute " + operator_) == 0);
    CHECK(count_of(log, "perform 'off' action targeting " + node + " using operator") == 1);
    CHECK(count_of(log, "Attempt 2 to execute " + helper) == 0); // the standby wait ran once

    // Item 4 through the fencer: the helper's first line names the real reason (the node still
    // answers), never fence-agents' "Timed out waiting to power OFF".
    std::smatch first;
    REQUIRE(std::regex_search(log, first, std::regex(helper + R"(\[[0-9]+\] stderr: \[ ([^\n]*))")));
    CHECK_THAT(first[1].str(), Catch::Contains("Failed: " + node + " is not known to be dead") &&
                                   Catch::Contains("127.0.0.1 answered"));
    CHECK(log.find("Timed out waiting to power OFF") == std::string::npos);

    // What the admin sees of it without the fencer's log: a node whose only level is this helper
    // (on the active node: no standby wait) fails, and stonith_admin's answer and the fencing
    // history never speak of a timeout.
    const std::string node2 = node + "b";
    REQUIRE(f.admin({"-R", "helper2", "-a", helper, "-o", "pcmk_host_list=" + node2, "-o", "hostlist=" + node2, "-o",
                     "dead_check_target=127.0.0.1", "-o", "standby_check_command=true", "-o", "pcmk_off_retries=1"})
                .exit_code == 0);
    REQUIRE(f.admin({"-r", node2, "-i", "1", "-v", "helper2"}).exit_code == 0);
    auto refused = f.admin({"-F", node2, "-t", "30"});
    auto refused_history = f.admin({"-H", node2, "--verbose"});
    INFO("stonith_admin -F " << node2 << ": " << refused.out << refused.err << "; history: " << refused_history.out);
    CHECK(refused.exit_code != 0);
    CHECK((refused.out + refused.err + refused_history.out).find("imed out") == std::string::npos);
    WARN("helper-only node: stonith_admin -F says: " << refused.out << refused.err << "; -H: " << refused_history.out);
    std::string log2 = test::read_file(f.log);
    CHECK(log2.find("Timed out waiting to power OFF") == std::string::npos);

    // The metadata an admin reads (pcs stonith describe) says the same for the waiting agents.
    CHECK(f.admin({"--metadata", "-a", operator_}).out.find("pcmk_off_retries=1") != std::string::npos);
    CHECK(f.admin({"--metadata", "-a", helper}).out.find("pcmk_off_retries=1") != std::string::npos);
    CHECK(f.admin({"--metadata", "-a", hypervisor}).out.find("pcmk_off_retries") == std::string::npos);

    // Nothing of ours is left running: every agent process had the fixture's run dir in its environment.
    for (int i = 0; i < 50 && !test::processes_exposing(f.dir.file("run")).empty(); ++i)
        std::this_thread::sleep_for(100ms);
    CHECK(test::processes_exposing(f.dir.file("run")).empty());
    WARN(fmt::format("three levels through pacemaker-fenced: FIFO from {:.1f} s, operator at {:.1f} s, "
                     "stonith_admin success at {:.1f} s; advised {} / {}",
                     w.first_seen_s, w.confirmed_s, fence_s, helper_advice, operator_advice));
}
