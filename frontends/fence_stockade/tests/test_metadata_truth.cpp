// Metadata tells the truth, for every agent the build ships (issue 18): no parameter listed
// twice, every name the agent accepts listed, every default shown the one that applies (the
// agent's own where it feeds an agent parameter), and for agents that state their own time need,
// no fixed overall deadline that would not apply.  What the front-end then really applies is
// checked through fence_stockade itself: validate-all refuses a total_timeout below the agent's
// need, naming both numbers.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>

#include "stockade/frontend/fence_options.hpp"
#include "stockade/time_budget.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::frontend;
using namespace std::chrono_literals;

namespace {

struct Listed {
    std::string name;
    std::optional<std::string> default_value;
};

std::vector<Listed> listed_parameters(const std::string &xml)
{
    std::vector<Listed> out;
    std::regex param(R"re(<parameter name="([^"]+)"[^>]*>\s*<getopt[^>]*>\s*<content type="[a-z]+" (default="([^"]*)" )?)re");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), param); it != std::sregex_iterator(); ++it) {
        Listed l;
        l.name = (*it)[1];
        if ((*it)[2].matched)
            l.default_value = (*it)[3];
        out.push_back(l);
    }
    return out;
}

std::string norm(std::string s)
{
    for (auto &c : s)
        if (c == '-')
            c = '_';
    return s;
}

} // namespace

TEST_CASE("every agent's metadata lists each accepted name once, with the defaults that apply", "[frontend][metadata]")
{
    AgentRegistry reg;
    size_t agents = 0;
    for (const auto &[name, found] : reg.scan()) {
        if (!found)
            continue; // another build's leftovers are the loader's business, not the metadata's
        const AgentInfo &a = **found;
        ++agents;
        DYNAMIC_SECTION("agent " << a.name)
        {
            OptionTable table(&a, false);
            std::string xml = metadata_xml(table, std::string(kProgramPrefix) + a.name);
            auto listed = listed_parameters(xml);
            REQUIRE_FALSE(listed.empty());
            std::map<std::string, int> count;
            for (const auto &l : listed)
                ++count[l.name];
            for (const auto &[n, c] : count) {
                INFO("parameter " << n);
                CHECK(c == 1);
            }
            auto shown = [&](const std::string &n) -> const Listed * {
                for (const auto &l : listed)
                    if (norm(l.name) == norm(n))
                        return &l;
                return nullptr;
            };
            for (const auto &p : a.params) {
                // Every name the agent accepts is listed, except Pacemaker's own pcmk_* names and
                // a host-supplied target parameter, which the front-end's plug/port feeds.
                std::vector<std::string> names{p.name};
                names.insert(names.end(), p.aliases.begin(), p.aliases.end());
                for (const auto &n : names) {
                    if (n.rfind("pcmk_", 0) == 0 || p.host_supplied())
                        continue;
                    const OptionSpec *spec = table.find_stdin(n);
                    INFO("agent parameter " << p.name << ", name " << n);
                    REQUIRE(spec != nullptr);
                    if (spec->field != Field::None)
                        continue; // a front-end option of that name (plug, nodename, password_script)
                    CHECK(shown(n) != nullptr);
                }
                // The default shown for the option that feeds this parameter is the agent's own.
                const OptionSpec *spec = table.find_stdin(p.name);
                if (!spec || spec->param != &p || p.secret())
                    continue;
                const Listed *l = shown(spec->key);
                INFO("agent parameter " << p.name << " shown as " << spec->key);
                REQUIRE(l != nullptr);
                CHECK(l->default_value == p.default_value);
            }
            // An agent that states its own time need gets it as the overall deadline: no fixed 55.
            const Listed *total = shown("total_timeout");
            REQUIRE(total != nullptr);
            if (a.time_needed)
                CHECK_FALSE(total->default_value.has_value());
            else
                CHECK(total->default_value == "55");
        }
    }
    CHECK(agents >= 8);
}

TEST_CASE("libvirt's connect limit is the login_timeout its metadata advertises", "[frontend][metadata]")
{
    AgentRegistry reg;
    auto a = reg.find("libvirt");
    REQUIRE(a.ok());
    OptionTable table(*a, false);
    const OptionSpec *login = table.find_stdin("login_timeout");
    REQUIRE(login != nullptr);
    REQUIRE(login->param != nullptr);
    CHECK(login->param->name == "connect_timeout"); // the one limit; connect_timeout is its other name
    CHECK(login->default_value == login->param->default_value);
    auto xml = metadata_xml(table, "fence_stockade_libvirt");
    CHECK(xml.find("<parameter name=\"connect_timeout\" unique=\"0\" required=\"0\" deprecated=\"1\">") !=
          std::string::npos);
}

TEST_CASE("fence_stockade refuses at validate-all a total_timeout below the agent's own wait, naming both",
          "[frontend][budget]")
{
    auto run = [](const std::string &input) {
        return test::run({test::bin_path("fence_stockade_meatware")}, input, 30s);
    };
    // meatware waits `timeout` for the operator: 600 s by default, plus the host's slack.
    auto needed_s = [](const std::string &err) {
        std::smatch m;
        return std::regex_search(err, m, std::regex(R"re(needs ([0-9.]+) s for off)re")) ? std::stod(m[1]) : 0.0;
    };
    auto tight = run("action=validate-all\nhostlist=n1\ntotal_timeout=55\n");
    CHECK(tight.exit_code == 1);
    CHECK_THAT(tight.err, Catch::Contains("agent 'meatware' needs") && Catch::Contains("total_timeout allows only 55 s"));
    CHECK(needed_s(tight.err) > 600.0); // the operator's whole wait, not a power-device formula
    auto roomy = run("action=validate-all\nhostlist=n1\ntotal_timeout=700\n");
    CHECK(roomy.exit_code == 0);
    auto unset = run("action=validate-all\nhostlist=n1\n"); // no caller limit given: the agent's need applies
    CHECK(unset.exit_code == 0);
    auto shorter_wait = run("action=validate-all\nhostlist=n1\ntimeout=30\ntotal_timeout=55\n");
    CHECK(shorter_wait.exit_code == 0);
    // The same for stonith_helper: its standby wait and death check are its need.
    auto helper = test::run({test::bin_path("fence_stockade_stonith_helper")},
                            "action=validate-all\nhostlist=n1\ndead_check_target=127.0.0.1\n"
                            "standby_check_command=true\nstandby_wait_time=60\ntotal_timeout=55\n",
                            30s);
    CHECK(helper.exit_code == 1);
    CHECK_THAT(helper.err, Catch::Contains("agent 'stonith_helper' needs") && Catch::Contains("allows only 55 s"));
    CHECK(needed_s(helper.err) > 60.0); // standby_wait_time=60 plus the death check
}
