// The shared fence-agents option parser: every stdin grammar rule, the GNU getopt command line,
// defaults and checks in fence-agents' words, the mapping onto an agent's parameter table, and
// metadata that fence-agents' own RelaxNG schema accepts.
#include <catch2/catch.hpp>

#include <fstream>

#include "stockade/frontend/fence_options.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::frontend;

namespace {

ParamInfo param(std::string name, uint32_t type, uint32_t flags, std::optional<std::string> dflt,
                std::vector<std::string> aliases, std::vector<std::string> choices = {})
{
    ParamInfo p;
    p.name = std::move(name);
    p.type = type;
    p.flags = flags;
    p.default_value = std::move(dflt);
    p.aliases = std::move(aliases);
    p.choices = std::move(choices);
    p.description = "description of " + p.name;
    return p;
}

// An IPMI-like agent table (built by hand: parsing never opens the agent).
const AgentInfo &bmc_agent()
{
    static AgentInfo a = [] {
        AgentInfo x;
        x.name = "bmc";
        x.version = "1.0";
        x.summary = "A BMC-like device";
        x.capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_STATUS | STOCKADE_CAP_MONITOR;
        x.params = {
            param("ip", STOCKADE_PARAM_STRING, STOCKADE_PARAM_REQUIRED, std::nullopt, {"ipaddr", "hostname"}),
            param("ipport", STOCKADE_PARAM_INTEGER, 0, "623", {}),
            param("username", STOCKADE_PARAM_STRING, STOCKADE_PARAM_REQUIRED, std::nullopt, {"login"}),
            param("password", STOCKADE_PARAM_STRING, STOCKADE_PARAM_REQUIRED | STOCKADE_PARAM_SECRET, std::nullopt,
                  {"passwd"}),
            param("method", STOCKADE_PARAM_SELECT, 0, "onoff", {}, {"onoff", "cycle"}),
            param("lanplus", STOCKADE_PARAM_BOOLEAN, 0, "0", {}),
            param("domain", STOCKADE_PARAM_STRING, STOCKADE_PARAM_REQUIRED | STOCKADE_PARAM_HOST_SUPPLIED,
                  std::nullopt, {"port", "plug", "vm"}),
            param("power_timeout", STOCKADE_PARAM_SECONDS, 0, "10", {}),
            param("ipmitool_path", STOCKADE_PARAM_STRING, 0, "/usr/bin/ipmitool", {}),
        };
        return x;
    }();
    return a;
}

std::optional<std::string> agent_value(const ParsedInput &in, const std::string &name)
{
    std::optional<std::string> v;
    for (const auto &[k, val] : in.agent_params)
        if (k == name)
            v = val;
    return v;
}

std::vector<std::string> args(std::initializer_list<const char *> l) { return {l.begin(), l.end()}; }

} // namespace

TEST_CASE("stdin: trimming, comments, empty lines, first '=' splits", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto in = parse_stdin("  ipaddr=10.0.0.1  \n"
                          "# a comment=with equals\n"
                          "   # indented comment\n"
                          "\n"
                          "\t\r\n"
                          "login=admin=root\n"
                          "action=off\r\n",
                          t);
    CHECK(in.warnings.empty());
    CHECK(agent_value(in, "ip") == "10.0.0.1");
    CHECK(agent_value(in, "username") == "admin=root"); // only the first '=' splits
    CHECK(in.get(Field::Action) == "off");             // \r stripped with the line
}

TEST_CASE("stdin: one pair of surrounding double quotes is stripped", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    CHECK(agent_value(parse_stdin("login=\"admin\"", t), "username") == "admin");
    CHECK(agent_value(parse_stdin("login=\"\"admin\"\"", t), "username") == "\"admin\"");
    CHECK(agent_value(parse_stdin("login=\"admin", t), "username") == "\"admin");
    CHECK(agent_value(parse_stdin("login='admin'", t), "username") == "'admin'");
    CHECK(agent_value(parse_stdin("login=\"\"", t), "username") == "");
    CHECK(agent_value(parse_stdin("login=\"", t), "username") == "\"");
    // Spaces inside the line are kept: only the line is stripped, as fence-agents does.
    CHECK(agent_value(parse_stdin("login= admin ", t), "username") == " admin");
}

