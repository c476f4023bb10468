// stonith_helper and sfex_wrapper against real peers: ICMP to hosts in network namespaces the
// test creates (veth pairs carrying 127.0.10.x, plus IPv6 with %iface), links taken down and
// namespaces deleted to make hosts die; standby waits measured on the clock; two simulated nodes
// sharing one SFEX image fencing each other through the wrapper, with the test agent as the real
// device (its journal records the order in which the shots landed).
//
// 127/8 is local in the root namespace, so the death-check cases run the agent inside the
// "client" namespace through helper_agent_driver under `ip netns exec`.  Cases that need a live
// address only use 127.0.0.1 in the root namespace.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "helper_test_support.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "stockade/sfex.hpp"

using namespace stockade;
using namespace stockade::test;
namespace sx = stockade::sfex;
using namespace std::chrono_literals;

namespace {

struct Run {
    OpResult result;
    std::vector<std::string> logs;
    int64_t elapsed_ms = 0;
    bool has_log(const std::string &needle) const
    {
        for (auto &l : logs)
            if (l.find(needle) != std::string::npos)
                return true;
        return false;
    }
    std::string all_logs() const
    {
        std::string s;
        for (auto &l : logs)
            s += l + "\n";
        return s;
    }
};

// Opens `agent` isolated (with a registry, so the wrapper can invoke its real agent), runs one
// action and closes; log lines are collected.
Run run_agent(const AgentRegistry &reg, const std::string &agent, const RawParams &raw, uint32_t action,
              const std::string &target, Millis timeout = 60s)
{
    Run out;
    auto a = reg.find(agent);
    REQUIRE(a.ok());
    auto params = resolve_params(**a, raw, UnknownParams::Reject);
    if (!params) {
        out.result.rc = params.error().rc;
        out.result.message = params.error().message;
        return out;
    }
    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    std::mutex mu;
    logger.add_sink([&](int, std::string_view line) {
        std::lock_guard g(mu);
        out.logs.emplace_back(line);
    });
    SessionOptions o;
    o.isolate = true;
    o.logger = &logger;
    o.label = agent;
    o.registry = &reg;
    auto s = make_session(**a, o);
    auto t0 = std::chrono::steady_clock::now();
    out.result = s->open(*params, 10s);
    if (out.result.ok()) {
        if (action == 0)
            out.result = s->status(target, timeout);
        else
            out.result = s->power(PowerAction(action), target, timeout);
    }
    s->close();
    out.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

std::vector<std::string> lines_of(const std::string &path)
{
    std::vector<std::string> v;
    std::ifstream f(path);
    for (std::string l; std::getline(f, l);)
        if (!l.empty())
            v.push_back(l);
    return v;
}

// The level that fenced, from `stockade --json fence` (0 when not fenced or unparsable).
int fenced_level(const std::string &json_out)
{
    auto j = nlohmann::json::parse(json_out, nullptr, false);
    if (j.is_array() && !j.empty())
        j = j[0];
    if (!j.is_object() || j.value("result", "") != "fenced")
        return 0;
    return j.value("level", 0);
}

DriverResult drive(const NetLab &lab, const std::vector<std::string> &args)
{
    std::vector<std::string> argv = {HELPER_DRIVER};
    argv.insert(argv.end(), args.begin(), args.end());
    return parse_driver_output(lab.in_client(argv));
}

std::string ip_of(const NetLab &lab, std::initializer_list<int> hosts)
{
    std::string s;
    for (int i : hosts)
        s += (s.empty() ? "" : ",") + lab.host_ip(i);
    return s;
}

} // namespace

TEST_CASE("death check with real ICMP between network namespaces", "[helper][icmp]")
{
    std::string why;
    auto lab = NetLab::create(3, why);
    if (!lab) {
        WARN("SKIPPED: cannot create network namespaces here: " << why);
        return;
    }
    // Sanity: the namespaces really talk (an independent ICMP client).
    REQUIRE(lab->in_client({"ping", "-c1", "-W2", lab->host_ip(0)}).exit_code == 0);
    const std::string all = ip_of(*lab, {0, 1, 2});
    auto helper = [&](const std::string &targets, const std::string &trials = "2") {
        return drive(*lab, {"stonith_helper", "off", "victim", "hostlist=victim", "dead_check_target=" + targets,
                            "dead_check_trialcount=" + trials, "run_standby_wait=0"});
    };

    SECTION("addresses up: alive, at the first echo round, so the helper fails for escalation")
    {
        auto r = helper(all);
        INFO(r.raw_out << r.raw_err);
        REQUIRE(r.ran);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK(r.verified == 0);
        CHECK_THAT(r.message, Catch::Contains("is not known to be dead") && Catch::Contains("answered echo round 1"));
        CHECK_THAT(r.raw_err, Catch::Contains("raw sockets"));
        CHECK(r.elapsed_ms < 1000);
    }
    SECTION("unprivileged ICMP datagram sockets are used where ping_group_range allows them")
    {
        // This machine's default ("1 0") forbids them, so the raw-socket path is what the other
        // sections exercise; the sysctl is per namespace.
        REQUIRE(lab->in_client({"sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"}).exit_code == 0);
        auto r = helper(all);
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK_THAT(r.raw_err, Catch::Contains("datagram (ping) sockets"));
        for (int i = 0; i < 3; ++i)
            REQUIRE(lab->set_host_link(i, false));
        r = helper(all, "1");
        CHECK(r.rc == STOCKADE_RC_OK);
        CHECK(r.verified == STOCKADE_VERIFIED_OFF);
    }
    SECTION("a firewall refusing our echoes is an error, never 'dead'")
    {
        if (!which("iptables")) {
            WARN("SKIPPED: iptables not installed");
            return;
        }
        REQUIRE(lab->in_client({"iptables", "-A", "OUTPUT", "-p", "icmp", "-j", "DROP"}).exit_code == 0);
        auto r = helper(all, "2");
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK(r.verified == 0);
        CHECK_THAT(r.message, Catch::Contains("death check failed") && Catch::Contains("Operation not permitted"));
    }
    SECTION("one of three alive wins, whichever it is")
    {
        for (int live = 0; live < 3; ++live) {
            for (int i = 0; i < 3; ++i)
                REQUIRE(lab->set_host_link(i, i == live));
            auto r = helper(all, "3");
            INFO("live host " << live << ": " << r.raw_out << r.raw_err);
            REQUIRE(r.ran);
            CHECK(r.rc == STOCKADE_RC_FAILED);
            CHECK_THAT(r.message, Catch::Contains(lab->host_ip(live) + " answered"));
        }
    }
    SECTION("interfaces down: all targets are dead -> fenced, after trialcount rounds")
    {
        for (int i = 0; i < 3; ++i)
            REQUIRE(lab->set_host_link(i, false));
        auto r = helper(all, "2");
        INFO(r.raw_out << r.raw_err);
        REQUIRE(r.ran);
        CHECK(r.rc == STOCKADE_RC_OK);
        CHECK(r.verified == STOCKADE_VERIFIED_OFF);
        CHECK_THAT(r.raw_err, Catch::Contains("all targets are dead"));
        CHECK(r.elapsed_ms >= 1900);
        CHECK(r.elapsed_ms < 3500);
        // And it comes back: one link up again is alive again.
        REQUIRE(lab->set_host_link(1, true));
        CHECK(helper(all, "2").rc == STOCKADE_RC_FAILED);
    }
    SECTION("namespaces deleted: dead; the helper never reports fenced while one answers")
    {
        REQUIRE(lab->delete_host(0));
        REQUIRE(lab->delete_host(2));
        auto r = helper(all, "2");
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_FAILED); // host 1 still answers
        REQUIRE(lab->delete_host(1));
        r = helper(all, "2");
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_OK);
        CHECK(r.verified == STOCKADE_VERIFIED_OFF);
    }
    SECTION("IPv6 with a %iface suffix")
    {
        auto h = lab->host_ns(0);
        REQUIRE(sh({"ip", "netns", "exec", h, "ip", "-6", "addr", "add", "fd00:10::6/64", "dev", NetLab::host_if(0),
                    "nodad"}).exit_code == 0);
        REQUIRE(lab->in_client({"ip", "-6", "addr", "add", "fd00:10::5/64", "dev", "vc0", "nodad"}).exit_code == 0);
        auto r = helper("fd00:10::6%vc0", "3");
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK_THAT(r.message, Catch::Contains("fd00:10::6%vc0 answered"));
        REQUIRE(lab->set_host_link(0, false));
        r = helper("fd00:10::6%vc0", "2");
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_OK);
        CHECK(r.verified == STOCKADE_VERIFIED_OFF);
    }
    SECTION("sfex_wrapper: every nodeip silent -> success without calling the real agent")
    {
        TempDir d;
        std::string img = d.file("sfex.img");
        write_file(img, std::string(2048, '\0'));
        REQUIRE(sx::init(img, 1).ok());
        std::string journal = d.file("journal");
        for (int i = 0; i < 3; ++i)
            REQUIRE(lab->set_host_link(i, false));
        auto r = drive(*lab, {"sfex_wrapper", "off", "victim", "real_plugin=testagent",
                              "real_params=journal=" + journal, "device=" + img, "nodename=me",
                              "nodeip1=" + lab->host_ip(0), "nodeip2=" + lab->host_ip(1) + "," + lab->host_ip(2),
                              "dead_check_trialcount=2", "sby_wait=5"});
        INFO(r.raw_out << r.raw_err);
        CHECK(r.rc == STOCKADE_RC_OK);
        CHECK(r.verified == STOCKADE_VERIFIED_OFF);
        CHECK(r.elapsed_ms < 4000); // no standby wait
        CHECK(lines_of(journal).empty());
    }
}

