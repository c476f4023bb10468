// config.cpp -- loading, validating and checking the JSON configuration.
#include "stockade/config.hpp"
#include "stockade/time_budget.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "stockade/json_schema.hpp"
#include "strings.hpp"

namespace stockade {

extern const std::string_view kConfigSchemaText;

namespace {

using json = nlohmann::json;

std::string param_text(const json &v)
{
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_boolean())
        return v.get<bool>() ? "1" : "0";
    if (v.is_number_integer() || v.is_number_unsigned())
        return std::to_string(v.get<long long>());
    double d = v.get<double>();
    if (d == std::floor(d))
        return std::to_string(static_cast<long long>(d));
    return fmt::format("{}", d);
}

RawParams read_params(const json &obj)
{
    RawParams out;
    for (auto it = obj.begin(); it != obj.end(); ++it)
        out.emplace_back(it.key(), param_text(it.value()));
    return out;
}

std::chrono::milliseconds seconds_field(const json &obj, const char *key, std::chrono::milliseconds dflt)
{
    if (!obj.contains(key))
        return dflt;
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(obj[key].get<double>() * 1000.0)));
}

// "line 3, column 7" for a byte offset, for parse errors.
std::string position_of(std::string_view text, size_t byte)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return fmt::format("line {}, column {}", line, col);
}

// An error about the config field at `pointer`: "<source>: <pointer>: <problem>".
template <class... Args>
Error config_error(const std::string &source, std::string pointer, fmt::format_string<Args...> f, Args &&...args)
{
    return field_error(STOCKADE_RC_BAD_CONFIG, std::move(pointer), fmt::format(f, std::forward<Args>(args)...),
                       source + ": ");
}

// An agent parameter's error re-based under the config path of its parameter list, so it names
// the field in the file ("<source>: /devices/d/params/x: problem").
Error param_error(const std::string &source, const std::string &base, const Error &e)
{
    if (!e.pointer.empty())
        return field_error(STOCKADE_RC_BAD_CONFIG, base + e.pointer, e.problem, source + ": ");
    return field_error(STOCKADE_RC_BAD_CONFIG, base, e.message, source + ": ");
}

// One table per enum: configuration spelling -> value ("off" is LifeKeeper's synonym of "none").
struct QuorumModeName { std::string_view name; QuorumMode mode; };
constexpr QuorumModeName kQuorumModes[] = {
    {"none", QuorumMode::None}, {"majority", QuorumMode::Majority}, {"tcp_remote", QuorumMode::TcpRemote}, {"off", QuorumMode::None}};
struct WitnessModeName { std::string_view name; WitnessMode mode; };
constexpr WitnessModeName kWitnessModes[] = {
    {"none", WitnessMode::None}, {"remote_verify", WitnessMode::RemoteVerify}, {"off", WitnessMode::None}};
struct LossActionName { std::string_view name; LossAction action; };
constexpr LossActionName kLossActions[] = {
    {"osu", LossAction::Osu}, {"fastkill", LossAction::Fastkill}, {"fastboot", LossAction::Fastboot}};

// LifeKeeper's table of quorum x witness modes that make sense together.  Every pair stockade
// implements is allowed (its "storage" modes, which only pair with each other, are not
// implemented); a pair missing here is a configuration error naming /witness/mode.
struct ModePair { QuorumMode quorum; WitnessMode witness; };
constexpr ModePair kAllowedModePairs[] = {
    {QuorumMode::Majority, WitnessMode::RemoteVerify}, {QuorumMode::Majority, WitnessMode::None},
    {QuorumMode::TcpRemote, WitnessMode::RemoteVerify}, {QuorumMode::TcpRemote, WitnessMode::None},
    {QuorumMode::None, WitnessMode::RemoteVerify},     {QuorumMode::None, WitnessMode::None},
};

std::vector<std::string> string_list(const json &a)
{
    std::vector<std::string> out;
    for (const auto &v : a)
        out.push_back(v.get<std::string>());
    return out;
}

Status check_command(const std::string &source, const std::string &path, const std::vector<std::string> &argv)
{
    if (!argv.empty() && argv[0][0] != '/')
        return config_error(source, path + "/0", "'{}' must be an absolute path", argv[0]);
    return {};
}

