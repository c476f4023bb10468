// The command agent (LifeKeeper stonith.conf lines as a device), the stonith.conf importer, and
// the configuration rules of the quorum/witness sections -- all through real processes.
#include <catch2/catch.hpp>

#include <signal.h>
#include <thread>

#include "stockade/config.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

struct Device {
    test::TempDir dir;
    Logger logger;
    std::vector<std::string> lines;
    std::mutex mu;
    AgentRegistry reg;
    std::unique_ptr<AgentSession> session;

    Device(std::initializer_list<std::pair<std::string, std::string>> list, bool isolate = false)
    {
        RawParams params(list.begin(), list.end());
        logger.set_level(STOCKADE_LOG_DEBUG);
        logger.add_sink([this](int, std::string_view l) {
            std::lock_guard lock(mu);
            lines.emplace_back(l);
        });
        for (auto &[k, v] : params)
            for (size_t p; (p = v.find("@DIR@")) != std::string::npos;)
                v.replace(p, 5, dir.path().string());
        auto a = reg.find("command");
        REQUIRE(a);
        auto resolved = resolve_params(**a, params, UnknownParams::Reject);
        REQUIRE(resolved);
        SessionOptions o;
        o.isolate = isolate;
        o.logger = &logger;
        o.label = "cmd";
        session = make_session(**a, o);
        auto r = session->open(*resolved, 5s);
        INFO(r.message);
        REQUIRE(r.ok());
    }
    std::string all_logs()
    {
        std::lock_guard lock(mu);
        std::string s;
        for (auto &l : lines)
            s += l + "\n";
        return s;
    }
};

// A "power switch" kept in files: @DIR@/p.<target> holds on/off.
const std::string kOff = "/bin/sh -c 'echo off > @DIR@/p.$0' {target}";
const std::string kOn = "/bin/sh -c 'echo on > @DIR@/p.$0' {target}";
const std::string kStatus = "/bin/sh -c 'test \"$(cat @DIR@/p.$0)\" = off && exit 2; exit 0' {target}";

CommandResult stockade_cmd(const std::vector<std::string> &args)
{
    std::vector<std::string> argv{test::bin_path("stockade")};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, "", 60s);
}

} // namespace

