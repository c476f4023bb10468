// target_map.hpp -- the libvirt agent's configuration logic that needs no hypervisor: the
// cluster-glue hostlist (`node[:domain]`), how a fencing target becomes a domain name or UUID,
// and the small rewrites applied to a hypervisor URI.  Kept apart from the libvirt calls so the
// rules are tested on their own and read in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/text.hpp"

namespace stockade::libvirt_agent {

// An error as a value: a STOCKADE_RC_* code and one line naming the cause.
struct Status {
    uint32_t rc = 0;
    std::string message;
    bool ok() const { return rc == 0; }
};

struct HostEntry {
    std::string node;   // cluster node name as the cluster knows it (matched case-insensitively)
    std::string domain; // libvirt domain name or UUID; the node name when not given
};

// cluster-glue external/libvirt syntax: entries separated by spaces, tabs, newlines or commas,
// each `node` or `node:domain`.  Errors name the offending entry.
struct HostList {
    std::vector<HostEntry> entries;
    const HostEntry *find(std::string_view node) const;
};
Status parse_hostlist(std::string_view text, HostList &out);

// True for the textual UUID forms libvirt accepts: 8-4-4-4-12 hex digits, or 32 hex digits.
bool looks_like_uuid(std::string_view s);

enum class TargetSource { HostList, Plug, Direct };

struct ResolvedTarget {
    std::string domain;
    TargetSource source = TargetSource::Direct;
};

// How a fencing target becomes a domain:
//   1. a hostlist entry for the target (case-insensitive node name) gives its domain;
//   2. otherwise, with a hostlist configured and no plug, the target is unknown;
//   3. otherwise a configured plug (fence-agents' host-supplied port) is the domain;
//   4. otherwise the target itself is the domain name or UUID.
// Errors: STOCKADE_RC_UNKNOWN_TARGET for a node outside the hostlist, BAD_CONFIG for no target.
Status resolve_target(const HostList &hosts, std::string_view plug, std::string_view target,
                      ResolvedTarget &out);

// The hypervisor URI as the agent opens it: for the ssh transport (`driver+ssh://`) `no_tty=1`
// is added unless given, so ssh never prompts on a terminal (an agent has none to answer).
std::string effective_uri(std::string_view uri);

// For an in-process test-driver URI naming a file (`test:///abs/path.xml`), that path;
// std::nullopt for `test:///default` and every other URI.
std::optional<std::string> test_driver_file(std::string_view uri);

// The URI as shown in logs and messages: a password in the user part (`user:pw@host`) is masked.
std::string uri_for_display(std::string_view uri);

using stockade::text::iequals;

} // namespace stockade::libvirt_agent
