// fence_options.cpp -- the option table, the stdin and argv parsers and the mapping onto an
// agent's parameter table (see fence_options.hpp).  Message texts are fence-agents' own, because
// administrators and scripts grep for them; the code is ours.
#include "stockade/frontend/fence_options.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "stockade/code_tables.hpp"
#include "stockade/text.hpp"

namespace stockade::frontend {

namespace {

using text::ascii_lower;

// Whether an option exists for every agent, only when the agent has a matching parameter, or
// only under a condition on the agent.
enum class Presence { Always, AgentParam, IfSecret, IfList, Generic, Never };

// fence-agents' common option names (lib/fencing.py all_opt): internal (stdin) name, long option,
// short option.  Descriptions are ours.
struct KnownOption {
    std::string_view key;
    std::string_view longopt;
    char short_opt;
    bool takes_value;
    Presence presence;
    Field field;
    bool shares_agent_param; // also handed to the agent when it has a parameter of that name
    std::string_view content;
    std::string_view default_value;
    std::string_view metavar;
    std::string_view shortdesc;
    int order;
    bool in_metadata;
};

constexpr std::array<KnownOption, 31> kKnownOptions{{
    {"action", "action", 'o', true, Presence::Always, Field::Action, false, "string", "", "action",
     "Fencing action", 1, true},
    {"agent", "agent", 0, true, Presence::Generic, Field::Agent, false, "string", "", "agent",
     "stockade agent to run (sim, ipmi, libvirt, ...); this or config= is required", 1, true},
    {"config", "config", 0, true, Presence::Generic, Field::Config, false, "string", "", "file",
     "stockade JSON config: fence the target through its levels and gates there; this or agent= is required", 1, true},
    {"port", "plug", 'n', true, Presence::Always, Field::Plug, false, "string", "", "id",
     "Target to fence: plug number, domain or node name on the device", 1, true},
    {"nodename", "nodename", 0, true, Presence::Always, Field::Nodename, false, "string", "", "nodename",
     "Name of the node to fence (used when no plug is given)", 1, false},
    {"ipaddr", "ip", 'a', true, Presence::AgentParam, Field::None, false, "", "", "ip",
     "IP address or hostname of fencing device", 1, true},
    {"ipport", "ipport", 'u', true, Presence::AgentParam, Field::None, false, "", "", "port",
     "TCP/UDP port to use for connection with device", 1, true},
    {"login", "username", 'l', true, Presence::AgentParam, Field::None, false, "", "", "name", "Login name", 1,
     true},
    {"passwd", "password", 'p', true, Presence::AgentParam, Field::None, false, "", "", "password",
     "Login password or passphrase", 1, true},
    {"passwd_script", "password-script", 'S', true, Presence::IfSecret, Field::PasswordScript, false, "string", "",
     "script", "Script to run to retrieve password", 1, true},
    {"method", "method", 'm', true, Presence::AgentParam, Field::None, false, "", "", "method", "Method to fence", 1,
     true},
    {"auth", "auth", 'A', true, Presence::AgentParam, Field::None, false, "", "", "auth", "IPMI Lan Auth type", 1,
     true},
    {"cipher", "cipher", 'C', true, Presence::AgentParam, Field::None, false, "", "", "cipher",
     "Ciphersuite to use (same as ipmitool -C parameter)", 1, true},
    {"lanplus", "lanplus", 'P', false, Presence::AgentParam, Field::None, false, "", "", "", "Use Lanplus", 1, true},
    {"privlvl", "privlvl", 'L', true, Presence::AgentParam, Field::None, false, "", "", "level",
     "Privilege level on IPMI device", 1, true},
    {"identity_file", "identity-file", 'k', true, Presence::AgentParam, Field::None, false, "", "", "filename",
     "Identity file (private key) for SSH", 1, true},
    {"separator", "separator", 'C', true, Presence::IfList, Field::Separator, false, "string", ",", "char",
     "Separator for CSV created by 'list' operation", 100, true},
    {"plug_separator", "plug-separator", 0, true, Presence::Always, Field::PlugSeparator, false, "string", ",", "char",
     "Separator for plug parameter when specifying more than 1 plug", 100, true},
    {"delay", "delay", 0, true, Presence::Always, Field::Delay, false, "second", "0", "seconds",
     "Wait X seconds before fencing is started", 200, true},
    {"login_timeout", "login-timeout", 0, true, Presence::Always, Field::LoginTimeout, true, "second", "5", "seconds",
     "Wait X seconds for the device to accept a session", 200, true},
    {"power_timeout", "power-timeout", 0, true, Presence::Always, Field::PowerTimeout, true, "second", "20",
     "seconds", "Test X seconds for status change after ON/OFF", 200, true},
    {"power_wait", "power-wait", 0, true, Presence::Always, Field::PowerWait, true, "second", "0", "seconds",
     "Wait X seconds after issuing ON/OFF", 200, true},
    {"shell_timeout", "shell-timeout", 0, true, Presence::Always, Field::ShellTimeout, true, "second", "3", "seconds",
     "Wait X seconds for the device to answer a command", 200, true},
    {"disable_timeout", "disable-timeout", 0, true, Presence::Always, Field::DisableTimeout, false, "string", "",
     "true/false", "Accepted for compatibility; stockade always keeps its deadlines", 200, true},
    {"total_timeout", "total-timeout", 0, true, Presence::Always, Field::TotalTimeout, false, "second", "55",
     "seconds", "Overall deadline of one run; keep it below the cluster's fencing timeout", 200, true},
    {"retry_on", "retry-on", 0, true, Presence::Always, Field::RetryOn, false, "integer", "1", "attempts",
     "Count of attempts to retry power on", 201, true},
    {"quiet", "quiet", 'q', false, Presence::Always, Field::Quiet, false, "boolean", "", "",
     "Disable logging to stderr", 50, true},
    {"verbose", "verbose", 'v', false, Presence::Always, Field::Verbose, false, "boolean", "", "",
     "Verbose mode (-v may be repeated)", 51, true},
    {"verbose_level", "verbose-level", 0, true, Presence::Always, Field::VerboseLevel, false, "integer", "", "level",
     "Level of debugging detail in output", 52, true},
    {"debug", "debug-file", 'D', true, Presence::Always, Field::DebugFile, false, "string", "", "debugfile",
     "Write debug information to given file", 53, true},
    {"version", "version", 'V', false, Presence::Always, Field::Version, false, "boolean", "", "",
     "Display version information and exit", 54, true},
}};

// -h is separate only to keep the table above a round size; it behaves like the others.
constexpr KnownOption kHelpOption{"help", "help", 'h', false, Presence::Always, Field::Help, false, "boolean", "", "",
                                  "Display help and exit", 55, true};

std::string norm(std::string_view s)
{
    std::string out(s);
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

std::string dashed(std::string_view s)
{
    std::string out(s);
    std::replace(out.begin(), out.end(), '_', '-');
    return out;
}

std::string strip_ws(std::string_view s)
{
    const char *ws = " \t\n\r\f\v";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos)
        return {};
    size_t e = s.find_last_not_of(ws);
    return std::string(s.substr(b, e - b + 1));
}

std::string content_of(const ParamInfo &p)
{
    const ParamTypeInfo *t = param_type_info(p.type);
    return t ? std::string(t->fence_content) : "string";
}

// Python's repr of a list of strings, as fence-agents prints it in two messages.
std::string py_list(const std::vector<std::string> &v)
{
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i)
        out += (i ? ", '" : "'") + v[i] + "'";
    return out + "]";
}

// Python's int(): optional surrounding whitespace and sign, decimal digits.
std::optional<long long> py_int(std::string_view s)
{
    std::string t = strip_ws(s);
    if (!t.empty() && t[0] == '+')
        t.erase(0, 1);
    return stockade::text::parse_int64(t);
}

} // namespace