TEST_CASE("off/on/status run their command lines; off is read back through status", "[quorum][command]")
{
    for (bool isolate : {false, true}) {
        Device d({{"off_command", kOff}, {"on_command", kOn}, {"status_command", kStatus}}, isolate);
        test::write_file(d.dir.file("p.node1"), "on\n");
        auto st = d.session->status("node1", 5s);
        REQUIRE(st.ok());
        CHECK(st.power_state == STOCKADE_POWER_ON);
        auto off = d.session->power(PowerAction::Off, "node1", 10s);
        INFO(off.message);
        REQUIRE(off.ok());
        CHECK(off.verified == STOCKADE_VERIFIED_OFF);
        CHECK(test::read_file(d.dir.file("p.node1")) == "off\n");
        CHECK(d.session->status("node1", 5s).power_state == STOCKADE_POWER_OFF);
        auto on = d.session->power(PowerAction::On, "node1", 10s);
        REQUIRE(on.ok());
        CHECK(test::read_file(d.dir.file("p.node1")) == "on\n");
        // reboot without reboot_command/command: off, confirm, on.
        auto rb = d.session->power(PowerAction::Reboot, "node1", 10s);
        REQUIRE(rb.ok());
        CHECK(rb.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
        d.session->close();
    }
}

TEST_CASE("an off command that lies is caught by status; failures carry the exit code", "[quorum][command]")
{
    SECTION("exit 0 but status still on")
    {
        Device d({{"off_command", "/bin/true"}, {"status_command", kStatus}});
        test::write_file(d.dir.file("p.node1"), "on\n");
        auto t0 = monotonic_ms();
        auto r = d.session->power(PowerAction::Off, "node1", 3s);
        CHECK(r.rc == STOCKADE_RC_TIMEOUT);
        CHECK(r.verified == 0);
        CHECK_THAT(r.message, Catch::Contains("exited 0 but status still says on"));
        CHECK(monotonic_ms() - t0 < 4000);
    }
    SECTION("non-zero exit")
    {
        Device d({{"command", "/bin/sh -c 'echo BMC says no >&2; exit 4'"}});
        auto r = d.session->power(PowerAction::Off, "node1", 5s);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK(r.verified == 0);
        CHECK_THAT(r.message, Catch::Contains("exited 4: BMC says no"));
    }
    SECTION("program missing")
    {
        Device d({{"command", "/nonexistent/fence-it now"}});
        auto r = d.session->power(PowerAction::Reboot, "node1", 5s);
        CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(r.message, Catch::Contains("cannot run /nonexistent/fence-it"));
    }
    SECTION("status convention: 0 on, 2 off, anything else unknown")
    {
        Device d({{"command", "/bin/true"}, {"status_command", "/bin/sh -c 'exit 3'"}});
        auto r = d.session->status("node1", 5s);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK(r.power_state == STOCKADE_POWER_UNKNOWN);
        CHECK_THAT(r.message, Catch::Contains("exited 3 (0 = on, 2 = off expected)"));
    }
    SECTION("no off command at all")
    {
        AgentRegistry reg;
        const AgentInfo &a = **reg.find("command");
        SessionOptions so;
        so.isolate = false;
        auto s = make_session(a, so);
        auto r = s->open(*resolve_params(a, {{"status_command", "/bin/true"}}, UnknownParams::Reject), 5s);
        CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(r.message, Catch::Contains("'command' or 'off_command' is required"));
    }
}

TEST_CASE("a hung command is killed with its whole process group at the deadline", "[quorum][command]")
{
    Device d({{"command", "/bin/sh -c 'sleep 30 & echo $! > @DIR@/child.pid; sleep 30; wait'"}});
    auto t0 = monotonic_ms();
    auto r = d.session->power(PowerAction::Off, "node1", 1500ms);
    auto took = monotonic_ms() - t0;
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK(r.verified == 0);
    CHECK_THAT(r.message, Catch::Contains("killed at the deadline"));
    CHECK(took >= 1400);
    CHECK(took < 3000);
    pid_t child = pid_t(std::atol(test::read_file(d.dir.file("child.pid")).c_str()));
    REQUIRE(child > 0);
    for (int i = 0; i < 50 && test::pid_alive(child); ++i)
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE(test::pid_alive(child));
}

TEST_CASE("a command that leaves a child holding its output returns at once; the child is killed", "[quorum][command]")
{
    Device d({{"command", "/bin/sh -c 'sleep 30 & echo $! > @DIR@/child.pid; echo powered off'"}});
    auto t0 = monotonic_ms();
    auto r = d.session->power(PowerAction::Off, "node1", 10s);
    INFO(r.message);
    CHECK(r.ok());
    CHECK(monotonic_ms() - t0 < 2000);
    pid_t child = pid_t(std::atol(test::read_file(d.dir.file("child.pid")).c_str()));
    REQUIRE(child > 0);
    for (int i = 0; i < 50 && test::pid_alive(child); ++i)
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE(test::pid_alive(child));
}

TEST_CASE("the target is one argument, never shell text; command lines stay out of the logs", "[quorum][command]")
{
    Device d({{"command", "/bin/sh -c 'printf %s \"$0\" > @DIR@/arg; echo done' {target} -P s3cretpw"}});
    std::string evil = "node1;touch " + d.dir.file("pwned");
    auto r = d.session->power(PowerAction::Off, evil, 5s);
    REQUIRE(r.ok());
    CHECK(test::read_file(d.dir.file("arg")) == evil);
    CHECK_FALSE(std::filesystem::exists(d.dir.file("pwned")));
    CHECK_THAT(d.all_logs(), !Catch::Contains("s3cretpw"));
    CHECK_THAT(r.message, !Catch::Contains("s3cretpw"));
}

TEST_CASE("import-stonith-conf: one command level per line, comments skipped, passwords warned about", "[quorum][import]")
{
    test::TempDir d;
    test::write_file(d.file("stonith.conf"),
                     "# LifeKeeper stonith.conf\n"
                     "\n"
                     "node1 /usr/bin/ipmitool -I lanplus -H 127.0.0.1 -U admin -P s3cret power reset\n"
                     "  node2   /bin/sh -c 'echo fenced {target} >> " + d.file("fenced") + "'\n"
                     "node2 /bin/false second try\n");
    auto r = stockade_cmd({"import-stonith-conf", d.file("stonith.conf")});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("stonith.conf:3: the command for node1 shows -P"));
    CHECK_THAT(r.err, !Catch::Contains("stonith.conf:4"));
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["devices"]["stonith-node1-1"]["agent"] == "command");
    CHECK(j["nodes"]["node2"]["levels"].size() == 2);
    CHECK(j["nodes"]["node2"]["levels"][0][0] == "stonith-node2-1");
    CHECK(j["nodes"]["node2"]["levels"][1][0] == "stonith-node2-2");
    // One pass only, and a short leash for the ipmitool line (no BMC listens here).
    j["escalation"] = {{"max_loops", 1}, {"retry_delay", 0}};
    j["devices"]["stonith-node1-1"]["timeout"] = 2;
    test::write_file(d.file("c.json"), j.dump());
    auto v = stockade_cmd({"validate", d.file("c.json")});
    INFO(v.out << v.err);
    CHECK(v.exit_code == 0);
    // The imported level really fences (level 1 of node2 is the echo line).
    auto f = stockade_cmd({"-c", d.file("c.json"), "fence", "node2", "--action", "off"});
    INFO(f.out << f.err);
    CHECK(f.exit_code == 0);
    CHECK(test::read_file(d.file("fenced")) == "fenced node2\n");
    // Secrets never reach the logs of a fence.
    auto g = stockade_cmd({"-v", "-c", d.file("c.json"), "fence", "node1"});
    CHECK(g.exit_code == 1);
    CHECK_THAT(g.out + g.err, !Catch::Contains("s3cret"));

    test::write_file(d.file("bad.conf"), "node1\n");
    auto b = stockade_cmd({"import-stonith-conf", d.file("bad.conf")});
    CHECK(b.exit_code == 2);
    CHECK_THAT(b.err, Catch::Contains("bad.conf:1: 'node1' has no command line"));
}

