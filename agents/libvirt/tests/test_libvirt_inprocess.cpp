// The libvirt agent against libvirt's in-process test driver (no daemon): test:///default and a
// test:///<file>.xml the test writes.  Sessions are in-process (isolate=false) so the agent and
// the test share one driver: test:///default state is shared by every connection of a process,
// so our own connection reads the domain state back independently of the agent.  A file URI
// gives each connection its own copy, so there the agent's own status/list (same connection,
// same session) is the read-back.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "libvirt_test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

constexpr const char *kTestUuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"; // test:///default's "test"

std::string nodes_xml()
{
    auto domain = [](const char *name, const char *uuid, bool shut_off) {
        return std::string("<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>") +
               name + "</name><uuid>" + uuid +
               "</uuid><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>" +
               (shut_off ? "<test:runstate>5</test:runstate>" : "") + "</domain>\n";
    };
    return "<node>\n<cpu><mhz>2000</mhz><model>i686</model><active>2</active><total>2</total><nodes>1</nodes>"
           "<sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>\n<memory>2097152</memory>\n" +
           domain("node1", "11111111-1111-1111-1111-111111111111", false) +
           domain("node2", "22222222-2222-2222-2222-222222222222", false) +
           domain("node3", "33333333-3333-3333-3333-333333333333", true) + "</node>\n";
}

// Captures what this process writes to stderr while `fn` runs.
template <class Fn>
std::string stderr_during(Fn fn)
{
    TempDir d;
    std::string path = d.file("stderr");
    fflush(stderr);
    int saved = dup(2);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return read_file(path);
}

} // namespace

