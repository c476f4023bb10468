// The ipmi agent under the escalation runner: `stockade fence` falls through a BMC nobody
// answers on to a working one and reports the node fenced at level 2 (the node process is read
// back as gone), and status over many BMCs runs in parallel, not one after the other.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "ipmi_test_util.hpp"
#include "stockade/config.hpp"
#include "stockade/runner.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

nlohmann::json ipmi_device(const std::string &address, int port, const std::string &password, const std::string &hosts,
                           int session_timeout_ms = 1000)
{
    return {{"agent", "ipmi"},
            {"timeout", 15},
            {"params",
             {{"ip", address},
              {"ipport", port},
              {"username", "admin"},
              {"password", password},
              {"workarounds", "opensesspriv"},
              {"session_timeout", session_timeout_ms},
              {"hostlist", hosts}}}};
}

} // namespace

TEST_CASE("stockade fence: level 1 BMC unreachable, level 2 BMC fences the node", "[ipmi][runner]")
{
    IPMI_SKIP_IF_NO_SIM();
    TempDir d;
    auto bmc = SimBmc::start(d.path());
    pid_t node = bmc->node_pid();
    REQUIRE(bmc->node_alive());

    nlohmann::json cfg = {
        {"version", 1},
        {"escalation", {{"retry_delay", 0.2}, {"max_loops", 1}, {"timeout", 60}}},
        {"devices",
         {{"bmc-dead", ipmi_device("127.0.0.1", free_udp_port(), "secret", "node1")},
          {"bmc-live", ipmi_device(bmc->address(), bmc->port(), "secret", "node1")}}},
        {"nodes", {{"node1", {{"levels", {{"bmc-dead"}, {"bmc-live"}}}, {"action", "off"}}}}}};
    const std::string path = d.file("stockade.json");
    write_file(path, cfg.dump(2), 0600);

    auto t0 = std::chrono::steady_clock::now();
    CommandResult r = run({bin_path("stockade"), "--config", path, "--json", "fence", "node1"}, "", 60s);
    long ms = ms_since(t0);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code.has_value());
    CHECK(*r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out).at(0); // --json: an array, one record per node
    CHECK(j["result"] == "fenced");
    CHECK(j["level"] == 2);
    // The level-1 failure is the precise one.
    bool saw_unreachable = false;
    for (const auto &s : j["steps"])
        if (s["device"] == "bmc-dead" && s["message"].get<std::string>().find("unreachable") != std::string::npos)
            saw_unreachable = true;
    CHECK(saw_unreachable);
    // Read back: the node process is gone and the BMC says off.
    CHECK(pid_gone_within(node, std::chrono::seconds(5)));
    CHECK_FALSE(bmc->node_alive());
    CHECK(bmc->ipmitool_power_status() == "off");
    CHECK(ms < 10000);
    // The password never reached stdout/stderr.
    CHECK(r.out.find("secret") == std::string::npos);
    CHECK(r.err.find("secret") == std::string::npos);
}

TEST_CASE("stockade fence: every level unreachable is a failure, and nothing is claimed", "[ipmi][runner]")
{
    TempDir d;
    nlohmann::json cfg = {
        {"version", 1},
        {"escalation", {{"retry_delay", 0.1}, {"max_loops", 1}}},
        {"devices", {{"bmc-dead", ipmi_device("127.0.0.1", free_udp_port(), "secret", "node1")}}},
        {"nodes", {{"node1", {{"levels", {{"bmc-dead"}}}, {"action", "off"}}}}}};
    const std::string path = d.file("stockade.json");
    write_file(path, cfg.dump(2), 0600);
    CommandResult r = run({bin_path("stockade"), "--config", path, "fence", "node1"}, "", 60s);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code.has_value());
    CHECK(*r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("failed"));
}

TEST_CASE("status of many BMCs runs in parallel through the runner", "[ipmi][runner]")
{
    IPMI_SKIP_IF_NO_SIM();
    constexpr size_t kBmcs = 8;
    TempDir d;
    // Each BMC takes 300 ms to read its power state, as slow real BMCs do: the time is then
    // spent waiting on the network, which is what parallel queries save (this machine has 2 cores).
    SimBmcOptions slow;
    slow.status_delay_ms = 300;
    SimBmcFarm farm(d.path(), kBmcs, slow);
    // Half the nodes off, so a wrong answer cannot hide.
    nlohmann::json devices = nlohmann::json::object(), nodes = nlohmann::json::object();
    for (size_t i = 0; i < kBmcs; ++i) {
        std::string n = "node" + std::to_string(i + 1);
        devices["bmc" + std::to_string(i + 1)] = ipmi_device(farm[i].address(), farm[i].port(), "secret", n, 5000);
        nodes[n] = {{"levels", {{"bmc" + std::to_string(i + 1)}}}};
    }
    nlohmann::json cfg = {{"version", 1}, {"concurrency", kBmcs}, {"devices", devices}, {"nodes", nodes}};
    auto parsed = parse_config(cfg.dump(), "parallel.json");
    REQUIRE(parsed.ok());
    AgentRegistry reg;
    REQUIRE(check_config_agents(*parsed, reg).ok());
    EscalationRunner runner(*parsed, reg, Logger::null());

    for (size_t i = 0; i < kBmcs; i += 2) {
        auto rep = runner.fence("node" + std::to_string(i + 1), PowerAction::Off);
        REQUIRE(rep.success);
    }

    // Serial: one node after the other.
    auto t0 = std::chrono::steady_clock::now();
    std::vector<StatusReport> serial;
    for (size_t i = 0; i < kBmcs; ++i)
        serial.push_back(runner.status("node" + std::to_string(i + 1)));
    long serial_ms = ms_since(t0);

    // Parallel: all at once (concurrency = kBmcs).
    t0 = std::chrono::steady_clock::now();
    std::vector<StatusReport> parallel = runner.status_all();
    long parallel_ms = ms_since(t0);

    REQUIRE(parallel.size() == kBmcs);
    for (size_t i = 0; i < kBmcs; ++i) {
        const uint32_t want = i % 2 == 0 ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON;
        INFO(parallel[i].node << ": " << parallel[i].reason);
        CHECK(parallel[i].power_state == want);
        CHECK(serial[i].power_state == want);
        CHECK(farm[i].node_alive() == (want == STOCKADE_POWER_ON)); // the truth, read from the process table
    }
    WARN("status of " << kBmcs << " BMCs: serial " << serial_ms << " ms, parallel " << parallel_ms << " ms");
    CHECK(parallel_ms * 10 < serial_ms * 7); // clearly below the serial sum (2 busy cores here)
}
