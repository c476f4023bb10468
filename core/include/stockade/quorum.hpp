// quorum.hpp -- the gates in front of every fence: quorum first, then a witness's second opinion.
//
// After LifeKeeper's quorum/witness package: a node may fence only while it holds quorum
// (majority of cluster members reachable through their witness service, or a majority of
// tcp_remote hosts answering a TCP connect); a node that finds itself without quorum runs its
// loss action (osu: take resources out of service; fastkill/fastboot: power off / reboot at once,
// only when allow_self_fence is set).  With witness mode remote_verify, every other reachable
// member is asked what it sees of the victim; any "alive" cancels the fence.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "stockade/config.hpp"
#include "stockade/log.hpp"
#include "stockade/result.hpp"
#include "stockade/runner.hpp"
#include "stockade/witness.hpp"

namespace stockade {

struct QuorumVerdict {
    bool quorate = false;
    unsigned votes = 0;  // members (or hosts) reached, this node included for majority
    unsigned total = 0;  // members (or hosts) configured
    std::vector<std::string> details; // one line per member/host
    std::string summary() const;      // "2 of 3 cluster members reachable (majority needs 2)"
};

// Checks quorum now, as config.quorum says.  `key` is needed for majority mode only.
QuorumVerdict check_quorum(const Config &config, const std::string &key, Logger &logger);

// Runs the loss action once: loss_hook first (env STOCKADE_LOSS_ACTION, STOCKADE_NODE,
// STOCKADE_REASON), then osu_command, or for fastkill/fastboot reboot(2) when allow_self_fence
// is set (otherwise only logged).  Returns what was done, or why it failed.
Result<std::string> run_loss_action(const Config &config, const std::string &reason, Logger &logger);

struct WitnessVerdict {
    bool proceed = false;                 // no witness saw the victim alive
    std::vector<std::string> consulted;   // "node3: dead (icmp ...: no echo reply; ...)"
    std::vector<std::string> unreachable; // members that did not answer
    std::string alive_by;                 // first witness that saw the victim alive
};

// Asks every other member (not this node, not the victim) what it sees of `victim`.
WitnessVerdict consult_witnesses(const Config &config, const std::string &key, const std::string &victim,
                                 Logger &logger);

// The gates of config.quorum and config.witness, ready for EscalationRunner::add_gate.  Quorum is
// checked once per ClusterGates object (a fence of several nodes is one decision) and the loss
// action runs at most once.  Nothing is added when both modes are none.
class ClusterGates {
public:
    ClusterGates(const Config &config, Logger &logger) : config_(config), logger_(logger) {}
    void install(EscalationRunner &runner);

    Status quorum_gate(const std::string &node, PowerAction action);
    Status witness_gate(const std::string &node, PowerAction action);

private:
    Result<std::string> key();
    const Config &config_;
    Logger &logger_;
    std::mutex mu_;
    std::optional<Status> quorum_result_;
    std::optional<Result<std::string>> key_;
};

} // namespace stockade
