// scsi_agent.cpp -- the "scsi" agent: storage fencing with SCSI-3 Persistent Reservations, the
// method fence_scsi implements around sg_persist, here native and over two transports (SG_IO on
// local devices, libiscsi for iscsi:// URLs) with one reservation logic above them.
//
// Every node registers its own key on every shared device and one of them holds a WRITE
// EXCLUSIVE - REGISTRANTS ONLY reservation, so only registered nodes can write.  `on` (unfencing,
// run by each node on itself when it joins) registers this node's key and takes the reservation
// when nobody holds one.  `off` removes the victim's key with PREEMPT AND ABORT (PREEMPT where the
// target lacks it) from this node's registered key, and is confirmed only when READ KEYS no longer
// lists the victim on any device and a reservation is in force.  All devices of a call are one
// action: it succeeds only when every device did.  Policy choices and where they differ from
// fence_scsi are in agents/scsi/README.md.
#include <algorithm>
#include <memory>
#include <string>
#include <sys/utsname.h>
#include <vector>

#include "node_keys.hpp"
#include "pr_device.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/text.hpp"

namespace stockade::scsi {
namespace {

using agent::log;
using agent::set_err;

constexpr const char *kDefaultCorosyncConf = "/etc/corosync/corosync.conf";
constexpr const char *kInitiatorNameFile = "/etc/iscsi/initiatorname.iscsi";
constexpr uint32_t kIsidQualifier = 0x5343; // "SC": this agent's sessions (see transport_iscsi.cpp)

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "devices", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .description = "Devices of the shared storage, comma or space separated: local paths (/dev/sdc, /dev/mapper/mpatha, "
                    "/dev/disk/by-id/...) or iscsi://host[:port]/target-iqn/lun; every path of every LUN, all must succeed"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "key", .type = STOCKADE_PARAM_STRING,
     .description = "Reservation key (hex) of the node this call acts on; derived from its name when not given"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "keys", .type = STOCKADE_PARAM_STRING,
     .description = "Explicit keys, node=key pairs (\"node1=1a2b0001 node2=1a2b0002\"); win over derived keys"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "local_node", .type = STOCKADE_PARAM_STRING,
     .description = "Name of the node running the agent (default: uname -n); its key is the one that preempts"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "local_key", .type = STOCKADE_PARAM_STRING,
     .description = "Reservation key (hex) of the node running the agent; derived from local_node when not given"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "key_value", .type = STOCKADE_PARAM_SELECT, .default_value = "id",
     .choices = "id|hash",
     .description = "How keys are derived, as fence_scsi: id = corosync nodelist position, hash = md5 of the node name"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "cluster_name", .type = STOCKADE_PARAM_STRING,
     .description = "Cluster name the keys are derived from (default: totem.cluster_name of corosync_conf)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "corosync_conf", .type = STOCKADE_PARAM_STRING,
     .default_value = kDefaultCorosyncConf,
     .description = "corosync.conf to read the cluster name and the nodelist from"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "initiator", .type = STOCKADE_PARAM_STRING, .aliases = "initiator_name",
     .description = "iSCSI initiator name (IQN) of this node for iscsi:// devices; {node} stands for local_node, so one "
                    "cluster-wide value serves every node (default: /etc/iscsi/initiatorname.iscsi)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "aptpl", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
     .description = "Register with Activate Persist Through Power Loss (on only), as fence_scsi --aptpl"},
};

struct Scsi {
    std::vector<std::unique_ptr<PrDevice>> devices;
    NodeKeys keys;
    std::optional<Key> key;       // of the target, when given
    std::optional<Key> local_key; // of this node, when given
    std::string local_node;
    bool aptpl = false;
};

using stockade::agent::param_value;

// "InitiatorName=iqn...." from open-iscsi's file; "" when there is none.
std::string system_initiator_name()
{
    auto text = read_config_file(kInitiatorNameFile);
    return text ? initiator_name_of(*text) : std::string();
}