std::optional<bool> parse_flag_value(std::string_view v)
{
    std::string l = ascii_lower(v);
    if (l == "1" || l == "yes" || l == "on" || l == "true")
        return true;
    if (l == "0" || l == "no" || l == "off" || l == "false")
        return false;
    return std::nullopt;
}

const ParamInfo *password_param(const AgentInfo &agent)
{
    for (const char *n : {"password", "passwd"})
        if (const ParamInfo *p = agent.find_param(n); p && p->secret())
            return p;
    for (const auto &p : agent.params)
        if (p.secret())
            return &p;
    return nullptr;
}

// ---- OptionTable ------------------------------------------------------------------------------

OptionTable::OptionTable(const AgentInfo *agent, bool generic) : agent_(agent), generic_(generic)
{
    std::vector<const ParamInfo *> claimed;
    auto add_known = [&](const KnownOption &k) {
        const ParamInfo *param = nullptr;
        if (agent_) {
            param = agent_->find_param(k.key);
            if (!param)
                param = agent_->find_param(norm(k.longopt));
            if (param && param->host_supplied())
                param = nullptr; // filled from the target, never from plug= directly
        }
        switch (k.presence) {
        case Presence::Always:
            break;
        case Presence::AgentParam:
            if (!param)
                return;
            break;
        case Presence::IfSecret:
            if (!agent_ || !password_param(*agent_))
                return;
            break;
        case Presence::IfList:
            if (agent_ && !agent_->can(STOCKADE_CAP_LIST))
                return;
            break;
        case Presence::Generic:
            if (!generic_)
                return;
            break;
        case Presence::Never:
            return;
        }
        if (k.field != Field::None && !k.shares_agent_param)
            param = nullptr;
        OptionSpec s;
        s.key = std::string(k.key);
        std::string nk = norm(k.longopt);
        if (nk != s.key)
            s.new_key = nk;
        s.longopt = std::string(k.longopt);
        s.short_opt = k.short_opt;
        s.takes_value = k.takes_value;
        s.names = {s.key, nk};
        s.field = k.field;
        s.param = param;
        s.in_metadata = k.in_metadata;
        s.metavar = std::string(k.metavar);
        s.shortdesc = std::string(k.shortdesc);
        s.order = k.order;
        s.content = std::string(k.content);
        if (!k.default_value.empty())
            s.default_value = std::string(k.default_value);
        if (k.field == Field::Action) {
            s.required = true;
            s.default_value = default_action();
        }
        // agent= is not required: config= replaces it (fence_stockade refuses neither and both);
        // a required="1" here would make pcs refuse `fence_stockade config=FILE`.
        // An agent that states its own need (time_needed: an operator's answer, a standby wait)
        // gets that as its overall deadline unless total_timeout is given: 55 is not what applies.
        if (k.field == Field::TotalTimeout && agent_ && agent_->time_needed) {
            s.default_value.reset();
            s.shortdesc = "Overall deadline of one run; unset, what the agent says it needs for the action (its own "
                          "waits: see its parameters), at least 55. Set it to the cluster's timeout for this device "
                          "(pcmk_off_timeout) to have a longer need refused by validate-all and monitor";
        }
        if (param) {
            claimed.push_back(param);
            s.names.push_back(norm(param->name));
            for (const auto &a : param->aliases)
                s.names.push_back(norm(a));
            s.secret = param->secret();
            if (k.field == Field::None) {
                s.content = content_of(*param);
                s.choices = param->choices;
                s.default_value = param->secret() ? std::nullopt : param->default_value;
                s.required = param->required() && !param->host_supplied();
                if (!param->description.empty())
                    s.shortdesc = param->description;
                if (param->type == STOCKADE_PARAM_BOOLEAN) {
                    s.takes_value = false;
                    s.optional_value = true;
                }
            } else if (param->default_value) {
                s.default_value = param->default_value; // the agent's default is the one that applies
            }
        }
        add(std::move(s));
    };
    for (const auto &k : kKnownOptions)
        add_known(k);
    add_known(kHelpOption);

    if (!agent_)
        return;
    // Every other parameter of the agent, under its own names, as --name-with-dashes.
    for (const auto &p : agent_->params) {
        if (std::find(claimed.begin(), claimed.end(), &p) != claimed.end())
            continue;
        OptionSpec s;
        s.key = p.name;
        s.longopt = dashed(p.name);
        s.names = {norm(p.name)};
        for (const auto &a : p.aliases)
            s.names.push_back(norm(a));
        // A front-end option keeps its names (plug/port stay the target even if an agent
        // parameter lists them as aliases).
        s.names.erase(std::remove_if(s.names.begin(), s.names.end(),
                                     [&](const std::string &n) {
                                         const OptionSpec *o = find_stdin(n);
                                         return o && o->field != Field::None;
                                     }),
                      s.names.end());
        // A parameter all of whose names are front-end options (libvirt's plug/port, ipmi's
        // password_script) is that option: the front-end fills it (the target, the script's
        // password); listing it again would put one name twice in the metadata.  One whose own
        // name is taken (sfex_wrapper's nodename) goes by its first free alias (sfex_nodename).
        if (s.names.empty())
            continue;
        if (const OptionSpec *o = find_stdin(p.name); o && o->field != Field::None) {
            s.key = s.names.front();
            s.longopt = dashed(s.key);
        }
        s.param = &p;
        s.secret = p.secret();
        s.content = content_of(p);
        s.choices = p.choices;
        if (!p.secret())
            s.default_value = p.default_value;
        s.required = p.required() && !p.host_supplied();
        s.shortdesc = p.description;
        s.metavar = p.name;
        if (p.type == STOCKADE_PARAM_BOOLEAN) {
            s.takes_value = false;
            s.optional_value = true;
        }
        add(std::move(s));
    }
}