TEST_CASE("stonith_helper parameters are validated with clear errors", "[helper]")
{
    AgentRegistry reg;
    auto bad = [&](const RawParams &p) { return run_agent(reg, "stonith_helper", p, STOCKADE_ACTION_OFF, "n1").result; };
    auto r = bad({{"hostlist", "n1"}, {"dead_check_target", "node1.example"}, {"standby_check_command", "true"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("'node1.example' is not a numeric IPv4 or IPv6 address"));
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "fe80::1%nosuchif0"}, {"standby_check_command", "true"}});
    CHECK_THAT(r.message, Catch::Contains("interface 'nosuchif0' does not exist"));
    r = bad({{"hostlist", "n1"}, {"standby_check_command", "true"}});
    CHECK_THAT(r.message, Catch::Contains("dead_check_target") && Catch::Contains("no address given"));
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "127.0.0.1"}});
    CHECK_THAT(r.message, Catch::Contains("set standby_check_command or sfex_device"));
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "127.0.0.1"}, {"run_standby_wait", "no"},
             {"dead_check_trialcount", "0"}});
    CHECK_THAT(r.message, Catch::Contains("'dead_check_trialcount': '0'"));
    r = bad({{"hostlist", "n1,n2"}, {"dead_check_target", "127.0.0.1"}, {"run_standby_wait", "0"}});
    CHECK(r.rc == STOCKADE_RC_FAILED); // valid; 127.0.0.1 answers
    r = run_agent(reg, "stonith_helper", {{"hostlist", "n1,n2"}, {"dead_check_target", "127.0.0.1"}, {"run_standby_wait", "0"}},
                  STOCKADE_ACTION_OFF, "N3").result;
    CHECK(r.rc == STOCKADE_RC_UNKNOWN_TARGET);
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "fe80::1"}, {"run_standby_wait", "0"}});
    CHECK_THAT(r.message, Catch::Contains("'fe80::1' is link-local: add %interface"));
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "127.0.0.1"}, {"run_standby_wait", "0"},
             {"run_quorum_check", "yes"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("'run_quorum_check': not supported"));
    r = bad({{"hostlist", "n1"}, {"dead_check_target", "127.0.0.1"}, {"run_standby_wait", "0"},
             {"run_online_check", "no"}, {"run_quorum_check", "no"}, {"quorum_check_wait_time", "10"}});
    CHECK(r.rc == STOCKADE_RC_FAILED); // a pm_extras configuration with the checks off loads

    auto a = reg.find("stonith_helper");
    REQUIRE(a.ok());
    // list = hostlist; monitor = pm_extras' status (validates, reads the SFEX device if set).
    auto params = resolve_params(**a, {{"hostlist", "n1, N2"}, {"dead_check_target", "127.0.0.1"},
                                       {"sfex_device", "/nonexistent/sfex"}}, UnknownParams::Reject);
    REQUIRE(params.ok());
    auto s = make_session(**a, SessionOptions{});
    REQUIRE(s->open(*params, 5s).ok());
    auto listed = s->list(5s);
    REQUIRE(listed.ok());
    REQUIRE(listed.targets.size() == 2);
    CHECK(listed.targets[1].name == "n2");
    auto mon = s->monitor(5s);
    CHECK(mon.rc == STOCKADE_RC_UNREACHABLE);
    CHECK_THAT(mon.message, Catch::Contains("can't open device /nonexistent/sfex"));
    s->close();
    CHECK_FALSE((*a)->can(STOCKADE_CAP_ON));
    CHECK((*a)->can(STOCKADE_CAP_OFF | STOCKADE_CAP_REBOOT | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR));
}