Result<std::unique_ptr<Scsi>> configure(const stockade_param *p, size_t n)
{
    auto s = std::make_unique<Scsi>();
    auto devices = text::split_list(param_value(p, n, "devices"));
    if (devices.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'devices': no device given"};
    for (const char *which : {"key", "local_key"}) {
        std::string v = param_value(p, n, which);
        if (v.empty())
            continue;
        auto k = parse_key(v);
        if (!k)
            return Error{STOCKADE_RC_BAD_CONFIG, std::string("parameter '") + which + "': '" + v +
                                                     "' is not a reservation key (1 to 16 hex digits, not zero)"};
        (std::string(which) == "key" ? s->key : s->local_key) = *k;
    }
    auto given = parse_key_map(param_value(p, n, "keys"));
    if (!given)
        return given.error();
    s->keys.given = std::move(*given);
    s->keys.method = param_value(p, n, "key_value") == "hash" ? KeyMethod::Hash : KeyMethod::Id;
    s->keys.cluster_name = param_value(p, n, "cluster_name");
    std::string conf_path = param_value(p, n, "corosync_conf");
    if (!conf_path.empty()) {
        auto text = read_config_file(conf_path);
        if (text) {
            auto conf = parse_corosync_conf(*text);
            if (!conf)
                return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'corosync_conf': " + conf_path + ": " + conf.error().message};
            if (s->keys.cluster_name.empty())
                s->keys.cluster_name = conf->cluster_name;
            s->keys.nodes = std::move(conf->nodes);
        } else if (conf_path != kDefaultCorosyncConf) {
            return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'corosync_conf': " + text.error().message};
        }
    }
    if (auto c = s->keys.collision(); !c.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, "key collision: " + c + "; set distinct keys with 'keys' (or key_value=id)"};
    s->local_node = param_value(p, n, "local_node");
    if (s->local_node.empty()) {
        struct utsname u {};
        if (::uname(&u) == 0)
            s->local_node = u.nodename;
    }
    s->aptpl = param_value(p, n, "aptpl") == "1";

    TransportOptions topts;
    topts.initiator_iqn = param_value(p, n, "initiator");
    if (topts.initiator_iqn.empty())
        topts.initiator_iqn = system_initiator_name();
    // One cluster-wide setting names every node's initiator: "{node}" is this node's name.
    if (size_t at = topts.initiator_iqn.find("{node}"); at != std::string::npos)
        topts.initiator_iqn.replace(at, 6, text::ascii_lower(s->local_node));
    topts.isid_qualifier = kIsidQualifier;
    auto transports = make_transports(devices, topts);
    if (!transports)
        return transports.error();
    for (auto &t : *transports)
        s->devices.push_back(std::make_unique<PrDevice>(std::move(t)));
    return s;
}

// The key of the node this call acts on.
Result<Key> target_key(const Scsi &s, const std::string &target)
{
    if (s.key)
        return *s.key;
    return s.keys.key_for(target);
}

Result<Key> own_key(const Scsi &s)
{
    if (s.local_key)
        return *s.local_key;
    auto k = s.keys.key_for(s.local_node);
    if (!k)
        return Error{k.error().rc, "this node's key (set 'local_key', or 'local_node' as the cluster names it): " +
                                       k.error().message};
    return k;
}

std::string describe_key(const Scsi &s, Key k)
{
    std::string node = s.keys.node_of(k);
    return key_text(k) + (node.empty() ? "" : " (" + node + ")");
}

// Runs `one` on every device; all must succeed.  The first failure's code wins; the message
// names every failed device and how many succeeded.
template <class Fn>
Result<void> every_device(Scsi &s, const stockade_ctx *ctx, const char *what, Fn &&one)
{
    std::vector<std::string> failed;
    uint32_t rc = STOCKADE_RC_OK;
    for (auto &d : s.devices) {
        if (agent::cancelled(ctx))
            return Error{STOCKADE_RC_CANCELLED, std::string(what) + " cancelled before " + d->name()};
        Result<void> r = d->connect(ctx);
        if (r)
            r = one(*d);
        if (!r) {
            if (rc == STOCKADE_RC_OK)
                rc = r.error().rc;
            failed.push_back(r.error().message);
            log(ctx, STOCKADE_LOG_ERR, r.error().message);
        }
    }
    if (failed.empty())
        return {};
    std::string msg = std::string(what) + " failed on " + std::to_string(failed.size()) + " of " +
                      std::to_string(s.devices.size()) + " device(s): ";
    for (size_t i = 0; i < failed.size(); ++i)
        msg += (i ? "; " : "") + failed[i];
    return Error{rc, msg};
}

Error pr_out_error(const PrDevice &d, PrOut sa, const PrOutResult &r)
{
    return Error{r.verdict == Verdict::NotImplemented ? STOCKADE_RC_UNSUPPORTED : STOCKADE_RC_FAILED,
                 d.name() + ": PERSISTENT RESERVE OUT " + pr_out_name(sa) + ": " + r.text};
}

// Registers this I_T nexus with `own` (whatever it had) -- the unfencing step, and the refresh of
// a nexus whose node is registered elsewhere (a new iSCSI session on targets that tie
// registrations to the session).
Result<void> register_nexus(const Scsi &s, PrDevice &d, const stockade_ctx *ctx, Key own)
{
    auto r = d.pr_out(ctx, PrOut::RegisterAndIgnore, 0, 0, own, s.aptpl);
    if (!r)
        return r.error();
    if (r->verdict != Verdict::Good)
        return pr_out_error(d, PrOut::RegisterAndIgnore, *r);
    return {};
}

// Makes sure a reservation is in force, taking a WRITE EXCLUSIVE - REGISTRANTS ONLY one with
// `own` when there is none.  Returns the reservation in force.
Result<Reservation> ensure_reservation(PrDevice &d, const stockade_ctx *ctx, Key own)
{
    auto rr = d.read_reservation(ctx);
    if (!rr || rr->held)
        return rr;
    auto r = d.pr_out(ctx, PrOut::Reserve, kTypeWriteExclusiveRegistrantsOnly, own, 0);
    if (!r)
        return r.error();
    if (r->verdict != Verdict::Good && r->verdict != Verdict::ReservationConflict)
        return pr_out_error(d, PrOut::Reserve, *r);
    // A conflict means another node reserved first; either way the reservation read now decides.
    rr = d.read_reservation(ctx);
    if (rr && !rr->held)
        return Error{STOCKADE_RC_FAILED, d.name() + ": no reservation after RESERVE (" + r->text + ")"};
    return rr;
}

// ---- Actions ---------------------------------------------------------------------------------

Result<void> unfence(Scsi &s, const stockade_ctx *ctx, const std::string &target)
{
    if (!target.empty() && !text::iequals(target, s.local_node))
        return Error{STOCKADE_RC_BAD_CONFIG,
                     "unfencing registers the I_T nexus of the node running the agent, which is '" + s.local_node +
                         "', not '" + target + "': run 'on' on '" + target + "' itself (or set local_node)"};
    auto key = target_key(s, target);
    if (!key)
        return key.error();
    const Key own = *key;
    return every_device(s, ctx, "unfencing", [&](PrDevice &d) -> Result<void> {
        if (auto r = register_nexus(s, d, ctx, own); !r)
            return r;
        auto rr = ensure_reservation(d, ctx, own);
        if (!rr)
            return rr.error();
        auto keys = d.read_keys(ctx);
        if (!keys)
            return keys.error();
        if (!keys->has(own))
            return Error{STOCKADE_RC_FAILED, d.name() + ": key " + key_text(own) + " is not listed after REGISTER"};
        log(ctx, STOCKADE_LOG_INFO, d.name() + ": registered key " + describe_key(s, own) + "; reservation type " +
                                        std::to_string(rr->type) + " held by key " + describe_key(s, rr->key));
        return {};
    });
}

// Removes `victim` from one device, preempting from `own`; confirmed by reading the keys back.
Result<void> fence_device(Scsi &s, PrDevice &d, const stockade_ctx *ctx, Key victim, Key own)
{
    auto keys = d.read_keys(ctx);
    if (!keys)
        return keys.error();
    bool refreshed = false;
    PrOut sa = PrOut::PreemptAndAbort;
    while (keys->has(victim)) {
        if (!keys->has(own))
            return Error{STOCKADE_RC_FAILED,
                         d.name() + ": this node's key " + describe_key(s, own) +
                             " is not registered (never unfenced here, or fenced itself); refusing to preempt from an "
                             "unregistered node"};
        auto r = d.pr_out(ctx, sa, kTypeWriteExclusiveRegistrantsOnly, own, victim);
        if (!r)
            return r.error();
        if (r->verdict == Verdict::NotImplemented && sa == PrOut::PreemptAndAbort) {
            log(ctx, STOCKADE_LOG_NOTICE, d.name() + ": PREEMPT AND ABORT not supported (" + r->text +
                                              "); using PREEMPT (the victim's queued commands are not aborted)");
            sa = PrOut::Preempt;
            continue;
        }
        if (r->verdict == Verdict::ReservationConflict) {
            // Either another node removed the victim first, or this nexus is not registered
            // although our key is (a fresh iSCSI session).  The keys decide.
            keys = d.read_keys(ctx);
            if (!keys)
                return keys.error();
            if (!keys->has(victim))
                break;
            if (refreshed || !keys->has(own))
                return pr_out_error(d, sa, *r);
            if (auto reg = register_nexus(s, d, ctx, own); !reg)
                return reg;
            refreshed = true;
            continue;
        }
        if (r->verdict != Verdict::Good)
            return pr_out_error(d, sa, *r);
        keys = d.read_keys(ctx);
        if (!keys)
            return keys.error();
        if (keys->has(victim))
            return Error{STOCKADE_RC_FAILED, d.name() + ": key " + describe_key(s, victim) + " is still registered after " +
                                                 pr_out_name(sa)};
    }
    // Without a reservation an unregistered node may still write: make sure one is in force.
    auto rr = ensure_reservation(d, ctx, own);
    if (!rr && rr.error().rc == STOCKADE_RC_FAILED && !refreshed) {
        if (auto reg = register_nexus(s, d, ctx, own); reg)
            rr = ensure_reservation(d, ctx, own);
    }
    if (!rr)
        return rr.error();
    keys = d.read_keys(ctx);
    if (!keys)
        return keys.error();
    if (keys->has(victim))
        return Error{STOCKADE_RC_FAILED, d.name() + ": key " + describe_key(s, victim) + " registered again"};
    if (!keys->has(own))
        return Error{STOCKADE_RC_FAILED, d.name() + ": this node's key " + describe_key(s, own) +
                                             " was removed meanwhile (fenced by another node); not claiming the fence"};
    log(ctx, STOCKADE_LOG_INFO, d.name() + ": key " + describe_key(s, victim) + " not registered; reservation type " +
                                    std::to_string(rr->type) + " held by key " + describe_key(s, rr->key));
    return {};
}

Result<void> fence(Scsi &s, const stockade_ctx *ctx, const std::string &target)
{
    auto victim = target_key(s, target);
    if (!victim)
        return victim.error();
    auto own = own_key(s);
    if (!own)
        return own.error();
    if (*victim == *own)
        return Error{STOCKADE_RC_BAD_CONFIG, "key " + key_text(*own) + " of '" + target +
                                                 "' is this node's own key: a node cannot fence itself (key collision?)"};
    return every_device(s, ctx, "fencing", [&](PrDevice &d) { return fence_device(s, d, ctx, *victim, *own); });
}

Result<uint32_t> read_status(Scsi &s, const stockade_ctx *ctx, const std::string &target)
{
    auto victim = target_key(s, target);
    if (!victim)
        return victim.error();
    std::vector<std::string> registered, absent;
    auto r = every_device(s, ctx, "status", [&](PrDevice &d) -> Result<void> {
        auto keys = d.read_keys(ctx);
        if (!keys)
            return keys.error();
        (keys->has(*victim) ? registered : absent).push_back(d.name());
        return {};
    });
    if (!r)
        return r.error();
    if (!registered.empty() && !absent.empty())
        log(ctx, STOCKADE_LOG_WARNING, "key " + key_text(*victim) + " of '" + target + "' is registered on " +
                                           std::to_string(registered.size()) + " device(s) but not on " + absent.front() +
                                           " and " + std::to_string(absent.size() - 1) + " more: partly fenced, reported on");
    return registered.empty() ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON;
}

Result<void> check_devices(Scsi &s, const stockade_ctx *ctx)
{
    return every_device(s, ctx, "monitor", [&](PrDevice &d) -> Result<void> {
        auto keys = d.read_keys(ctx);
        if (!keys)
            return keys.error();
        auto caps = d.report_capabilities(ctx);
        if (!caps)
            return caps.error();
        if (*caps && !(*caps)->allows(kTypeWriteExclusiveRegistrantsOnly))
            return Error{STOCKADE_RC_UNSUPPORTED, d.name() + " does not offer WRITE EXCLUSIVE - REGISTRANTS ONLY "
                                                             "reservations (REPORT CAPABILITIES type mask)"};
        log(ctx, STOCKADE_LOG_DEBUG, d.name() + ": " + std::to_string(keys->keys.size()) + " registration(s)");
        return {};
    });
}

Result<void> list_keys(Scsi &s, const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx)
{
    std::vector<Key> seen;
    auto r = every_device(s, ctx, "list", [&](PrDevice &d) -> Result<void> {
        auto keys = d.read_keys(ctx);
        if (!keys)
            return keys.error();
        for (Key k : keys->keys)
            if (std::find(seen.begin(), seen.end(), k) == seen.end())
                seen.push_back(k);
        return {};
    });
    if (!r)
        return r;
    for (Key k : seen) {
        std::string node = s.keys.node_of(k);
        if (node.empty())
            emit(emit_ctx, key_text(k).c_str(), "");
        else
            emit(emit_ctx, node.c_str(), key_text(k).c_str());
    }
    return {};
}

// ---- The entry points (agent_support.hpp's Thunks wrap them for the C ABI) --------------------

uint32_t fail(const stockade_ctx *ctx, const Error &e)
{
    set_err(ctx, e.message);
    return e.rc;
}

struct ScsiDevice : Scsi {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx, std::unique_ptr<ScsiDevice> &out)
    {
        auto s = configure(params, n);
        if (!s)
            return fail(ctx, s.error());
        out = std::make_unique<ScsiDevice>();
        static_cast<Scsi &>(*out) = std::move(**s);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        auto &s = *this;
        if (action == STOCKADE_ACTION_OFF) {
            if (auto r = fence(s, ctx, target); !r)
                return fail(ctx, r.error());
            *verified = STOCKADE_VERIFIED_OFF;
            return STOCKADE_RC_OK;
        }
        if (action == STOCKADE_ACTION_ON) {
            if (auto r = unfence(s, ctx, target); !r)
                return fail(ctx, r.error());
            *verified = STOCKADE_VERIFIED_ON;
            return STOCKADE_RC_OK;
        }
        return fail(ctx, Error{STOCKADE_RC_UNSUPPORTED, "scsi: only off (fence) and on (unfence) are supported; a "
                                                        "reservation cannot reboot a node"});
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *power_state)
    {
        auto r = read_status(*this, ctx, target);
        if (!r)
            return fail(ctx, r.error());
        *power_state = *r;
        return STOCKADE_RC_OK;
    }

    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx)
    {
        auto r = list_keys(*this, ctx, emit, emit_ctx);
        return r ? STOCKADE_RC_OK : fail(ctx, r.error());
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        auto r = check_devices(*this, ctx);
        return r ? STOCKADE_RC_OK : fail(ctx, r.error());
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_UNFENCE,
    .name = "scsi",
    .version = "1.0",
    .summary =
        "Fence a node off shared storage with SCSI-3 persistent reservations (fence_scsi's method)",
    .description =
        "Each node registers its reservation key on every device and one holds a WRITE EXCLUSIVE - REGISTRANTS ONLY "
        "reservation; off removes the victim's key (PREEMPT AND ABORT) and is confirmed by READ KEYS; on registers this "
        "node (unfencing, run by the node itself when it joins).  Devices: local SCSI disks through SG_IO, or "
        "iscsi://host[:port]/target-iqn/lun through libiscsi.  Keys as fence_scsi derives them, or given.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(ScsiDevice),
};

} // namespace
} // namespace stockade::scsi

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &stockade::scsi::kDescriptor;
}
