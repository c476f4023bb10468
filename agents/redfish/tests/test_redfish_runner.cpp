// The redfish agent under the escalation runner and the fence-agents front-end: `stockade fence`
// falls from a dead (or hung) Redfish BMC at level 1 to a working IPMI BMC (ipmi_sim) at level 2
// and reports the node fenced there -- the IPMI node process is gone, the Redfish one untouched;
// a working Redfish level fences by itself; fence_stockade_redfish takes fence_redfish's stdin.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "ipmi_sim_fixture.hpp"
#include "redfish_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

nlohmann::json redfish_device(const RedfishService &svc, int port, int timeout_s = 15)
{
    return {{"agent", "redfish"},
            {"timeout", timeout_s},
            {"params",
             {{"ip", svc.address()},
              {"ipport", port},
              {"username", "admin"},
              {"password", "secret"},
              {"ssl_ca_file", svc.ca_file()},
              {"request_timeout", 2}}}};
}

nlohmann::json ipmi_device(const SimBmc &bmc)
{
    return {{"agent", "ipmi"},
            {"timeout", 15},
            {"params",
             {{"ip", bmc.address()},
              {"ipport", bmc.port()},
              {"username", "admin"},
              {"password", "secret"},
              {"workarounds", "opensesspriv"},
              {"session_timeout", 2000},
              {"hostlist", "node1"}}}};
}

// ipmi_sim's chassis script SIGKILLs the node and answers at once; on a loaded machine the killed
// process may still be scheduled for a few milliseconds after the BMC already reports off.
bool gone_soon(pid_t pid)
{
    for (int i = 0; i < 200 && pid_alive(pid); ++i)
        std::this_thread::sleep_for(10ms);
    return !pid_alive(pid);
}

CommandResult fence(const TempDir &d, const nlohmann::json &cfg, const std::string &action = "off")
{
    const std::string path = d.file("stockade.json");
    write_file(path, cfg.dump(2), 0600);
    return run({bin_path("stockade"), "--config", path, "--json", "fence", "node1", "--action", action}, "", 90s);
}

} // namespace

TEST_CASE("stockade fence: a dead Redfish BMC at level 1, the IPMI BMC at level 2 fences", "[redfish][runner]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    if (auto why = sim_unavailable_reason()) {
        WARN("SKIPPED: " << *why);
        return;
    }
    TempDir d;
    auto svc = RedfishService::start(d.path() / "redfish");
    auto bmc = SimBmc::start(d.path() / "ipmi");
    pid_t rf_node = svc->node_pid(), ipmi_node = bmc->node_pid();
    REQUIRE((rf_node > 0 && ipmi_node > 0));

    SECTION("nobody listens where the Redfish BMC should be")
    {
        nlohmann::json cfg = {
            {"version", 1},
            {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}, {"timeout", 60}}},
            {"devices", {{"rf", redfish_device(*svc, free_tcp_port())}, {"bmc", ipmi_device(*bmc)}}},
            {"nodes", {{"node1", {{"levels", {{"rf"}, {"bmc"}}}, {"action", "off"}}}}}};
        auto r = fence(d, cfg);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        auto j = nlohmann::json::parse(r.out).at(0); // --json: one record per node, an array
        CHECK(j["result"] == "fenced");
        CHECK(j["level"] == 2);
        bool saw = false;
        for (const auto &s : j["steps"])
            if (s["device"] == "rf" && s["result"] == "unreachable" &&
                s["message"].get<std::string>().find("Couldn't connect") != std::string::npos)
                saw = true;
        CHECK(saw);
        CHECK(gone_soon(ipmi_node));
        CHECK(pid_alive(rf_node));
        CHECK(r.err.find("secret") == std::string::npos);
    }
    SECTION("the Redfish BMC hangs: its device timeout ends level 1 in time")
    {
        svc->control(R"({"fault": "hang"})");
        nlohmann::json cfg = {
            {"version", 1},
            {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}, {"timeout", 60}}},
            {"devices", {{"rf", redfish_device(*svc, svc->port(), 4)}, {"bmc", ipmi_device(*bmc)}}},
            {"nodes", {{"node1", {{"levels", {{"rf"}, {"bmc"}}}, {"action", "off"}}}}}};
        auto t0 = std::chrono::steady_clock::now();
        auto r = fence(d, cfg);
        long ms = ms_since(t0);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        auto j = nlohmann::json::parse(r.out).at(0); // --json: one record per node, an array
        CHECK(j["level"] == 2);
        CHECK(gone_soon(ipmi_node));
        CHECK(pid_alive(rf_node));
        CHECK(ms < 15000);
        svc->control("{}");
    }
    SECTION("a working Redfish BMC fences at level 1; reboot too")
    {
        nlohmann::json cfg = {
            {"version", 1},
            {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}, {"timeout", 60}}},
            {"devices", {{"rf", redfish_device(*svc, svc->port())}, {"bmc", ipmi_device(*bmc)}}},
            {"nodes", {{"node1", {{"levels", {{"rf"}, {"bmc"}}}, {"action", "off"}}}}}};
        auto r = fence(d, cfg);
        INFO(r.out << r.err);
        REQUIRE(r.exit_code == 0);
        CHECK(nlohmann::json::parse(r.out).at(0)["level"] == 1);
        CHECK_FALSE(pid_alive(rf_node));
        CHECK(pid_alive(ipmi_node));
        auto rb = fence(d, cfg, "reboot");
        INFO(rb.out << rb.err);
        CHECK(rb.exit_code == 0);
        CHECK(svc->node_alive());
        CHECK(pid_alive(ipmi_node));
    }
}

