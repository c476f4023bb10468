// agent_calls.cpp -- calls into an agent in the layout of its ABI minor (see agent_calls.hpp).
#include "agent_calls.hpp"

#include <cstdio>
#include <mutex>
#include <set>

namespace stockade::agent_calls {

namespace {

// A 1.0 agent has no flags argument on these entry points: nothing but 0 can be passed on.
uint32_t refuse_flags_v1_0(const stockade_ctx *ctx, uint32_t flags)
{
    if (flags && ctx && ctx->errbuf && ctx->errbuf_size)
        std::snprintf(ctx->errbuf, ctx->errbuf_size, "flags 0x%x cannot be passed to an ABI 1.0 agent", flags);
    return flags ? STOCKADE_RC_UNSUPPORTED : STOCKADE_RC_OK;
}

} // namespace

CParams::CParams(const AgentInfo &agent, const ParamList &params) : size_(params.size())
{
    if (agent.desc_v1_0) {
        v1_0_.reserve(params.size() + 1);
        for (const auto &[k, v] : params)
            v1_0_.push_back({k.c_str(), v.c_str()});
        v1_0_.push_back({nullptr, nullptr}); // data() is never NULL, even for no parameters
        return;
    }
    current_.reserve(params.size() + 1);
    for (const auto &[k, v] : params)
        current_.push_back({STOCKADE_ABI_MAJOR, sizeof(stockade_param), k.c_str(), v.c_str()});
    current_.push_back({STOCKADE_ABI_MAJOR, sizeof(stockade_param), nullptr, nullptr});
}

void prepare_once(const AgentInfo &a)
{
    if (!a.prepare)
        return;
    // Keyed by the descriptor: one per loaded file, whichever AgentInfo copy describes it.  A
    // forked child inherits the set, so a session forked from a prepared template skips it.
    static std::mutex mu;
    static auto *done = new std::set<const stockade_agent *>(); // never torn down
    std::lock_guard lock(mu);
    if (done->insert(a.desc).second)
        (void)a.prepare(0);
}

uint32_t open(const AgentInfo &a, const ParamList &params, const stockade_ctx *ctx, uint32_t flags, void **handle)
{
    prepare_once(a);
    CParams cp(a, params);
    if (a.desc_v1_0) {
        if (uint32_t rc = refuse_flags_v1_0(ctx, flags))
            return rc;
        return a.desc_v1_0->open(cp.v1_0(), cp.size(), ctx, handle);
    }
    return a.desc->open(cp.current(), cp.size(), ctx, flags, handle);
}

void close(const AgentInfo &a, void *handle, uint32_t flags)
{
    if (a.desc_v1_0)
        a.desc_v1_0->close(handle);
    else
        a.desc->close(handle, flags);
}

uint32_t power(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t action, const char *target,
               uint32_t flags, uint32_t *verified)
{
    if (a.desc_v1_0)
        return a.desc_v1_0->power(handle, ctx, action, target, flags, verified);
    return a.desc->power(handle, ctx, action, target, flags, verified);
}

uint32_t status(const AgentInfo &a, void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags,
                uint32_t *power_state)
{
    if (a.desc_v1_0) {
        if (uint32_t rc = refuse_flags_v1_0(ctx, flags))
            return rc;
        return a.desc_v1_0->status(handle, ctx, target, power_state);
    }
    return a.desc->status(handle, ctx, target, flags, power_state);
}

uint32_t list(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t flags, stockade_list_fn emit,
              void *emit_ctx)
{
    if (a.desc_v1_0) {
        if (uint32_t rc = refuse_flags_v1_0(ctx, flags))
            return rc;
        return a.desc_v1_0->list(handle, ctx, emit, emit_ctx);
    }
    return a.desc->list(handle, ctx, flags, emit, emit_ctx);
}

uint32_t monitor(const AgentInfo &a, void *handle, const stockade_ctx *ctx, uint32_t flags)
{
    if (a.desc_v1_0) {
        if (uint32_t rc = refuse_flags_v1_0(ctx, flags))
            return rc;
        return a.desc_v1_0->monitor(handle, ctx);
    }
    return a.desc->monitor(handle, ctx, flags);
}

uint32_t time_needed(const AgentInfo &a, const ParamList &params, const stockade_ctx *ctx, uint32_t action,
                     uint32_t flags, uint32_t *needed_ms)
{
    if (!a.time_needed)
        return STOCKADE_RC_UNSUPPORTED;
    CParams cp(a, params);
    return a.time_needed(cp.current(), cp.size(), ctx, action, flags, needed_ms);
}

Result<RawParams> params_from_caller(const AgentInfo &caller, const stockade_param *params, size_t n)
{
    RawParams raw;
    if (!params || !n)
        return raw;
    if (caller.desc_v1_0) {
        const auto *old = reinterpret_cast<const stockade_v1_0_param *>(params);
        for (size_t i = 0; i < n; ++i)
            if (old[i].name && old[i].value)
                raw.emplace_back(old[i].name, old[i].value);
        return raw;
    }
    if (params->abi_major != STOCKADE_ABI_MAJOR || !STOCKADE_HAS_FIELD(params, stockade_param, value))
        return make_error(STOCKADE_RC_BAD_CONFIG, "invoke: parameter array has abi_major {} and struct_size {}",
                          params->abi_major, params->struct_size);
    for (size_t i = 0; i < n; ++i) {
        const stockade_param *p = stockade_param_at(params, i);
        if (p->name && p->value)
            raw.emplace_back(p->name, p->value);
    }
    return raw;
}

} // namespace stockade::agent_calls