void OptionTable::add(OptionSpec spec)
{
    // Short options must be unique (fence-agents refuses duplicates); the first one keeps it.
    if (spec.short_opt && find_short(spec.short_opt))
        spec.short_opt = 0;
    specs_.push_back(std::move(spec));
}

const OptionSpec *OptionTable::find_stdin(std::string_view name) const
{
    std::string n = norm(name);
    for (const auto &s : specs_)
        for (const auto &x : s.names)
            if (x == n)
                return &s;
    return nullptr;
}

const OptionSpec *OptionTable::find_long(std::string_view name, bool *ambiguous) const
{
    if (ambiguous)
        *ambiguous = false;
    for (const auto &s : specs_)
        if (s.longopt == name)
            return &s;
    const OptionSpec *found = nullptr;
    for (const auto &s : specs_) {
        if (!name.empty() && s.longopt.compare(0, name.size(), name) == 0) {
            if (found) {
                if (ambiguous)
                    *ambiguous = true;
                return nullptr;
            }
            found = &s;
        }
    }
    return found;
}

const OptionSpec *OptionTable::find_short(char c) const
{
    for (const auto &s : specs_)
        if (s.short_opt == c)
            return &s;
    return nullptr;
}

std::vector<std::string> OptionTable::actions() const
{
    std::vector<std::string> out;
    auto can = [&](uint32_t cap) { return !agent_ || agent_->can(cap); };
    if (can(STOCKADE_CAP_ON))
        out.emplace_back("on");
    out.emplace_back("off");
    // Reboot = off + on, except where on is unfencing (it re-admits only the node running it).
    if (!agent_ || agent_->can(STOCKADE_CAP_REBOOT) ||
        (agent_->can(STOCKADE_CAP_ON) && !agent_->can(STOCKADE_CAP_UNFENCE)))
        out.emplace_back("reboot");
    if (can(STOCKADE_CAP_STATUS))
        out.emplace_back("status");
    if (agent_ && agent_->can(STOCKADE_CAP_LIST)) {
        out.emplace_back("list");
        out.emplace_back("list-status");
    }
    out.emplace_back("monitor");
    out.emplace_back("metadata");
    out.emplace_back("validate-all");
    if (agent_ && agent_->can(STOCKADE_CAP_DIAG))
        out.emplace_back("diag");
    return out;
}

