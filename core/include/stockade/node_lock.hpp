// node_lock.hpp -- one escalation per node at a time, across processes.
//
// Red Hat's fenced and Pacemaker's fencer run one fence per target at a time and let a second
// request share the first one's outcome.  Every front-end that fences through the runner
// (`stockade fence`, `fence_stockade config=`) takes this lock first: an flock(2) on
// <dir>/<scope>-<node>.lock (dir: $STOCKADE_RUN_DIR, else /run/stockade), which the kernel
// releases when the holder dies, even by SIGKILL.  The holder writes its token into the lock file
// and, when done, its outcome into <...>.result before releasing.  A request that finds the node
// locked waits (bounded by its own deadline) for the lock; if the holder left an outcome for the
// same action it reports that one ("shared"), otherwise (the holder died, or fenced with another
// action) it runs its own escalation.
//
// The scope keeps unrelated configurations apart: the config's cluster_name when set, else the
// config file's absolute path.  Node names are compared case-insensitively, as lookups are.
//
// A full run folder (issue 15, "/run full") never stops a fence: the lock is an flock on a file,
// so it works on an empty lock file when nothing can be written; what cannot be written (the
// token, the outcome) is reported as a warning, and a waiter then runs its own escalation instead
// of sharing one it cannot read.  When the lock file itself cannot be created, lock_node returns
// the error and the caller fences without the lock (the runner warns).  Nothing here throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>

#include "stockade/result.hpp"

namespace stockade {

// What the escalation that held the lock reported.
struct SharedOutcome {
    pid_t pid = 0;          // the process that ran it
    std::string action;     // off / on / reboot / diag
    bool success = false;
    std::string reason;
};

class NodeLease {
public:
    NodeLease() = default;
    NodeLease(int fd, std::string result_path, std::string token);
    NodeLease(NodeLease &&o) noexcept;
    NodeLease &operator=(NodeLease &&o) noexcept;
    NodeLease(const NodeLease &) = delete;
    NodeLease &operator=(const NodeLease &) = delete;
    ~NodeLease(); // releases the lock (without an outcome when finish() was not called)

    bool held() const { return fd_ >= 0; }
    // Records the outcome for anyone waiting, then releases the lock (always).  The error says
    // why the outcome could not be recorded (a full filesystem): waiters then fence themselves.
    Status finish(const std::string &action, bool success, const std::string &reason);

private:
    int fd_ = -1;
    std::string result_path_;
    std::string token_;
};

struct NodeLockResult {
    NodeLease lease;                     // held: run the escalation, then lease.finish()
    std::optional<SharedOutcome> shared; // set: another process fenced the node; report this
    pid_t waited_for = 0;                // the holder we waited for (0 = the lock was free)
    bool holder_vanished = false;        // we waited, but the holder left no outcome (it died)
    std::string warning;                 // the lock is held, but our token could not be written
};

// The lock folder: $STOCKADE_RUN_DIR, else /run/stockade.
std::string default_lock_dir();

// Takes the lock for `node` (or the outcome of whoever holds it).  deadline_ms: absolute
// monotonic_ms() after which waiting gives up with STOCKADE_RC_TIMEOUT (0 = no bound); cancel
// stops waiting with STOCKADE_RC_CANCELLED.  Errors creating the folder or file are returned as
// such (the caller decides whether to fence unlocked).
// on_wait is called once, with the holder's pid, when waiting begins.
Result<NodeLockResult> lock_node(const std::string &dir, const std::string &scope, const std::string &node,
                                 const std::string &action, int64_t deadline_ms, const std::atomic<bool> *cancel,
                                 const std::function<void(pid_t holder)> &on_wait = {});

} // namespace stockade
