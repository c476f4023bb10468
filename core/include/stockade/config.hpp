// config.hpp -- the stockade configuration: devices, and per node the ordered escalation levels.
//
// JSON, validated against schemas/config.schema.json (compiled in), then checked against the
// agents themselves (every parameter known and well-typed).  Every error is one line naming the
// file and the JSON path: "stockade.json: /devices/bmc1/params/ipport: 'x' is not an integer".
// Node names are matched case-insensitively, as cluster-glue and fenced do.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stockade/outcome.hpp"
#include "stockade/registry.hpp"
#include "stockade/result.hpp"

namespace stockade {

struct DeviceConfig {
    std::string name;
    std::string agent;
    RawParams params;
    std::chrono::milliseconds timeout{60000};
    bool isolate = true;
};

struct LevelDevice {
    std::string device;  // key into Config::devices
    std::string target;  // name the device knows the node by; "" = the node name
    RawParams params;    // per-node parameters, override the device's
};

struct NodeConfig {
    std::string name;
    std::vector<std::vector<LevelDevice>> levels;
    PowerAction action = PowerAction::Reboot;
};

struct EscalationPolicy {
    std::chrono::milliseconds retry_delay{3000};
    unsigned max_loops = 0;             // 0 = endless, as fenced
    std::chrono::milliseconds timeout{0}; // 0 = no overall limit
};

struct Config {
    std::string source; // file name, for messages
    std::string cluster_name;
    std::string local_node;
    EscalationPolicy escalation;
    unsigned concurrency = 16;
    std::map<std::string, DeviceConfig> devices;
    std::vector<NodeConfig> nodes; // in file order

    const NodeConfig *find_node(std::string_view name) const;
};

// The schema text (schemas/config.schema.json as built in).
const nlohmann::json &config_schema();

// Parses and validates the JSON text; `source` names it in errors.
Result<Config> parse_config(std::string_view text, const std::string &source);
Result<Config> load_config(const std::string &path);

// Checks that every device's agent exists and every parameter (device and per-node) is valid.
Status check_config_agents(const Config &config, const AgentRegistry &registry);

// The device's parameters merged with a level entry's (later wins), as given.
RawParams merged_params(const DeviceConfig &device, const LevelDevice &entry);

} // namespace stockade
