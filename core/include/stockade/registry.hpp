// registry.hpp -- finding, loading and checking agents.
//
// Agents are shared objects found in a search path: $STOCKADE_AGENT_PATH (colon-separated),
// then the agents folder relative to the running binary (the build tree mirrors the install
// tree), then the compiled-in install folder.  A file is refused when it is not a regular file,
// is writable by group or others, or is owned by someone other than root or the current user.
// Agents are opened RTLD_NOW|RTLD_LOCAL and never dlclose'd (unloading in a threaded process is
// unsafe).  The descriptor is checked once at load, so a bad agent fails at start-up, never in
// the middle of a fence.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_v1_0.h"
#include "stockade/result.hpp"

namespace stockade {

struct ParamInfo {
    std::string name;
    uint32_t type = STOCKADE_PARAM_STRING;
    uint32_t flags = 0;
    std::optional<std::string> default_value;
    std::vector<std::string> choices; // SELECT only
    std::vector<std::string> aliases;
    std::string description;

    bool required() const { return flags & STOCKADE_PARAM_REQUIRED; }
    bool secret() const { return flags & STOCKADE_PARAM_SECRET; }
    bool host_supplied() const { return flags & STOCKADE_PARAM_HOST_SUPPLIED; }
};

struct AgentInfo {
    std::string name;
    std::string path;
    std::string version;
    std::string summary;
    std::string description;
    uint32_t abi_major = 0;
    uint32_t abi_minor = 0;
    uint32_t capabilities = 0;
    std::vector<ParamInfo> params;
    // The descriptor in the layout of the agent's minor: exactly one is set, valid for the life
    // of the process (never unloaded).  Only core/src/agent_calls.cpp calls through them.
    const stockade_agent *desc = nullptr;           // minor >= 1 (stockade/agent.h)
    const stockade_v1_0_agent *desc_v1_0 = nullptr; // minor 0 (stockade/agent_v1_0.h)
    // The agent's own time budget entry point (ABI 1.1), or null: see agent_time_needed().
    decltype(stockade_agent::time_needed) time_needed = nullptr;
    // Its once-per-process preparation (ABI 1.2), or null: see agent_calls::prepare_once().
    decltype(stockade_agent::prepare) prepare = nullptr;

    bool can(uint32_t cap) const { return (capabilities & cap) == cap; }
    // Looks a parameter up by canonical name or alias; '-' and '_' are equivalent, case ignored.
    const ParamInfo *find_param(std::string_view name) const;
};

// Parameters as given by a user or config (any accepted name), in order.
using RawParams = std::vector<std::pair<std::string, std::string>>;
// Parameters after resolution: canonical names, normalised values (booleans "1"/"0", selects
// lower-case), defaults filled in, one entry per name.
using ParamList = std::vector<std::pair<std::string, std::string>>;

enum class UnknownParams { Reject, Ignore };

// Checks raw parameters against the agent's table.  Errors name the parameter ("parameter
// 'ipport': 'x' is not an integer").  With UnknownParams::Ignore, unknown names are skipped and
// reported in *ignored.  Host-supplied parameters may be missing even when required.
Result<ParamList> resolve_params(const AgentInfo &agent, const RawParams &raw, UnknownParams unknown,
                                 std::vector<std::string> *ignored = nullptr);

// True when `name` is a secret parameter of the agent (by any of its names).
bool is_secret_param(const AgentInfo &agent, std::string_view name);

// Loads one agent file and checks its descriptor.  Not cached; prefer AgentRegistry::find.
Result<AgentInfo> load_agent_file(const std::string &path);

// Checks a loaded descriptor (exposed for tests).
Status check_descriptor(const stockade_agent *desc, const std::string &path);

class AgentRegistry {
public:
    explicit AgentRegistry(std::vector<std::string> search_path = default_search_path());

    // $STOCKADE_AGENT_PATH, then <exe dir>/<rel>/stockade/agents, then the install dir.
    static std::vector<std::string> default_search_path();

    const std::vector<std::string> &search_path() const { return path_; }

    // The file an agent name (or a path, when `name` contains '/') stands for, without loading it.
    Result<std::string> locate(std::string_view name) const;

    // Finds an agent by name (or by path when `name` contains '/'), loading it once.  Thread-safe.
    Result<const AgentInfo *> find(std::string_view name) const;

    // Every agent file in the search path, by name (first one wins), with load errors as values.
    std::vector<std::pair<std::string, Result<const AgentInfo *>>> scan() const;

private:
    std::vector<std::string> path_;
    mutable std::mutex mu_;
    mutable std::map<std::string, std::unique_ptr<AgentInfo>, std::less<>> cache_;
};

} // namespace stockade
