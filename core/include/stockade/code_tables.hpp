// code_tables.hpp -- one constexpr table per enum.
//
// Each result code, action and power state is described once: its name, the exit code a
// fence-agents consumer expects, the cluster-glue S_* code and a short meaning.  Front-ends and
// the runner look things up here instead of writing parallel switch statements.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "stockade/agent.h"

namespace stockade {

// cluster-glue's stonith.h return codes.
enum GlueCode : int {
    S_OK = 0,
    S_BADCONFIG = 1,
    S_ACCESS = 2,
    S_INVAL = 3,
    S_BADHOST = 4,
    S_RESETFAIL = 5,
    S_TIMEOUT = 6,
    S_ISOFF = 7,
    S_OOPS = 8,
};

struct ResultCodeInfo {
    uint32_t rc;
    std::string_view name;        // machine name, used in --json and logs
    int fence_agent_exit;         // fence-agents exit code for a power action
    GlueCode glue;                // cluster-glue S_* code
    std::string_view meaning;     // human text
};

inline constexpr std::array<ResultCodeInfo, STOCKADE_RC_COUNT> kResultCodes{{
    {STOCKADE_RC_OK, "ok", 0, S_OK, "success"},
    {STOCKADE_RC_BAD_CONFIG, "bad-config", 1, S_BADCONFIG, "bad configuration"},
    {STOCKADE_RC_ACCESS_DENIED, "access-denied", 1, S_ACCESS, "access denied"},
    {STOCKADE_RC_UNREACHABLE, "unreachable", 1, S_OOPS, "device unreachable"},
    {STOCKADE_RC_TIMEOUT, "timeout", 1, S_TIMEOUT, "timed out"},
    {STOCKADE_RC_UNKNOWN_TARGET, "unknown-target", 1, S_BADHOST, "unknown target"},
    {STOCKADE_RC_FAILED, "failed", 1, S_RESETFAIL, "action failed"},
    {STOCKADE_RC_UNSUPPORTED, "unsupported", 1, S_INVAL, "unsupported action"},
    {STOCKADE_RC_CANCELLED, "cancelled", 1, S_OOPS, "cancelled"},
    {STOCKADE_RC_INTERNAL, "internal-error", 1, S_OOPS, "internal error"},
}};
static_assert(kResultCodes.size() == STOCKADE_RC_COUNT);

constexpr const ResultCodeInfo &result_code_info(uint32_t rc)
{
    return rc < kResultCodes.size() ? kResultCodes[rc] : kResultCodes[STOCKADE_RC_INTERNAL];
}

// Power actions a user can ask for.
enum class PowerAction : uint32_t {
    Off = STOCKADE_ACTION_OFF,
    On = STOCKADE_ACTION_ON,
    Reboot = STOCKADE_ACTION_REBOOT,
    Diag = STOCKADE_ACTION_DIAG,
};

struct PowerActionInfo {
    PowerAction action;
    std::string_view name;        // as on the command line and in fence-agents' action=
    uint32_t capability;          // STOCKADE_CAP_* needed
    std::string_view glue_name;   // cluster-glue request name (stonith -T)
    std::string_view success_text; // fence-agents stdout on success
};

inline constexpr std::array<PowerActionInfo, 4> kPowerActions{{
    {PowerAction::Off, "off", STOCKADE_CAP_OFF, "off", "Success: Powered OFF"},
    {PowerAction::On, "on", STOCKADE_CAP_ON, "on", "Success: Powered ON"},
    {PowerAction::Reboot, "reboot", STOCKADE_CAP_REBOOT, "reset", "Success: Rebooted"},
    {PowerAction::Diag, "diag", STOCKADE_CAP_DIAG, "", "Success: Diagnostic interrupt sent"},
}};

constexpr const PowerActionInfo &power_action_info(PowerAction a)
{
    for (const auto &i : kPowerActions)
        if (i.action == a)
            return i;
    return kPowerActions[0];
}

std::optional<PowerAction> parse_power_action(std::string_view name);

// Power states as reported by status.
struct PowerStateInfo {
    uint32_t state;
    std::string_view name;        // "on" / "off" / "unknown"
    std::string_view status_text; // fence-agents stdout: "Status: ON"
    int status_exit;              // fence-agents / stockade status exit code: 0 on, 2 off, 1 unknown
};

inline constexpr std::array<PowerStateInfo, 3> kPowerStates{{
    {STOCKADE_POWER_UNKNOWN, "unknown", "Status: UNKNOWN", 1},
    {STOCKADE_POWER_ON, "on", "Status: ON", 0},
    {STOCKADE_POWER_OFF, "off", "Status: OFF", 2},
}};

constexpr const PowerStateInfo &power_state_info(uint32_t state)
{
    return state < kPowerStates.size() ? kPowerStates[state] : kPowerStates[0];
}

// Capability bits, for metadata and error messages.
struct CapabilityInfo {
    uint32_t bit;
    std::string_view name;
};

inline constexpr std::array<CapabilityInfo, 9> kCapabilities{{
    {STOCKADE_CAP_OFF, "off"},
    {STOCKADE_CAP_ON, "on"},
    {STOCKADE_CAP_REBOOT, "reboot"},
    {STOCKADE_CAP_STATUS, "status"},
    {STOCKADE_CAP_LIST, "list"},
    {STOCKADE_CAP_MONITOR, "monitor"},
    {STOCKADE_CAP_DIAG, "diag"},
    {STOCKADE_CAP_UNFENCE, "unfence"},
    {STOCKADE_CAP_WAITS, "waits"},
}};

// Parameter types.
struct ParamTypeInfo {
    uint32_t type;
    std::string_view name;          // as in our metadata / JSON
    std::string_view fence_content; // fence-agents metadata content type
};

inline constexpr std::array<ParamTypeInfo, 5> kParamTypes{{
    {STOCKADE_PARAM_STRING, "string", "string"},
    {STOCKADE_PARAM_INTEGER, "integer", "integer"},
    {STOCKADE_PARAM_BOOLEAN, "boolean", "boolean"},
    {STOCKADE_PARAM_SECONDS, "seconds", "second"},
    {STOCKADE_PARAM_SELECT, "select", "select"},
}};

const ParamTypeInfo *param_type_info(uint32_t type);

} // namespace stockade
