// Progress during an escalation: one line when each device starts (with its timeout), and a
// "still waiting (N s of M s)" line at every interval while its operation runs.
#include <catch2/catch.hpp>

#include <mutex>

#include "stockade/config.hpp"
#include "stockade/runner.hpp"

using namespace stockade;
using namespace std::chrono_literals;

TEST_CASE("a device that takes long says when it started and that it is still waiting", "[runner][progress]")
{
    auto c = parse_config(R"({
      "escalation": {"max_loops": 1},
      "devices": {"slow": {"agent": "testagent", "timeout": 30, "params": {"delay_ms": 2400}},
                  "fast": {"agent": "testagent", "timeout": 7}},
      "nodes": {"n1": {"levels": [["slow", "fast"]], "action": "off"}}
    })", "progress.json");
    REQUIRE(c);
    AgentRegistry registry;
    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    std::mutex mu;
    std::vector<std::string> lines;
    logger.add_sink([&](int, std::string_view l) {
        std::lock_guard lock(mu);
        lines.emplace_back(l);
    });
    EscalationRunner runner(*c, registry, logger);
    runner.set_progress_interval(1000ms); // 5 s by default; shorter here so the test is short
    FenceReport r = runner.fence("n1");
    REQUIRE(r.success);
    auto has = [&](const std::string &needle) {
        std::lock_guard lock(mu);
        for (const auto &l : lines)
            if (l.find(needle) != std::string::npos)
                return true;
        return false;
    };
    CHECK(has("level 1, device 1/2 'slow' (testagent) starts: off n1 (timeout 30.0 s)"));
    CHECK(has("level 1, device 2/2 'fast' (testagent) starts: off n1 (timeout 7.0 s)"));
    CHECK(has("fence n1: device 'slow' off: still waiting (1 s of 30 s)"));
    CHECK(has("fence n1: device 'slow' off: still waiting (2 s of 30 s)"));
    CHECK_FALSE(has("device 'fast' off: still waiting")); // it answered at once
}