TEST_CASE("stdin: the last occurrence wins, across old and new names", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto in = parse_stdin("ipaddr=1.1.1.1\nip=2.2.2.2\nlogin=a\nusername=b\npasswd=x\npassword=y\nport=n1\nplug=n2\n"
                          "action=on\naction=status\n",
                          t);
    CHECK(in.warnings.empty());
    CHECK(agent_value(in, "ip") == "2.2.2.2");
    CHECK(agent_value(in, "username") == "b");
    CHECK(agent_value(in, "password") == "y");
    CHECK(in.get(Field::Plug) == "n2");
    CHECK(in.get(Field::Action) == "status");
    auto in2 = parse_stdin("ip=2.2.2.2\nipaddr=1.1.1.1\n", t);
    CHECK(agent_value(in2, "ip") == "1.1.1.1");
    REQUIRE(in2.agent_params.size() == 1);
}

TEST_CASE("stdin: '-' and '_' are equivalent in keys; keys are case-sensitive", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto in = parse_stdin("power-timeout=7\npassword-script=echo x\npasswd_script=echo y\nipmitool-path=/x\n"
                          "plug-separator=+\nverbose_level=2\n",
                          t);
    CHECK(in.warnings.empty());
    CHECK(in.get(Field::PowerTimeout) == "7");
    CHECK(agent_value(in, "power_timeout") == "7"); // shared with the agent's own parameter
    CHECK(in.get(Field::PasswordScript) == "echo y");
    CHECK(agent_value(in, "ipmitool_path") == "/x");
    CHECK(in.get(Field::PlugSeparator) == "+");
    CHECK(in.get(Field::VerboseLevel) == "2");
    auto bad = parse_stdin("Action=off\n", t);
    REQUIRE(bad.warnings.size() == 1);
    CHECK(bad.warnings[0] == "Parse error: Ignoring unknown option 'Action=off'");
    CHECK_FALSE(bad.has(Field::Action));
}

TEST_CASE("stdin: unknown keys are warned with the whole line and ignored", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto in = parse_stdin("colour = red\nfoo\noption=off\nhostname_x=1\nip=1.2.3.4\n", t);
    REQUIRE(in.warnings.size() == 4);
    CHECK(in.warnings[0] == "Parse error: Ignoring unknown option 'colour = red'");
    CHECK(in.warnings[1] == "Parse error: Ignoring unknown option 'foo'");
    // The 2012 aliases are gone in fence-agents too: option= is not action=.
    CHECK(in.warnings[2] == "Parse error: Ignoring unknown option 'option=off'");
    CHECK(in.warnings[3] == "Parse error: Ignoring unknown option 'hostname_x=1'");
    CHECK_FALSE(in.has(Field::Action));
    CHECK(agent_value(in, "ip") == "1.2.3.4");
    CHECK(in.agent_params.size() == 1);
}

TEST_CASE("stdin: flags take 1|yes|on|true / 0|no|off|false, anything else is warned", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    for (const char *v : {"1", "yes", "on", "true", "TRUE", "Yes"}) {
        auto in = parse_stdin(std::string("lanplus=") + v + "\nverbose=" + v, t);
        CHECK(in.warnings.empty());
        CHECK(agent_value(in, "lanplus") == "1");
        CHECK(in.verbose_count == 1);
    }
    for (const char *v : {"0", "no", "off", "false"}) {
        auto in = parse_stdin(std::string("lanplus=") + v + "\nverbose=" + v, t);
        CHECK(agent_value(in, "lanplus") == "0");
        CHECK(in.verbose_count == 0);
    }
    auto in = parse_stdin("lanplus\nverbose=maybe\nquiet=\n", t);
    REQUIRE(in.warnings.size() == 3);
    CHECK(in.warnings[0] == "Parse error: Ignoring option 'lanplus' because it does not have value");
    CHECK(in.warnings[1] == "Parse error: Ignoring option 'verbose' because it does not have value");
    CHECK(in.warnings[2] == "Parse error: Ignoring option 'quiet' because it does not have value");
    CHECK_FALSE(agent_value(in, "lanplus"));
}

