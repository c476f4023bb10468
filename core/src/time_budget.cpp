// time_budget.cpp -- the agent's own time need, and the check that the caller can wait that long.
#include "stockade/time_budget.hpp"

#include <fmt/format.h>

#include "agent_calls.hpp"
#include "stockade/code_tables.hpp"

namespace stockade {

using std::chrono::milliseconds;

std::string seconds_text(milliseconds ms)
{
    if (ms.count() % 1000 == 0)
        return fmt::format("{} s", ms.count() / 1000);
    return fmt::format("{:.1f} s", double(ms.count()) / 1000.0);
}

Result<std::optional<milliseconds>> agent_time_needed(const AgentInfo &agent, const ParamList &params,
                                                      uint32_t action)
{
    if (!agent.time_needed)
        return std::optional<milliseconds>{};
    char errbuf[512] = {0};
    stockade_ctx ctx{};
    ctx.abi_major = STOCKADE_ABI_MAJOR;
    ctx.struct_size = sizeof ctx;
    ctx.errbuf = errbuf;
    ctx.errbuf_size = sizeof errbuf;
    uint32_t need = 0;
    uint32_t rc = STOCKADE_RC_INTERNAL;
    try {
        rc = agent_calls::time_needed(agent, params, &ctx, action, 0, &need);
    } catch (...) {
        errbuf[0] = 0;
    }
    errbuf[sizeof errbuf - 1] = 0;
    if (rc == STOCKADE_RC_UNSUPPORTED)
        return std::optional<milliseconds>{};
    if (rc != STOCKADE_RC_OK)
        return make_error(rc < STOCKADE_RC_COUNT ? rc : STOCKADE_RC_INTERNAL, "agent '{}': time needed for {}: {}",
                          agent.name, action ? power_action_info(PowerAction(action)).name : "status",
                          *errbuf ? errbuf : "refused");
    return std::optional<milliseconds>{milliseconds(need) + kHostSlack};
}

Result<milliseconds> operation_cap(const AgentInfo &agent, const ParamList &params, uint32_t action,
                                   milliseconds formula)
{
    auto need = agent_time_needed(agent, params, action);
    if (!need)
        return need.error();
    return need->value_or(formula);
}

Result<bool> apply_time_needed(DeviceBudget &budget, const AgentInfo &agent, const ParamList &params)
{
    const struct {
        uint32_t action;
        milliseconds DeviceBudget::*slot;
    } slots[] = {{STOCKADE_ACTION_OFF, &DeviceBudget::off},
                 {STOCKADE_ACTION_ON, &DeviceBudget::on},
                 {STOCKADE_ACTION_REBOOT, &DeviceBudget::reboot},
                 {STOCKADE_ACTION_DIAG, &DeviceBudget::diag}};
    bool stated = false;
    for (const auto &s : slots) {
        auto need = agent_time_needed(agent, params, s.action);
        if (!need)
            return need.error();
        if (need->has_value()) {
            budget.*s.slot = **need;
            stated = true;
        }
    }
    return stated;
}

Result<std::optional<milliseconds>> run_need(const AgentInfo &agent, const ParamList &params, uint32_t action,
                                             milliseconds status_budget)
{
    auto need = agent_time_needed(agent, params, action);
    if (!need)
        return need.error();
    if (!need->has_value())
        return std::optional<milliseconds>{};
    return std::optional<milliseconds>{**need + (agent.can(STOCKADE_CAP_STATUS) ? status_budget : milliseconds(0))};
}

Status check_fits(std::string_view agent, std::string_view action, milliseconds need, std::string_view caller_what,
                  milliseconds caller)
{
    if (caller.count() <= 0 || need <= caller)
        return {};
    return make_error(STOCKADE_RC_BAD_CONFIG,
                      "agent '{}' needs {} for {} (its own waits and timeouts), but {} allows only {}: raise {} to at "
                      "least {} or shorten the agent's own wait",
                      agent, seconds_text(need), action, caller_what, seconds_text(caller), caller_what,
                      seconds_text(need));
}

} // namespace stockade
