// The troubleshooting table of docs/pacemaker.md, provoked for real: pacemaker-fenced (the fixture's,
// in its own network namespace) runs fence_stockade_ipmi against an OpenIPMI ipmi_sim BMC in that
// namespace, once per fault (wrong password, unknown user, a cipher suite the BMC lacks, cipher 0,
// the BMC's Open Session privilege quirk, nobody at the address, a target outside hostlist).  Each
// row's message must appear where an admin looks: the fencer's log (Pacemaker copies the agent's
// stderr there) or stonith_admin's answer; and no fault ever powers the node off.  The table quotes
// these exact texts (with 10.0.0.11:623 for the address), so a changed message fails here first.
// The table's two by-hand rows are checked by running the agent directly.
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "fencer_fixture.hpp"
#include "ipmi_sim_fixture.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

// The part of the fencer's log written since `from` (a byte offset).
std::string log_since(const FencerFixture &f, size_t from)
{
    std::string all = read_file(f.log);
    return from < all.size() ? all.substr(from) : std::string();
}

// Waits (bounded) for `text` in the fencer's log after `from`: the agent's stderr reaches it
// when the operation ends, which stonith_admin may report a moment earlier.
bool log_shows(const FencerFixture &f, size_t from, const std::string &text)
{
    for (int i = 0; i < 50; ++i) {
        if (log_since(f, from).find(text) != std::string::npos)
            return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

} // namespace

TEST_CASE("docs/pacemaker.md troubleshooting: every row's message through pacemaker-fenced", "[frontend][pacemaker][ipmi]")
{
    if (auto why = sim_unavailable_reason()) {
        WARN("SKIPPED: " << *why);
        return;
    }
    FencerFixture f;
    f.keep_log_as = "ipmi-troubleshooting-fenced.log";
    if (std::string skip = f.start("fence_stockade_ipmi"); !skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    INFO("fencer log: " << f.log);
    SimBmcOptions o;
    o.netns = f.netns();        // the fencer reaches 127.0.0.1 of its own namespace only
    o.client_netns = f.netns(); // ipmitool's read-back from there too
    o.console = false;
    o.users = {{"admin", "secret", "admin"}, {"viewer", "viewpw", "user"}}; // viewer: a read-only account
    auto bmc = SimBmc::start(f.dir.path() / "bmc", o);
    REQUIRE(bmc->ipmitool_power_status() == "on");
    const std::string W = f.wrapper_name;
    const std::string where = bmc->endpoint(); // "127.0.0.1:<port>", as the messages name the BMC
    const std::string port = std::to_string(bmc->port());

    // Registers `id` with fence_ipmilan's attributes plus/over `extra`; returns stonith_admin's result.
    auto device = [&](const std::string &id, std::vector<std::pair<std::string, std::string>> extra) {
        std::map<std::string, std::string> a{{"ip", "127.0.0.1"}, {"ipport", port}, {"username", "admin"},
                                             {"password", "secret"}, {"lanplus", "1"}, {"cipher", "3"},
                                             {"pcmk_host_list", "node1"}};
        for (auto &[k, v] : extra)
            a[k] = v;
        std::vector<std::string> args{"-R", id, "-a", W};
        for (auto &[k, v] : a)
            if (!v.empty())
                args.insert(args.end(), {"-o", k + "=" + v});
        return f.admin(args);
    };
    // One fencer for every row, one after the other (a fencer per row would restart corosync each
    // time).  One fault: register, monitor (-Q) and fence (-F) through the fencer; both fail, the node
    // keeps running, and each expected text is in the fencer's log.
    auto fault = [&](const std::string &id, std::vector<std::pair<std::string, std::string>> extra,
                     const std::vector<std::string> &expected) {
        INFO("device " << id);
        size_t from = read_file(f.log).size();
        REQUIRE(device(id, std::move(extra)).exit_code == 0);
        auto q = f.admin({"-Q", id, "-t", "30"});
        CHECK(q.exit_code != 0);
        auto off = f.admin({"-F", "node1", "-t", "40"});
        INFO("stonith_admin -F: " << off.out << off.err);
        CHECK(off.exit_code != 0);
        CHECK_THAT(off.err, Catch::Contains("Couldn't fence node1")); // all stonith_admin says: the rest is in the log
        CHECK(bmc->node_alive());
        for (const auto &text : expected) {
            INFO("expected in the fencer's log: " << text << "\n--- log since registration:\n"
                                                   << FencerFixture::tail(log_since(f, from)));
            CHECK(log_shows(f, from, text));
        }
        CHECK(f.admin({"-D", id}).exit_code == 0);
    };

    { // wrong password
        fault("st-pw", {{"password", "wrong"}},
              {"Unable to connect/login to fencing device",
               "(access-denied): ipmi " + where + ": opening session: wrong password"});
    }
    { // a user the BMC does not know
        fault("st-user", {{"username", "nobody"}},
              {"Unable to connect/login to fencing device",
               "(access-denied): ipmi " + where +
                   ": opening session: wrong user: the BMC does not know this username ('nobody')"});
    }
    { // a cipher suite the BMC does not offer (17 on ipmi_sim)
        fault("st-c17", {{"cipher", "17"}},
              {"Failed: Unable to obtain correct plug status or plug is not available",
               "(failed): ipmi " + where + ": opening session: FreeIPMI error 32 (internal IPMI error)",
               // the failed monitor made stonith_admin -Q fall back to list, which needs a hostlist
               "Failed: unsupported action",
               "list failed (unsupported): ipmi " + where + ": no hostlist: this BMC powers whatever node it is asked to "
               "(name it with pcmk_host_list)"});
    }
    { // privlvl=user (or an account the BMC limits to user): the session opens and the status
      // reads, so the monitor passes; the BMC refuses the power-off itself
        size_t from = read_file(f.log).size();
        REQUIRE(device("st-privlvl", {{"username", "viewer"}, {"password", "viewpw"}, {"privlvl", "user"}}).exit_code == 0);
        CHECK(f.admin({"-Q", "st-privlvl", "-t", "30"}).exit_code == 0);
        CHECK(f.admin({"-F", "node1", "-t", "40"}).exit_code != 0);
        CHECK(bmc->node_alive());
        CHECK(log_shows(f, from, "Unable to connect/login to fencing device"));
        CHECK(log_shows(f, from, "(access-denied): ipmi " + where + ": Chassis Control power down: privilege too low "
                                 "(privlvl=user, user 'viewer'): completion code 0xd4"));
        // Said once per line (the BMC's completion code and FreeIPMI's error name the same cause).
        std::istringstream lines(log_since(f, from));
        for (std::string line; std::getline(lines, line);)
            if (line.find("0xd4") != std::string::npos) {
                INFO(line);
                size_t first = line.find("privilege too low");
                CHECK(first != std::string::npos);
                CHECK(line.find("privilege too low", first + 1) == std::string::npos);
            }
        CHECK(f.admin({"-D", "st-privlvl"}).exit_code == 0);
    }
    { // cipher 0 is refused before anything is sent
        fault("st-c0", {{"cipher", "0"}},
              {"(bad-config): parameter 'cipher': cipher suite 0 means no authentication at all; refused unless "
               "allow_cipher_zero=1"});
    }
    { // nobody at the address: unreachable after session_timeout
        int dead = pick_free_udp_port("127.0.0.1"); // free here; inside the fencer's namespace nobody has it either
        fault("st-dead", {{"ipport", std::to_string(dead)}},
              {"Unable to connect/login to fencing device",
               "(unreachable): ipmi 127.0.0.1:" + std::to_string(dead) +
                   ": opening session: unreachable: no answer from the BMC within 5000 ms"});
    }
    { // a target outside the device's hostlist is refused and the BMC left alone
        size_t from = read_file(f.log).size();
        REQUIRE(device("st-hl", {{"hostlist", "node1"}, {"pcmk_host_list", "node1 node2"}}).exit_code == 0);
        auto off = f.admin({"-F", "node2", "-t", "30"});
        CHECK(off.exit_code != 0);
        CHECK(bmc->node_alive());
        CHECK(log_shows(f, from, "Failed: Unable to obtain correct plug status or plug is not available"));
        CHECK(log_shows(f, from, "(unknown-target): ipmi " + where + ": unknown target 'node2': this BMC powers only "
                                 "[node1] (hostlist)"));
        CHECK(f.admin({"-D", "st-hl"}).exit_code == 0);
    }
    { // the Open Session privilege quirk (ipmi_sim answers maximum privilege 0, as some Supermicro
      // BMCs do): ignored as ipmitool ignores it, so fence_ipmilan's attributes without any
      // `workarounds` fence, and nothing about privileges is logged
        size_t from = read_file(f.log).size();
        REQUIRE(device("st-quirk", {{"verbose", "1"}}).exit_code == 0);
        CHECK(f.admin({"-Q", "st-quirk", "-t", "30"}).exit_code == 0);
        pid_t node = bmc->node_pid();
        REQUIRE(node > 0);
        auto off = f.admin({"-F", "node1", "-t", "40"});
        INFO(off.out << off.err);
        CHECK(off.exit_code == 0);
        CHECK(bmc->ipmitool_power_status() == "off");
        CHECK_FALSE(pid_alive(node));
        CHECK(log_shows(f, from, "using st-quirk returned 0"));
        CHECK(log_shows(f, from, "confirmed off"));
        CHECK(log_since(f, from).find("privilege") == std::string::npos);
        // Pacemaker never hands pcmk_* attributes to the agent (that row of the table is by hand only).
        CHECK(log_since(f, from).find("Ignoring unknown option 'pcmk_host_list") == std::string::npos);
    }
    f.report("ipmi-troubleshooting-timings.txt");
}

TEST_CASE("docs/pacemaker.md troubleshooting: the two by-hand rows", "[frontend][ipmi]")
{
    // A pcmk_* attribute typed by hand: warned, ignored, the run goes on.
    auto pcmk = run({bin_path("fence_stockade_ipmi")}, "action=validate-all\nip=127.0.0.1\npcmk_host_list=node1\n");
    CHECK(pcmk.exit_code == 0);
    CHECK_THAT(pcmk.err, Catch::Contains("Parse error: Ignoring unknown option 'pcmk_host_list=node1'"));
    // No target: refused before anything is sent.
    auto noplug = run({bin_path("fence_stockade_ipmi"), "--ip", "127.0.0.1", "--username", "admin", "--lanplus", "-o",
                       "status"});
    CHECK(noplug.exit_code == 1);
    CHECK_THAT(noplug.err, Catch::Contains("Failed: You have to enter plug number or machine identification"));
}
