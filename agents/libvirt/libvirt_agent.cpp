// libvirt_agent.cpp -- the "libvirt" fencing agent: fences virtual machines by destroying the
// domain at its hypervisor through the libvirt C API (no virsh, no output scraping).
//
// Why this shape:
//   - One libvirt connection per handle serves a whole sequence (off, verify, on): the in-process
//     test driver keeps its state only while a connection is open, and reconnecting per step
//     would cost a remote handshake each time.  A dead connection is noticed
//     (virConnectIsAlive) and reopened at the next operation.
//   - Every operation runs through run_bounded (bounded_op.hpp), so a hung hypervisor cannot hold
//     the caller past ctx->deadline_ms or connect_timeout; keepalive (with libvirt's default
//     event loop on one background thread) then releases the abandoned connection.
//   - Success is only ever what the hypervisor confirmed: off polls virDomainGetState until the
//     domain is shut off (or gone), on until it runs.
//   - libvirt's own error printing (stderr) is replaced by a handler that queues each error into
//     the running operation's log; the last error becomes the one-line reason, mapped to a
//     STOCKADE_RC_* code by the tables in libvirt_link.cpp.
//
// Files: libvirt_config (parameters), libvirt_link (connection, domain state, errors),
// bounded_op.hpp (deadline-bounded bodies), target_map (hostlist/plug/URI rules), and this file:
// the power actions, the handle and the ABI entry points.
#include <libvirt/libvirt.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bounded_op.hpp"
#include "libvirt_config.hpp"
#include "libvirt_link.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "target_map.hpp"

namespace stockade::libvirt_agent {
namespace {

// ---- Parameters -------------------------------------------------------------------------------

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "hypervisor_uri", .type = STOCKADE_PARAM_STRING,
     .flags = STOCKADE_PARAM_REQUIRED, .aliases = "uri",
     .description = "libvirt connection URI, e.g. qemu:///system, qemu+ssh://root@kvm1/system, test:///default"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "hostlist", .type = STOCKADE_PARAM_STRING,
     .description = "Nodes this device fences, as node[:domain] separated by spaces, commas or semicolons (cluster-glue syntax; "
                    "node names case-insensitive, domain defaults to the node name)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "plug", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_HOST_SUPPLIED,
     .aliases = "port",
     .description = "Domain name or UUID to act on (fence-agents plug/port); without it and without hostlist the "
                    "target is the domain"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "reset_method", .type = STOCKADE_PARAM_SELECT,
     .default_value = "power_cycle", .choices = "power_cycle|reboot", .aliases = "reboot_method",
     .description = "reboot as destroy + confirm shut off + start (power_cycle), or the virtual reset button "
                    "virDomainReset (reboot: no off state can be read back; the hypervisor's acknowledgement counts)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "missing_as_off", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
     .description = "A domain that does not exist counts as off (status off, off succeeds)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "connect_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "10",
     .aliases = "login_timeout",
     .description = "Seconds to open the hypervisor connection (also bounded by the operation deadline)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "power_timeout", .type = STOCKADE_PARAM_SECONDS, .default_value = "20",
     .description = "Seconds to wait for a domain to reach shut off / running after destroy / start"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "power_wait", .type = STOCKADE_PARAM_SECONDS, .default_value = "0",
     .description = "Seconds to wait between the off and the on of a power_cycle reboot"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "keepalive_interval", .type = STOCKADE_PARAM_SECONDS, .default_value = "2",
     .description = "Seconds between libvirt keepalive probes on remote connections (0 = off); a dead daemon is "
                    "dropped after interval * (count + 1) seconds"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "keepalive_count", .type = STOCKADE_PARAM_INTEGER, .default_value = "3",
     .description = "Unanswered keepalive probes before a remote connection is closed"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "login", .type = STOCKADE_PARAM_STRING, .aliases = "username",
     .description = "User name for libvirt authentication (SASL, libssh) when the URI asks for one"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "password", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_SECRET,
     .aliases = "passwd", .description = "Password or passphrase for libvirt authentication; never logged"},
};