TEST_CASE("standby wait measured: the active node does not wait, the standby waits standby_wait_time", "[helper]")
{
    AgentRegistry reg;
    TempDir d;
    std::string img = d.file("sfex.img");
    write_file(img, std::string(2048, '\0'));
    REQUIRE(sx::init(img, 1).ok());
    REQUIRE(sx::acquire(img, 1, "nodeA", {0ms, 0ms, {}}).ok());
    // 127.0.0.1 answers in the root namespace: the victim is alive, so the wait decides.
    RawParams base = {{"hostlist", "victim"}, {"dead_check_target", "127.0.0.1"}, {"standby_wait_time", "3"}};
    auto with = [&](RawParams extra) {
        RawParams p = base;
        p.insert(p.end(), extra.begin(), extra.end());
        return run_agent(reg, "stonith_helper", p, STOCKADE_ACTION_REBOOT, "victim");
    };
    struct Case {
        const char *what;
        RawParams extra;
        bool active;
    };
    const Case cases[] = {
        {"command says active", {{"standby_check_command", "exit 0"}}, true},
        {"command says standby", {{"standby_check_command", "test -e /nonexistent"}}, false},
        {"SFEX lock held by this node", {{"sfex_device", img}, {"sfex_nodename", "nodeA"}}, true},
        {"SFEX lock held by the other node", {{"sfex_device", img}, {"sfex_nodename", "nodeB"}}, false},
    };
    for (const auto &c : cases) {
        auto r = with(c.extra);
        INFO(c.what << ": " << r.result.message << "\n" << r.all_logs());
        CHECK(r.result.rc == STOCKADE_RC_FAILED); // alive: escalate either way
        CHECK(r.result.verified == 0);
        if (c.active) {
            CHECK(r.result.elapsed_ms < 500);
            CHECK(r.has_log("no standby wait"));
        } else {
            CHECK(r.result.elapsed_ms >= 2700);
            CHECK(r.result.elapsed_ms <= 3300);
            CHECK(r.has_log("waiting 3 s"));
        }
    }
}