TEST_CASE("stdin: nodename is the target only when no plug/port is given", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    std::vector<std::string> problems;
    auto s1 = settle(parse_stdin("nodename=node7\naction=off\n", t), t, &problems);
    REQUIRE(s1);
    CHECK(s1->targets == std::vector<std::string>{"node7"});
    auto s2 = settle(parse_stdin("nodename=node7\nport=vm7\n", t), t, &problems);
    REQUIRE(s2);
    CHECK(s2->targets == std::vector<std::string>{"vm7"});
    auto s3 = settle(parse_stdin("plug=a,b,,c\n", t), t, &problems);
    CHECK(s3->targets == std::vector<std::string>{"a", "b", "c"});
    auto s4 = settle(parse_stdin("plug=a,b+c\nplug_separator=+\n", t), t, &problems);
    CHECK(s4->targets == std::vector<std::string>{"a,b", "c"});
    CHECK(problems.empty());
}

TEST_CASE("stdin: agent= is silent for per-agent programs and chooses the generic one's agent", "[frontend]")
{
    OptionTable per(&bmc_agent(), false);
    auto in = parse_stdin("agent=fence_stockade_bmc\nip=1.2.3.4\n", per);
    CHECK(in.warnings.empty());
    OptionTable gen(&bmc_agent(), true);
    CHECK(parse_stdin("agent=fence_stockade_bmc\n", gen).get(Field::Agent) == "bmc");
    CHECK(peek_agent_stdin("# x\n agent=\"fence_stockade_sim\" \nagent=sim2\n") == "sim2");
    CHECK(peek_agent_stdin("agent=fence_stockade_sim\n") == "sim");
    CHECK_FALSE(peek_agent_stdin("plug=1\n"));
    CHECK(peek_agent_argv(args({"-o", "off", "--agent=fence_stockade_sim"})) == "sim");
    CHECK(peek_agent_argv(args({"--agent", "ipmi"})) == "ipmi");
    CHECK(agent_from_program_name("/usr/sbin/fence_stockade_ipmi") == "ipmi");
    CHECK(agent_from_program_name("fence_stockade") == "");
    CHECK(agent_from_program_name("fence_stockade_") == "");
}

TEST_CASE("argv: long and short options, clusters, stacked -v", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto r = parse_argv(args({"-a", "10.0.0.1", "--username=admin", "-pSECRET", "-n", "vm1", "-o", "status", "-u",
                              "6230", "--power-timeout", "9", "-vvv", "--delay=3", "--ipmitool-path", "/opt/ipmitool",
                              "--lanplus", "-m", "cycle", "-D", "/tmp/dbg"}),
                        t);
    REQUIRE(r);
    CHECK(r->warnings.empty());
    CHECK(agent_value(*r, "ip") == "10.0.0.1");
    CHECK(agent_value(*r, "username") == "admin");
    CHECK(agent_value(*r, "password") == "SECRET");
    CHECK(agent_value(*r, "ipport") == "6230");
    CHECK(agent_value(*r, "power_timeout") == "9");
    CHECK(agent_value(*r, "ipmitool_path") == "/opt/ipmitool");
    CHECK(agent_value(*r, "lanplus") == "1");
    CHECK(agent_value(*r, "method") == "cycle");
    CHECK(r->get(Field::Plug) == "vm1");
    CHECK(r->get(Field::Action) == "status");
    CHECK(r->get(Field::Delay) == "3");
    CHECK(r->get(Field::DebugFile) == "/tmp/dbg");
    CHECK(r->verbose_count == 3);
    // Where the secret sits, so the program can scrub its own argv: "-pSECRET" at index 3, offset 2.
    REQUIRE(r->secret_spans.size() == 1);
    CHECK(r->secret_spans[0] == std::pair<size_t, size_t>{3, 2});
}

TEST_CASE("argv: secrets in every spelling are located for scrubbing", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto r = parse_argv(args({"--password=abc", "-p", "def", "--password", "ghi", "-vp", "jkl"}), t);
    REQUIRE(r);
    std::vector<std::pair<size_t, size_t>> want{{0, 11}, {2, 0}, {4, 0}, {6, 0}};
    CHECK(r->secret_spans == want);
    CHECK(agent_value(*r, "password") == "jkl");
}

