// Errors as values: a config error names its field as a JSON pointer (a field of the Error, not
// text to re-parse), `stockade validate` lists every error it finds, one line each naming the file
// and the pointer; and how an agent operation ended (completed, killed at the deadline, host
// died) is kept apart from the agent's result code.
#include <catch2/catch.hpp>

#include "stockade/config.hpp"
#include "stockade/json_schema.hpp"
#include "stockade/runner.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string &s)
{
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
        out.push_back(s.substr(start, nl - start));
    if (start < s.size())
        out.push_back(s.substr(start));
    return out;
}

} // namespace

TEST_CASE("schema errors carry their JSON pointer and problem; all of them are found", "[config][errors]")
{
    auto doc = nlohmann::json::parse(R"({
      "escalation": {"max_loops": -1},
      "devices": {"d": {"agent": "testagent", "timeout": 0}, "e/f": {}},
      "nodes": {"n": {"levels": [["d"]], "colour": 1}}
    })");
    auto errors = validate_json_all(config_schema(), doc);
    std::vector<std::pair<std::string, std::string>> got;
    for (const auto &e : errors)
        got.emplace_back(e.pointer, e.problem);
    CHECK(got == std::vector<std::pair<std::string, std::string>>{
                     {"/devices/d/timeout", "must be > 0"},
                     {"/devices/e~1f", "invalid name: 'e/f' does not match ^[A-Za-z0-9_.:-]{1,64}$"},
                     {"/escalation/max_loops", "must be >= 0"},
                     {"/nodes/n/colour", "unknown field 'colour'"},
                 });
    for (const auto &e : errors)
        CHECK(e.message == e.pointer + ": " + e.problem);
    CHECK_FALSE(validate_json(config_schema(), doc)); // the first one, for callers wanting one
}

TEST_CASE("agent parameter errors are re-based under the config path by pointer", "[config][errors]")
{
    test::TempDir d;
    test::write_file(d.file("c.json"), R"({
      "devices": {"a": {"agent": "testagent", "params": {"delay_ms": "soon"}},
                  "b": {"agent": "nosuch"}, "c": {"agent": "testagent"}},
      "nodes": {"n": {"levels": [["a"], [{"device": "c", "params": {"verify": "perhaps"}}]]}}
    })");
    AgentRegistry registry;
    ConfigCheck check = check_config_file(d.file("c.json"), registry);
    CHECK_FALSE(check.config);
    std::vector<std::string> pointers;
    for (const auto &e : check.errors) {
        pointers.push_back(e.pointer);
        CHECK(e.message.rfind(d.file("c.json") + ": " + e.pointer + ": ", 0) == 0);
    }
    // Every device and every level entry with parameters of its own is checked.
    CHECK(pointers == std::vector<std::string>{"/devices/a/params/delay_ms", "/devices/b/agent",
                                               "/nodes/n/levels/1/0/params/verify"});
    auto first = load_config(d.file("c.json"));
    REQUIRE(first);
    auto one = check_config_agents(*first, registry);
    REQUIRE_FALSE(one);
    CHECK(one.error().pointer == "/devices/a/params/delay_ms");
    CHECK(one.error().problem == "'soon' is not an integer");
}

TEST_CASE("stockade validate reports every error, one line each naming file and JSON pointer", "[cli][config][errors]")
{
    test::TempDir d;
    std::string schema_bad = d.file("schema.json");
    test::write_file(schema_bad, R"({
      "escalation": {"max_loops": -1},
      "devices": {"d": {"agent": "testagent", "timeout": 0}, "e": {}},
      "nodes": {"n": {"levels": [["d"]], "colour": 1}}
    })");
    auto r = test::run({test::bin_path("stockade"), "validate", schema_bad});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    auto lines = lines_of(r.err);
    REQUIRE(lines.size() == 4);
    const char *pointers[] = {"/devices/d/timeout: ", "/devices/e: ", "/escalation/max_loops: ", "/nodes/n/colour: "};
    for (size_t i = 0; i < 4; ++i) {
        CHECK_THAT(lines[i], Catch::Contains(schema_bad + ": "));
        CHECK_THAT(lines[i], Catch::Contains(pointers[i]));
    }

    std::string refs_bad = d.file("refs.json");
    test::write_file(refs_bad, R"({
      "devices": {"d": {"agent": "testagent"}},
      "nodes": {"n": {"levels": [["x"], ["d", "d"]]}, "m": {"levels": [["y"]]}, "P": {"levels": [["d"]]},
                "p": {"levels": [["d"]]}}
    })");
    r = test::run({test::bin_path("stockade"), "validate", refs_bad});
    CHECK(r.exit_code == 2);
    lines = lines_of(r.err);
    REQUIRE(lines.size() == 4);
    // (in key order, as the JSON library keeps objects)
    CHECK_THAT(lines[0], Catch::Contains(refs_bad + ": /nodes/m/levels/0/0: unknown device 'y'"));
    CHECK_THAT(lines[1], Catch::Contains(refs_bad + ": /nodes/n/levels/0/0: unknown device 'x'"));
    CHECK_THAT(lines[2], Catch::Contains(refs_bad + ": /nodes/n/levels/1/1: device 'd' appears twice in one level"));
    CHECK_THAT(lines[3], Catch::Contains(refs_bad + ": /nodes/p: node defined twice"));
}

TEST_CASE("how an operation ended is kept apart from the agent's result code", "[runner][errors]")
{
    test::TempDir d;
    auto c = parse_config(R"({
      "escalation": {"max_loops": 1},
      "devices": {
        "own": {"agent": "testagent", "params": {"mode": "timeout"}},
        "hung": {"agent": "testagent", "timeout": 1, "params": {"mode": "hang"}},
        "crash": {"agent": "testagent", "params": {"mode": "crash"}}
      },
      "nodes": {"n1": {"levels": [["own"], ["hung"], ["crash"]], "action": "off"}}
    })", "t.json");
    REQUIRE(c);
    AgentRegistry registry;
    Logger logger;
    EscalationRunner runner(*c, registry, logger);
    FenceReport r = runner.fence("n1");
    CHECK_FALSE(r.success);
    REQUIRE(r.steps.size() == 3);
    // The agent itself said "timed out": its answer, the operation completed.
    CHECK(r.steps[0].rc == STOCKADE_RC_TIMEOUT);
    CHECK(r.steps[0].exec == ExecStatus::Completed);
    CHECK_FALSE(r.steps[0].to_json().contains("execution"));
    // The agent never answered: killed at the deadline.
    CHECK(r.steps[1].rc == STOCKADE_RC_TIMEOUT);
    CHECK(r.steps[1].exec == ExecStatus::TimedOut);
    CHECK(r.steps[1].to_json()["execution"] == "timed-out");
    // The agent's process crashed: no answer at all.
    CHECK(r.steps[2].exec == ExecStatus::HostDied);
    CHECK(r.steps[2].to_json()["execution"] == "host-died");
}
