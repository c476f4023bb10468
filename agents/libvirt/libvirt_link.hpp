// libvirt_link.hpp -- the libvirt agent's side of the hypervisor: one connection (opened,
// kept alive, reopened when dead), domain lookup and state, and libvirt errors as result codes.
// Every function here runs on an operation body's thread (bounded_op.hpp) and logs through its
// OpChannel; nothing here knows which power action is running (that is libvirt_agent.cpp).
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bounded_op.hpp"
#include "libvirt_config.hpp"
#include "stockade/agent.h"
#include "target_map.hpp"

namespace stockade::libvirt_agent {

struct DomainStateInfo {
    int state;
    std::string_view name;
    uint32_t power; // what status() reports
};

// Only shut off (and crashed) count as off: a paused or suspended guest can resume and write.
constexpr std::array<DomainStateInfo, 8> kDomainStates{{
    {VIR_DOMAIN_NOSTATE, "no state", STOCKADE_POWER_ON},
    {VIR_DOMAIN_RUNNING, "running", STOCKADE_POWER_ON},
    {VIR_DOMAIN_BLOCKED, "blocked", STOCKADE_POWER_ON},
    {VIR_DOMAIN_PAUSED, "paused", STOCKADE_POWER_ON},
    {VIR_DOMAIN_SHUTDOWN, "shutting down", STOCKADE_POWER_ON},
    {VIR_DOMAIN_SHUTOFF, "shut off", STOCKADE_POWER_OFF},
    {VIR_DOMAIN_CRASHED, "crashed", STOCKADE_POWER_OFF},
    {VIR_DOMAIN_PMSUSPENDED, "pmsuspended", STOCKADE_POWER_ON},
}};

constexpr const DomainStateInfo *domain_state_info(int state)
{
    for (const auto &s : kDomainStates)
        if (s.state == state)
            return &s;
    return nullptr;
}

enum class Phase { Connect, Operation };

struct LibvirtError {
    int code = VIR_ERR_OK;
    int domain = VIR_FROM_NONE;
    std::string message;
};

// The result code for a libvirt error raised in `phase` (tables in libvirt_link.cpp).
uint32_t rc_for(const LibvirtError &e, Phase phase);

// Once per process: thread-safe libvirt initialisation, the error handler, and libvirt's default
// event loop on a background thread.
void global_init();

// While alive, libvirt errors raised on this thread are logged into `ch` (never printed).
class ErrorRouteScope {
public:
    explicit ErrorRouteScope(OpChannel &ch);
    ~ErrorRouteScope();
    ErrorRouteScope(const ErrorRouteScope &) = delete;
    ErrorRouteScope &operator=(const ErrorRouteScope &) = delete;
};

// libvirt's last error on this thread, one line.
LibvirtError last_error();

class Connection {
public:
    explicit Connection(virConnectPtr c) : conn_(c) {}
    ~Connection() { virConnectClose(conn_); }
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    virConnectPtr get() const { return conn_; }

private:
    virConnectPtr conn_;
};

struct DomainFree {
    void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainFree>;

// Everything an operation body needs, owned by the body's thread.
struct OpEnv {
    std::shared_ptr<const Config> cfg;
    std::shared_ptr<Connection> conn; // may be null or dead: connect() fixes that
    std::string domain;               // resolved target ("" for list/monitor)
    std::string target;               // as the host named it
    std::string source;               // how the domain was found, for logs
};

struct OpOut {
    Status status;
    uint32_t verified = 0;
    uint32_t power_state = STOCKADE_POWER_UNKNOWN;
    std::vector<std::pair<std::string, std::string>> listed;
    std::shared_ptr<Connection> conn; // the connection the body used (adopted by the handle)
};

Status fail(const LibvirtError &e, Phase phase, const std::string &what);

// Opens (or reuses while alive) env.conn within connect_timeout and the operation deadline.
Status connect(OpChannel &ch, OpEnv &env);

// Looks the domain up by UUID when it looks like one, else (or then) by name.
Status lookup(OpChannel &ch, OpEnv &env, Domain &dom);

struct DomainState {
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    bool gone = false; // a transient domain disappears once destroyed
    bool active = true;

    std::string name() const
    {
        if (gone)
            return "gone";
        const DomainStateInfo *i = domain_state_info(state);
        return i ? std::string(i->name) : "state " + std::to_string(state);
    }
    uint32_t power() const
    {
        if (gone)
            return STOCKADE_POWER_OFF;
        const DomainStateInfo *i = domain_state_info(state);
        return i ? i->power : STOCKADE_POWER_UNKNOWN;
    }
    // Confirmed off: shut off, gone, or crashed with no process left (a preserved crashed guest
    // still has its emulator and is destroyed first).
    bool confirmed_off() const
    {
        return gone || state == VIR_DOMAIN_SHUTOFF || (state == VIR_DOMAIN_CRASHED && !active);
    }
    bool confirmed_on() const { return !gone && power() == STOCKADE_POWER_ON && state != VIR_DOMAIN_SHUTDOWN; }
};

Status read_state(OpChannel &ch, OpEnv &env, virDomainPtr dom, DomainState &st);

// Polls the state until `want` holds, within power_timeout and the operation deadline.
template <class Want>
Status wait_for_state(OpChannel &ch, OpEnv &env, virDomainPtr dom, const char *after, const char *goal, Want want,
                      DomainState &st)
{
    const int64_t start = stockade_monotonic_ms();
    int64_t limit = start + env.cfg->power_timeout_ms;
    if (ch.deadline_ms() > 0)
        limit = std::min(limit, ch.deadline_ms());
    int64_t pause = 20;
    for (;;) {
        if (Status s = read_state(ch, env, dom, st); !s.ok())
            return s;
        if (want(st))
            return {};
        int64_t now = stockade_monotonic_ms();
        if (now >= limit)
            return {STOCKADE_RC_TIMEOUT, "domain '" + env.domain + "' is still " + st.name() + " " +
                                             std::to_string(now - start) + " ms after " + after + " (wanted " + goal +
                                             ", power_timeout " + std::to_string(env.cfg->power_timeout_ms / 1000) +
                                             " s)"};
        ch.begin_step("waiting for domain '" + env.domain + "' to be " + goal);
        if (!ch.sleep_ms(std::min(pause, limit - now)))
            return {STOCKADE_RC_CANCELLED, "stopped while waiting for domain '" + env.domain + "'"};
        pause = std::min<int64_t>(pause * 2, 500);
    }
}

} // namespace stockade::libvirt_agent
