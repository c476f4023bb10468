// Every shipped example config validates against the schema and the agents, and the OSC2013
// three-level escalation (stonith_helper -> libvirt -> meatware) really fences: the victim's
// address answers pings, so the helper declines and the hypervisor level destroys the domain.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;

TEST_CASE("every example config validates", "[examples]")
{
    size_t n = 0;
    for (const auto &e : std::filesystem::directory_iterator(test::source_path("examples"))) {
        if (e.path().extension() != ".json")
            continue;
        ++n;
        auto r = test::run({test::bin_path("stockade"), "validate", e.path().string()});
        INFO(e.path() << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK_THAT(r.out, Catch::Contains(": ok ("));
    }
    CHECK(n >= 4);
}

// Every ```json block in every Markdown file of the tree (README.md, docs/, each agent's and front-end's
// README, examples/, bench/) is a whole configuration that `stockade validate` accepts: an admin
// copies these.
TEST_CASE("every JSON block in the READMEs and docs validates", "[examples][docs]")
{
    namespace fs = std::filesystem;
    const fs::path root = test::source_path("");
    test::TempDir d;
    size_t blocks = 0;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        const std::string name = it->path().filename().string();
        if (it->is_directory() && (name == ".git" || name.rfind("build", 0) == 0)) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->path().extension() != ".md")
            continue;
        std::ifstream f(it->path());
        std::string line, body;
        size_t lineno = 0, start = 0;
        bool in_json = false;
        while (std::getline(f, line)) {
            ++lineno;
            if (!in_json && line.rfind("```json", 0) == 0) {
                in_json = true;
                body.clear();
                start = lineno;
            } else if (in_json && line.rfind("```", 0) == 0) {
                in_json = false;
                ++blocks;
                const std::string where = fs::relative(it->path(), root).string() + ":" + std::to_string(start);
                const std::string file = d.file("block" + std::to_string(blocks) + ".json");
                test::write_file(file, body);
                auto r = test::run({test::bin_path("stockade"), "validate", file});
                INFO(where << "\n" << body << r.err);
                CHECK(r.exit_code == 0);
            } else if (in_json) {
                body += line + "\n";
            }
        }
    }
    CHECK(blocks >= 4);
}

TEST_CASE("the three-level example escalates from the helper to the hypervisor", "[examples]")
{
    auto r = test::run({test::bin_path("stockade"), "-c", test::source_path("examples/osc2013-three-levels.json"),
                        "--json", "fence", "pm1"},
                       "", 120s);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"level\": 2"));
    CHECK_THAT(r.err, Catch::Contains("'helper' (stonith_helper) off pm1: failed"));
    CHECK_THAT(r.err, Catch::Contains("domain 'test' running -> shut off"));
}