TEST_CASE("sfex_wrapper split brain: the lock holder's shot lands first, the other waits sby_wait", "[helper][sfex]")
{
    AgentRegistry reg;
    TempDir d;
    std::string img = d.file("shared-sfex.img");
    write_file(img, std::string(4096, '\0'));
    REQUIRE(sx::init(img, 2).ok());
    REQUIRE(sx::acquire(img, 1, "nodeA", {0ms, 0ms, {}}).ok());
    // nodeA's sfex_daemon stand-in: renew every 300 ms while the test runs.
    std::atomic<bool> stop{false};
    std::thread renewer([&] {
        while (!stop) {
            (void)sx::renew(img, 1, "nodeA");
            std::this_thread::sleep_for(300ms);
        }
    });
    struct StopRenewer {
        std::atomic<bool> &stop;
        std::thread &t;
        ~StopRenewer()
        {
            stop = true;
            t.join();
        }
    } guard{stop, renewer};

    const std::string journal = d.file("journal");
    auto node = [&](const std::string &me, const std::string &victim) {
        return RawParams{{"real_plugin", "testagent"},
                         {"real_params", "label=" + me + " journal='" + journal + "' state_file=" + d.file(victim + ".state")},
                         {"device", img},
                         {"index", "1"},
                         {"nodename", me},
                         {"nodeip1", "127.0.0.1"}, // the victim answers: a real split brain
                         {"sby_wait", "3"},
                         {"control_timeout", "20"}};
    };
    Run a, b;
    std::thread ta([&] { a = run_agent(reg, "sfex_wrapper", node("nodeA", "nodeB"), STOCKADE_ACTION_REBOOT, "nodeB"); });
    std::thread tb([&] { b = run_agent(reg, "sfex_wrapper", node("nodeB", "nodeA"), STOCKADE_ACTION_REBOOT, "nodeA"); });
    ta.join();
    tb.join();
    INFO("nodeA: " << a.result.message << "\n" << a.all_logs() << "nodeB: " << b.result.message << "\n" << b.all_logs());
    CHECK(a.result.rc == STOCKADE_RC_OK);
    CHECK((a.result.verified & STOCKADE_VERIFIED_OFF));
    CHECK(b.result.rc == STOCKADE_RC_OK);
    auto shots = lines_of(journal);
    REQUIRE(shots.size() == 2);
    CHECK(shots[0] == "nodeA reboot nodeB");
    CHECK(shots[1] == "nodeB reboot nodeA");
    CHECK(a.elapsed_ms < 1500);
    CHECK(b.elapsed_ms >= 3000);
    CHECK(b.elapsed_ms < 3000 + 1500);
    CHECK(b.elapsed_ms - a.elapsed_ms >= 2500);
    CHECK(a.has_log("holds the lock: shooting nodeB now"));
    CHECK(b.has_log("does not hold the lock: waiting 3 s"));
    CHECK(b.has_log("'nodeA' is still renewing the lock"));
}