bool OptionTable::accepts_action(std::string_view action) const
{
    auto a = actions();
    return std::find(a.begin(), a.end(), action) != a.end();
}

std::string OptionTable::default_action() const
{
    return accepts_action("reboot") ? "reboot" : "off";
}

// ---- Parsing ----------------------------------------------------------------------------------

std::optional<std::string> ParsedInput::get(Field f) const
{
    auto it = fields.find(f);
    if (it == fields.end())
        return std::nullopt;
    return it->second;
}

namespace {

void store(ParsedInput &in, const OptionSpec &s, const std::string &value)
{
    if (s.field != Field::None)
        in.fields[s.field] = value;
    if (s.param) {
        auto same = [&](const auto &kv) { return kv.first == s.param->name; };
        in.agent_params.erase(std::remove_if(in.agent_params.begin(), in.agent_params.end(), same),
                              in.agent_params.end());
        in.agent_params.emplace_back(s.param->name, value);
    }
}

std::string strip_agent_prefix(std::string v)
{
    if (v.rfind(kProgramPrefix, 0) == 0)
        v.erase(0, kProgramPrefix.size());
    return v;
}

// One "key=value" stdin line, as fence-agents splits it.
std::pair<std::string, std::string> split_line(const std::string &line)
{
    auto eq = line.find('=');
    std::string name = eq == std::string::npos ? line : line.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
    return {name, value};
}

template <class Fn>
void for_each_line(std::string_view text, Fn fn)
{
    size_t i = 0;
    while (i <= text.size()) {
        size_t j = text.find('\n', i);
        if (j == std::string_view::npos)
            j = text.size();
        std::string line = strip_ws(text.substr(i, j - i));
        if (!line.empty() && line[0] != '#')
            fn(line);
        i = j + 1;
    }
}

} // namespace

