// fence_stockade_ipmi as a drop-in for fence_ipmilan: every parameter name fence_ipmilan's own
// metadata lists is accepted (stdin and command line), and a device configured with exactly
// fence_ipmilan's attributes (no hostlist, no workarounds) fences the node Pacemaker names, read
// back from a real ipmi_sim BMC; with a hostlist, other targets are still refused.  The full
// Pacemaker path (a CIB primitive with these attributes in a real cluster) is in tests/cluster.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "ipmi_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;

namespace {

CommandResult fence_stockade_ipmi(const std::vector<std::string> &args, const std::string &input = "")
{
    std::vector<std::string> argv{bin_path("fence_stockade_ipmi")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input, std::chrono::seconds(60));
}

// The parameter names in a fence-agent metadata document.
std::set<std::string> metadata_params(const std::string &xml)
{
    std::set<std::string> out;
    static const std::regex re("<parameter name=\"([^\"]+)\"");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), re); it != std::sregex_iterator(); ++it)
        out.insert((*it)[1]);
    return out;
}

// A value fence_ipmilan would accept for `name` (and which means nothing dangerous here).
std::string sample_value(const std::string &name)
{
    static const std::map<std::string, std::string> v{
        {"ip", "127.0.0.1"},        {"ipaddr", "127.0.0.1"},         {"auth", "md5"},
        {"method", "onoff"},        {"privlvl", "administrator"},    {"target", "0x20"},
        {"hexadecimal_kg", "0011"}, {"ipmitool_path", "/usr/bin/ipmitool"},
        {"sudo_path", "/usr/bin/sudo"}, {"plug_separator", ","},     {"disable_timeout", "false"},
        {"debug", "/dev/null"},     {"debug_file", "/dev/null"},     {"ipmitool_timeout", "2"},
        {"cipher", "3"},            {"ipport", "623"},               {"login", "admin"},
        {"username", "admin"},      {"passwd", "secret"},            {"password", "secret"},
        {"passwd_script", "echo secret"}, {"password_script", "echo secret"}};
    auto it = v.find(name);
    return it == v.end() ? "1" : it->second;
}

} // namespace

TEST_CASE("ipmi drop-in: every parameter fence_ipmilan's metadata lists is accepted", "[ipmi][dropin]")
{
    auto ipmilan = which("fence_ipmilan");
    if (!ipmilan) {
        WARN("SKIPPED: fence_ipmilan is not installed (package fence-agents)");
        return;
    }
    auto theirs = run({*ipmilan, "-o", "metadata"});
    REQUIRE(theirs.exit_code == 0);
    auto names = metadata_params(theirs.out);
    REQUIRE(names.size() > 30); // fence-agents 4.12 lists 41
    for (const char *n : {"ip", "ipaddr", "username", "login", "password", "passwd", "lanplus", "cipher", "target",
                          "hexadecimal_kg", "ipmitool_timeout", "use_sudo", "sudo"})
        CHECK(names.count(n) == 1);

    for (const auto &name : names) {
        if (name == "action" || name == "help" || name == "version")
            continue; // they change what runs, not what is configured
        INFO("parameter " << name << "=" << sample_value(name));
        std::string in = "action=validate-all\nip=127.0.0.1\n" + name + "=" + sample_value(name) + "\n";
        auto r = fence_stockade_ipmi({}, in);
        CHECK(r.exit_code == 0);
        CHECK(r.err.find("Ignoring unknown option") == std::string::npos);
        CHECK(r.err.find("Parse error") == std::string::npos);
        CHECK(r.out.find("Failed") == std::string::npos);
    }

    // Our metadata lists each parameter once (pacemaker and pcs read it).
    auto ours = fence_stockade_ipmi({"-o", "metadata"});
    REQUIRE(ours.exit_code == 0);
    static const std::regex param_re("<parameter name=\"([^\"]+)\"");
    std::map<std::string, int> seen;
    for (auto it = std::sregex_iterator(ours.out.begin(), ours.out.end(), param_re); it != std::sregex_iterator(); ++it)
        ++seen[(*it)[1]];
    for (const auto &[name, count] : seen) {
        INFO("metadata parameter " << name);
        CHECK(count == 1);
    }

    // The same on the command line, fence_ipmilan's spelling of every option at once.
    auto argv = fence_stockade_ipmi(
        {"-o", "validate-all", "-a", "127.0.0.1", "-u", "623", "-l", "admin", "-p", "secret", "-P", "-C", "3", "-L",
         "administrator", "-A", "md5", "-m", "onoff", "--hexadecimal-kg=0011", "--target=0x20",
         "--ipmitool-path=/usr/bin/ipmitool", "--ipmitool-timeout=2", "--use-sudo", "--sudo-path=/usr/bin/sudo",
         "--port-as-ip", "--stonith-status-sleep=1", "--power-wait=2", "--power-timeout=20", "--login-timeout=5",
         "--shell-timeout=3", "--retry-on=1", "--delay=0", "--disable-timeout=false", "--plug-separator=,", "-n",
         "node1", "--verbose-level=1", "-q"});
    CHECK(argv.exit_code == 0);
    INFO(argv.err);
    CHECK(argv.err.find("Parse error") == std::string::npos);

    // Unsupported ones say so, and are never fatal.
    auto sudo = fence_stockade_ipmi({}, "action=validate-all\nip=127.0.0.1\nuse_sudo=1\nport_as_ip=1\n");
    CHECK(sudo.exit_code == 0);
    CHECK_THAT(sudo.err, Catch::Contains("use_sudo") && Catch::Contains("ignored"));
    CHECK_THAT(sudo.err, Catch::Contains("port_as_ip") && Catch::Contains("not supported"));

    // Bad values of the new ones still name the field.
    auto bad = fence_stockade_ipmi({}, "action=validate-all\nip=127.0.0.1\ntarget=0x21\n");
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.out + bad.err, Catch::Contains("target"));
    auto bad_kg = fence_stockade_ipmi({}, "action=validate-all\nip=127.0.0.1\nhexadecimal_kg=zz\n");
    CHECK(bad_kg.exit_code != 0);
    CHECK_THAT(bad_kg.out + bad_kg.err, Catch::Contains("k_g"));
}