TEST_CASE("sfex_wrapper: the real agent runs under control_timeout and its whole tree is killed", "[helper][sfex]")
{
    AgentRegistry reg;
    TempDir d;
    std::string img = d.file("sfex.img");
    write_file(img, std::string(2048, '\0'));
    REQUIRE(sx::init(img, 1).ok());
    REQUIRE(sx::acquire(img, 1, "me", {0ms, 0ms, {}}).ok());
    std::string pids = d.file("pids");
    auto r = run_agent(reg, "sfex_wrapper",
                       {{"real_plugin", "testagent"},
                        {"real_params", "mode=hang fork_child=1 pid_file=" + pids},
                        {"device", img},
                        {"nodename", "me"},
                        {"control_timeout", "2"}},
                       STOCKADE_ACTION_OFF, "victim");
    INFO(r.result.message << "\n" << r.all_logs());
    CHECK(r.result.rc == STOCKADE_RC_TIMEOUT);
    CHECK(r.result.elapsed_ms >= 1900);
    CHECK(r.result.elapsed_ms < 5000);
    auto started = lines_of(pids);
    REQUIRE(started.size() == 2); // the agent process and the child it forked (in a new session)
    std::this_thread::sleep_for(200ms);
    for (auto &p : started)
        CHECK_FALSE(pid_alive(pid_t(std::stoi(p))));
}

TEST_CASE("sfex_wrapper: unconfirmed success fails; bad real_params and missing real agents are clear", "[helper][sfex]")
{
    AgentRegistry reg;
    TempDir d;
    std::string img = d.file("sfex.img");
    write_file(img, std::string(2048, '\0'));
    REQUIRE(sx::init(img, 1).ok());
    REQUIRE(sx::acquire(img, 1, "me", {0ms, 0ms, {}}).ok());
    RawParams base = {{"real_plugin", "testagent"}, {"device", img}, {"nodename", "me"}};
    auto with = [&](RawParams extra, uint32_t action = STOCKADE_ACTION_OFF) {
        RawParams p = base;
        for (auto &e : extra) {
            auto it = std::find_if(p.begin(), p.end(), [&](auto &x) { return x.first == e.first; });
            if (it != p.end())
                it->second = e.second;
            else
                p.push_back(e);
        }
        return run_agent(reg, "sfex_wrapper", p, action, "victim").result;
    };
    auto r = with({{"real_params", "verify=0"}});
    CHECK(r.rc == STOCKADE_RC_FAILED);
    CHECK_THAT(r.message, Catch::Contains("without confirming that victim is off"));
    r = with({{"real_params", "mode=unreachable"}});
    CHECK(r.rc == STOCKADE_RC_UNREACHABLE);
    CHECK_THAT(r.message, Catch::Contains("real_plugin testagent: simulated: no route"));
    // Quoting in real_params: '...' literal, "..." and bare words with backslash escapes.
    const std::string journal = d.file("journal with space");
    r = with({{"real_params", "label=\"a \\\"b\\\" c\" journal='" + journal + "' delay_ms=1\\0"}});
    CHECK(r.rc == STOCKADE_RC_OK);
    CHECK(read_file(journal) == "a \"b\" c off victim\n");
    r = with({{"real_params", "password='s3cret value"}});
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("unterminated ' quote in word 1"));
    CHECK_THAT(r.message, !Catch::Contains("s3cret"));
    r = with({{"real_params", "state_file=" + d.file("st")}}, 0);
    CHECK(r.rc == STOCKADE_RC_OK);
    CHECK(r.power_state == STOCKADE_POWER_ON);
    r = with({{"real_plugin", "nosuchagent"}});
    CHECK(r.rc != STOCKADE_RC_OK);
    CHECK_THAT(r.message, Catch::Contains("nosuchagent"));
    r = with({{"device", d.file("missing.img")}, {"sby_wait", "1"}});
    CHECK(r.rc == STOCKADE_RC_OK); // an unreadable lock only costs the standby wait
    CHECK(r.elapsed_ms >= 1000);
    r = with({{"index", "2"}, {"sby_wait", "1"}}); // index beyond numlocks: read error -> standby wait
    CHECK(r.rc == STOCKADE_RC_OK);
    CHECK(r.elapsed_ms >= 1000);
}