TEST_CASE("test:///default: off, status, on, reboot and list within one session, read back independently",
          "[libvirt][inprocess]")
{
    Virt own("test:///default"); // held open for the whole test: the shared driver lives on
    REQUIRE(own.get() != nullptr);
    REQUIRE(own.state("test") == VIR_DOMAIN_RUNNING);

    AgentRegistry reg;
    KeptLog log;
    auto s = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}}, false, &log.logger);

    auto st = s->status("test", 5s);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);

    auto off = s->power(PowerAction::Off, "test", 5s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    CHECK(own.state("test") == VIR_DOMAIN_SHUTOFF);
    CHECK(s->status("test", 5s).power_state == STOCKADE_POWER_OFF);
    CHECK(log.contains("running -> shut off"));

    auto again = s->power(PowerAction::Off, "test", 5s); // already off: success, still verified
    REQUIRE(again.ok());
    CHECK(again.verified == STOCKADE_VERIFIED_OFF);
    CHECK(log.contains("already shut off"));

    auto on = s->power(PowerAction::On, "test", 5s);
    REQUIRE(on.ok());
    CHECK(on.verified == STOCKADE_VERIFIED_ON);
    CHECK(own.state("test") == VIR_DOMAIN_RUNNING);

    // power_cycle reboot really goes through off: the test driver gives a restarted domain a new id.
    int id_before = own.id("test");
    auto reboot = s->power(PowerAction::Reboot, "test", 5s);
    REQUIRE(reboot.ok());
    CHECK(reboot.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK(own.state("test") == VIR_DOMAIN_RUNNING);
    CHECK(own.id("test") != id_before);

    auto by_uuid = s->status(kTestUuid, 5s);
    REQUIRE(by_uuid.ok());
    CHECK(by_uuid.power_state == STOCKADE_POWER_ON);

    auto l = s->list(5s);
    REQUIRE(l.ok());
    bool found = false;
    for (const auto &t : l.targets)
        found |= t.name == "test" && t.alias == kTestUuid;
    CHECK(found);

    CHECK(s->monitor(5s).ok());
    s->close();
}

TEST_CASE("test:///default: reset_method=reboot uses virDomainReset; diag injects an NMI", "[libvirt][inprocess]")
{
    Virt own("test:///default");
    REQUIRE(own.get() != nullptr);
    AgentRegistry reg;
    KeptLog log;
    auto s = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}, {"reset_method", "reboot"}}, false, &log.logger);
    int id_before = own.id("test");
    auto r = s->power(PowerAction::Reboot, "test", 5s);
    REQUIRE(r.ok());
    CHECK(r.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK(own.id("test") == id_before); // a reset keeps the same running instance id
    CHECK(log.contains("virDomainReset"));

    // A shut off domain is simply started by a reset reboot.
    REQUIRE(s->power(PowerAction::Off, "test", 5s).ok());
    r = s->power(PowerAction::Reboot, "test", 5s);
    REQUIRE(r.ok());
    CHECK(r.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK(own.state("test") == VIR_DOMAIN_RUNNING);

    auto diag = s->power(PowerAction::Diag, "test", 5s);
    CHECK(diag.ok());
    CHECK(log.contains("NMI injected"));
    s->close();
}

TEST_CASE("custom test driver file: hostlist mapping, domains starting shut off, no collateral damage",
          "[libvirt][inprocess]")
{
    TempDir d;
    std::string file = d.file("nodes.xml");
    write_file(file, nodes_xml());
    std::string uri = "test://" + file;

    AgentRegistry reg;
    KeptLog log;
    auto s = open_libvirt(reg,
                          {{"hypervisor_uri", uri}, {"hostlist", "pm1:node1, PM2:node2 pm3:node3,pm4:ghost"}},
                          false, &log.logger);

    CHECK(s->status("pm3", 5s).power_state == STOCKADE_POWER_OFF); // <test:runstate>5</test:runstate>
    CHECK(s->status("pm1", 5s).power_state == STOCKADE_POWER_ON);
    CHECK(s->status("Pm2", 5s).power_state == STOCKADE_POWER_ON);

    auto off = s->power(PowerAction::Off, "PM1", 5s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    // Same session, same connection: the file driver's copy holds the new state.
    CHECK(s->status("pm1", 5s).power_state == STOCKADE_POWER_OFF);
    CHECK(s->status("pm2", 5s).power_state == STOCKADE_POWER_ON);

    auto on = s->power(PowerAction::On, "pm3", 5s);
    REQUIRE(on.ok());
    CHECK(on.verified == STOCKADE_VERIFIED_ON);
    CHECK(s->status("pm3", 5s).power_state == STOCKADE_POWER_ON);

    // The target may also be a domain UUID when the plug names it.
    auto by_plug = open_libvirt(reg, {{"hypervisor_uri", uri}, {"port", "22222222-2222-2222-2222-222222222222"}},
                                false);
    auto off2 = by_plug->power(PowerAction::Off, "pm2", 5s);
    REQUIRE(off2.ok());
    CHECK(by_plug->status("pm2", 5s).power_state == STOCKADE_POWER_OFF);
    by_plug->close();

    auto l = s->list(5s);
    REQUIRE(l.ok());
    std::map<std::string, std::string> listed;
    for (const auto &t : l.targets)
        listed[t.name] = t.alias;
    CHECK(listed["node1"] == "11111111-1111-1111-1111-111111111111");
    CHECK(listed["node3"] == "33333333-3333-3333-3333-333333333333");
    CHECK(listed["pm1"] == "node1");
    CHECK(listed["pm4"] == "ghost");
    CHECK(listed.size() == 7);

    auto unknown_node = s->power(PowerAction::Off, "pm9", 5s);
    CHECK(unknown_node.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(unknown_node.verified == 0);
    CHECK(unknown_node.message == "node 'pm9' is not in hostlist (pm1 PM2 pm3 pm4)");

    auto ghost = s->power(PowerAction::Off, "pm4", 5s);
    CHECK(ghost.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(ghost.verified == 0);
    CHECK_THAT(ghost.message, Catch::Contains("domain 'ghost'") && Catch::Contains("not found on " + uri));
    CHECK(s->status("pm4", 5s).rc == STOCKADE_RC_UNKNOWN_TARGET);

    CHECK(s->monitor(5s).ok());
    CHECK(log.contains("domain 'ghost' (hostlist entry for pm4) not found")); // monitor warns
    s->close();
}

TEST_CASE("missing_as_off: a missing domain is off, but a node outside the hostlist stays unknown",
          "[libvirt][inprocess]")
{
    AgentRegistry reg;
    auto s = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}, {"missing_as_off", "yes"}}, false);
    auto st = s->status("nosuch", 5s);
    REQUIRE(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_OFF);
    auto off = s->power(PowerAction::Off, "nosuch", 5s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    CHECK(s->power(PowerAction::On, "nosuch", 5s).rc == STOCKADE_RC_UNKNOWN_TARGET);
    s->close();

    auto strict = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}}, false);
    auto miss = strict->status("nosuch", 5s);
    CHECK(miss.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(miss.message == "domain 'nosuch' (target) not found on test:///default");
    auto offmiss = strict->power(PowerAction::Off, "nosuch", 5s);
    CHECK(offmiss.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(offmiss.verified == 0);
    strict->close();

    auto listed = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}, {"hostlist", "n1:test"},
                                     {"missing_as_off", "1"}}, false);
    CHECK(listed->status("n2", 5s).rc == STOCKADE_RC_UNKNOWN_TARGET);
    listed->close();
}

