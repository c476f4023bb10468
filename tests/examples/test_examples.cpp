// Every shipped example config validates against the schema and the agents, and the OSC2013
// three-level escalation (stonith_helper -> libvirt -> meatware) really fences: the victim's
// address answers pings, so the helper declines and the hypervisor level destroys the domain.
#include <catch2/catch.hpp>

#include <filesystem>

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
