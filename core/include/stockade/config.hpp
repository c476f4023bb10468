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

#include "stockade/code_tables.hpp"
#include "stockade/registry.hpp"
#include "stockade/result.hpp"

namespace stockade {

struct DeviceConfig {
    std::string name;
    std::string agent;
    RawParams params;
    std::chrono::milliseconds timeout{60000};
    // "timeout" was configured: a limit the agent's own need must fit (refused at validation
    // otherwise); unset, a power action gets what the agent states it needs (time_budget.hpp).
    bool timeout_set = false;
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
    std::vector<std::string> addresses; // where its witness service answers, what witnesses probe
    int witness_port = 0;               // 0 = witness.port
};

// Quorum before fencing (LifeKeeper's QUORUM_MODE): a node may fence only while it holds quorum.
enum class QuorumMode { None, Majority, TcpRemote };
// What a node that finds itself without quorum does (LifeKeeper's QUORUM_LOSS_ACTION).
enum class LossAction { Osu, Fastkill, Fastboot };
// Second opinion before fencing (LifeKeeper's WITNESS_MODE).
enum class WitnessMode { None, RemoteVerify };

struct QuorumConfig {
    QuorumMode mode = QuorumMode::None;
    std::vector<std::string> hosts;           // tcp_remote: "host:port"
    std::chrono::milliseconds timeout{5000};  // per probe
    LossAction loss_action = LossAction::Osu;
    std::vector<std::string> osu_command;     // argv
    std::vector<std::string> loss_hook;       // argv, run first on every loss
    bool allow_self_fence = false;            // fastkill/fastboot may call reboot(2)
};

// A node that only runs the witness service (counts for majority, gives opinions, never fenced).
struct WitnessOnlyNode {
    std::string name;
    std::vector<std::string> addresses;
    int witness_port = 0;
};

struct WitnessConfig {
    WitnessMode mode = WitnessMode::None;
    int port = 7410;
    std::string listen;                        // "" = any address
    std::string key_file = "/etc/stockade/cluster.key";
    std::chrono::milliseconds timeout{2000};   // per request / per probe
    std::chrono::milliseconds max_skew{30000}; // validity window of a signed message
    std::vector<int> check_ports;              // TCP ports probed on a victim
    bool icmp = true;
    std::vector<WitnessOnlyNode> nodes;
};

// Name of each mode as in the configuration (first spelling is the canonical one).
std::string_view quorum_mode_name(QuorumMode m);
std::string_view witness_mode_name(WitnessMode m);
std::string_view loss_action_name(LossAction a);

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
    QuorumConfig quorum;
    WitnessConfig witness;
    unsigned file_mode = 0; // permission bits of the file it was read from (0 = not read from a file)

    const NodeConfig *find_node(std::string_view name) const;
    const WitnessOnlyNode *find_witness_node(std::string_view name) const;
};

// The schema text (schemas/config.schema.json as built in).
const nlohmann::json &config_schema();

// Parses and validates the JSON text; `source` names it in errors.
Result<Config> parse_config(std::string_view text, const std::string &source);
Result<Config> load_config(const std::string &path);

// Checks that every device's agent exists and every parameter (device and per-node) is valid:
// every error found, or the first.
std::vector<Error> config_agent_errors(const Config &config, const AgentRegistry &registry);
Status check_config_agents(const Config &config, const AgentRegistry &registry);

// Everything `stockade validate` reports: the file read, parsed, checked against the schema, its
// cross-references and the agents; every error found (each names the file and a JSON pointer in
// `pointer`), and the Config only when there is none.
struct ConfigCheck {
    std::optional<Config> config;
    std::vector<Error> errors;
};
ConfigCheck check_config_file(const std::string &path, const AgentRegistry &registry);

// Secrets at rest: one warning per secret parameter value (a parameter its agent declares secret)
// in a file that group or others may read, naming the file, its mode and the JSON path; empty
// when the file is private (0600/0400) or holds no secret.  Warn, not refuse: see
// docs/input-rules.md ("Secrets in files").
std::vector<std::string> readable_secret_warnings(const Config &config, const AgentRegistry &registry);

// The device's parameters merged with a level entry's (later wins), as given.
RawParams merged_params(const DeviceConfig &device, const LevelDevice &entry);

} // namespace stockade
