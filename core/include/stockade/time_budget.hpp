// time_budget.hpp -- how long one device operation may take, and whether that fits the caller.
//
// A plain power device needs "connect + command + confirm": fence-agents' login_timeout +
// power_timeout + power_wait, or a device's configured timeout.  An agent whose work is waiting
// (an operator's answer, a standby wait, a death check, a nested device under its own limit)
// states its own need from its parameters through time_needed (ABI 1.1).  The front-ends and the
// runner take every per-operation cap from here, so no generic formula silently cuts an agent's
// own wait; a need the caller's timeout cannot hold is refused at validate/monitor time with
// both numbers (check_fits), never discovered at fence time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stockade/registry.hpp"
#include "stockade/result.hpp"
#include "stockade/sequence.hpp"

namespace stockade {

// Slack the host adds to an agent's own statement: spawning the isolated agent host, the pipe
// round trips, the agent's last poll step.
inline constexpr std::chrono::milliseconds kHostSlack{2000};

// The agent's own need for `action` (STOCKADE_ACTION_*, or 0 for status/list/monitor) with these
// resolved parameters, host slack included; nullopt when the agent states none (ABI 1.0 agents,
// plain power devices).  Errors: the agent refused the parameters.
Result<std::optional<std::chrono::milliseconds>> agent_time_needed(const AgentInfo &agent, const ParamList &params,
                                                                   uint32_t action);

// The cap for one call: the agent's own need when it states one, else `formula` (the caller's
// generic power-device limit).
Result<std::chrono::milliseconds> operation_cap(const AgentInfo &agent, const ParamList &params, uint32_t action,
                                                std::chrono::milliseconds formula);

// Puts the agent's own need into a device budget wherever it states one (off, on, reboot, diag;
// open and status keep the caller's values).  Returns whether the agent stated anything.
Result<bool> apply_time_needed(DeviceBudget &budget, const AgentInfo &agent, const ParamList &params);

// What one fencing run (status first, then `action`) needs when the agent states its need for
// `action`: the statement plus `status_budget`; nullopt without a statement.
Result<std::optional<std::chrono::milliseconds>> run_need(const AgentInfo &agent, const ParamList &params,
                                                          uint32_t action, std::chrono::milliseconds status_budget);

// OK when `need` fits in `caller`; otherwise an error naming both numbers and the knobs, e.g.
// "agent 'meatware' needs 602 s for off (its own wait), but total_timeout allows 55 s: ...".
// caller <= 0 means "no limit".
Status check_fits(std::string_view agent, std::string_view action, std::chrono::milliseconds need,
                  std::string_view caller_what, std::chrono::milliseconds caller);

// "602 s" / "1.5 s": how the numbers above are written.
std::string seconds_text(std::chrono::milliseconds ms);

} // namespace stockade