TEST_CASE("argv: errors and warnings in getopt's and fence-agents' words", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    struct Case {
        std::vector<std::string> argv;
        const char *error;
    } cases[] = {
        {args({"--colour=red"}), "Parse error: option --colour not recognized"},
        {args({"-z"}), "Parse error: option -z not recognized"},
        {args({"-a"}), "Parse error: option -a requires argument"},
        {args({"--ip"}), "Parse error: option --ip requires argument"},
        {args({"--verbose=1"}), "Parse error: option --verbose must not have an argument"},
        {args({"--lanplus=maybe"}), "Parse error: option --lanplus must not have an argument"},
        {args({"--power"}), "Parse error: option --power not a unique prefix"},
    };
    for (const auto &c : cases) {
        INFO(c.error);
        auto r = parse_argv(c.argv, t);
        REQUIRE_FALSE(r);
        CHECK(r.error().message == c.error);
    }
    auto r = parse_argv(args({"extra", "-o", "off", "--", "-n", "x"}), t);
    REQUIRE(r);
    REQUIRE(r->warnings.size() == 1);
    CHECK(r->warnings[0] == "Unused arguments on command line: ['extra', '-n', 'x']");
    CHECK_FALSE(r->has(Field::Plug));
    // Unique prefixes are accepted as GNU getopt does; booleans may be switched off.
    auto p = parse_argv(args({"--usern=bob", "--lanplus=0", "--meth", "onoff"}), t);
    REQUIRE(p);
    CHECK(agent_value(*p, "username") == "bob");
    CHECK(agent_value(*p, "lanplus") == "0");
    CHECK(agent_value(*p, "method") == "onoff");
    auto h = parse_argv(args({"-h", "-V"}), t);
    REQUIRE(h);
    CHECK(h->has(Field::Help));
    CHECK(h->has(Field::Version));
}

TEST_CASE("settle: defaults, action spelling, type checks in fence-agents' words", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    std::vector<std::string> problems;
    auto s = settle(parse_stdin("", t), t, &problems);
    REQUIRE(s);
    CHECK(s->action == "reboot");
    CHECK(s->power_timeout_s == 10); // the agent's own default for its shared parameter
    CHECK(s->login_timeout_s == 5);
    CHECK(s->shell_timeout_s == 3);
    CHECK(s->delay_s == 0);
    CHECK(s->retry_on == 1);
    CHECK(s->total_timeout_s == 55);
    CHECK(settle(parse_stdin("action=META-DATA", t), t, nullptr)->action == "metadata");
    CHECK(settle(parse_stdin("action=Off", t), t, nullptr)->action == "off");

    problems.clear();
    auto bad = settle(parse_stdin("power_timeout=soon\nretry_on=x\ndelay=-1\nmethod=fast\nlogin_timeout= 4 \n", t),
                      t, &problems);
    REQUIRE_FALSE(bad);
    REQUIRE(problems.size() == 4);
    CHECK(problems[0] == "Failed: The value you have entered for --delay is not a valid time in seconds");
    CHECK(problems[1] == "Failed: The value you have entered for --power-timeout is not a valid time in seconds");
    CHECK(problems[2] == "Failed: The value you have entered for --retry-on is not a valid integer");
    CHECK(problems[3] ==
          "Failed: You have to enter a valid choice for --method from the valid values: ['onoff', 'cycle']");
    CHECK(bad.error().message == problems[0]);
    CHECK(settle(parse_stdin("method=CYCLE", t), t, nullptr)); // choices are case-insensitive
}