// off: destroy unless already off, then confirm shut off.  Sets VERIFIED_OFF.
Status do_off(OpChannel &ch, OpEnv &env, OpOut &out)
{
    Domain dom;
    if (Status s = lookup(ch, env, dom); !s.ok()) {
        if (s.rc == STOCKADE_RC_UNKNOWN_TARGET && env.cfg->missing_as_off) {
            ch.log(STOCKADE_LOG_NOTICE, s.message + "; missing_as_off: counted as off");
            out.verified |= STOCKADE_VERIFIED_OFF;
            return {};
        }
        return s;
    }
    DomainState st;
    if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
        return s;
    if (st.confirmed_off()) {
        ch.log(STOCKADE_LOG_INFO, "domain '" + env.domain + "' is already " + st.name());
        out.verified |= STOCKADE_VERIFIED_OFF;
        return {};
    }
    const std::string before = st.name();
    const int64_t t0 = stockade_monotonic_ms();
    ch.begin_step("virDomainDestroy(" + env.domain + ")");
    if (virDomainDestroy(dom.get()) < 0) {
        LibvirtError e = last_error();
        // "domain is not running" (it stopped meanwhile) or gone: the state check below decides.
        if (e.code != VIR_ERR_OPERATION_INVALID && e.code != VIR_ERR_NO_DOMAIN)
            return fail(e, Phase::Operation, "virDomainDestroy(" + env.domain + ") on " + env.cfg->shown_uri);
        ch.log(STOCKADE_LOG_INFO, "virDomainDestroy(" + env.domain + "): " + e.message + "; checking the state");
    }
    if (Status s = wait_for_state(ch, env, dom.get(), "virDomainDestroy", "shut off",
                                  [](const DomainState &x) { return x.confirmed_off(); }, st);
        !s.ok())
        return s;
    ch.log(STOCKADE_LOG_INFO, "domain '" + env.domain + "' " + before + " -> " + st.name() + " (destroyed, confirmed in " +
                                  std::to_string(stockade_monotonic_ms() - t0) + " ms)");
    out.verified |= STOCKADE_VERIFIED_OFF;
    return {};
}

// on: start unless already on, then confirm running.  Sets VERIFIED_ON.
Status do_on(OpChannel &ch, OpEnv &env, OpOut &out)
{
    Domain dom;
    if (Status s = lookup(ch, env, dom); !s.ok())
        return s; // missing_as_off does not help: a missing domain cannot be started
    DomainState st;
    if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
        return s;
    if (st.confirmed_on()) {
        ch.log(STOCKADE_LOG_INFO, "domain '" + env.domain + "' is already " + st.name());
        out.verified |= STOCKADE_VERIFIED_ON;
        return {};
    }
    const std::string before = st.name();
    const int64_t t0 = stockade_monotonic_ms();
    ch.begin_step("virDomainCreate(" + env.domain + ")");
    if (virDomainCreate(dom.get()) < 0) {
        LibvirtError e = last_error();
        if (e.code != VIR_ERR_OPERATION_INVALID && e.code != VIR_ERR_INTERNAL_ERROR)
            return fail(e, Phase::Operation, "virDomainCreate(" + env.domain + ") on " + env.cfg->shown_uri);
        // "already running/active": the state decides.
        if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
            return s;
        if (!st.confirmed_on())
            return fail(e, Phase::Operation, "virDomainCreate(" + env.domain + ") on " + env.cfg->shown_uri);
    }
    if (Status s = wait_for_state(ch, env, dom.get(), "virDomainCreate", "running",
                                  [](const DomainState &x) { return x.confirmed_on(); }, st);
        !s.ok())
        return s;
    ch.log(STOCKADE_LOG_INFO, "domain '" + env.domain + "' " + before + " -> " + st.name() + " (started, confirmed in " +
                                  std::to_string(stockade_monotonic_ms() - t0) + " ms)");
    out.verified |= STOCKADE_VERIFIED_ON;
    return {};
}

// The on half of a reboot: a failure is a warning, the reboot stays successful (ABI rule).
void reboot_power_on(OpChannel &ch, OpEnv &env, OpOut &out)
{
    if (Status s = do_on(ch, env, out); !s.ok()) {
        ch.log(STOCKADE_LOG_WARNING, "reboot: domain '" + env.domain + "' is confirmed off but did not come back on: " +
                                         s.message);
        out.status.message = "off confirmed; power-on failed: " + s.message;
    }
}