TEST_CASE("quorum and witness configuration errors are one line naming the field", "[quorum][config]")
{
    const std::string devices = R"("devices": {"d": {"agent": "command", "params": {"command": "/bin/true"}}})";
    const std::string nodes = R"("nodes": {"n1": {"levels": [["d"]], "addresses": ["127.0.0.1"]}, "n2": {"levels": [["d"]]}})";
    struct Case {
        std::string sections, expect;
    } cases[] = {
        {R"("quorum": {"mode": "storage"})", "/quorum/mode: must be one of"},
        {R"("witness": {"mode": "storage"})", "/witness/mode: must be one of"},
        {R"("quorum": {"mode": "tcp_remote", "osu_command": ["/bin/true"]})", "/quorum/hosts: required when quorum mode is tcp_remote"},
        {R"("quorum": {"mode": "tcp_remote", "hosts": ["router"], "osu_command": ["/bin/true"]})", "/quorum/hosts/0: "},
        {R"("quorum": {"mode": "tcp_remote", "hosts": ["router:80"]})", "/quorum/osu_command: required when loss_action is osu"},
        {R"("quorum": {"mode": "majority", "osu_command": ["/bin/true"]})", "/nodes/n2/addresses: required when quorum mode is majority"},
        {R"("witness": {"mode": "remote_verify"})", "/nodes/n2/addresses: required when quorum mode is none and witness mode is remote_verify"},
        {R"("quorum": {"mode": "tcp_remote", "hosts": ["r:80"], "osu_command": ["true"]})", "/quorum/osu_command/0: 'true' must be an absolute path"},
        {R"("quorum": {"mode": "tcp_remote", "hosts": ["r:80"], "loss_action": "halt"})", "/quorum/loss_action: must be one of"},
        {R"("witness": {"mode": "none", "nodes": {"N1": {"addresses": ["x"]}}})", "/witness/nodes/N1: 'N1' is already a node"},
        {R"("witness": {"mode": "none", "nodes": {"w": {}}})", "/witness/nodes/w: missing required field 'addresses'"},
    };
    test::TempDir d;
    for (const auto &c : cases) {
        std::string text = "{\"local_node\": \"n1\", " + c.sections + ", " + devices + ", " + nodes + "}";
        INFO(text);
        test::write_file(d.file("c.json"), text);
        auto r = stockade_cmd({"validate", d.file("c.json")});
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.err, Catch::Contains(c.expect));
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    // local_node must be a member once a gate is on.
    test::write_file(d.file("c.json"), "{\"local_node\": \"zz\", \"quorum\": {\"mode\": \"tcp_remote\", \"hosts\": [\"r:80\"], "
                                       "\"osu_command\": [\"/bin/true\"]}, " + devices + ", " + nodes + "}");
    auto r = stockade_cmd({"validate", d.file("c.json")});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("/local_node: 'zz' is neither a node nor a witness node"));
    // "off" is LifeKeeper's synonym of "none"; a complete section validates.
    test::write_file(d.file("ok.json"),
                     "{\"local_node\": \"n1\", \"quorum\": {\"mode\": \"off\"}, \"witness\": {\"mode\": \"remote_verify\", "
                     "\"nodes\": {\"w\": {\"addresses\": [\"127.0.0.3\"]}}}, " + devices +
                         R"(, "nodes": {"n1": {"levels": [["d"]], "addresses": ["127.0.0.1"]}, "n2": {"levels": [["d"]], "addresses": ["127.0.0.2"]}}})");
    auto ok = stockade_cmd({"validate", d.file("ok.json")});
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
    auto example = stockade_cmd({"validate", test::source_path("examples/quorum-3node.json")});
    INFO(example.err);
    CHECK(example.exit_code == 0);
}

