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

// A device whose limits fit its 30 s timeout: the agent states login 2 + one request with its
// retry 2 x 2 + 0.2 + power_timeout 5 + the last read 2, plus the host's 2 = 15.2 s for off; a
// configured timeout below what the agent needs is refused (time_needed).
nlohmann::json redfish_device(const RedfishService &svc, int port, int timeout_s = 30,
                              nlohmann::json limits = {{"login_timeout", 2}, {"request_timeout", 2}, {"retries", 1},
                                                       {"power_timeout", 5}})
{
    nlohmann::json params = {{"ip", svc.address()},
                             {"ipport", port},
                             {"username", "admin"},
                             {"password", "secret"},
                             {"ssl_ca_file", svc.ca_file()}};
    params.update(limits);
    return {{"agent", "redfish"}, {"timeout", timeout_s}, {"params", params}};
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
                s["message"].get<std::string>().find("Connection refused") != std::string::npos)
                saw = true;
        CHECK(saw);
        CHECK(gone_soon(ipmi_node));
        CHECK(pid_alive(rf_node));
        CHECK(r.err.find("secret") == std::string::npos);
    }
    SECTION("the Redfish BMC hangs: its own limits end level 1 in time")
    {
        svc->control(R"({"fault": "hang"})");
        // off 1 + 1 + 2 + 1 + the host's 2 = 7 s, reboot (two windows) 10 s: both fit the 10 s
        // timeout; the hung request ends at its own 1 s.
        nlohmann::json tight = {{"login_timeout", 1}, {"request_timeout", 1}, {"retries", 0}, {"power_timeout", 2}};
        nlohmann::json cfg = {
            {"version", 1},
            {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}, {"timeout", 60}}},
            {"devices", {{"rf", redfish_device(*svc, svc->port(), 10, tight)}, {"bmc", ipmi_device(*bmc)}}},
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

TEST_CASE("a caller limit below what the redfish agent needs is refused, naming both numbers", "[redfish][frontend][budget]")
{
    // fence_stockade_redfish: validate-all (and monitor) against total_timeout.  Defaults: 65.6 s
    // for off + the host's 2 s + the status before it (login 5 + shell 3) = 75.6 s.
    const std::string base = "ip=127.0.0.1\nusername=admin\npassword=secret\n";
    auto tight = run({bin_path("fence_stockade_redfish")}, "action=validate-all\n" + base + "total_timeout=60\n", 30s);
    INFO(tight.out << tight.err);
    CHECK(tight.exit_code == 1);
    CHECK_THAT(tight.err, Catch::Contains("agent 'redfish' needs 75.6 s for off") &&
                              Catch::Contains("total_timeout allows only 60 s"));
    auto monitor = run({bin_path("fence_stockade_redfish")}, "action=monitor\n" + base + "total_timeout=60\n", 30s);
    CHECK(monitor.exit_code == 1);
    CHECK_THAT(monitor.err, Catch::Contains("total_timeout allows only 60 s"));
    // Reboot: two windows (95.6 s + 2 + 8).
    auto reboot = run({bin_path("fence_stockade_redfish")}, "action=validate-all\n" + base + "total_timeout=100\n", 30s);
    CHECK(reboot.exit_code == 1);
    CHECK_THAT(reboot.err, Catch::Contains("needs 105.6 s for reboot") && Catch::Contains("allows only 100 s"));
    auto roomy = run({bin_path("fence_stockade_redfish")}, "action=validate-all\n" + base + "total_timeout=106\n", 30s);
    INFO(roomy.err);
    CHECK(roomy.exit_code == 0);
    // Shorter own limits make a shorter need: power_timeout=5, request_timeout=2, retries=0 ->
    // off 5 + 2 + 5 + 2 = 14 s, reboot 5 + 2 + 2 x 7 = 21 s (+ 2 + 8).
    auto shorter = run({bin_path("fence_stockade_redfish")},
                       "action=validate-all\n" + base + "power_timeout=5\nrequest_timeout=2\nretries=0\ntotal_timeout=31\n",
                       30s);
    INFO(shorter.err);
    CHECK(shorter.exit_code == 0);

    // The cluster-glue shim (as external/stockade): `status`, the monitor, refuses a stockade_timeout
    // below the need; without one the need is the cap.
    auto glue = [](const std::string &timeout) {
        std::vector<std::pair<std::string, std::string>> env = {
            {"agent", "redfish"}, {"ip", "127.0.0.1"}, {"ipport", "1"}, {"username", "admin"}, {"passwd", "secret"}};
        if (!timeout.empty())
            env.push_back({"stockade_timeout", timeout});
        return run({"/bin/bash", "-c", "exec -a stockade \"$0\" status", bin_path("stockade-glue-external")}, "", 60s,
                   env);
    };
    auto glue_tight = glue("30");
    INFO(glue_tight.err);
    CHECK(glue_tight.exit_code != 0);
    CHECK_THAT(glue_tight.err, Catch::Contains("needs 67.6 s for off") &&
                                   Catch::Contains("stockade_timeout allows only 30 s"));
    auto glue_unset = glue(""); // no refusal: status goes to the (dead) BMC and fails there
    INFO(glue_unset.err);
    CHECK_THAT(glue_unset.err, Catch::Contains("Connection refused"));
    CHECK(glue_unset.err.find("allows only") == std::string::npos);

    // stockade validate: a device "timeout" below the need, refused at /devices/<name>/timeout.
    TempDir d;
    nlohmann::json cfg = {{"version", 1},
                          {"devices",
                           {{"rf",
                             {{"agent", "redfish"},
                              {"timeout", 20},
                              {"params", {{"ip", "127.0.0.1"}, {"username", "admin"}, {"password", "secret"}}}}}}},
                          {"nodes", {{"node1", {{"levels", {{"rf"}}}}}}}};
    const std::string path = d.file("stockade.json");
    write_file(path, cfg.dump(2), 0600);
    auto v = run({bin_path("stockade"), "--config", path, "validate"}, "", 30s);
    INFO(v.out << v.err);
    CHECK(v.exit_code != 0);
    CHECK_THAT(v.out + v.err, Catch::Contains("/devices/rf/timeout") && Catch::Contains("needs 67.6 s for off") &&
                                  Catch::Contains("allows only 20 s"));
}
