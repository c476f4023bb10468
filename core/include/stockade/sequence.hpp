// sequence.hpp -- the one device fence sequence.
//
// What happens on the devices of one fence attempt (one runner level, the plugs of one
// fence_stockade call, one cluster-glue request) is decided here and nowhere else: which commands
// are sent in which order, when a reboot becomes off + on, and what counts as confirmed.  The
// front-ends only choose a policy (fence-agents reads the state first; the runner does not) and
// render the outcome in their own words.  docs/fence-sequence.md is the table of every action x
// agent capability this implements; tests/core/test_sequence_table.cpp runs each row through the
// runner, fence_stockade and the cluster-glue shim.
//
// The rules:
//   - off is confirmed only by the agent (STOCKADE_VERIFIED_OFF) or by a status read of "off"
//     afterwards; anything else is a failure, never a fence.
//   - on is confirmed by STOCKADE_VERIFIED_ON or a status read of "on"; an agent that can do
//     neither gets its word taken (as fence-agents does for no_status agents): success, state
//     unknown.
//   - reboot on a single device whose agent can reboot (and that is not known to be off already)
//     is one reboot call, and the agent itself must confirm the off (a status read afterwards
//     cannot tell whether the node ever went down); otherwise it is off on every device,
//     confirmed, then on on every device.  Success is decided by the off part alone; a power-on
//     that is not confirmed sets power_on_failed.
//   - diag is one call per device; nothing can be verified.
//   - status reads every device that can read it; any on = on; one device that cannot answer
//     (or answers "unknown") fails the whole read.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/code_tables.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"

namespace stockade {

enum class SequenceAction : uint32_t { Off, On, Reboot, Diag, ReadStatus };

struct SequenceActionInfo {
    SequenceAction action;
    std::string_view name;
    std::optional<PowerAction> power; // the power action it is, none for status
};

inline constexpr std::array<SequenceActionInfo, 5> kSequenceActions{{
    {SequenceAction::Off, "off", PowerAction::Off},
    {SequenceAction::On, "on", PowerAction::On},
    {SequenceAction::Reboot, "reboot", PowerAction::Reboot},
    {SequenceAction::Diag, "diag", PowerAction::Diag},
    {SequenceAction::ReadStatus, "status", std::nullopt},
}};

constexpr const SequenceActionInfo &sequence_action_info(SequenceAction a)
{
    for (const auto &i : kSequenceActions)
        if (i.action == a)
            return i;
    return kSequenceActions[0];
}

constexpr SequenceAction sequence_action(PowerAction a)
{
    for (const auto &i : kSequenceActions)
        if (i.power == a)
            return i.action;
    return SequenceAction::Off;
}

// The time each operation on one device may take.  The front-ends fill it from their own
// settings today; the agent's own time budget (abi, issue 18) plugs in here.
struct DeviceBudget {
    Millis open{30000};
    Millis status{30000};
    Millis off{30000};
    Millis on{30000};
    Millis reboot{60000};
    Millis diag{30000};
    // Every operation on this device together, counted from its first one (0 = no such cap).
    Millis total{0};
};

// One device (one agent session, one target) taking part in a sequence.
struct SequenceDevice {
    std::string name;   // for steps and log lines
    std::string target; // the plug / node name the agent is asked about ("" = its only target)
    // Capabilities: set by the caller when known (saves opening a device that cannot help),
    // else by `open`.
    const AgentInfo *agent = nullptr;
    // The open session; when null, `open` is called first (lazily: a device after a failed one
    // is never opened).  `open` must set agent and session, or return the failure.
    AgentSession *session = nullptr;
    std::function<OpResult(SequenceDevice &, Millis timeout)> open;
    DeviceBudget budget;

    int64_t first_op_ms = 0; // set by the sequence
};

struct SequenceStep {
    size_t device = 0;      // index into the devices given
    std::string op;         // open, status, off, on, reboot, diag, verify
    uint32_t expect = STOCKADE_POWER_UNKNOWN; // verify: the state it had to read
    OpResult result;
    int64_t started_ms = 0; // since the start of the sequence
};

struct SequencePolicy {
    // fence-agents: read the state first; when every device already is in the requested state,
    // nothing is sent (already = true).  An unreadable state then fails the sequence.
    bool status_first = false;
    unsigned on_attempts = 1;        // on: tries before giving up
    unsigned reboot_on_attempts = 1; // the on phase of an off + on reboot
    Millis settle{0};                // pause after each off/on command (fence-agents' power_wait)
    int64_t deadline_ms = 0;         // absolute monotonic_ms(): nothing starts after it (0 = none)
    const std::atomic<bool> *cancel = nullptr;
    // Called as each operation starts (with the time it may take) and as each step completes.
    std::function<void(const SequenceDevice &, std::string_view op, Millis timeout)> on_start;
    std::function<void(const SequenceDevice &, const SequenceStep &)> on_step;
};

struct SequenceOutcome {
    bool success = false;
    uint32_t rc = STOCKADE_RC_OK;          // the failing step's result code
    ExecStatus exec = ExecStatus::Completed; // and how that step ended (see session.hpp)
    std::string reason;                    // one line: why it failed (or a note on success)
    uint32_t state = STOCKADE_POWER_UNKNOWN; // confirmed state after the sequence
    bool already = false;                  // status_first found it done: nothing was sent
    bool power_on_failed = false;          // reboot: off confirmed, on not confirmed (or impossible)
    std::optional<size_t> failed_step;     // index into steps
    std::vector<SequenceStep> steps;
    int64_t elapsed_ms = 0;
};

SequenceOutcome run_sequence(std::span<SequenceDevice> devices, SequenceAction action, const SequencePolicy &policy);

} // namespace stockade