TEST_CASE("ipmi drop-in: exactly fence_ipmilan's attributes fence the named node; a hostlist still refuses others",
          "[ipmi][dropin]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir dir;
    auto bmc = SimBmc::start(dir.path());
    REQUIRE(bmc->ipmitool_power_status() == "on");
    // What pacemaker-fenced writes for a primitive copied from fence_ipmilan (pcmk_host_list is
    // the fencer's; it passes the target as plug and nodename).  No hostlist, no workarounds.
    const std::string ipmilan_attrs = "ip=" + bmc->address() + "\nipport=" + std::to_string(bmc->port()) +
                                      "\nusername=admin\npassword=secret\nlanplus=1\ncipher=3\n";

    auto monitor = fence_stockade_ipmi({}, "action=monitor\n" + ipmilan_attrs);
    INFO(monitor.err);
    CHECK(monitor.exit_code == 0);
    auto status = fence_stockade_ipmi({}, "action=status\nplug=node1\nnodename=node1\n" + ipmilan_attrs);
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.out, Catch::Contains("Status: ON"));

    SECTION("no hostlist: the node named is fenced")
    {
        auto off = fence_stockade_ipmi({}, "action=off\nplug=node1\nnodename=node1\n" + ipmilan_attrs);
        INFO(off.out << off.err);
        CHECK(off.exit_code == 0);
        CHECK(bmc->ipmitool_power_status() == "off");
        CHECK_FALSE(bmc->node_alive());
        // list has nothing to say without a hostlist, and says so (the fencer then asks status).
        auto list = fence_stockade_ipmi({}, "action=list\n" + ipmilan_attrs);
        CHECK(list.exit_code != 0);
        CHECK_THAT(list.out + list.err, Catch::Contains("hostlist"));
    }
    SECTION("with a hostlist, any other target is refused and the BMC is left alone")
    {
        auto off = fence_stockade_ipmi({}, "action=off\nplug=node2\nnodename=node2\nhostlist=node1\n" + ipmilan_attrs);
        CHECK(off.exit_code != 0);
        CHECK_THAT(off.out + off.err, Catch::Contains("node2"));
        CHECK(bmc->ipmitool_power_status() == "on");
        CHECK(bmc->node_alive());
        auto ok = fence_stockade_ipmi({}, "action=reboot\nplug=node1\nhostlist=node1\n" + ipmilan_attrs);
        CHECK(ok.exit_code == 0);
        CHECK(bmc->ipmitool_power_status() == "on");
    }
    SECTION("a bridged target nobody answers for fails; it never reports fenced")
    {
        auto off = fence_stockade_ipmi({}, "action=off\nplug=node1\ntarget=0x82\npower_timeout=3\n"
                                           "login_timeout=3\n" + ipmilan_attrs);
        INFO(off.out << off.err);
        CHECK(off.exit_code != 0);
        CHECK(bmc->node_alive());
    }
}