// The quorum and witness sections, and the rules that span sections.
Status parse_cluster_gates(const json &doc, Config &c)
{
    const std::string &src = c.source;
    if (doc.contains("quorum")) {
        const json &q = doc["quorum"];
        if (q.contains("mode"))
            for (const auto &e : kQuorumModes)
                if (e.name == q["mode"].get<std::string>())
                    c.quorum.mode = e.mode;
        if (q.contains("hosts"))
            c.quorum.hosts = string_list(q["hosts"]);
        c.quorum.timeout = seconds_field(q, "timeout", c.quorum.timeout);
        if (q.contains("loss_action"))
            for (const auto &e : kLossActions)
                if (e.name == q["loss_action"].get<std::string>())
                    c.quorum.loss_action = e.action;
        if (q.contains("osu_command"))
            c.quorum.osu_command = string_list(q["osu_command"]);
        if (q.contains("loss_hook"))
            c.quorum.loss_hook = string_list(q["loss_hook"]);
        c.quorum.allow_self_fence = q.value("allow_self_fence", false);
        if (auto s = check_command(src, "/quorum/osu_command", c.quorum.osu_command); !s)
            return s;
        if (auto s = check_command(src, "/quorum/loss_hook", c.quorum.loss_hook); !s)
            return s;
    }
    if (doc.contains("witness")) {
        const json &w = doc["witness"];
        if (w.contains("mode"))
            for (const auto &e : kWitnessModes)
                if (e.name == w["mode"].get<std::string>())
                    c.witness.mode = e.mode;
        c.witness.port = w.value("port", c.witness.port);
        c.witness.listen = w.value("listen", "");
        c.witness.key_file = w.value("key_file", c.witness.key_file);
        c.witness.timeout = seconds_field(w, "timeout", c.witness.timeout);
        c.witness.max_skew = seconds_field(w, "max_skew", c.witness.max_skew);
        if (w.contains("check_ports"))
            for (const auto &p : w["check_ports"])
                c.witness.check_ports.push_back(p.get<int>());
        c.witness.icmp = w.value("icmp", true);
        if (w.contains("nodes"))
            for (auto it = w["nodes"].begin(); it != w["nodes"].end(); ++it) {
                if (c.find_node(it.key()) || c.find_witness_node(it.key()))
                    return config_error(src, "/witness/nodes/" + json_pointer_token(it.key()),
                                        "'{}' is already a node (names ignore case)", it.key());
                WitnessOnlyNode n;
                n.name = it.key();
                n.addresses = string_list(it.value()["addresses"]);
                n.witness_port = it.value().value("witness_port", 0);
                c.witness.nodes.push_back(std::move(n));
            }
    }

    bool allowed = false;
    for (const auto &p : kAllowedModePairs)
        allowed = allowed || (p.quorum == c.quorum.mode && p.witness == c.witness.mode);
    if (!allowed)
        return config_error(src, "/witness/mode", "'{}' cannot be combined with quorum mode '{}'",
                            witness_mode_name(c.witness.mode), quorum_mode_name(c.quorum.mode));
    if (c.quorum.mode == QuorumMode::None && c.witness.mode == WitnessMode::None)
        return {};

    if (c.quorum.mode == QuorumMode::TcpRemote && c.quorum.hosts.empty())
        return config_error(src, "/quorum/hosts", "required when quorum mode is tcp_remote");
    if (c.quorum.mode != QuorumMode::None && c.quorum.loss_action == LossAction::Osu && c.quorum.osu_command.empty())
        return config_error(src, "/quorum/osu_command",
                            "required when loss_action is osu (the command that takes this node's resources out of "
                            "service)");
    if (!c.find_node(c.local_node) && !c.find_witness_node(c.local_node))
        return config_error(src, "/local_node",
                            "'{}' is neither a node nor a witness node; quorum and witness need to know which one this is",
                            c.local_node);
    // Every other member must be reachable somewhere, or majority/remote_verify cannot ask it.
    bool needs_addresses = c.quorum.mode == QuorumMode::Majority || c.witness.mode == WitnessMode::RemoteVerify;
    if (needs_addresses)
        for (const auto &n : c.nodes)
            if (n.addresses.empty() && text::ascii_lower(n.name) != text::ascii_lower(c.local_node))
                return config_error(src, "/nodes/" + json_pointer_token(n.name) + "/addresses",
                                    "required when quorum mode is {} and witness mode is {}",
                                    quorum_mode_name(c.quorum.mode), witness_mode_name(c.witness.mode));
    return {};
}

} // namespace