ParsedInput parse_stdin(std::string_view text, const OptionTable &table)
{
    ParsedInput in;
    for_each_line(text, [&](const std::string &line) {
        auto [name, value] = split_line(line);
        if (stockade::text::has_nul(line)) {
            // A C string would end at the NUL: "plug=n1\0evil" must not become plug=n1.  The key
            // is named (its NUL shown as \0), the value never (it may be a password).
            std::string shown = name;
            for (size_t p = shown.find('\0'); p != std::string::npos; p = shown.find('\0', p + 2))
                shown.replace(p, 1, "\\0");
            in.errors.push_back(fmt::format("Parse error: option '{}' contains a NUL byte", shown));
            return;
        }
        const OptionSpec *s = table.find_stdin(name);
        if (!s) {
            if (name == "agent" && !table.generic())
                return; // fenced passes agent=<executable>; the program name already chose it
            const AgentInfo *a = table.agent();
            if (a && a->can(STOCKADE_CAP_EXTRA_PARAMS) && !name.empty()) {
                in.agent_params.emplace_back(name, value); // a wrapper agent passes these on
                return;
            }
            in.warnings.push_back(fmt::format("Parse error: Ignoring unknown option '{}'", line));
            return;
        }
        if (s->takes_value) {
            store(in, *s, s->field == Field::Agent ? strip_agent_prefix(value) : value);
            return;
        }
        auto b = parse_flag_value(value);
        if (!b) {
            in.warnings.push_back(fmt::format("Parse error: Ignoring option '{}' because it does not have value", s->key));
            return;
        }
        store(in, *s, *b ? "1" : "0");
        if (s->field == Field::Verbose)
            in.verbose_count = *b ? 1 : 0;
    });
    return in;
}

Result<ParsedInput> parse_argv(const std::vector<std::string> &args, const OptionTable &table)
{
    ParsedInput in;
    std::vector<std::string> operands;
    auto perr = [](std::string m) { return Error{STOCKADE_RC_BAD_CONFIG, "Parse error: " + m}; };
    auto take = [&](const OptionSpec &s, const std::string &value) {
        store(in, s, s.field == Field::Agent ? strip_agent_prefix(value) : value);
        if (s.field == Field::Verbose)
            ++in.verbose_count;
    };
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == "--") {
            operands.insert(operands.end(), args.begin() + long(i) + 1, args.end());
            break;
        }
        if (a.rfind("--", 0) == 0) {
            std::string body = a.substr(2);
            auto eq = body.find('=');
            std::string name = eq == std::string::npos ? body : body.substr(0, eq);
            bool ambiguous = false;
            const OptionSpec *s = table.find_long(name, &ambiguous);
            if (ambiguous)
                return perr(fmt::format("option --{} not a unique prefix", name));
            if (!s && eq != std::string::npos && table.agent() && table.agent()->can(STOCKADE_CAP_EXTRA_PARAMS)) {
                in.agent_params.emplace_back(norm(name), body.substr(eq + 1)); // a wrapper agent passes it on
                continue;
            }
            if (!s)
                return perr(fmt::format("option --{} not recognized", name));
            if (s->takes_value) {
                std::string value;
                if (eq != std::string::npos) {
                    value = body.substr(eq + 1);
                    if (s->secret)
                        in.secret_spans.emplace_back(i, 2 + eq + 1);
                } else {
                    if (i + 1 >= args.size())
                        return perr(fmt::format("option --{} requires argument", s->longopt));
                    value = args[++i];
                    if (s->secret)
                        in.secret_spans.emplace_back(i, 0);
                }
                take(*s, value);
            } else if (eq != std::string::npos) {
                auto b = s->optional_value ? parse_flag_value(body.substr(eq + 1)) : std::nullopt;
                if (!b)
                    return perr(fmt::format("option --{} must not have an argument", s->longopt));
                take(*s, *b ? "1" : "0");
            } else {
                take(*s, "1");
            }
            continue;
        }
        if (a.size() > 1 && a[0] == '-') {
            for (size_t j = 1; j < a.size(); ++j) {
                const OptionSpec *s = table.find_short(a[j]);
                if (!s)
                    return perr(fmt::format("option -{} not recognized", a[j]));
                if (!s->takes_value) {
                    take(*s, "1");
                    continue;
                }
                std::string value;
                if (j + 1 < a.size()) {
                    value = a.substr(j + 1);
                    if (s->secret)
                        in.secret_spans.emplace_back(i, j + 1);
                } else {
                    if (i + 1 >= args.size())
                        return perr(fmt::format("option -{} requires argument", a[j]));
                    value = args[++i];
                    if (s->secret)
                        in.secret_spans.emplace_back(i, 0);
                }
                take(*s, value);
                break;
            }
            continue;
        }
        operands.push_back(a); // GNU getopt permutes operands to the end
    }
    if (!operands.empty())
        in.warnings.push_back("Unused arguments on command line: " + py_list(operands));
    return in;
}

