// test_input_rules.cpp -- docs/input-rules.md for configuration files: a NUL byte anywhere is
// refused with the JSON path named; a secret in a file other users can read draws a warning.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "stockade/config.hpp"
#include "stockade/registry.hpp"
#include "test_support.hpp"

using namespace stockade;

namespace {

const std::string kWithSecret = R"({
  "devices": {"dev1": {"agent": "testagent", "params": {"label": "a", "password": "Hunter2"}}},
  "nodes": {"n1": {"levels": [[{"device": "dev1", "params": {"password": "PerNode9"}}]], "action": "off"}}
})";

} // namespace

TEST_CASE("a NUL byte in a config value or key is refused, naming its JSON path", "[core][input]")
{
    auto v = parse_config(R"({"devices": {"d": {"agent": "testagent", "params": {"label": "n1\u0000evil"}}},
                              "nodes": {"n1": {"levels": [["d"]]}}})",
                          "c.json");
    REQUIRE_FALSE(v);
    CHECK(v.error().rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(v.error().message == "c.json: /devices/d/params/label: a NUL byte (\\u0000) is not allowed");

    auto k = parse_config(R"({"devices": {"d\u0000x": {"agent": "testagent"}}, "nodes": {}})", "c.json");
    REQUIRE_FALSE(k);
    CHECK(k.error().message.find("c.json: /devices/d") == 0);
    CHECK(k.error().message.find("NUL byte") != std::string::npos);

    auto ok = parse_config(R"({"devices": {"d": {"agent": "testagent", "params": {"label": "n1\u0001"}}},
                               "nodes": {"n1": {"levels": [["d"]]}}})",
                           "c.json");
    CHECK(ok); // other control characters are the agent's business
}

TEST_CASE("a secret in a config file that others can read is warned about, naming file, mode and path",
          "[core][input]")
{
    test::TempDir d;
    AgentRegistry registry;
    std::string path = d.file("stockade.json");
    test::write_file(path, kWithSecret, 0644);
    auto open = load_config(path);
    if (!open)
        FAIL(open.error().message);
    CHECK(open->file_mode == 0644);
    auto w = readable_secret_warnings(*open, registry);
    REQUIRE(w.size() == 2);
    CHECK(w[0] == path + " (mode 0644): /devices/dev1/params/password holds a secret that other users can read; "
                         "chmod 600 the file, or use password_file/password_script");
    CHECK(w[1].find("/nodes/n1/levels/0/0/params/password holds a secret") != std::string::npos);
    for (const auto &line : w) {
        CHECK(line.find("Hunter2") == std::string::npos);
        CHECK(line.find("PerNode9") == std::string::npos);
    }

    ::chmod(path.c_str(), 0640); // group-readable counts too
    CHECK(readable_secret_warnings(*load_config(path), registry).size() == 2);
    ::chmod(path.c_str(), 0600);
    CHECK(readable_secret_warnings(*load_config(path), registry).empty());

    // No secret, no warning, whatever the mode.
    std::string plain = d.file("plain.json");
    test::write_file(plain, R"({"devices": {"d": {"agent": "testagent", "params": {"label": "a"}}},
                               "nodes": {"n1": {"levels": [["d"]]}}})", 0644);
    CHECK(readable_secret_warnings(*load_config(plain), registry).empty());
}