TEST_CASE("stockade fence: the helper's level ends the fence when the victim is dead, else escalates", "[helper][e2e]")
{
    std::string why;
    auto lab = NetLab::create(1, why);
    if (!lab) {
        WARN("SKIPPED: cannot create network namespaces here: " << why);
        return;
    }
    TempDir d;
    const std::string journal = d.file("journal"), state = d.file("victim.state");
    const std::string cfg = d.file("stockade.json");
    write_file(cfg, R"({
  "version": 1,
  "escalation": {"retry_delay": 0, "max_loops": 1, "timeout": 60},
  "devices": {
    "helper": {"agent": "stonith_helper", "timeout": 40,
               "params": {"hostlist": "victim", "dead_check_target": ")" + lab->host_ip(0) + R"(",
                          "dead_check_trialcount": 2, "standby_check_command": "true"}},
    "bmc":    {"agent": "testagent", "timeout": 10,
               "params": {"journal": ")" + journal + R"(", "state_file": ")" + state + R"(", "label": "bmc"}}
  },
  "nodes": {"victim": {"levels": [["helper"], ["bmc"]], "action": "off"}}
})");
    auto fence = [&] { return lab->in_client({bin_path("stockade"), "--config", cfg, "--json", "fence", "victim"}); };

    // Alive: the helper fails, the runner escalates to the real device, which shoots.
    auto r = fence();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(fenced_level(r.out) == 2);
    CHECK(lines_of(journal) == std::vector<std::string>{"bmc off victim"});
    CHECK(read_file(state) == "off\n");

    // Dead (link down): the helper's level fences; the real device is never touched.
    write_file(journal, "");
    REQUIRE(lab->set_host_link(0, false));
    r = fence();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(fenced_level(r.out) == 1);
    CHECK_THAT(r.err, Catch::Contains("all targets are dead"));
    CHECK(lines_of(journal).empty());
}

TEST_CASE("stockade fence through sfex_wrapper: extra parameters reach the real agent", "[helper][sfex][e2e]")
{
    TempDir d;
    std::string img = d.file("sfex.img");
    write_file(img, std::string(2048, '\0'));
    REQUIRE(sx::init(img, 1).ok());
    REQUIRE(sx::acquire(img, 1, "me", {0ms, 0ms, {}}).ok());
    const std::string journal = d.file("journal");
    const std::string cfg = d.file("stockade.json");
    write_file(cfg, R"({
  "version": 1,
  "escalation": {"retry_delay": 0, "max_loops": 1},
  "devices": {
    "guard": {"agent": "sfex_wrapper", "timeout": 30,
              "params": {"real_plugin": "testagent", "device": ")" + img + R"(", "nodename": "me",
                         "nodeip9": "127.0.0.1", "sby_wait": 5, "control_timeout": 10,
                         "journal": ")" + journal + R"(", "label": "passed-through", "password": "hunter2"}}
  },
  "nodes": {"peer": {"levels": [["guard"]], "action": "reboot"}}
})");
    auto r = sh({bin_path("stockade"), "--config", cfg, "fence", "peer"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines_of(journal) == std::vector<std::string>{"passed-through reboot peer"});
    CHECK_THAT(r.err, Catch::Contains("127.0.0.1 answered")); // nodeip9 came in as an extra
    CHECK_THAT(r.err, Catch::Contains("holds the lock"));
    CHECK_THAT(r.out + r.err, !Catch::Contains("hunter2"));
}
