// ipmi_sim_fixture.hpp -- real IPMI BMCs for tests and benchmarks: OpenIPMI's ipmi_sim.
//
// Each SimBmc is one ipmi_sim process on a UDP port chosen at run time (127.0.0.0/8 only, or an
// address inside a network namespace the caller created), with a generated lan.conf/emu and a
// chassis_control script whose "node" is a real process: power off kills it, power on starts a
// new one, so a test can read the outcome back without trusting the BMC's own answer.  Processes
// are stopped by PID, never by name.  This code depends on nothing but the C++ library and the
// ipmi_sim/ipmitool binaries, so front-end tests and the benchmark can reuse it as is.
//
// Lifetime: ipmi_sim is started with setpriv --pdeathsig KILL, so it dies with the *thread* that
// started it (start BMCs from a thread that outlives them, e.g. the test's main thread), and a
// node process exits by itself within a second of its BMC's death.  A test killed mid-run
// (SIGPIPE, timeout) therefore leaves nothing running.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace stockade::test {

struct SimUser {
    std::string name;
    std::string password;
    std::string privilege = "admin"; // ipmi_sim's names: callback|user|operator|admin
};

struct SimBmcOptions {
    std::string address = "127.0.0.1";
    int port = 0;                            // 0 = a free UDP port picked at start
    std::vector<SimUser> users{{"admin", "secret", "admin"}};
    bool node_on = true;                     // start with the node process running
    bool console = true;                     // ipmi_sim's TCP console, for fault injection
    std::string netns;                       // run ipmi_sim inside this network namespace
    std::string client_netns;                // run the ipmitool read-back inside this one
    std::string name;                        // BMC name in lan.conf; "" = "bmc<port>"
    int status_delay_ms = 0;                 // a slow BMC: every power-state read takes this long
};

class SimBmc {
public:
    // Writes the configs under `dir` (created; one sub-folder per BMC) and starts ipmi_sim; returns
    // once the BMC's UDP port is bound.  Throws std::runtime_error with the reason on failure.
    static std::unique_ptr<SimBmc> start(const std::filesystem::path &dir, SimBmcOptions options = {});
    ~SimBmc(); // stop()
    SimBmc(const SimBmc &) = delete;
    SimBmc &operator=(const SimBmc &) = delete;

    const std::string &address() const { return opt_.address; }
    int port() const { return opt_.port; }
    std::string endpoint() const { return opt_.address + ":" + std::to_string(opt_.port); }
    const SimBmcOptions &options() const { return opt_; }
    const std::filesystem::path &dir() const { return dir_; }
    pid_t pid() const { return pid_; }

    // The node process (0 when the node is "off") and whether it is alive (not a zombie).
    pid_t node_pid() const;
    bool node_alive() const;
    // Every chassis_control call ipmi_sim made ("get power", "set power 0", ...), in order.
    std::vector<std::string> chassis_log() const;

    // Sets the node's power directly (the button on the box, not through the BMC): for resetting
    // state between benchmark runs.
    void set_node_power(bool on);

    // Fault injection.
    void freeze(); // SIGSTOP ipmi_sim
    void thaw();   // SIGCONT
    // One command on ipmi_sim's console (e.g. "mc_disable 0x20"); returns what it printed.
    std::string console(const std::string &command);

    // Independent read-back with ipmitool -I lanplus -C 3 (password passed in a 0600 file, never
    // on argv): "on", "off", or "error: <what ipmitool said>".
    std::string ipmitool_power_status(int timeout_s = 5) const;

    // Stops ipmi_sim (SIGTERM, then SIGKILL) and the node process; idempotent.
    void stop();

private:
    SimBmc() = default;
    void launch();
    bool wait_bound(int timeout_ms) const;

    SimBmcOptions opt_;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    int console_port_ = 0;
};

// N BMCs at once (each on its own port), stopped together.
class SimBmcFarm {
public:
    SimBmcFarm(const std::filesystem::path &dir, size_t count, const SimBmcOptions &base = {});
    size_t size() const { return bmcs_.size(); }
    SimBmc &operator[](size_t i) { return *bmcs_.at(i); }
    std::vector<std::unique_ptr<SimBmc>> &all() { return bmcs_; }
    void stop();

private:
    std::vector<std::unique_ptr<SimBmc>> bmcs_;
};

// Whether ipmi_sim and ipmitool are installed (tests SKIP with this reason when not).
std::optional<std::string> sim_unavailable_reason();

// A UDP port on `address` nobody is bound to right now (bound and released).
int pick_free_udp_port(const std::string &address = "127.0.0.1");

} // namespace stockade::test