TEST_CASE("agent parameters: host-supplied from the target, required ones in fence-agents' words", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    auto in = parse_stdin("ip=10.1.1.1\nlogin=admin\npasswd=pw\nnodename=node3\n", t);
    auto s = settle(in, t, nullptr);
    REQUIRE(s);
    auto p = agent_params(in, *s, t);
    REQUIRE(p);
    ParamList want{{"ip", "10.1.1.1"},  {"ipport", "623"},  {"username", "admin"},
                   {"password", "pw"},  {"method", "onoff"}, {"lanplus", "0"},
                   {"domain", "node3"}, {"power_timeout", "10"}, {"ipmitool_path", "/usr/bin/ipmitool"}};
    CHECK(*p == want);

    // An explicit domain= is kept; plug= is still the target.
    auto in2 = parse_stdin("ip=1\nlogin=a\npasswd=b\ndomain=vmX\nplug=vmY\n", t);
    auto s2 = settle(in2, t, nullptr);
    CHECK(s2->targets == std::vector<std::string>{"vmY"});
    auto p2 = agent_params(in2, *s2, t);
    REQUIRE(p2);
    CHECK(std::find(p2->begin(), p2->end(), std::pair<std::string, std::string>{"domain", "vmX"}) != p2->end());

    std::vector<std::string> missing;
    auto in3 = parse_stdin("action=status\n", t);
    auto r3 = agent_params(in3, *settle(in3, t, nullptr), t, &missing);
    REQUIRE_FALSE(r3);
    std::vector<std::string> want_missing{
        "Failed: You have to enter fence address", "Failed: You have to set login name",
        "Failed: You have to enter password or password script",
        "Failed: You have to enter plug number or machine identification"};
    CHECK(missing == want_missing);

    missing.clear();
    auto in4 = parse_stdin("ip=1\nlogin=a\npassword_script=echo x\nplug=p\n", t);
    auto r4 = agent_params(in4, *settle(in4, t, nullptr), t, &missing);
    CHECK(missing.empty()); // the script will supply it

    auto in5 = parse_stdin("ip=1\nlogin=a\npasswd=b\nplug=p\nipport=x\n", t);
    auto r5 = agent_params(in5, *settle(in5, t, nullptr), t);
    REQUIRE_FALSE(r5);
    CHECK(r5.error().message == "Failed: parameter 'ipport': 'x' is not an integer");
}

TEST_CASE("option table: renamed options, short options, actions by capability", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    const OptionSpec *ip = t.find_short('a');
    REQUIRE(ip);
    CHECK(ip->key == "ipaddr");
    CHECK(ip->new_key == "ip");
    CHECK(ip->required);
    CHECK(t.find_stdin("hostname") == ip); // the agent's own alias still works
    CHECK(t.find_short('p')->secret);
    CHECK(t.find_short('S')->field == Field::PasswordScript);
    CHECK(t.find_short('C') == nullptr); // no list: no separator, and the agent has no cipher
    CHECK(t.find_stdin("plug")->field == Field::Plug); // plug stays the target, not the domain alias
    CHECK(t.find_stdin("vm")->param->name == "domain");
    CHECK(t.actions() ==
          std::vector<std::string>{"on", "off", "reboot", "status", "monitor", "metadata", "validate-all"});
    CHECK(t.default_action() == "reboot");

    AgentInfo offonly = bmc_agent();
    offonly.capabilities = STOCKADE_CAP_OFF;
    OptionTable o(&offonly, false);
    CHECK(o.actions() == std::vector<std::string>{"off", "monitor", "metadata", "validate-all"});
    CHECK(o.default_action() == "off");
    CHECK(settle(parse_stdin("", o), o, nullptr)->action == "off");
}