TEST_CASE("fence_stockade_redfish takes fence_redfish's stdin and argv", "[redfish][frontend]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    TempDir d;
    auto svc = RedfishService::start(d.path());
    pid_t node = svc->node_pid();
    // fence_redfish's own names, its ip:port form, and its "redfish-uri" spelling.
    const std::string in = "action=off\nipaddr=" + svc->endpoint() + "\nlogin=admin\npasswd=secret\n" +
                           "redfish-uri=/redfish/v1\nssl_ca_file=" + svc->ca_file() + "\nport=node1\n";
    auto r = run({bin_path("fence_stockade_redfish")}, in, 60s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Success: Powered OFF"));
    CHECK_FALSE(pid_alive(node));
    auto st = run({bin_path("fence_stockade_redfish"), "-a", svc->address(), "-u", std::to_string(svc->port()), "-l",
                   "admin", "-S", "/bin/echo secret", "--ssl-ca-file", svc->ca_file(), "-o", "status"},
                  "", 60s);
    INFO(st.out << st.err);
    CHECK(st.exit_code == 2);
    CHECK_THAT(st.out, Catch::Contains("Status: OFF"));
    // Our metadata names every parameter fence_redfish's does ("redfish-uri" as redfish_uri).
    auto meta = run({bin_path("fence_stockade_redfish"), "-o", "metadata"}, "", 30s);
    REQUIRE(meta.exit_code == 0);
    auto theirs = run({"/usr/sbin/fence_redfish", "-o", "metadata"}, "", 60s, {{"PYTHONWARNINGS", "ignore"}});
    REQUIRE(theirs.exit_code == 0);
    size_t checked = 0;
    const std::string key = "<parameter name=\"";
    for (size_t at = theirs.out.find(key); at != std::string::npos; at = theirs.out.find(key, at + 1)) {
        const size_t b = at + key.size();
        std::string name = theirs.out.substr(b, theirs.out.find('"', b) - b);
        std::replace(name.begin(), name.end(), '-', '_');
        INFO("fence_redfish parameter " << name);
        CHECK_THAT(meta.out, Catch::Contains(key + name + "\""));
        ++checked;
    }
    CHECK(checked >= 30);
}
