// node_keys.hpp -- which reservation key belongs to which node.  Derived as fence_scsi derives it
// (first 4 hex digits of md5(cluster name), then the node's position in corosync's nodelist as 4
// decimal digits ("id") or the first 4 hex digits of md5(node name) ("hash")), unless the keys are
// given.  fence_scsi asks corosync-cmapctl at run time; stockade reads corosync.conf (the same
// values while the file matches the running cluster) so the agent spawns nothing.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pr_protocol.hpp"
#include "stockade/result.hpp"

namespace stockade::scsi {

enum class KeyMethod { Id, Hash };

struct CorosyncConf {
    std::string cluster_name;
    // nodelist.node.N in file order: (name, ring0_addr); either may be empty.
    std::vector<std::pair<std::string, std::string>> nodes;
};
// Parses corosync.conf text (sections in braces, "key: value" lines, # comments).
Result<CorosyncConf> parse_corosync_conf(const std::string &text);

// The first 8 hex digits of md5(text), lower-case.
std::string md5_hex8(const std::string &text);

class NodeKeys {
public:
    KeyMethod method = KeyMethod::Id;
    std::string cluster_name;                             // "" = unknown
    std::vector<std::pair<std::string, std::string>> nodes; // corosync nodelist order
    std::vector<std::pair<std::string, Key>> given;       // keys= map, wins over derivation

    // The key of `node` (case-insensitive name).  Errors say what is missing to derive it.
    Result<Key> key_for(const std::string &node) const;
    // Every node this object can name (given ones first, then the nodelist), each with its key;
    // nodes whose key cannot be derived are left out.
    std::vector<std::pair<std::string, Key>> known() const;
    // The node owning `k`, or "" when none does.
    std::string node_of(Key k) const;
    // "" when every known node has its own key, else which nodes share one (a key collision).
    std::string collision() const;
};

// The text of a small configuration file (corosync.conf, initiatorname.iscsi); errors name the path.
Result<std::string> read_config_file(const std::string &path);
// The InitiatorName= value of open-iscsi's initiatorname.iscsi text; "" when absent.
std::string initiator_name_of(const std::string &text);

// Parses "node1=1a2b0001 node2=0x1a2b0002" (space or comma separated).
Result<std::vector<std::pair<std::string, Key>>> parse_key_map(const std::string &text);

} // namespace stockade::scsi