std::string_view quorum_mode_name(QuorumMode m)
{
    for (const auto &e : kQuorumModes)
        if (e.mode == m)
            return e.name;
    return "?";
}

std::string_view witness_mode_name(WitnessMode m)
{
    for (const auto &e : kWitnessModes)
        if (e.mode == m)
            return e.name;
    return "?";
}

std::string_view loss_action_name(LossAction a)
{
    for (const auto &e : kLossActions)
        if (e.action == a)
            return e.name;
    return "?";
}

const WitnessOnlyNode *Config::find_witness_node(std::string_view name) const
{
    std::string want = text::ascii_lower(name);
    for (const auto &n : witness.nodes)
        if (text::ascii_lower(n.name) == want)
            return &n;
    return nullptr;
}

const NodeConfig *Config::find_node(std::string_view name) const
{
    std::string want = text::ascii_lower(name);
    for (const auto &n : nodes)
        if (text::ascii_lower(n.name) == want)
            return &n;
    return nullptr;
}

const nlohmann::json &config_schema()
{
    static const json schema = json::parse(kConfigSchemaText);
    return schema;
}

namespace {

// The JSON pointer of the first string (key or value) holding a NUL byte ("\u0000" in the file),
// if any.  Every value ends up in a C string (agent parameters, argv, paths) where it would be cut
// at the NUL, so such a document is refused as a whole.
std::optional<std::string> find_nul(const json &j, const std::string &at)
{
    if (j.is_string())
        return text::has_nul(j.get_ref<const std::string &>()) ? std::optional<std::string>(at) : std::nullopt;
    if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i)
            if (auto p = find_nul(j[i], at + "/" + std::to_string(i)))
                return p;
    } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            std::string here = at + "/" + json_pointer_token(it.key());
            if (text::has_nul(it.key()))
                return here;
            if (auto p = find_nul(it.value(), here))
                return p;
        }
    }
    return std::nullopt;
}

