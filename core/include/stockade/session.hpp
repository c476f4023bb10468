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

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
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

struct OpResult {
    uint32_t rc = STOCKADE_RC_OK;        // STOCKADE_RC_*
    std::string message;                // reason when rc != OK (may be set on OK as a note)
    uint32_t verified = 0;              // STOCKADE_VERIFIED_* (power)
    uint32_t power_state = STOCKADE_POWER_UNKNOWN; // status
    std::vector<ListedTarget> targets;  // list
    int64_t elapsed_ms = 0;

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

// Path of the agent host: $STOCKADE_AGENT_HOST, else next to the running binary's libexec
// folder, else the compiled-in install path.
std::string locate_agent_host();

// Convenience used by ctx->invoke and front-ends: open `agent` with raw params, run one action
// (a STOCKADE_ACTION_*, or 0 for status), close.  Always isolated.
OpResult invoke_agent(const AgentRegistry &registry, const std::string &agent, const RawParams &params,
                      uint32_t action, const std::string &target, Millis timeout, Logger &logger,
                      const std::atomic<bool> *cancel);

} // namespace stockade
