// The real consumer: Pacemaker's fencer (pacemaker-fenced, stand-alone) runs fence_stockade_sim
// through a wrapper it finds in /usr/sbin, driven by stonith_admin: metadata, validate, register,
// monitor, unfence, fence, reboot, and a two-level topology whose first level (an unreachable
// simulated switch) fails so that the second one must fence.  Every claim is checked against the
// process table (the simulated node is a process).  The fencer runs in a namespace of its own
// (fencer_fixture.hpp), is stopped by PID and the wrapper removed, whatever happens.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "fencer_fixture.hpp"

using namespace stockade;
using stockade::test::FencerFixture;
using namespace std::chrono_literals;

TEST_CASE("pacemaker-fenced drives fence_stockade_sim through stonith_admin", "[frontend][pacemaker]")
{
    FencerFixture f;
    std::string skip = f.start();
    if (!skip.empty()) {
        WARN("SKIPPED: " << skip << " (the stdin/metadata contract is tested directly in the other cases)");
        return;
    }
    const std::string &W = f.wrapper_name;
    const std::string &st = f.state_dir;
    INFO("fencer log: " << f.log);

    // Metadata, as the fencer and pcs read it.  The fencer adds its own start/stop actions (with
    // timeout attributes metadata.rng does not know), so the schema is checked on our output in
    // the other test file; here: the fencer parsed it and kept what it decides on.
    auto meta = f.admin({"--metadata", "-a", W});
    REQUIRE(meta.exit_code == 0);
    CHECK(meta.out.find("<action name=\"reboot\"") != std::string::npos);
    CHECK(meta.out.find("<action name=\"list\"") != std::string::npos);
    CHECK(meta.out.find("<parameter name=\"plug\"") != std::string::npos);
    CHECK(meta.out.find("<parameter name=\"state_dir\"") != std::string::npos);
    CHECK(f.admin({"--validate", "-a", W, "-o", "state_dir=" + st}).exit_code == 0);
    auto bad = f.admin({"--validate", "-a", W, "-o", "state_dir=relative"});
    CHECK(bad.exit_code != 0);

    // One good device.
    REQUIRE(f.admin({"-R", "st-good", "-a", W, "-o", "state_dir=" + st, "-o", "pcmk_host_list=simnode1 simnode3"})
                .exit_code == 0);
    CHECK(f.admin({"-Q", "st-good", "-t", "20"}).exit_code == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t up = f.sim_node("simnode1");
    REQUIRE(up > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "20"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(up));
    CHECK(f.sim_node("simnode1") == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t again = f.sim_node("simnode1");
    REQUIRE(again > 0);
    CHECK(f.admin({"-B", "simnode1", "-t", "20"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(again));
    pid_t rebooted = f.sim_node("simnode1");
    CHECK(rebooted > 0);
    CHECK(rebooted != again);

    if (!f.corosync_skip.empty()) {
        f.report();
        WARN("SKIPPED topology (the stand-alone fencer ignores it): " << f.corosync_skip);
        return;
    }

    // An unreachable switch: monitor fails, and as level 1 it fails so level 2 must fence.
    REQUIRE(f.admin({"-R", "st-bad", "-a", W, "-o", "state_dir=" + st, "-o", "reachable=0", "-o",
                     "pcmk_host_list=simnode1 simnode3"})
                .exit_code == 0);
    CHECK(f.admin({"-Q", "st-bad", "-t", "20"}).exit_code != 0);
    REQUIRE(f.admin({"-r", "simnode1", "-i", "1", "-v", "st-bad"}).exit_code == 0);
    REQUIRE(f.admin({"-r", "simnode1", "-i", "2", "-v", "st-good"}).exit_code == 0);
    pid_t before = f.sim_node("simnode1");
    REQUIRE(before > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(before));
    CHECK(f.sim_node("simnode1") == 0);
    std::string log = test::read_file(f.log);
    CHECK(log.find("using st-bad returned 1") != std::string::npos);
    CHECK(log.find("using st-good returned 0") != std::string::npos);
    CHECK(f.admin({"-B", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK(f.sim_node("simnode1") > 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "30"}).exit_code == 0); // already on: level 2 says so
    CHECK(f.sim_node("simnode1") > 0);

    // Only a failing level: the fence fails, and the node is untouched.
    CHECK(f.admin({"-U", "simnode3", "-t", "20"}).exit_code == 0); // no topology for simnode3 yet: st-good
    pid_t n3 = f.sim_node("simnode3");
    REQUIRE(n3 > 0);
    REQUIRE(f.admin({"-r", "simnode3", "-i", "1", "-v", "st-bad"}).exit_code == 0);
    CHECK(f.admin({"-F", "simnode3", "-t", "15"}).exit_code != 0);
    CHECK(test::pid_alive(n3));
    CHECK(test::read_file(f.log).find("All fencing options targeting simnode3") != std::string::npos);

    f.report();
}

TEST_CASE("pacemaker-fenced runs a node's stockade levels through fence_stockade config=FILE", "[frontend][pacemaker]")
{
    FencerFixture f;
    std::string skip = f.start("fence_stockade");
    if (!skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    const std::string &W = f.wrapper_name;
    const std::string &st = f.state_dir;
    // Level 1 cannot reach its switch; level 2 fences.  The fencer knows one device, st-cfg.
    std::string cfg = f.dir.file("stockade.json");
    test::write_file(cfg, R"({"escalation": {"max_loops": 1},
      "devices": {"dead": {"agent": "sim", "params": {"state_dir": ")" + st + R"(", "reachable": false}},
                  "good": {"agent": "sim", "params": {"state_dir": ")" + st + R"("}}},
      "nodes": {"simnode1": {"levels": [["dead"], ["good"]]}}})");
    INFO("fencer log: " << f.log);
    CHECK(f.admin({"--validate", "-a", W, "-o", "config=" + cfg}).exit_code == 0);
    REQUIRE(f.admin({"-R", "st-cfg", "-a", W, "-o", "config=" + cfg, "-o", "pcmk_host_list=simnode1"}).exit_code == 0);
    CHECK(f.admin({"-Q", "st-cfg", "-t", "20"}).exit_code == 0);
    CHECK(f.admin({"-U", "simnode1", "-t", "20"}).exit_code == 0);
    pid_t up = f.sim_node("simnode1");
    REQUIRE(up > 0);
    CHECK(f.admin({"-F", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(test::pid_alive(up)); // the node's process is gone: really fenced, by level 2
    CHECK(f.sim_node("simnode1") == 0);
    CHECK(test::read_file(f.log).find("using st-cfg returned 0") != std::string::npos);
    CHECK(f.admin({"-B", "simnode1", "-t", "30"}).exit_code == 0);
    CHECK(f.sim_node("simnode1") > 0); // rebooted: a new node process
    // A node the file does not know is a failure, never a success.
    CHECK(f.admin({"-F", "othernode", "-t", "20"}).exit_code != 0);
    f.report();
}
