// The fence sequence table (docs/fence-sequence.md), row by row, through every front-end: the
// escalation runner (in process, isolated agent host), fence_stockade (stdin, as Pacemaker runs
// it) and the cluster-glue shim (argv + environment, as cluster-glue runs it).  The test reads the
// table from the doc, so the doc cannot drift from what the code does.  The device is the test
// agent built with the row's capabilities; its state file is the node's power state and its
// journal the commands it received.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "stockade/config.hpp"
#include "stockade/runner.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

struct Row {
    std::string number, action, caps, confirms, starts, runner, glue, fence_agent, ends;
};

std::string trim(std::string s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
        ++i;
    return s.substr(i);
}

std::vector<Row> read_table()
{
    std::ifstream f(test::source_path("docs/fence-sequence.md"));
    std::vector<Row> rows;
    bool in_table = false;
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("| # | action |", 0) == 0) {
            in_table = true;
            continue;
        }
        if (!in_table || line.rfind("|---", 0) == 0)
            continue;
        if (line.empty() || line[0] != '|')
            break;
        std::vector<std::string> cells;
        std::stringstream ss(line.substr(1));
        for (std::string c; std::getline(ss, c, '|');)
            cells.push_back(trim(c));
        REQUIRE(cells.size() >= 9);
        rows.push_back({cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[8]});
    }
    return rows;
}

// The test agent variant with exactly these capabilities (tests/CMakeLists.txt builds them).
std::string agent_for(const std::string &caps)
{
    static const std::map<std::string, std::string> agents{
        {"off on reboot status", "testagent"},       {"off on status", "testagent_noreboot"},
        {"off on reboot", "testagent_nostatus"},     {"off on", "testagent_bare"},
        {"off status", "testagent_offonly"},         {"off on reboot status diag", "testagent_diag"},
    };
    auto it = agents.find(caps);
    if (it == agents.end())
        FAIL("no test agent variant for capabilities '" << caps << "'");
    return it->second;
}

// "off, on → ok, on not confirmed" -> commands {"off", "on"}, outcome "ok, on not confirmed".
struct Expect {
    std::vector<std::string> commands;
    std::string outcome;
};

Expect parse_cell(const std::string &cell)
{
    Expect e;
    auto arrow = cell.find("→");
    REQUIRE(arrow != std::string::npos);
    std::string cmds = trim(cell.substr(0, arrow));
    e.outcome = trim(cell.substr(arrow + std::string("→").size()));
    if (cmds != "—") {
        std::stringstream ss(cmds);
        for (std::string c; std::getline(ss, c, ',');)
            e.commands.push_back(trim(c));
    }
    return e;
}

struct Device {
    test::TempDir dir;
    std::string agent;
    std::vector<std::pair<std::string, std::string>> params;

    Device(const Row &row)
    {
        agent = agent_for(row.caps);
        test::write_file(dir.file("state"), row.starts + "\n");
        params = {{"state_file", dir.file("state")}, {"journal", dir.file("journal")}, {"label", "d"}};
        if (row.confirms.rfind("no", 0) == 0)
            params.emplace_back("verify", "0");
        if (row.confirms == "no, status lies on")
            params.emplace_back("status_mode", "on");
    }
    // Power commands the device received (status reads left out).
    std::vector<std::string> commands() const
    {
        std::vector<std::string> out;
        std::ifstream f(dir.file("journal"));
        for (std::string label, op, target; f >> label >> op >> target;)
            if (op != "status")
                out.push_back(op);
        std::remove(dir.file("journal").c_str());
        return out;
    }
    std::string state() const { return trim(test::read_file(dir.file("state"))); }
    void reset(const Row &row) const { test::write_file(dir.file("state"), row.starts + "\n"); }
};