TEST_CASE("bad URIs fail clearly, never as fenced, and libvirt prints nothing on stderr", "[libvirt][inprocess]")
{
    TempDir d;
    write_file(d.file("garbage.xml"), "not xml <\n");
    AgentRegistry reg;
    struct Case {
        std::string label; // stable across runs of the test case (the temp dir is not)
        std::string uri;
        uint32_t rc;
        std::string says;
    };
    const std::vector<Case> cases = {
        {"missing test driver file", "test://" + d.file("missing.xml"), STOCKADE_RC_BAD_CONFIG, "test driver file " + d.file("missing.xml")},
        {"test driver file that is not XML", "test://" + d.file("garbage.xml"), STOCKADE_RC_BAD_CONFIG,
         "Start tag expected"},
        {"unparsable URI", "not a uri", STOCKADE_RC_BAD_CONFIG, "Unable to parse URI"},
        {"no daemon socket", "test+unix:///default?socket=" + d.file("nosock"), STOCKADE_RC_UNREACHABLE, "Failed to connect socket"},
    };
    for (const auto &c : cases) {
        DYNAMIC_SECTION(c.label)
        {
            KeptLog log;
            auto s = open_libvirt(reg, {{"hypervisor_uri", c.uri}}, false, &log.logger);
            OpResult off;
            std::string err = stderr_during([&] { off = s->power(PowerAction::Off, "test", 5s); });
            CHECK(off.rc == c.rc);
            CHECK(off.verified == 0);
            CHECK_THAT(off.message, Catch::Contains(c.says));
            CHECK(off.message.find('\n') == std::string::npos);
            CHECK(err.empty());
            CHECK(s->monitor(5s).rc == c.rc);
            s->close();
        }
    }
}

TEST_CASE("parameters: required URI, aliases of cluster-glue and fence-agents, bad values named",
          "[libvirt][params]")
{
    AgentRegistry reg;
    const AgentInfo &a = libvirt_agent(reg);
    CHECK(a.can(STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST |
                STOCKADE_CAP_MONITOR | STOCKADE_CAP_DIAG));
    CHECK(a.find_param("port")->name == "plug");
    CHECK(a.find_param("plug")->host_supplied());
    CHECK(a.find_param("reboot_method")->name == "reset_method"); // cluster-glue's getconfignames typo
    CHECK(a.find_param("passwd")->secret());

    auto missing = resolve_params(a, {{"hostlist", "n1"}}, UnknownParams::Reject);
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.error().message, Catch::Contains("hypervisor_uri"));

    auto bad_method = resolve_params(a, {{"uri", "test:///default"}, {"reset_method", "hard"}}, UnknownParams::Reject);
    REQUIRE_FALSE(bad_method.ok());

    // open() itself names a broken hostlist.
    auto params = resolve_params(a, {{"uri", "test:///default"}, {"hostlist", "n1 :x"}}, UnknownParams::Reject);
    REQUIRE(params.ok());
    SessionOptions o;
    o.isolate = false;
    auto s = make_session(a, o);
    auto r = s->open(*params, 5s);
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(r.message == "parameter 'hostlist': hostlist entry ':x' has no node name");
}

TEST_CASE("an isolated session keeps one connection for the whole sequence", "[libvirt][isolated]")
{
    // The agent host is a separate process with its own test driver: state lives exactly as long
    // as the session's connection, so off then status reading "off" proves the connection is kept.
    AgentRegistry reg;
    auto s = open_libvirt(reg, {{"hypervisor_uri", "test:///default"}}, true);
    auto off = s->power(PowerAction::Off, "test", 10s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    CHECK(s->status("test", 10s).power_state == STOCKADE_POWER_OFF);
    REQUIRE(s->power(PowerAction::On, "test", 10s).ok());
    CHECK(s->status("test", 10s).power_state == STOCKADE_POWER_ON);
    s->close();
}

TEST_CASE("secrets never reach a message or a log line", "[libvirt][secrets]")
{
    AgentRegistry reg;
    KeptLog log;
    const int port = free_tcp_port(); // nobody listens: the connection is refused
    const std::string uri = "test+tcp://admin:uri-pw-4711@127.0.0.1:" + std::to_string(port) + "/default";
    auto s = open_libvirt(reg, {{"hypervisor_uri", uri}, {"login", "admin"}, {"password", "param-pw-0815"}}, false,
                          &log.logger);
    auto off = s->power(PowerAction::Off, "test", 5s);
    CHECK(off.rc == STOCKADE_RC_UNREACHABLE);
    CHECK(off.verified == 0);
    CHECK_THAT(off.message, Catch::Contains("admin:***@127.0.0.1"));
    for (const std::string secret : {"uri-pw-4711", "param-pw-0815"}) {
        CHECK(off.message.find(secret) == std::string::npos);
        CHECK_FALSE(log.contains(secret));
    }
    s->close();
}
