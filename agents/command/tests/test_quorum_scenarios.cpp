// LifeKeeper's quorum/witness scenarios with real processes and sockets: every "node" is a network
// namespace this test creates (127.0.10.x public, 127.0.11.x heartbeat, on veth pairs into a
// bridge in a "switch" namespace), each runs `stockade witness` inside it, and the fencing
// decision is made by running `stockade fence` inside a node's namespace.  The fencing device is
// the sim agent: each node's "power" is a local process, so what was (not) fenced is read back
// from the process table.  Every namespace is deleted again, on failure paths too.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <future>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kPub = "127.0.10.";
const std::string kHb = "127.0.11.";
constexpr int kWitnessPort = 7410;

std::string ip_tool()
{
    auto ip = test::which("ip");
    return ip ? *ip : "/usr/sbin/ip";
}

CommandResult sh(const std::string &cmd) { return test::run({"/bin/sh", "-c", cmd}, "", 30s); }

// The namespaces of one scenario; the destructor deletes them all.
class NetLab {
public:
    NetLab()
    {
        prefix_ = "sq" + std::to_string(::getpid() % 100000) + char('a' + (counter_++ % 26));
        auto r = sh(fmt::format("{} netns add {}sw && {} netns exec {}sw {} link add br0 type bridge && "
                                "{} netns exec {}sw {} link add br1 type bridge && "
                                "{} netns exec {}sw {} link set br0 up && {} netns exec {}sw {} link set br1 up",
                                ip(), prefix_, ip(), prefix_, ip(), ip(), prefix_, ip(), ip(), prefix_, ip(), ip(),
                                prefix_, ip()));
        namespaces_.push_back(prefix_ + "sw");
        usable_ = r.exit_code == 0;
        if (!usable_)
            why_ = r.err;
    }
    ~NetLab()
    {
        for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it)
            sh(fmt::format("{} netns del {} 2>/dev/null", ip(), *it));
    }
    bool usable() const { return usable_; }
    const std::string &why() const { return why_; }
    std::string ns(const std::string &node) const { return prefix_ + node; }

    // A node with a public address (and a heartbeat address when hb_ip is given).
    void add_node(const std::string &node, const std::string &pub_ip, const std::string &hb_ip = "")
    {
        std::string n = ns(node);
        run_ok(fmt::format("{} netns add {}", ip(), n));
        namespaces_.push_back(n);
        run_ok(fmt::format("{} netns exec {} sysctl -qw net.ipv4.conf.all.route_localnet=1", ip(), n));
        attach(node, "p", "br0", pub_ip);
        if (!hb_ip.empty())
            attach(node, "h", "br1", hb_ip);
    }
    // Cuts a node's public ("p") or heartbeat ("h") link on the node's side.
    void link_down(const std::string &node, const char *which)
    {
        run_ok(fmt::format("{} netns exec {} {} link set {}{} down", ip(), ns(node), ip(), ns(node), which));
    }
    void iptables(const std::string &node, const std::string &rule)
    {
        run_ok(fmt::format("{} netns exec {} iptables -w {}", ip(), ns(node), rule));
    }
    static std::string ip()
    {
        static const std::string p = ip_tool();
        return p;
    }

private:
    void attach(const std::string &node, const char *which, const char *bridge, const std::string &addr)
    {
        std::string n = ns(node), dev = n + which, peer = prefix_ + "s" + node + which;
        run_ok(fmt::format("{} link add {} type veth peer name {}", ip(), dev, peer));
        run_ok(fmt::format("{} link set {} netns {} && {} link set {} netns {}sw", ip(), dev, n, ip(), peer, prefix_));
        run_ok(fmt::format("{} netns exec {}sw {} link set {} master {} && {} netns exec {}sw {} link set {} up", ip(),
                           prefix_, ip(), peer, bridge, ip(), prefix_, ip(), peer));
        run_ok(fmt::format("{} netns exec {} sysctl -qw net.ipv4.conf.{}.route_localnet=1", ip(), n, dev));
        run_ok(fmt::format("{} netns exec {} {} addr add {}/24 dev {} && {} netns exec {} {} link set {} up", ip(), n,
                           ip(), addr, dev, ip(), n, ip(), dev));
    }
    static void run_ok(const std::string &cmd)
    {
        auto r = sh(cmd);
        INFO(cmd << "\n" << r.err);
        REQUIRE(r.exit_code == 0);
    }

    static inline unsigned counter_ = 0;
    std::string prefix_, why_;
    std::vector<std::string> namespaces_;
    bool usable_ = false;
};

// A TCP listener inside a namespace (the "router port 80" of tcp_remote): a thread enters the
// namespace, binds and listens; the kernel completes handshakes from the backlog.
int listen_in_netns(const std::string &ns, const std::string &addr, int port)
{
    int result = -1;
    test::in_netns(ns, [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(port));
        ::inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && ::listen(fd, 128) == 0)
            result = fd;
        else
            ::close(fd);
    });
    return result;
}