Status do_reboot(OpChannel &ch, OpEnv &env, OpOut &out)
{
    if (env.cfg->reset_method == ResetMethod::PowerCycle) {
        if (Status s = do_off(ch, env, out); !s.ok())
            return s;
        if (env.cfg->power_wait_ms > 0) {
            ch.begin_step("power_wait before starting '" + env.domain + "'");
            if (!ch.sleep_ms(env.cfg->power_wait_ms))
                return {STOCKADE_RC_CANCELLED, "stopped during power_wait"};
        }
        reboot_power_on(ch, env, out);
        return {};
    }
    // reset_method=reboot: the virtual reset button.
    Domain dom;
    if (Status s = lookup(ch, env, dom); !s.ok())
        return s;
    DomainState st;
    if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
        return s;
    if (!st.confirmed_off()) {
        ch.begin_step("virDomainReset(" + env.domain + ")");
        if (virDomainReset(dom.get(), 0) == 0) {
            if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
                return s;
            ch.log(STOCKADE_LOG_NOTICE, "domain '" + env.domain + "' reset by virDomainReset (now " + st.name() +
                                            "); the hypervisor's acknowledgement is the off confirmation");
            out.verified |= STOCKADE_VERIFIED_OFF;
            if (st.confirmed_on())
                out.verified |= STOCKADE_VERIFIED_ON;
            return {};
        }
        LibvirtError e = last_error();
        if (e.code != VIR_ERR_OPERATION_INVALID)
            return fail(e, Phase::Operation, "virDomainReset(" + env.domain + ") on " + env.cfg->shown_uri);
        if (Status s = read_state(ch, env, dom.get(), st); !s.ok())
            return s;
        if (!st.confirmed_off())
            return fail(e, Phase::Operation, "virDomainReset(" + env.domain + ") on " + env.cfg->shown_uri);
    }
    ch.log(STOCKADE_LOG_INFO, "domain '" + env.domain + "' is " + st.name() + "; reboot starts it");
    out.verified |= STOCKADE_VERIFIED_OFF;
    reboot_power_on(ch, env, out);
    return {};
}

Status do_diag(OpChannel &ch, OpEnv &env, OpOut &)
{
    Domain dom;
    if (Status s = lookup(ch, env, dom); !s.ok())
        return s;
    ch.begin_step("virDomainInjectNMI(" + env.domain + ")");
    if (virDomainInjectNMI(dom.get(), 0) < 0)
        return fail(last_error(), Phase::Operation, "virDomainInjectNMI(" + env.domain + ") on " + env.cfg->shown_uri);
    ch.log(STOCKADE_LOG_INFO, "NMI injected into domain '" + env.domain + "'");
    return {};
}

Status do_status(OpChannel &ch, OpEnv &env, OpOut &out)
{
    Domain dom;
    Status s = lookup(ch, env, dom);
    DomainState st;
    if (s.ok())
        s = read_state(ch, env, dom.get(), st);
    if (s.ok() && st.gone)
        s = {STOCKADE_RC_UNKNOWN_TARGET, "domain '" + env.domain + "' disappeared from " + env.cfg->shown_uri};
    if (!s.ok()) {
        if (s.rc == STOCKADE_RC_UNKNOWN_TARGET && env.cfg->missing_as_off) {
            ch.log(STOCKADE_LOG_INFO, s.message + "; missing_as_off: reported off");
            out.power_state = STOCKADE_POWER_OFF;
            return {};
        }
        return s;
    }
    out.power_state = st.power();
    ch.log(STOCKADE_LOG_DEBUG, "domain '" + env.domain + "' is " + st.name() + " (reason " + std::to_string(st.reason) + ")");
    return {};
}

