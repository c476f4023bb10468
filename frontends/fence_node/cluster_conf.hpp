// cluster_conf.hpp -- a cman cluster.conf as a stockade configuration.
//
// Sites coming from cman/rgmanager keep their cluster.conf: every <fencedevice> becomes a
// "foreign_fence" device (agents/foreign_fence) that runs the fence-agents program named by its
// agent= attribute; every <clusternode>'s <fence><method> list becomes that node's levels, in
// document order; <unfence> devices are kept aside for fence_node -U.  Parameters reach the
// program as libfence's make_args assembles them: the <device> line's attributes, nodename=<node>
// unless set, then the <fencedevice>'s attributes, with the fencedevice winning on a duplicate
// (fence agents keep the last of repeated keys).  The dual power supply idiom (a method listing
// devices with action="off" and then the same devices with action="on") becomes one level that
// the runner powers off on every device, then on on every device, which is what it spelled out.
// Errors are one line naming the file, the line and the element.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/config.hpp"
#include "stockade/result.hpp"

namespace stockade {

struct ClusterConf {
    Config config;                                          // foreign_fence devices, nodes' levels
    std::map<std::string, std::vector<LevelDevice>> unfence; // node name (as in the file) -> devices
    std::vector<std::string> warnings;                      // one line each (empty methods, ...)

    const std::vector<LevelDevice> *find_unfence(std::string_view node) const;
    // The fence-agents program a device runs (its agent= attribute), for messages.
    std::string program_of(const std::string &device) const;
};

// The stockade agent every cluster.conf device becomes.
inline constexpr std::string_view kClusterConfAgent = "foreign_fence";

Result<ClusterConf> parse_cluster_conf(std::string_view text, const std::string &source);
Result<ClusterConf> load_cluster_conf(const std::string &path);

} // namespace stockade