// One scenario's files, configs and processes.
struct Cluster {
    test::TempDir dir;
    NetLab &lab;
    json base;
    std::vector<std::unique_ptr<Subprocess>> witnesses;
    std::vector<int> fds;

    Cluster(NetLab &l, json quorum, json witness, const std::map<std::string, std::vector<std::string>> &nodes,
            const std::map<std::string, std::string> &witness_only = {})
        : lab(l)
    {
        test::write_file(dir.file("cluster.key"), random_key() + "\n", 0600);
        test::write_file(dir.file("loss.sh"),
                         "#!/bin/sh\n"
                         "echo \"$STOCKADE_NODE $STOCKADE_LOSS_ACTION\" >> " + dir.file("loss.log") + "\n"
                         "if [ -f " + dir.file("resource.") + "$STOCKADE_NODE ]; then\n"
                         "  rm -f " + dir.file("resource.") + "$STOCKADE_NODE\n"
                         "  echo \"$STOCKADE_NODE took its resources out of service\" >> " + dir.file("loss.log") + "\n"
                         "fi\n",
                         0755);
        witness["key_file"] = dir.file("cluster.key");
        witness["port"] = kWitnessPort;
        witness["timeout"] = 2; // generous: this machine may be very busy
        for (const auto &[name, addr] : witness_only)
            witness["nodes"][name] = {{"addresses", {addr}}};
        if (!quorum.contains("osu_command"))
            quorum["osu_command"] = {"/bin/sh", dir.file("loss.sh")};
        base = {{"cluster_name", "lk"},
                {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}}},
                {"quorum", quorum},
                {"witness", witness},
                {"devices", {{"power", {{"agent", "sim"}, {"timeout", 15}, {"params", {{"state_dir", dir.file("sim")}}}}}}},
                {"nodes", json::object()}};
        for (const auto &[name, addrs] : nodes)
            base["nodes"][name] = {{"levels", {{"power"}}}, {"action", "off"}, {"addresses", addrs}};
        // Power every node on, from the root namespace, through a gate-free copy of the config.
        json plain = base;
        plain.erase("quorum");
        plain.erase("witness");
        plain["local_node"] = nodes.begin()->first;
        test::write_file(dir.file("plain.json"), plain.dump(2));
        for (const auto &[name, addrs] : nodes) {
            auto r = test::run({test::bin_path("stockade"), "-q", "-c", dir.file("plain.json"), "fence", name, "--action", "on"});
            INFO(r.out << r.err);
            REQUIRE(r.exit_code == 0);
            REQUIRE(power_pid(name) > 0);
        }
    }
    ~Cluster()
    {
        witnesses.clear(); // kills each witness process tree
        for (int fd : fds)
            ::close(fd);
        for (const auto &it : base["nodes"].items())
            if (pid_t p = power_pid(it.key()); p > 0)
                ::kill(p, SIGKILL);
    }
    static std::string random_key()
    {
        std::string k;
        for (int i = 0; i < 32; ++i)
            k += "0123456789abcdef"[::rand() % 16];
        return k;
    }
    // This member's own configuration (local_node = member); "override" patches the quorum section.
    std::string config_for(const std::string &member, const json &quorum_patch = json::object())
    {
        json c = base;
        c["local_node"] = member;
        for (const auto &it : quorum_patch.items())
            c["quorum"][it.key()] = it.value();
        std::string path = dir.file(member + ".json");
        test::write_file(path, c.dump(2));
        return path;
    }
    void start_witness(const std::string &member)
    {
        std::string log = dir.file("witness-" + member + ".log");
        SpawnSpec spec;
        spec.argv = {"/bin/sh", "-c",
                     fmt::format("exec {} netns exec {} {} -c {} witness 2>{}", NetLab::ip(), lab.ns(member),
                                 test::bin_path("stockade"), config_for(member), log)};
        auto p = Subprocess::spawn(spec);
        REQUIRE(p);
        witnesses.push_back(std::move(*p));
        for (int i = 0; i < 100 && test::read_file(log).find("listening on") == std::string::npos; ++i)
            std::this_thread::sleep_for(50ms);
        INFO(test::read_file(log));
        REQUIRE(test::read_file(log).find("listening on") != std::string::npos);
    }
    // `stockade fence victim` decided inside member's namespace.
    CommandResult fence_from(const std::string &member, const std::string &victim, const json &quorum_patch = json::object())
    {
        return test::run({NetLab::ip(), "netns", "exec", lab.ns(member), test::bin_path("stockade"), "-c",
                          config_for(member, quorum_patch), "fence", victim},
                         "", 60s);
    }
    pid_t power_pid(const std::string &node)
    {
        std::string s = test::read_file(dir.file("sim/" + node + ".node"));
        return s.empty() ? -1 : pid_t(std::atol(s.c_str()));
    }
    bool powered(const std::string &node)
    {
        pid_t p = power_pid(node);
        return p > 0 && test::pid_alive(p);
    }
    void hold_resource(const std::string &node) { test::write_file(dir.file("resource." + node), "in service\n"); }
    bool holds_resource(const std::string &node) { return std::filesystem::exists(dir.file("resource." + node)); }
    std::string loss_log() { return test::read_file(dir.file("loss.log")); }
};