TEST_CASE("metadata: fence-agents shape, renamed options twice, validates against metadata.rng", "[frontend]")
{
    OptionTable t(&bmc_agent(), false);
    std::string xml = metadata_xml(t, "fence_stockade_bmc");
    CHECK(xml.rfind("<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_stockade_bmc\"", 0) == 0);
    CHECK(xml.find("<parameter name=\"ipaddr\" unique=\"0\" required=\"1\" deprecated=\"1\">") != std::string::npos);
    CHECK(xml.find("<parameter name=\"ip\" unique=\"0\" required=\"1\" obsoletes=\"ipaddr\">") != std::string::npos);
    CHECK(xml.find("<parameter name=\"port\" unique=\"0\" required=\"0\" deprecated=\"1\">") != std::string::npos);
    CHECK(xml.find("<parameter name=\"plug\" unique=\"0\" required=\"0\" obsoletes=\"port\">") != std::string::npos);
    CHECK(xml.find("<parameter name=\"password\" unique=\"0\" required=\"1\" obsoletes=\"passwd\">") !=
          std::string::npos);
    CHECK(xml.find("<parameter name=\"password_script\" unique=\"0\" required=\"0\" obsoletes=\"passwd_script\">") !=
          std::string::npos);
    CHECK(xml.find("<getopt mixed=\"-a, --ip=[ip]\" />") != std::string::npos);
    CHECK(xml.find("<getopt mixed=\"-P, --lanplus\" />") != std::string::npos);
    CHECK(xml.find("<content type=\"second\" default=\"10\"") != std::string::npos); // power_timeout
    CHECK(xml.find("<option value=\"cycle\" />") != std::string::npos);
    CHECK(xml.find("<action name=\"on\" automatic=\"0\"/>") != std::string::npos);
    CHECK(xml.find("<action name=\"reboot\" />") != std::string::npos);
    CHECK(xml.find("<action name=\"list\" />") == std::string::npos);
    CHECK(xml.find("nodename") == std::string::npos);
    CHECK(xml.find("name=\"domain\"") != std::string::npos);
    CHECK(xml.find("symmetric") == std::string::npos);

    const std::string rng = "/usr/share/cluster/relaxng/metadata.rng";
    if (!test::which("xmllint") || !std::ifstream(rng)) {
        WARN("SKIPPED: xmllint or " << rng << " missing (packages libxml2-utils, fence-agents)");
        return;
    }
    test::TempDir d;
    AgentInfo offonly = bmc_agent();
    offonly.capabilities = STOCKADE_CAP_OFF;
    OptionTable o(&offonly, false);
    OptionTable generic(nullptr, true);
    for (auto [name, text] : {std::pair{"bmc", xml}, {"offonly", metadata_xml(o, "fence_x")},
                              {"generic", metadata_xml(generic, "fence_stockade")}}) {
        INFO(name);
        std::string f = d.file(std::string(name) + ".xml");
        test::write_file(f, text);
        auto r = test::run({*test::which("xmllint"), "--noout", "--relaxng", rng, f});
        INFO(r.err);
        CHECK(r.exit_code == 0);
    }
}

TEST_CASE("real agents: sim's table maps its parameters and advertises its capabilities", "[frontend]")
{
    AgentRegistry reg;
    auto sim = reg.find("sim");
    REQUIRE(sim);
    OptionTable t(*sim, false);
    auto in = parse_stdin("action=off\nnodename=n1\nplug=n1\nstate_dir=/tmp/x\nreachable=no\npcmk_host_list=n1\n"
                          "power_timeout=4\n",
                          t);
    CHECK(in.warnings.empty());
    auto s = settle(in, t, nullptr);
    REQUIRE(s);
    CHECK(s->power_timeout_s == 4);
    auto p = agent_params(in, *s, t);
    REQUIRE(p);
    ParamList want{{"state_dir", "/tmp/x"}, {"hostlist", "n1"}, {"reachable", "0"}, {"power_timeout", "4"}};
    CHECK(*p == want);
    CHECK(t.actions() == std::vector<std::string>{"on", "off", "reboot", "status", "list", "list-status", "monitor",
                                                  "metadata", "validate-all"});
    CHECK(t.find_short('C')->field == Field::Separator);
    CHECK(t.find_short('S') == nullptr); // no secret parameter, no password script

    auto ta = reg.find("testagent");
    REQUIRE(ta);
    OptionTable tt(*ta, true);
    CHECK(tt.find_short('p')->param->name == "password");
    CHECK(password_param(**ta)->name == "password");
    CHECK(tt.find_stdin("agent")->field == Field::Agent);
}

TEST_CASE("wrapper agents (CAP_EXTRA_PARAMS) receive unknown keys instead of warnings", "[frontend]")
{
    AgentInfo w = bmc_agent();
    w.capabilities |= STOCKADE_CAP_EXTRA_PARAMS;
    OptionTable t(&w, false);
    auto in = parse_stdin("ip=1\nlanplus_x=on\n", t);
    CHECK(in.warnings.empty());
    CHECK(agent_value(in, "lanplus_x") == "on");
    auto a = parse_argv(args({"--other-opt=5", "-a", "1"}), t);
    REQUIRE(a);
    CHECK(agent_value(*a, "other_opt") == "5");
    CHECK_FALSE(parse_argv(args({"--other-flag"}), t)); // no value: still unknown
}
