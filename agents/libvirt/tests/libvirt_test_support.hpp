// libvirt_test_support.hpp -- shared by the libvirt agent tests: opening the agent in a session,
// reading domain states back through our own libvirt connection, and a libvirtd started by the
// test (test driver only, private socket) that is stopped by PID.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <string>
#include <vector>

#include "stockade/log.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "test_support.hpp"

namespace stockade::test {


const AgentInfo &libvirt_agent(const AgentRegistry &reg);

// Opens the libvirt agent with `params` in a session (in-process or isolated); REQUIREs success.
std::unique_ptr<AgentSession> open_libvirt(const AgentRegistry &reg, const RawParams &params, bool isolate,
                                           Logger *logger = nullptr);

// A libvirt connection of the test's own (the independent read-back), closed at scope exit.
class Virt {
public:
    explicit Virt(const std::string &uri);
    ~Virt();
    Virt(const Virt &) = delete;
    Virt &operator=(const Virt &) = delete;
    virConnectPtr get() const { return conn_; }
    // VIR_DOMAIN_* state of a domain, -1 when it cannot be read.
    int state(const std::string &domain) const;
    int id(const std::string &domain) const;
    std::string error() const { return error_; }

private:
    virConnectPtr conn_ = nullptr;
    std::string error_;
};

// libvirtd hosting only the test driver: empty LIBVIRT_DRIVER_DIR, private socket folder, pid
// file, own config; a holder connection (with keepalive off) keeps test:///default alive.
class Libvirtd {
public:
    Libvirtd();  // starts it; check ok() / why()
    ~Libvirtd(); // stops it by PID (SIGCONT first, in case a test left it stopped)
    bool ok() const { return pid_ > 0 && holder_ != nullptr; }
    const std::string &why() const { return why_; }
    pid_t pid() const { return pid_; }
    std::string uri() const; // test+unix:///default?socket=...
    std::string socket() const { return dir_.file("sock/libvirt-sock"); }
    // `virsh -c URI ARGS...` run as a separate process: its trimmed output, or "<virsh failed: ...>".
    std::string virsh(const std::vector<std::string> &args) const;
    std::string virsh_domstate(const std::string &domain) const { return virsh({"domstate", domain}); }
    // Defines and starts a persistent test domain through the holder connection.
    bool add_domain(const std::string &name, const std::string &uuid);
    void stop();    // SIGKILL and reap
    void restart(); // a new daemon on the same socket (the old state is gone)

private:
    void start();

    TempDir dir_;
    pid_t pid_ = -1;
    virConnectPtr holder_ = nullptr;
    std::string why_;
};

} // namespace stockade::test
