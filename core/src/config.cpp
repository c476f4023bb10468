// config.cpp -- loading, validating and checking the JSON configuration.
#include "stockade/config.hpp"

#include <cmath>
#include <fstream>
#include <sstream>
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

std::string pointer_escape(const std::string &key)
{
    std::string out;
    for (char c : key)
        out += c == '/' ? std::string("~1") : c == '~' ? std::string("~0") : std::string(1, c);
    return out;
}

// "parameter 'x': problem" from resolve_params becomes "<base>/x: problem", so the error names
// the JSON path of the offending field.
Error param_error(const std::string &source, const std::string &base, const Error &e)
{
    const std::string prefix = "parameter '";
    if (e.message.rfind(prefix, 0) == 0) {
        auto end = e.message.find("': ", prefix.size());
        if (end != std::string::npos)
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}: {}/{}: {}", source, base,
                              pointer_escape(e.message.substr(prefix.size(), end - prefix.size())),
                              e.message.substr(end + 3));
    }
    return make_error(STOCKADE_RC_BAD_CONFIG, "{}: {}: {}", source, base, e.message);
}

} // namespace

const NodeConfig *Config::find_node(std::string_view name) const
{
    std::string want = to_lower(name);
    for (const auto &n : nodes)
        if (to_lower(n.name) == want)
            return &n;
    return nullptr;
}

const nlohmann::json &config_schema()
{
    static const json schema = json::parse(kConfigSchemaText);
    return schema;
}

Result<Config> parse_config(std::string_view text, const std::string &source)
{
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error &e) {
        std::string what = e.what();
        // nlohmann's text is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
        auto colon = what.find(": ", what.find("parse error"));
        std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: invalid JSON at {}: {}", source, position_of(text, e.byte ? e.byte - 1 : 0),
                          detail);
    }
    if (auto s = validate_json(config_schema(), doc); !s)
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: {}", source, s.error().message);

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
        d.isolate = it.value().value("isolate", true);
        c.devices.emplace(d.name, std::move(d));
    }
    for (auto it = doc["nodes"].begin(); it != doc["nodes"].end(); ++it) {
        NodeConfig n;
        n.name = it.key();
        if (c.find_node(n.name))
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}: /nodes/{}: node defined twice (names ignore case)", source,
                              pointer_escape(n.name));
        if (it.value().contains("action"))
            n.action = *parse_power_action(it.value()["action"].get<std::string>());
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
                if (!c.devices.count(ld.device))
                    return make_error(STOCKADE_RC_BAD_CONFIG, "{}: /nodes/{}/levels/{}/{}: unknown device '{}'", source,
                                      pointer_escape(n.name), li, di, ld.device);
                for (const auto &other : level)
                    if (other.device == ld.device)
                        return make_error(STOCKADE_RC_BAD_CONFIG,
                                          "{}: /nodes/{}/levels/{}/{}: device '{}' appears twice in one level", source,
                                          pointer_escape(n.name), li, di, ld.device);
                level.push_back(std::move(ld));
            }
            n.levels.push_back(std::move(level));
        }
        c.nodes.push_back(std::move(n));
    }
    return c;
}

Result<Config> load_config(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: cannot read: {}", path, std::strerror(errno));
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_config(ss.str(), path);
}

RawParams merged_params(const DeviceConfig &device, const LevelDevice &entry)
{
    RawParams out = device.params;
    out.insert(out.end(), entry.params.begin(), entry.params.end());
    return out;
}

Status check_config_agents(const Config &c, const AgentRegistry &registry)
{
    for (const auto &[name, d] : c.devices) {
        auto agent = registry.find(d.agent);
        if (!agent)
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}: /devices/{}/agent: {}", c.source, pointer_escape(name),
                              agent.error().message);
        if (auto p = resolve_params(**agent, d.params, UnknownParams::Reject); !p)
            return param_error(c.source, "/devices/" + pointer_escape(name) + "/params", p.error());
    }
    for (const auto &n : c.nodes)
        for (size_t li = 0; li < n.levels.size(); ++li)
            for (size_t di = 0; di < n.levels[li].size(); ++di) {
                const LevelDevice &ld = n.levels[li][di];
                if (ld.params.empty())
                    continue;
                const DeviceConfig &d = c.devices.at(ld.device);
                auto agent = registry.find(d.agent);
                if (auto p = resolve_params(**agent, merged_params(d, ld), UnknownParams::Reject); !p)
                    return param_error(c.source, fmt::format("/nodes/{}/levels/{}/{}/params", pointer_escape(n.name), li, di),
                                       p.error());
            }
    return {};
}

} // namespace stockade
