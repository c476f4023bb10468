// agent_calls.hpp -- the one place that calls an agent's C entry points.
//
// An agent speaks the layout of the ABI minor it was built for: minor 0 (agent_v1_0.h:
// unversioned {name, value} parameters, no flags on open/close/status/list/monitor) or minor
// >= 1 (agent.h).  These functions take the host's view (C++ parameter lists, flags always) and
// call the agent in its own layout, so no other file needs to know that two layouts exist.
#pragma once

#include <cstdint>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_v1_0.h"
#include "stockade/registry.hpp"

namespace stockade::agent_calls {

// A ParamList laid out as the agent's minor expects it; borrows the strings of `params`.
class CParams {
public:
    CParams(const AgentInfo &agent, const ParamList &params);
    const stockade_param *current() const { return current_.data(); }
    const stockade_v1_0_param *v1_0() const { return v1_0_.data(); }
    size_t size() const { return size_; }

private:
    std::vector<stockade_param> current_;
    std::vector<stockade_v1_0_param> v1_0_;
    size_t size_ = 0;
};

// The agent's prepare (ABI 1.2), at most once per agent per process (the first caller runs it, the
// others wait for it); nothing when it has none.  Its result is only "prepared or not": an agent
// that was not prepared does the same work in open(), so nothing is reported.
void prepare_once(const AgentInfo &a);
// Runs prepare_once(a) first.
uint32_t open(const AgentInfo &a, const ParamList &params, const stockade_ctx *ctx, uint32_t flags, void **handle);
void close(const AgentInfo &a, void *handle, uint32_t flags);
uint32_t power(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t action, const char *target,
               uint32_t flags, uint32_t *verified);
uint32_t status(const AgentInfo &a, void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags,
                uint32_t *power_state);
uint32_t list(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t flags, stockade_list_fn emit,
              void *emit_ctx);
uint32_t monitor(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t flags);
// Only when a.time_needed is set (ABI >= 1.1).
uint32_t time_needed(const AgentInfo &a, const ParamList &params, const stockade_ctx *ctx, uint32_t action,
                     uint32_t flags, uint32_t *needed_ms);

// The parameters an agent handed to ctx->invoke, read in the caller's layout.
Result<RawParams> params_from_caller(const AgentInfo &caller, const stockade_param *params, size_t n);

} // namespace stockade::agent_calls