std::optional<std::string> peek_agent_stdin(std::string_view text)
{
    std::optional<std::string> out;
    for_each_line(text, [&](const std::string &line) {
        auto [name, value] = split_line(line);
        if (name == "agent")
            out = strip_agent_prefix(value); // last one wins
    });
    return out;
}

std::optional<std::string> peek_agent_argv(const std::vector<std::string> &args)
{
    std::optional<std::string> out;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--")
            break;
        if (args[i].rfind("--agent=", 0) == 0)
            out = strip_agent_prefix(args[i].substr(8));
        else if (args[i] == "--agent" && i + 1 < args.size())
            out = strip_agent_prefix(args[++i]);
    }
    return out;
}

std::string agent_from_program_name(std::string_view argv0)
{
    auto slash = argv0.rfind('/');
    std::string_view base = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
    if (base.size() > kProgramPrefix.size() && base.substr(0, kProgramPrefix.size()) == kProgramPrefix)
        return std::string(base.substr(kProgramPrefix.size()));
    return "";
}

// ---- Settling defaults and checks -------------------------------------------------------------

Result<FrontendSettings> settle(const ParsedInput &in, const OptionTable &table, std::vector<std::string> *problems)
{
    FrontendSettings s;
    std::vector<std::string> local;
    std::vector<std::string> &errs = problems ? *problems : local;

    s.action = ascii_lower(in.get(Field::Action).value_or(table.default_action()));
    if (s.action == "meta-data")
        s.action = "metadata";

    struct NumberField {
        Field field;
        int *out;
        bool seconds;
    } numbers[] = {
        {Field::Delay, &s.delay_s, true},
        {Field::LoginTimeout, &s.login_timeout_s, true},
        {Field::ShellTimeout, &s.shell_timeout_s, true},
        {Field::PowerTimeout, &s.power_timeout_s, true},
        {Field::PowerWait, &s.power_wait_s, true},
        {Field::TotalTimeout, &s.total_timeout_s, true},
        {Field::RetryOn, &s.retry_on, false},
    };
    for (const auto &n : numbers) {
        const OptionSpec *spec = nullptr;
        for (const auto &x : table.specs())
            if (x.field == n.field)
                spec = &x;
        // The agent's own default (sim: power_timeout=10) applies when the user gave none.
        std::optional<std::string> v = in.get(n.field);
        if (!v && spec && spec->default_value)
            v = spec->default_value;
        if (!v)
            continue;
        auto i = py_int(*v);
        if (!i || (n.seconds && *i < 0) || *i > 1000000) {
            errs.push_back(n.seconds ? fmt::format("Failed: The value you have entered for --{} is not a valid time "
                                                   "in seconds",
                                                   spec ? spec->longopt : "?")
                                     : fmt::format("Failed: The value you have entered for --{} is not a valid integer",
                                                   spec ? spec->longopt : "?"));
            continue;
        }
        *n.out = int(*i);
    }

    s.total_timeout_set = in.has(Field::TotalTimeout);
    s.verbose_level = in.verbose_count;
    if (auto v = in.get(Field::VerboseLevel)) {
        auto i = py_int(*v);
        s.verbose_level = i && *i >= 0 ? int(*i) : 0;
    }
    s.quiet = in.get(Field::Quiet) == "1";
    s.debug_file = in.get(Field::DebugFile).value_or("");
    s.separator = in.get(Field::Separator).value_or(",");
    s.password_script = in.get(Field::PasswordScript);
    if (auto v = in.get(Field::DisableTimeout))
        s.disable_timeout_requested = parse_flag_value(*v).value_or(false);

    // Targets: plug (split by plug_separator) wins over nodename.
    std::string psep = in.get(Field::PlugSeparator).value_or(",");
    if (auto plug = in.get(Field::Plug); plug && !plug->empty()) {
        if (psep.empty()) {
            s.targets.push_back(*plug);
        } else {
            size_t i = 0;
            while (i <= plug->size()) {
                size_t j = plug->find(psep, i);
                if (j == std::string::npos)
                    j = plug->size();
                if (j > i)
                    s.targets.push_back(plug->substr(i, j - i));
                i = j + psep.size();
            }
        }
    } else if (auto node = in.get(Field::Nodename); node && !node->empty()) {
        s.targets.push_back(*node);
    }

    // Choices of the agent's select parameters, checked like fence-agents (case-insensitive).
    for (const auto &[name, value] : in.agent_params) {
        const ParamInfo *p = table.agent() ? table.agent()->find_param(name) : nullptr;
        if (!p || p->type != STOCKADE_PARAM_SELECT)
            continue;
        if (std::find(p->choices.begin(), p->choices.end(), ascii_lower(value)) == p->choices.end())
            errs.push_back(fmt::format("Failed: You have to enter a valid choice for --{} from the valid values: {}",
                                       dashed(p->name), py_list(p->choices)));
    }
    if (!errs.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, errs.front()};
    return s;
}