#define REQUIRE_NETNS(lab)                                                                                              \
    if (::geteuid() != 0 || !(lab).usable()) {                                                                         \
        WARN("SKIPPED: cannot create network namespaces here (need root and `ip netns`): " << (lab).why());            \
        return;                                                                                                        \
    }

} // namespace

TEST_CASE("A: the primary's network dies: it is a minority and runs its loss action; the standby fences it",
          "[quorum][netns]")
{
    NetLab lab;
    REQUIRE_NETNS(lab);
    lab.add_node("n1", kPub + "1", kHb + "1");
    lab.add_node("n2", kPub + "2", kHb + "2");
    lab.add_node("w", kPub + "3");
    Cluster c(lab, {{"mode", "majority"}, {"timeout", 2}}, {{"mode", "remote_verify"}},
              {{"n1", {kHb + "1", kPub + "1"}}, {"n2", {kHb + "2", kPub + "2"}}}, {{"w", kPub + "3"}});
    for (const char *m : {"n1", "n2", "w"})
        c.start_witness(m);
    c.hold_resource("n1");
    // Sanity: before the failure both are quorate and see each other.
    auto q = test::run({NetLab::ip(), "netns", "exec", lab.ns("n2"), test::bin_path("stockade"), "-c", c.config_for("n2"), "quorum"});
    INFO(q.out << q.err);
    REQUIRE(q.exit_code == 0);
    CHECK_THAT(q.out, Catch::Contains("3 of 3"));

    lab.link_down("n1", "p");
    lab.link_down("n1", "h");
    // Both sides decide at once, as after a real failure.
    auto from_n1 = std::async(std::launch::async, [&] { return c.fence_from("n1", "n2"); });
    auto from_n2 = std::async(std::launch::async, [&] { return c.fence_from("n2", "n1"); });
    auto r1 = from_n1.get();
    auto r2 = from_n2.get();
    INFO("n1: " << r1.out << r1.err);
    INFO("n2: " << r2.out << r2.err);
    CHECK(r1.exit_code == 3);
    CHECK_THAT(r1.out, Catch::Contains("refused") && Catch::Contains("no quorum: 1 of 3"));
    CHECK_THAT(r1.out, Catch::Contains("loss action osu"));
    CHECK(r2.exit_code == 0);
    CHECK_FALSE(c.powered("n1")); // the standby fenced the primary
    CHECK(c.powered("n2"));       // the isolated primary fenced nothing
    CHECK_FALSE(c.holds_resource("n1"));
    CHECK_THAT(c.loss_log(), Catch::Contains("n1 osu") && Catch::Contains("n1 took its resources out of service"));
    CHECK_THAT(c.loss_log(), !Catch::Contains("n2 osu"));
    // The witness was consulted and saw n1 dead from its side.
    CHECK_THAT(test::read_file(c.dir.file("witness-w.log")), Catch::Contains("n2 asked about n1: dead"));
}

TEST_CASE("B: only the heartbeat links die: both quorate, the witness sees the primary alive, no fence",
          "[quorum][netns]")
{
    NetLab lab;
    REQUIRE_NETNS(lab);
    lab.add_node("n1", kPub + "1", kHb + "1");
    lab.add_node("n2", kPub + "2", kHb + "2");
    lab.add_node("w", kPub + "3");
    Cluster c(lab, {{"mode", "majority"}, {"timeout", 2}}, {{"mode", "remote_verify"}},
              {{"n1", {kHb + "1", kPub + "1"}}, {"n2", {kHb + "2", kPub + "2"}}}, {{"w", kPub + "3"}});
    for (const char *m : {"n1", "n2", "w"})
        c.start_witness(m);
    c.hold_resource("n1");
    lab.link_down("n1", "h");
    lab.link_down("n2", "h");
    // The standby lost its heartbeat to the primary and wants to fence it.
    auto r = c.fence_from("n2", "n1");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains("refused by witness: witness says alive: w sees n1 alive"));
    CHECK(c.powered("n1"));
    CHECK(c.powered("n2"));
    CHECK(c.holds_resource("n1"));
    CHECK(c.loss_log().empty()); // quorate: no loss action anywhere
    CHECK_THAT(test::read_file(c.dir.file("witness-w.log")), Catch::Contains("n2 asked about n1: alive"));
}

