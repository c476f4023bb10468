// redfish_service_fixture.hpp -- a real Redfish service for tests and benchmarks: our
// redfish_service.py over HTTPS on 127.0.0.1, with a CA and server certificate made at start-up by
// the openssl CLI.  Each system's node is a process (ForceOff kills it, On starts a new one), so a
// test reads the outcome back from the process table.  The service runs under
// `setpriv --pdeathsig KILL` (it dies with the thread that started it) and its nodes exit within a
// second of its death, so a crashed test leaves nothing running.  Stopped by PID, never by name.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace stockade {
class Subprocess;
}

namespace stockade::test {

struct RedfishUser {
    std::string name;
    std::string password;
    std::string role = "Administrator"; // or "ReadOnly" (resets answered 403)
};

struct RedfishServiceOptions {
    std::string address = "127.0.0.1";
    std::vector<std::string> systems{"1"};
    std::vector<RedfishUser> users{{"admin", "secret", "Administrator"}};
    std::vector<std::string> allowable;    // ResetType@Redfish.AllowableValues; empty = every DMTF type
    bool action_info = false;              // advertise them through @Redfish.ActionInfo instead
    std::vector<std::string> initially_on; // systems whose node runs at start; empty = all
    bool wrong_name_certificate = false;   // a certificate (from the same CA) for another host name
    std::string systems_collection;        // the Systems collection's URI, named in the service root ("" = /redfish/v1/Systems)
    std::string cert_dir;                  // reuse the CA/keys made here by an earlier service ("" = own)
    // Run the service inside this network namespace (e.g. a FencerFixture's netns()): its address is
    // then that namespace's, so call reset/set_power/read_power_state on a thread in it (in_netns).
    std::string netns;
};

class RedfishService {
public:
    // Makes the certificates (unless cert_dir has them), writes config.json under `dir` and starts
    // the service; returns once it accepts connections.  Throws std::runtime_error on failure.
    static std::unique_ptr<RedfishService> start(const std::filesystem::path &dir, RedfishServiceOptions options = {});
    ~RedfishService(); // stop()
    RedfishService(const RedfishService &) = delete;
    RedfishService &operator=(const RedfishService &) = delete;

    int port() const { return port_; }
    const std::string &address() const { return opt_.address; }
    std::string endpoint() const { return opt_.address + ":" + std::to_string(port_); }
    const std::filesystem::path &dir() const { return dir_; }
    pid_t pid() const;
    std::string ca_file() const;                 // PEM of the CA that signed the certificate
    std::string fingerprint() const;             // SHA-256 of the server certificate, AB:CD:...

    pid_t node_pid(const std::string &system = "1") const; // 0 when the system is off
    bool node_alive(const std::string &system = "1") const { return node_pid(system) != 0; }
    // ResetTypes the service received for a system, in order ("ForceOff", "On", "ForceOff (ignored)").
    std::vector<std::string> resets(const std::string &system = "1") const;
    // requests.log: "<conn> CONNECT", "<conn> GET /path auth=... -> 200", ...
    std::vector<std::string> requests() const;
    size_t requests_matching(const std::string &needle) const; // lines of requests() containing needle
    size_t connections() const;                  // TCP connections accepted (TLS done) so far
    size_t open_sessions() const;                // Redfish sessions not deleted
    void clear_log() const;

    // Faults and delays, read by the service on every request (see redfish_service.py control()):
    // e.g. R"({"fault": "503", "fail_count": 2})".  "{}" clears them.
    void control(const std::string &json) const;

    // Powers a system through the service itself (libcurl, verified TLS, Basic auth of the first
    // user): for resetting state between runs.  Returns the HTTP status.
    long reset(const std::string &system, const std::string &reset_type) const;
    void set_power(const std::string &system, bool on) const;
    std::string read_power_state(const std::string &system) const; // GET PowerState, "" on error

    void stop();

private:
    RedfishService() = default;
    RedfishServiceOptions opt_;
    std::filesystem::path dir_, cert_dir_;
    int port_ = 0;
    std::unique_ptr<Subprocess> proc_;
};

// Why the service cannot run here (python3 or openssl missing), or nothing.
std::optional<std::string> redfish_service_unavailable_reason();

} // namespace stockade::test