// Parses and checks the text, appending every error found to `errors`; a Config only when none.
// `on_parsed` (optional) sees the document after the JSON parse, before the schema check.
std::optional<Config> parse_config_collect(std::string_view text, const std::string &source, std::vector<Error> &errors,
                                           const std::function<void(const json &)> &on_parsed = {})
{
    const size_t errors_before = errors.size();
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error &e) {
        std::string what = e.what();
        // nlohmann's text is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
        auto colon = what.find(": ", what.find("parse error"));
        std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
        errors.push_back(make_error(STOCKADE_RC_BAD_CONFIG, "{}: invalid JSON at {}: {}", source,
                                    position_of(text, e.byte ? e.byte - 1 : 0), detail));
        return std::nullopt;
    } catch (const json::exception &e) {
        // Not a syntax error but still no document, e.g. a number beyond double ("-2e308" is
        // out_of_range.406; found by tests/fuzz/fuzz_config).
        std::string what = e.what();
        auto end = what.find("] ");
        errors.push_back(make_error(STOCKADE_RC_BAD_CONFIG, "{}: invalid JSON: {}", source,
                                    end == std::string::npos ? what : what.substr(end + 2)));
        return std::nullopt;
    }
    if (auto at = find_nul(doc, "")) {
        errors.push_back(config_error(source, *at, "a NUL byte (\\u0000) is not allowed"));
        return std::nullopt;
    }
    if (on_parsed)
        on_parsed(doc);
    if (auto problems = validate_json_all(config_schema(), doc); !problems.empty()) {
        for (auto &e : problems)
            errors.push_back(field_error(STOCKADE_RC_BAD_CONFIG, e.pointer, e.problem, source + ": "));
        return std::nullopt;
    }

    Config c;
    c.source = source;
    c.cluster_name = doc.value("cluster_name", "");
    c.local_node = doc.value("local_node", "");
    if (c.local_node.empty()) {
        struct utsname u {};
        if (::uname(&u) == 0)
            c.local_node = u.nodename;
    }
    c.concurrency = doc.value("concurrency", 16u);
    if (doc.contains("escalation")) {
        const json &e = doc["escalation"];
        c.escalation.retry_delay = seconds_field(e, "retry_delay", c.escalation.retry_delay);
        c.escalation.max_loops = e.value("max_loops", 0u);
        c.escalation.timeout = seconds_field(e, "timeout", c.escalation.timeout);
    }
    for (auto it = doc["devices"].begin(); it != doc["devices"].end(); ++it) {
        DeviceConfig d;
        d.name = it.key();
        d.agent = it.value()["agent"].get<std::string>();
        if (it.value().contains("params"))
            d.params = read_params(it.value()["params"]);
        d.timeout = seconds_field(it.value(), "timeout", d.timeout);
        d.timeout_set = it.value().contains("timeout");
        d.isolate = it.value().value("isolate", true);
        c.devices.emplace(d.name, std::move(d));
    }
    for (auto it = doc["nodes"].begin(); it != doc["nodes"].end(); ++it) {
        NodeConfig n;
        n.name = it.key();
        if (c.find_node(n.name)) {
            errors.push_back(config_error(source, "/nodes/" + json_pointer_token(n.name),
                                          "node defined twice (names ignore case)"));
            continue;
        }
        if (it.value().contains("action"))
            n.action = *parse_power_action(it.value()["action"].get<std::string>());
        if (it.value().contains("addresses"))
            n.addresses = string_list(it.value()["addresses"]);
        n.witness_port = it.value().value("witness_port", 0);
        const json &levels = it.value()["levels"];
        for (size_t li = 0; li < levels.size(); ++li) {
            std::vector<LevelDevice> level;
            for (size_t di = 0; di < levels[li].size(); ++di) {
                const json &e = levels[li][di];
                LevelDevice ld;
                if (e.is_string()) {
                    ld.device = e.get<std::string>();
                } else {
                    ld.device = e["device"].get<std::string>();
                    ld.target = e.value("target", "");
                    if (e.contains("params"))
                        ld.params = read_params(e["params"]);
                }
                const std::string at = fmt::format("/nodes/{}/levels/{}/{}", json_pointer_token(n.name), li, di);
                if (!c.devices.count(ld.device)) {
                    errors.push_back(config_error(source, at, "unknown device '{}'", ld.device));
                    continue;
                }
                bool twice = false;
                for (const auto &other : level)
                    twice |= other.device == ld.device;
                if (twice) {
                    errors.push_back(config_error(source, at, "device '{}' appears twice in one level", ld.device));
                    continue;
                }
                level.push_back(std::move(ld));
            }
            n.levels.push_back(std::move(level));
        }
        c.nodes.push_back(std::move(n));
    }
    if (errors.size() != errors_before)
        return std::nullopt; // the gates' rules read the nodes: check them on a sound node list only
    if (auto s = parse_cluster_gates(doc, c); !s) {
        errors.push_back(s.error());
        return std::nullopt;
    }
    return c;
}

} // namespace

Result<Config> parse_config(std::string_view text, const std::string &source)
{
    std::vector<Error> errors;
    auto c = parse_config_collect(text, source, errors);
    if (!c)
        return errors.front();
    return std::move(*c);
}

ConfigCheck check_config_file(const std::string &path, const AgentRegistry &registry)
{
    ConfigCheck out;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        out.errors.push_back(make_error(STOCKADE_RC_BAD_CONFIG, "{}: cannot read: {}", path, std::strerror(errno)));
        return out;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    // The agents the file names are loaded (here and, through the registry's hint, in the fork
    // template) on a second thread while this one checks the schema: one `stockade status`
    // waited for both in turn (~1 ms each).  find() caches; errors are reported below, in order.
    std::future<void> agents_loaded;
    auto prefetch = [&](const json &doc) {
        std::vector<std::string> names;
        if (auto devs = doc.find("devices"); devs != doc.end() && devs->is_object())
            for (const auto &d : *devs)
                if (auto a = d.find("agent"); d.is_object() && a != d.end() && a->is_string() &&
                                              std::find(names.begin(), names.end(), a->get<std::string>()) == names.end())
                    names.push_back(a->get<std::string>());
        if (!names.empty()) {
            try {
                agents_loaded = std::async(std::launch::async, [&registry, names] {
                    for (const auto &n : names)
                        (void)registry.find(n);
                });
            } catch (const std::system_error &) { // no thread: they load below, one after the other
            }
        }
    };
    out.config = parse_config_collect(ss.str(), path, out.errors, prefetch);
    if (agents_loaded.valid())
        agents_loaded.wait();
    if (out.config) {
        out.errors = config_agent_errors(*out.config, registry);
        if (!out.errors.empty())
            out.config.reset();
    }
    return out;
}