Status do_list(OpChannel &ch, OpEnv &env, OpOut &out)
{
    ch.begin_step("virConnectListAllDomains");
    virDomainPtr *doms = nullptr;
    int n = virConnectListAllDomains(env.conn->get(), &doms, 0);
    if (n < 0)
        return fail(last_error(), Phase::Operation, "listing domains on " + env.cfg->shown_uri);
    std::vector<Domain> owned;
    for (int i = 0; i < n; ++i)
        owned.emplace_back(doms[i]);
    std::free(doms);
    for (const Domain &d : owned) {
        const char *name = virDomainGetName(d.get());
        char uuid[VIR_UUID_STRING_BUFLEN] = {0};
        if (!name)
            continue;
        if (virDomainGetUUIDString(d.get(), uuid) < 0)
            uuid[0] = 0;
        out.listed.emplace_back(name, uuid);
    }
    for (const HostEntry &h : env.cfg->hosts.entries) {
        bool shadowed = std::any_of(out.listed.begin(), out.listed.end(),
                                    [&](const auto &l) { return iequals(l.first, h.node); });
        if (!shadowed)
            out.listed.emplace_back(h.node, h.domain);
    }
    return {};
}

Status do_monitor(OpChannel &ch, OpEnv &env, OpOut &)
{
    ch.begin_step("virConnectGetLibVersion");
    unsigned long version = 0;
    if (virConnectGetLibVersion(env.conn->get(), &version) < 0)
        return fail(last_error(), Phase::Operation, "asking " + env.cfg->shown_uri + " for its version");
    ch.log(STOCKADE_LOG_DEBUG, env.cfg->shown_uri + " answers: libvirt " + std::to_string(version / 1000000) + "." +
                                   std::to_string(version / 1000 % 1000) + "." + std::to_string(version % 1000));
    for (const HostEntry &h : env.cfg->hosts.entries) {
        OpEnv one = env;
        one.domain = h.domain;
        one.source = "hostlist entry for " + h.node;
        Domain dom;
        if (Status s = lookup(ch, one, dom); !s.ok())
            ch.log(STOCKADE_LOG_WARNING, s.message);
    }
    return {};
}

using OpFn = Status (*)(OpChannel &, OpEnv &, OpOut &);

// The power actions this agent performs, and the body that does each.
struct PowerActionInfo {
    uint32_t action;
    std::string_view name;
    OpFn run;
};
constexpr std::array<PowerActionInfo, 4> kPowerActions{{
    {STOCKADE_ACTION_OFF, "off", do_off},
    {STOCKADE_ACTION_ON, "on", do_on},
    {STOCKADE_ACTION_REBOOT, "reboot", do_reboot},
    {STOCKADE_ACTION_DIAG, "diag", do_diag},
}};

constexpr const PowerActionInfo *power_action_info(uint32_t action)
{
    for (const auto &a : kPowerActions)
        if (a.action == action)
            return &a;
    return nullptr;
}

// ---- The handle and the ABI thunks ------------------------------------------------------------

struct Handle {
    std::shared_ptr<const Config> cfg;
    std::shared_ptr<Connection> conn;
};

using stockade::agent::set_err;
using stockade::agent::log;

// Runs `fn` for `target` (resolved first; "" for list/monitor) on the handle's connection within
// the ctx deadline, adopting the connection it used, or dropping it when it was abandoned or lost.
OpOut run_op(Handle &h, const stockade_ctx *ctx, OpFn fn, const char *target, bool needs_target)
{
    OpEnv env{h.cfg, h.conn, {}, target ? target : "", {}};
    if (needs_target) {
        ResolvedTarget rt;
        if (Status s = resolve_target(h.cfg->hosts, h.cfg->plug, env.target, rt); !s.ok()) {
            OpOut out;
            out.status = s;
            return out;
        }
        env.domain = rt.domain;
        env.source = rt.source == TargetSource::HostList ? "hostlist entry for " + env.target
                     : rt.source == TargetSource::Plug   ? "plug"
                                                         : "target";
        if (rt.domain != env.target)
            log(ctx, STOCKADE_LOG_DEBUG, "target '" + env.target + "' is domain '" + rt.domain + "' (" + env.source + ")");
    }
    bool abandoned = false;
    OpOut out = run_bounded<OpOut>(
        ctx, h.cfg->shown_uri,
        [env = std::move(env), fn](OpChannel &ch) mutable {
            ErrorRouteScope scope(ch); // libvirt errors on this thread go to this operation's log
            const bool reused = env.conn != nullptr;
            OpOut o;
            o.status = connect(ch, env);
            if (o.status.ok())
                o.status = fn(ch, env, o);
            // A kept connection may have died since the last operation (daemon restarted): one
            // retry on a fresh connection.  Every operation reads the state before acting, so a
            // repeat is harmless.
            if (reused && o.status.rc == STOCKADE_RC_UNREACHABLE) {
                ch.log(STOCKADE_LOG_WARNING, o.status.message + "; reconnecting once");
                env.conn.reset();
                o = OpOut{};
                o.status = connect(ch, env);
                if (o.status.ok())
                    o.status = fn(ch, env, o);
            }
            o.conn = std::move(env.conn);
            return o;
        },
        &abandoned);
    if (abandoned || out.status.rc == STOCKADE_RC_UNREACHABLE)
        h.conn.reset(); // reopened by the next operation
    else
        h.conn = std::move(out.conn);
    return out;
}