Result<ParamList> agent_params(const ParsedInput &in, const FrontendSettings &s, const OptionTable &table,
                               std::vector<std::string> *missing)
{
    const AgentInfo *agent = table.agent();
    if (!agent)
        return Error{STOCKADE_RC_BAD_CONFIG, "Failed: You have to set agent"};
    RawParams raw = in.agent_params;
    auto given = [&](const std::string &name) {
        return std::any_of(raw.begin(), raw.end(), [&](const auto &kv) { return kv.first == name; });
    };
    for (const auto &p : agent->params)
        if (p.host_supplied() && !given(p.name) && !s.targets.empty())
            raw.emplace_back(p.name, s.targets.front());

    // Required parameters, in fence-agents' words where it has some.
    std::vector<std::string> local;
    std::vector<std::string> &miss = missing ? *missing : local;
    for (const auto &p : agent->params) {
        if (!p.required() || p.default_value || given(p.name))
            continue;
        if (p.host_supplied()) {
            if (s.targets.empty())
                miss.emplace_back("Failed: You have to enter plug number or machine identification");
            continue;
        }
        auto is = [&](std::initializer_list<const char *> names) {
            for (const char *n : names)
                if (agent->find_param(n) == &p)
                    return true;
            return false;
        };
        if (is({"ipaddr", "ip"}))
            miss.emplace_back("Failed: You have to enter fence address");
        else if (is({"login", "username"}))
            miss.emplace_back("Failed: You have to set login name");
        else if (p.secret() && &p == password_param(*agent)) {
            if (!s.password_script)
                miss.emplace_back("Failed: You have to enter password or password script");
        } else
            miss.emplace_back(fmt::format("Failed: You have to set {} ({})", p.name, p.description));
    }
    if (!miss.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, miss.front()};
    auto r = resolve_params(*agent, raw, UnknownParams::Reject);
    if (!r)
        return Error{r.error().rc, "Failed: " + r.error().message};
    return r;
}

} // namespace stockade::frontend
