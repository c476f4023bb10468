// fencer_fixture.hpp -- Pacemaker's real fencer for tests, one private copy per test: the one way
// a test runs pacemaker-fenced (fence_stockade's, the redfish agent's, the cluster-glue shim's).
//
// pacemaker-fenced (with a single-node corosync on 127.0.0.1, so fencing topology works; the
// stand-alone fencer otherwise) runs in a network namespace of its own, named after our PID:
// libqb's IPC names are abstract sockets, which a network namespace keeps apart, so tests that
// each start a fencer -- ours, another helper's, the cluster tests' -- never meet, and none has
// to wait for another.  corosync's /var/lib/corosync (its ringid file) and /run (its pid lock)
// are private to it.
// stonith_admin runs inside the same namespace.  The fence_* programs the fencer may run are
// wrapper scripts with unique names in /usr/sbin (the only place it looks), each pointing at one
// of our built fence_stockade names; they are removed, the daemons stopped by PID and the
// namespace deleted, whatever happens.
// Peers the fencer's agents talk to (an ipmi_sim BMC, the Redfish service) listen on 127.0.0.1 of
// this namespace: started with `ip netns exec <netns()>`, read back from a thread in it (in_netns).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "stockade/process.hpp"
#include "test_support.hpp"

namespace stockade::test {

class FencerFixture {
public:
    FencerFixture() = default;
    ~FencerFixture();
    FencerFixture(const FencerFixture &) = delete;
    FencerFixture &operator=(const FencerFixture &) = delete;

    TempDir dir;
    std::string state_dir = dir.file("st");    // the sim agent's state (its node processes)
    std::string log = dir.file("fenced.log");  // the fencer's own log
    std::string wrapper_name;                   // the program given to start()
    std::string corosync_skip;                  // why topology cannot be tested, "" when corosync runs
    std::string keep_log_as = "frontend-fenced.log"; // the fencer's log is copied to $STOCKADE_BUILD_DIR/this

    // Starts the fencer with one wrapper for `program` (a built fence_stockade name; "" for none:
    // the fencer then runs what /usr/sbin has, e.g. fence_legacy).  Returns "" when ready, else why
    // the test must be skipped.
    std::string start(const std::string &program = "fence_stockade_sim");
    // One more fence_* wrapper for `program` (after start()); returns the name the fencer knows.
    std::string add_wrapper(const std::string &program);

    // stonith_admin inside the fencer's namespace; every call is timed for report().
    CommandResult admin(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // The timings of every admin() call, on stderr and in $STOCKADE_BUILD_DIR/<file_name>.
    void report(const std::string &file_name = "frontend-pacemaker-timings.txt");

    // The fencer's network namespace (after start()): peers it must reach (an ipmi_sim BMC) run
    // inside it too.
    const std::string &netns() const { return netns_; }

    // The simulated node's process for `node` in state_dir, or 0 when it is off.
    pid_t sim_node(const std::string &node) const;
    static std::string tail(const std::string &s);

private:
    struct Timing {
        std::string command;
        int rc;
        double seconds;
    };
    std::string make_namespace();
    std::string start_corosync();
    static void stop(std::unique_ptr<Subprocess> &p);

    std::string netns_;
    std::vector<std::string> wrappers_; // paths in /usr/sbin
    std::unique_ptr<Subprocess> corosync_;
    std::unique_ptr<Subprocess> fencer_;
    std::vector<Timing> timings_;
};

} // namespace stockade::test