// Closes a connection on a helper thread, waiting a bounded time: closing a remote connection is
// itself an RPC, which a hung daemon would never answer.
void close_bounded(std::shared_ptr<Connection> conn, std::chrono::milliseconds limit)
{
    if (!conn)
        return;
    struct Done {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
    };
    auto done = std::make_shared<Done>();
    std::thread([conn = std::move(conn), done]() mutable {
        conn.reset();
        std::lock_guard lk(done->mu);
        done->done = true;
        done->cv.notify_all();
    }).detach();
    std::unique_lock lk(done->mu);
    done->cv.wait_for(lk, limit, [&] { return done->done; });
}

uint32_t finish(const stockade_ctx *ctx, const OpOut &out)
{
    if (!out.status.message.empty())
        set_err(ctx, out.status.message);
    return out.status.rc;
}

struct LibvirtDevice : Handle {
    static uint32_t open(const stockade_param *params, size_t n_params, const stockade_ctx *ctx,
                          std::unique_ptr<LibvirtDevice> &out)
    {
        global_init();
        auto cfg = std::make_shared<Config>();
        if (Status s = parse_config(params, n_params, *cfg); !s.ok()) {
            set_err(ctx, s.message);
            return s.rc;
        }
        auto h = std::make_unique<LibvirtDevice>();
        h->cfg = std::move(cfg);
        out = std::move(h);
        return STOCKADE_RC_OK;
    }

    ~LibvirtDevice()
    {
        try {
            close_bounded(std::move(conn), std::chrono::milliseconds(2000));
        } catch (...) {
        }
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        const PowerActionInfo *a = power_action_info(action);
        if (!a) {
            set_err(ctx, "unknown action " + std::to_string(action));
            return STOCKADE_RC_UNSUPPORTED;
        }
        log(ctx, STOCKADE_LOG_DEBUG, std::string(a->name) + " " + target);
        OpOut out = run_op(*this, ctx, a->run, target.c_str(), true);
        if (out.status.ok())
            *verified = out.verified;
        return finish(ctx, out);
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *power_state)
    {
        *power_state = STOCKADE_POWER_UNKNOWN;
        OpOut out = run_op(*this, ctx, do_status, target.c_str(), true);
        if (out.status.ok())
            *power_state = out.power_state;
        return finish(ctx, out);
    }

    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx)
    {
        OpOut out = run_op(*this, ctx, do_list, nullptr, false);
        if (out.status.ok())
            for (const auto &[name, alias] : out.listed)
                emit(emit_ctx, name.c_str(), alias.c_str());
        return finish(ctx, out);
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        return finish(ctx, run_op(*this, ctx, do_monitor, nullptr, false));
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_DIAG,
    .name = "libvirt",
    .version = "1.0",
    .summary = "Virtual machines through the libvirt API (destroy/start the domain at its hypervisor)",
    .description =
        "Fences a virtual machine by destroying its libvirt domain and reading back that it is shut off. "
        "Works with any libvirt URI (qemu:///system, qemu+ssh://host/system, xen, test:///...). Targets map to "
        "domains through hostlist (node[:domain], as cluster-glue external/libvirt), plug/port (fence-agents), or "
        "are the domain name or UUID themselves. One connection serves a whole session; every call is bounded "
        "by the operation deadline even when the hypervisor hangs. diag injects an NMI.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(LibvirtDevice),
};

} // namespace
} // namespace stockade::libvirt_agent

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &stockade::libvirt_agent::kDescriptor;
}