Result<Config> load_config(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: cannot read: {}", path, std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    auto c = parse_config(ss.str(), path);
    if (struct stat st {}; c && ::stat(path.c_str(), &st) == 0)
        c->file_mode = unsigned(st.st_mode & 07777);
    return c;
}

std::vector<std::string> readable_secret_warnings(const Config &config, const AgentRegistry &registry)
{
    std::vector<std::string> out;
    if (!(config.file_mode & 077))
        return out;
    auto check = [&](const std::string &agent_name, const RawParams &params, const std::string &at) {
        auto agent = registry.find(agent_name);
        if (!agent)
            return;
        for (const auto &[name, value] : params)
            if (!value.empty() && is_secret_param(**agent, name))
                out.push_back(fmt::format("{} (mode {:04o}): {}/{} holds a secret that other users can read; "
                                          "chmod 600 the file, or use password_file/password_script",
                                          config.source, config.file_mode, at, json_pointer_token(name)));
    };
    for (const auto &[name, d] : config.devices)
        check(d.agent, d.params, "/devices/" + json_pointer_token(name) + "/params");
    for (const auto &n : config.nodes)
        for (size_t l = 0; l < n.levels.size(); ++l)
            for (size_t i = 0; i < n.levels[l].size(); ++i)
                if (auto d = config.devices.find(n.levels[l][i].device); d != config.devices.end())
                    check(d->second.agent, n.levels[l][i].params,
                          fmt::format("/nodes/{}/levels/{}/{}/params", json_pointer_token(n.name), l, i));
    return out;
}

RawParams merged_params(const DeviceConfig &device, const LevelDevice &entry)
{
    RawParams out = device.params;
    out.insert(out.end(), entry.params.begin(), entry.params.end());
    return out;
}

std::vector<Error> config_agent_errors(const Config &c, const AgentRegistry &registry)
{
    std::vector<Error> errors;
    for (const auto &[name, d] : c.devices) {
        auto agent = registry.find(d.agent);
        if (!agent) {
            errors.push_back(config_error(c.source, "/devices/" + json_pointer_token(name) + "/agent", "{}",
                                          agent.error().message));
            continue;
        }
        auto p = resolve_params(**agent, d.params, UnknownParams::Reject);
        if (!p) {
            errors.push_back(param_error(c.source, "/devices/" + json_pointer_token(name) + "/params", p.error()));
            continue;
        }
        // A configured timeout shorter than what the agent says it needs would cut its own wait
        // (an operator's answer, a standby wait) at fence time: refuse it now, with both numbers.
        for (uint32_t action : {STOCKADE_ACTION_OFF, STOCKADE_ACTION_REBOOT}) {
            if (!d.timeout_set || !(*agent)->can(power_action_info(PowerAction(action)).capability))
                continue;
            auto need = agent_time_needed(**agent, *p, action);
            if (!need) {
                errors.push_back(config_error(c.source, "/devices/" + json_pointer_token(name) + "/params", "{}",
                                              need.error().message));
                break;
            }
            if (!need->has_value())
                continue;
            if (auto fits = check_fits(d.agent, power_action_info(PowerAction(action)).name, **need, "timeout",
                                       d.timeout);
                !fits) {
                errors.push_back(config_error(c.source, "/devices/" + json_pointer_token(name) + "/timeout", "{}",
                                              fits.error().message));
                break;
            }
        }
    }
    for (const auto &n : c.nodes)
        for (size_t li = 0; li < n.levels.size(); ++li)
            for (size_t di = 0; di < n.levels[li].size(); ++di) {
                const LevelDevice &ld = n.levels[li][di];
                if (ld.params.empty())
                    continue;
                const DeviceConfig &d = c.devices.at(ld.device);
                auto agent = registry.find(d.agent);
                if (!agent)
                    continue; // reported with the device
                if (auto p = resolve_params(**agent, merged_params(d, ld), UnknownParams::Reject); !p)
                    errors.push_back(param_error(
                        c.source, fmt::format("/nodes/{}/levels/{}/{}/params", json_pointer_token(n.name), li, di),
                        p.error()));
            }
    return errors;
}

Status check_config_agents(const Config &c, const AgentRegistry &registry)
{
    auto errors = config_agent_errors(c, registry);
    if (errors.empty())
        return {};
    return errors.front();
}

} // namespace stockade