TEST_CASE("C: tcp_remote with the quorum host reachable from one side only: only that side fences",
          "[quorum][netns]")
{
    NetLab lab;
    REQUIRE_NETNS(lab);
    lab.add_node("n1", kPub + "1", kHb + "1");
    lab.add_node("n2", kPub + "2", kHb + "2");
    lab.add_node("qh", kPub + "9");
    int port = 8080;
    int fd = listen_in_netns(lab.ns("qh"), kPub + "9", port);
    REQUIRE(fd >= 0);
    Cluster c(lab, {{"mode", "tcp_remote"}, {"hosts", {kPub + "9:" + std::to_string(port)}}, {"timeout", 2}},
              {{"mode", "none"}}, {{"n1", {kHb + "1", kPub + "1"}}, {"n2", {kHb + "2", kPub + "2"}}});
    c.fds.push_back(fd);
    c.hold_resource("n1");
    // n1 and n2 lose each other (heartbeat down, public traffic between them dropped) and n1 also
    // loses the router; n2 still reaches it.
    lab.link_down("n1", "h");
    lab.link_down("n2", "h");
    lab.iptables("n1", "-A OUTPUT -d " + kPub + "2 -j DROP");
    lab.iptables("n1", "-A INPUT -s " + kPub + "2 -j DROP");
    lab.iptables("n1", "-A OUTPUT -d " + kPub + "9 -j DROP");
    auto from_n1 = std::async(std::launch::async, [&] { return c.fence_from("n1", "n2"); });
    auto from_n2 = std::async(std::launch::async, [&] { return c.fence_from("n2", "n1"); });
    auto r1 = from_n1.get();
    auto r2 = from_n2.get();
    INFO("n1: " << r1.out << r1.err);
    INFO("n2: " << r2.out << r2.err);
    CHECK(r1.exit_code == 3);
    CHECK_THAT(r1.out, Catch::Contains("no quorum: 0 of 1"));
    CHECK(r2.exit_code == 0);
    CHECK_FALSE(c.powered("n1"));
    CHECK(c.powered("n2"));
    CHECK_THAT(c.loss_log(), Catch::Contains("n1 osu") && !Catch::Contains("n2 osu"));
}

TEST_CASE("D: all links down in tcp_remote: both minority, nobody fences, the resource holder runs its loss action",
          "[quorum][netns]")
{
    NetLab lab;
    REQUIRE_NETNS(lab);
    lab.add_node("n1", kPub + "1", kHb + "1");
    lab.add_node("n2", kPub + "2", kHb + "2");
    lab.add_node("qh", kPub + "9");
    int port = 8080;
    int fd = listen_in_netns(lab.ns("qh"), kPub + "9", port);
    REQUIRE(fd >= 0);
    Cluster c(lab, {{"mode", "tcp_remote"}, {"hosts", {kPub + "9:" + std::to_string(port)}}, {"timeout", 2}},
              {{"mode", "remote_verify"}}, {{"n1", {kHb + "1", kPub + "1"}}, {"n2", {kHb + "2", kPub + "2"}}});
    c.fds.push_back(fd);
    c.start_witness("n1");
    c.start_witness("n2");
    c.hold_resource("n1");
    for (const char *n : {"n1", "n2"}) {
        lab.link_down(n, "p");
        lab.link_down(n, "h");
    }
    // n2 is configured for fastboot: without allow_self_fence only its hook runs.
    json n2_quorum = {{"loss_action", "fastboot"}, {"loss_hook", {"/bin/sh", c.dir.file("loss.sh")}}};
    auto from_n1 = std::async(std::launch::async, [&] { return c.fence_from("n1", "n2"); });
    auto from_n2 = std::async(std::launch::async, [&] { return c.fence_from("n2", "n1", n2_quorum); });
    auto r1 = from_n1.get();
    auto r2 = from_n2.get();
    INFO("n1: " << r1.out << r1.err);
    INFO("n2: " << r2.out << r2.err);
    CHECK(r1.exit_code == 3);
    CHECK(r2.exit_code == 3);
    CHECK_THAT(r1.out, Catch::Contains("no quorum: 0 of 1"));
    CHECK_THAT(r2.out, Catch::Contains("no quorum: 0 of 1") && Catch::Contains("not done (allow_self_fence is false)"));
    CHECK(c.powered("n1"));
    CHECK(c.powered("n2"));
    CHECK_FALSE(c.holds_resource("n1"));
    CHECK_THAT(c.loss_log(), Catch::Contains("n1 took its resources out of service"));
    CHECK_THAT(c.loss_log(), Catch::Contains("n2 fastboot"));
    CHECK_THAT(r2.err, Catch::Contains("would reboot this node now"));
}
