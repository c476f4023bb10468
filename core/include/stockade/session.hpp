// session.hpp -- talking to one opened agent instance.
//
// A session is one device opened with its parameters, used for a sequence of operations (off,
// verify, on) and closed.  Two kinds share this interface:
//   - in-process: the agent's functions are called directly (library use, benchmarks, and the
//     agent host itself);
//   - isolated (the default for fencing): a `stockade-agent-host` child process in its own
//     process group loads the agent and runs the operations sent over a pipe.  Secret parameters
//     travel over that pipe, never argv or the environment.  At an operation's timeout the child
//     and every process it started are SIGKILLed, and a crash is an operation failure, never a
//     crash of the caller.
// Every operation gets its own timeout; the agent sees it as ctx->deadline_ms.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/agent.h"
#include "stockade/log.hpp"
#include "stockade/code_tables.hpp"
#include "stockade/registry.hpp"

namespace stockade {

using Millis = std::chrono::milliseconds;

struct ListedTarget {
    std::string name;
    std::string alias;
};

// How an operation ended, kept apart from the agent's result code as Pacemaker keeps execution
// status apart from exit status: only `Completed` means `rc` is the agent's own answer; otherwise
// rc only summarises (timeout, cancelled, internal) what the host saw.
enum class ExecStatus : uint32_t { Completed, NotRun, TimedOut, Cancelled, HostDied };

struct ExecStatusInfo {
    ExecStatus status;
    std::string_view name;    // machine name, in --json and logs
    std::string_view meaning; // human text
};

inline constexpr std::array<ExecStatusInfo, 5> kExecStatuses{{
    {ExecStatus::Completed, "completed", "the agent answered"},
    {ExecStatus::NotRun, "not-run", "not started: no time left or cancelled before it began"},
    {ExecStatus::TimedOut, "timed-out", "killed at its deadline"},
    {ExecStatus::Cancelled, "cancelled", "cancelled while it ran"},
    {ExecStatus::HostDied, "host-died", "the agent's process crashed or exited"},
}};

constexpr const ExecStatusInfo &exec_status_info(ExecStatus s)
{
    for (const auto &i : kExecStatuses)
        if (i.status == s)
            return i;
    return kExecStatuses[0];
}

struct OpResult {
    uint32_t rc = STOCKADE_RC_OK;        // STOCKADE_RC_*
    std::string message;                // reason when rc != OK (may be set on OK as a note)
    uint32_t verified = 0;              // STOCKADE_VERIFIED_* (power)
    uint32_t power_state = STOCKADE_POWER_UNKNOWN; // status
    std::vector<ListedTarget> targets;  // list
    int64_t elapsed_ms = 0;
    ExecStatus exec = ExecStatus::Completed;

    bool ok() const { return rc == STOCKADE_RC_OK; }
};

struct SessionOptions {
    bool isolate = true;
    // Log lines from the agent arrive here, already prefixed with the label.
    Logger *logger = nullptr;
    std::string label;                         // e.g. the device name, used as log prefix
    const std::atomic<bool> *cancel = nullptr; // set to stop waiting operations early
    const AgentRegistry *registry = nullptr;   // for ctx->invoke (nested agents); may be null
    std::string agent_host;                    // path of stockade-agent-host; "" = locate it
    // No other session of this process follows (a fence_* front-end's one device): the fork
    // template may run this session itself instead of forking it -- a fork and an exit fewer.
    // A session opened after it anyway starts another way (the agent host's fork server).
    bool last_of_process = false;
};

class AgentSession {
public:
    virtual ~AgentSession() = default;
    virtual const AgentInfo &agent() const = 0;
    // Creates the agent handle.  Must succeed before any other call.
    virtual OpResult open(const ParamList &params, Millis timeout) = 0;
    virtual OpResult power(PowerAction action, const std::string &target, Millis timeout) = 0;
    virtual OpResult status(const std::string &target, Millis timeout) = 0;
    virtual OpResult list(Millis timeout) = 0;
    virtual OpResult monitor(Millis timeout) = 0;
    // Releases the handle (and ends the child of an isolated session).  Idempotent.
    virtual void close() = 0;
};

std::unique_ptr<AgentSession> make_session(const AgentInfo &agent, SessionOptions options);

// Forks this process's agent template: a single-threaded copy of it that isolated sessions of
// this process are then forked from (loading each agent file on first use), instead of exec'ing
// stockade-agent-host -- isolation for the cost of a fork.  Call it early in main(), before any
// thread is started and before any secret is read into memory or still sits in the environment
// (the template, and every session, holds a copy of this process's memory and environment as
// they are now).  main's argc/argv, when given, are blanked in the template's copy (all but
// argv[0]), so its /proc/<pid>/cmdline never shows a secret the caller scrubs from its own argv
// later.  Fails, and sessions use the agent host as before, when this process already has
// threads or STOCKADE_FORK_SERVER=0.  Sessions with SessionOptions::agent_host set never use it.
// `preload_agent` (a name or path; empty: none) is loaded and prepared by the template at once.
Status start_fork_template(int argc = 0, char **argv = nullptr, std::string_view preload_agent = {});

// Path of the agent host: $STOCKADE_AGENT_HOST, else next to the running binary's libexec
// folder, else the compiled-in install path.
std::string locate_agent_host();

// Convenience used by ctx->invoke and front-ends: open `agent` with raw params, run one action
// (a STOCKADE_ACTION_*, or 0 for status), close.  Always isolated.
OpResult invoke_agent(const AgentRegistry &registry, const std::string &agent, const RawParams &params,
                      uint32_t action, const std::string &target, Millis timeout, Logger &logger,
                      const std::atomic<bool> *cancel);

} // namespace stockade