TEST_CASE("a refused fence exits 3 without touching any device", "[quorum][cli]")
{
    test::TempDir d;
    test::write_file(d.file("key"), "0123456789abcdef0123456789abcdef", 0600);
    test::write_file(d.file("osu.sh"), "#!/bin/sh\necho \"$STOCKADE_LOSS_ACTION $STOCKADE_NODE\" > " + d.file("osu.out") + "\n", 0755);
    int dead_port = test::free_tcp_port();
    std::string cfg = R"({"local_node": "n1", "cluster_name": "c",
        "quorum": {"mode": "tcp_remote", "hosts": ["127.0.0.1:)" + std::to_string(dead_port) + R"("], "timeout": 0.5,
                   "osu_command": ["/bin/sh", ")" + d.file("osu.sh") + R"("]},
        "devices": {"d": {"agent": "command", "params": {"command": "/bin/sh -c 'touch )" + d.file("touched") + R"('"}}},
        "nodes": {"n1": {"levels": [["d"]]}, "n2": {"levels": [["d"]]}}})";
    test::write_file(d.file("c.json"), cfg);
    auto r = stockade_cmd({"-c", d.file("c.json"), "fence", "n2"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains("fence n2 refused: refused by quorum: no quorum: 0 of 1"));
    CHECK_FALSE(std::filesystem::exists(d.file("touched")));
    CHECK(test::read_file(d.file("osu.out")) == "osu n1\n");
    // With a listener on the quorum host the same fence goes through.
    auto q = stockade_cmd({"-c", d.file("c.json"), "quorum"});
    CHECK(q.exit_code == 3);
    auto qj = stockade_cmd({"-c", d.file("c.json"), "quorum", "--json"});
    CHECK(qj.exit_code == 3);
    auto verdict = nlohmann::json::parse(qj.out);
    REQUIRE(verdict.is_array()); // --json is always an array: this node's one verdict
    REQUIRE(verdict.size() == 1);
    CHECK(verdict[0]["node"] == "n1");
    CHECK(verdict[0]["mode"] == "tcp_remote");
    CHECK(verdict[0]["quorate"] == false);
    CHECK(verdict[0]["votes"] == 0);
    CHECK(verdict[0]["total"] == 1);
    // fastkill without allow_self_fence: only the hook runs (this machine is not powered off).
    test::write_file(d.file("hook.sh"), "#!/bin/sh\necho \"$STOCKADE_LOSS_ACTION $STOCKADE_NODE $STOCKADE_REASON\" > " +
                                            d.file("hook.out") + "\n", 0755);
    auto fk = nlohmann::json::parse(cfg);
    fk["quorum"]["loss_action"] = "fastkill";
    fk["quorum"]["loss_hook"] = {"/bin/sh", d.file("hook.sh")};
    fk["quorum"].erase("osu_command");
    test::write_file(d.file("fk.json"), fk.dump());
    auto k = stockade_cmd({"-c", d.file("fk.json"), "fence", "n2"});
    INFO(k.out << k.err);
    CHECK(k.exit_code == 3);
    CHECK_THAT(k.out, Catch::Contains("loss action fastkill: loss_hook /bin/sh ran (exit 0); power off not done "
                                      "(allow_self_fence is false)"));
    CHECK_THAT(k.err, Catch::Contains("would power off this node now"));
    CHECK_THAT(test::read_file(d.file("hook.out")), Catch::StartsWith("fastkill n1 no quorum: 0 of 1"));
    CHECK_FALSE(std::filesystem::exists(d.file("touched")));
    auto help = stockade_cmd({"help"});
    CHECK_THAT(help.out + help.err, Catch::Contains("3 refused by quorum/witness"));
}