std::string run_runner(const Row &row, const Device &dev, std::string *log)
{
    nlohmann::json params = nlohmann::json::object();
    for (const auto &[k, v] : dev.params)
        params[k] = k == "verify" ? nlohmann::json(v == "1") : nlohmann::json(v);
    nlohmann::json cfg{{"escalation", {{"max_loops", 1}}},
                       {"devices", {{"d", {{"agent", dev.agent}, {"params", params}}}}},
                       {"nodes", {{"n1", {{"levels", {{"d"}}}}}}}};
    auto c = parse_config(cfg.dump(), "table.json");
    REQUIRE(c);
    AgentRegistry registry;
    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    logger.add_sink([log](int, std::string_view l) { *log += std::string(l) + "\n"; });
    EscalationRunner runner(*c, registry, logger);
    if (row.action == "status") {
        StatusReport s = runner.status("n1");
        return s.level ? std::string(power_state_info(s.power_state).name) : "fails";
    }
    FenceReport r = runner.fence("n1", parse_power_action(row.action));
    if (!r.success)
        return "fails";
    return r.power_on_failed ? "ok, on not confirmed" : "ok";
}

std::string run_fence_agent(const Row &row, const Device &dev, std::string *log)
{
    std::string input = "agent=" + dev.agent + "\nplug=n1\naction=" + row.action + "\n";
    for (const auto &[k, v] : dev.params)
        input += k + "=" + v + "\n";
    auto r = test::run({test::bin_path("fence_stockade")}, input, 60s);
    *log = "exit " + std::to_string(r.exit_code.value_or(-1)) + "\nstdout: " + r.out + "stderr: " + r.err;
    if (r.err.find("Unrecognised action") != std::string::npos)
        return "refused";
    if (row.action == "status")
        return r.exit_code == 0 ? "on" : r.exit_code == 2 ? "off" : "fails";
    if (r.exit_code != 0)
        return "fails";
    if (r.out.rfind("Success: Already", 0) == 0)
        return "already";
    return r.err.find("Timed out waiting to power ON") != std::string::npos ? "ok, on not confirmed" : "ok";
}

std::string run_glue(const Row &row, const Device &dev, std::string *log)
{
    // Installed as external/stockade-<agent>: the name picks the agent.
    std::string as = dev.dir.file("stockade-" + dev.agent);
    std::filesystem::remove(as);
    std::filesystem::create_symlink(test::bin_path("stockade-glue-external"), as);
    std::string op = row.action == "reboot" ? "reset" : row.action;
    auto r = test::run({as, op, "n1"}, "", 60s, dev.params);
    *log = "exit " + std::to_string(r.exit_code.value_or(-1)) + "\nstdout: " + r.out + "stderr: " + r.err;
    if (r.exit_code != 0)
        return "fails";
    return r.err.find("off confirmed,") != std::string::npos ? "ok, on not confirmed" : "ok";
}

} // namespace

TEST_CASE("every row of the fence sequence table, through the runner, fence_stockade and the glue shim",
          "[sequence]")
{
    std::vector<Row> rows = read_table();
    REQUIRE(rows.size() >= 20);
    for (const Row &row : rows) {
        Device dev(row);
        struct FrontEnd {
            const char *name;
            const std::string *cell;
            std::string (*run)(const Row &, const Device &, std::string *);
        };
        const FrontEnd fronts[] = {{"runner", &row.runner, run_runner},
                                   {"glue shim", &row.glue, run_glue},
                                   {"fence_stockade", &row.fence_agent, run_fence_agent}};
        for (const auto &fe : fronts) {
            if (*fe.cell == "n/a")
                continue;
            Expect want = parse_cell(*fe.cell);
            dev.reset(row);
            std::string log;
            std::string got = fe.run(row, dev, &log);
            INFO("row " << row.number << " (" << row.action << ", can " << row.caps << ", confirms " << row.confirms
                        << ", starts " << row.starts << ") through " << fe.name << "\n" << log);
            CHECK(got == want.outcome);
            CHECK(dev.commands() == want.commands);
            CHECK(dev.state() == (want.outcome == "refused" ? row.starts : row.ends));
        }
    }
}
