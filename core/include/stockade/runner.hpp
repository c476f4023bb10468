// runner.hpp -- the escalation runner: the heart of stockade.
//
// Fencing a node walks its levels in order; a level succeeds only if every device in it
// succeeds (cman's methods, Pacemaker's topology).  A reboot on a level with several devices
// (dual power supplies) is off on every device, then on on every device.  When every level
// failed, the runner waits the retry delay and starts again from level 1, endlessly by default
// as Red Hat's fenced does, or bounded by a loop count and/or an overall timeout.
//
// A node counts as fenced only when the device confirmed it: the agent reported the target
// verified off, or a status read afterwards says off.  Anything else is a failed level, never a
// success.  Every step is reported as it happens (logger + hook), and the whole attempt comes
// back as a FenceReport that can be rendered as JSON.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "stockade/config.hpp"
#include "stockade/log.hpp"
#include "stockade/code_tables.hpp"
#include "stockade/registry.hpp"
#include "stockade/sequence.hpp"
#include "stockade/session.hpp"

namespace stockade {

struct StepRecord {
    unsigned loop = 0;   // 1-based pass over the levels
    unsigned level = 0;  // 1-based
    unsigned index = 0;  // 1-based device position in the level
    std::string device;
    std::string agent;
    std::string target;
    std::string op;      // "open", "off", "on", "reboot", "verify", "status"
    uint32_t rc = STOCKADE_RC_OK;
    ExecStatus exec = ExecStatus::Completed; // how the operation ended, apart from rc
    std::string message;
    uint32_t verified = 0;
    uint32_t power_state = STOCKADE_POWER_UNKNOWN;
    int64_t elapsed_ms = 0;
    int64_t started_ms = 0; // since the start of the attempt

    nlohmann::json to_json() const;
};

struct FenceReport {
    std::string node;
    PowerAction action = PowerAction::Reboot;
    bool success = false;
    unsigned level = 0;          // level that succeeded (1-based), 0 if none
    unsigned loops = 0;
    bool power_on_failed = false; // reboot: fenced (off confirmed), but power-on was not confirmed
    bool refused = false;        // a gate (quorum, witness) refused the fence; no device was touched
    pid_t shared_with_pid = 0;   // the node was already being fenced by this process: its outcome
    std::string reason;          // one line: why it succeeded or failed
    std::vector<StepRecord> steps;
    int64_t elapsed_ms = 0;

    nlohmann::json to_json() const;
};

struct StatusReport {
    std::string node;
    uint32_t power_state = STOCKADE_POWER_UNKNOWN;
    unsigned level = 0; // level whose devices answered
    std::string reason;
    std::vector<StepRecord> steps;
    int64_t elapsed_ms = 0;

    nlohmann::json to_json() const;
};

class EscalationRunner {
public:
    EscalationRunner(const Config &config, const AgentRegistry &registry, Logger &logger);

    // Stops waits and running operations early (the operation then fails as cancelled).
    void set_cancel(const std::atomic<bool> *cancel) { cancel_ = cancel; }
    // Called for every step as it completes (from the thread running that node).
    void set_step_hook(std::function<void(const FenceReport &, const StepRecord &)> hook) { hook_ = std::move(hook); }

    // A gate is consulted, in the order added, before any device of a fence is touched (quorum,
    // witness).  An error refuses the fence: FenceReport::refused, reason "<name>: <message>".
    using FenceGate = std::function<Status(const std::string &node, PowerAction action)>;
    void add_gate(std::string name, FenceGate gate) { gates_.emplace_back(std::move(name), std::move(gate)); }

    // While a device operation runs, a "still waiting (N s of M s)" line every `interval` (5 s;
    // 0 = never), besides the line when each device starts (with its timeout).
    void set_progress_interval(Millis interval) { progress_interval_ = interval; }

    // Takes the per-node lock (node_lock.hpp) in `dir` before each fence: a node being fenced by
    // another process (or thread) is waited for and its outcome shared.  Off by default (library
    // use); every front-end that fences turns it on with default_lock_dir().
    void set_node_locks(std::string dir) { lock_dir_ = std::move(dir); }

    // This process runs this one node and nothing else (a CLI command naming one node): a node
    // with one level of one device then opens that device's session as the process's last
    // (SessionOptions::last_of_process -- the fork template serves it itself, a fork and an exit
    // fewer).  A device opened again after all (a retry loop) starts another way.
    void set_one_node_process(bool one) { one_node_process_ = one; }

    // Fences one node; action defaults to the node's configured action.
    FenceReport fence(const std::string &node, std::optional<PowerAction> action = std::nullopt) const;
    // Fences several nodes at once, at most config.concurrency in parallel; a name given twice
    // (in any case) is fenced once, and reported once.
    std::vector<FenceReport> fence_many(const std::vector<std::string> &nodes,
                                        std::optional<PowerAction> action = std::nullopt) const;

    // Reads a node's power state: the first level whose devices all answer decides (any on = on).
    StatusReport status(const std::string &node) const;
    // Every configured node, at most config.concurrency at once.
    std::vector<StatusReport> status_all() const;

private:
    std::vector<SequenceDevice> level_devices(const NodeConfig &node, unsigned level_no,
                                              std::vector<std::unique_ptr<AgentSession>> &sessions) const;
    void fence_node(FenceReport &r, const NodeConfig &node, int64_t start, int64_t overall_deadline) const;
    bool run_level(FenceReport &r, const NodeConfig &node, unsigned loop, unsigned level_no, int64_t start,
                   int64_t overall_deadline) const;
    bool cancelled() const { return cancel_ && cancel_->load(); }
    void emit(FenceReport &r, StepRecord s) const;

    const Config &config_;
    const AgentRegistry &registry_;
    Logger &logger_;
    const std::atomic<bool> *cancel_ = nullptr;
    std::function<void(const FenceReport &, const StepRecord &)> hook_;
    std::vector<std::pair<std::string, FenceGate>> gates_;
    std::string lock_dir_;
    bool one_node_process_ = false;
    Millis progress_interval_{5000};
};

// Runs fn(i) for i in [0, n) on at most `concurrency` threads.
void parallel_for(size_t n, unsigned concurrency, const std::function<void(size_t)> &fn);

} // namespace stockade
