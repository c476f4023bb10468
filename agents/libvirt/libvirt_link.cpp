// libvirt_link.cpp -- connection, lookup, state reads and error mapping (see libvirt_link.hpp).
#include "libvirt_link.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "stockade/agent_support.hpp"

namespace stockade::libvirt_agent {
namespace {

// libvirt error code -> result code.  Checked before the domain table.
struct ErrorCodeRule {
    int code;
    uint32_t rc;
};
constexpr std::array<ErrorCodeRule, 12> kErrorCodeRules{{
    {VIR_ERR_NO_DOMAIN, STOCKADE_RC_UNKNOWN_TARGET},
    {VIR_ERR_AUTH_FAILED, STOCKADE_RC_ACCESS_DENIED},
    {VIR_ERR_AUTH_CANCELLED, STOCKADE_RC_ACCESS_DENIED},
    {VIR_ERR_AUTH_UNAVAILABLE, STOCKADE_RC_ACCESS_DENIED},
    {VIR_ERR_ACCESS_DENIED, STOCKADE_RC_ACCESS_DENIED},
    {VIR_ERR_OPERATION_DENIED, STOCKADE_RC_ACCESS_DENIED},
    {VIR_ERR_NO_SUPPORT, STOCKADE_RC_UNSUPPORTED},
    {VIR_ERR_OPERATION_UNSUPPORTED, STOCKADE_RC_UNSUPPORTED},
    {VIR_ERR_OPERATION_TIMEOUT, STOCKADE_RC_TIMEOUT},
    {VIR_ERR_INVALID_ARG, STOCKADE_RC_BAD_CONFIG},
    {VIR_ERR_XML_ERROR, STOCKADE_RC_BAD_CONFIG},  // test driver file that is not a <node> document
    {VIR_ERR_XML_DETAIL, STOCKADE_RC_BAD_CONFIG}, // test driver file that is not XML at all
}};

// libvirt error domain (where it was raised) -> result code.
struct ErrorDomainRule {
    int domain;
    uint32_t rc;
};
constexpr std::array<ErrorDomainRule, 3> kErrorDomainRules{{
    {VIR_FROM_URI, STOCKADE_RC_BAD_CONFIG},  // unparsable hypervisor_uri
    {VIR_FROM_AUTH, STOCKADE_RC_ACCESS_DENIED},
    {VIR_FROM_RPC, STOCKADE_RC_UNREACHABLE}, // socket refused/closed, keepalive timeout, EOF
}};

// The operation running on this thread, if any: libvirt errors raised here are logged into it.
thread_local OpChannel *t_channel = nullptr;

void route_libvirt_error(void *, virErrorPtr err)
{
    if (!err || !t_channel)
        return; // never print: the default handler would write to stderr
    t_channel->log(STOCKADE_LOG_DEBUG, "libvirt error " + std::to_string(err->code) + " (domain " +
                                           std::to_string(err->domain) + "): " +
                                           (err->message ? err->message : "(no message)"));
}

int auth_callback(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    const Config *cfg = static_cast<const Config *>(cbdata);
    for (unsigned i = 0; i < ncred; ++i) {
        const std::string *value = nullptr;
        switch (cred[i].type) {
        case VIR_CRED_AUTHNAME:
        case VIR_CRED_USERNAME:
            value = &cfg->login;
            break;
        case VIR_CRED_PASSPHRASE:
        case VIR_CRED_NOECHOPROMPT:
            value = &cfg->password;
            break;
        default:
            return -1; // never prompt: anything we cannot answer from the configuration fails
        }
        if (value->empty())
            return -1;
        cred[i].result = strdup(value->c_str());
        if (!cred[i].result)
            return -1;
        cred[i].resultlen = static_cast<unsigned>(value->size());
    }
    return 0;
}

} // namespace

ErrorRouteScope::ErrorRouteScope(OpChannel &ch) { t_channel = &ch; }
ErrorRouteScope::~ErrorRouteScope() { t_channel = nullptr; }

uint32_t rc_for(const LibvirtError &e, Phase phase)
{
    for (const auto &r : kErrorCodeRules)
        if (r.code == e.code)
            return r.rc;
    for (const auto &r : kErrorDomainRules)
        if (r.domain == e.domain)
            return r.rc;
    return phase == Phase::Connect ? STOCKADE_RC_UNREACHABLE : STOCKADE_RC_FAILED;
}

// Once per process: thread-safe libvirt initialisation, the error handler, and libvirt's default
// event loop on a background thread (keepalive on remote connections needs a registered loop, and
// it answers the daemon's own keepalive probes between operations).
void global_init()
{
    static std::once_flag once;
    std::call_once(once, [] {
        virInitialize();
        virSetErrorFunc(nullptr, route_libvirt_error);
        if (virEventRegisterDefaultImpl() == 0) {
            std::thread([] {
                for (;;)
                    if (virEventRunDefaultImpl() < 0)
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }).detach();
        }
    });
}

LibvirtError last_error()
{
    LibvirtError e;
    if (virErrorPtr p = virGetLastError()) {
        e.code = p->code;
        e.domain = p->domain;
        e.message = p->message ? p->message : "";
        // Some messages quote the offending input on further lines: our reasons are one line.
        e.message = e.message.substr(0, e.message.find('\n'));
    }
    if (e.message.empty())
        e.message = "unknown libvirt error";
    return e;
}

Status fail(const LibvirtError &e, Phase phase, const std::string &what)
{
    return {rc_for(e, phase), what + ": " + e.message};
}

Status connect(OpChannel &ch, OpEnv &env)
{
    const Config &cfg = *env.cfg;
    if (env.conn) {
        if (virConnectIsAlive(env.conn->get()) == 1)
            return {};
        ch.log(STOCKADE_LOG_WARNING, "connection to " + cfg.shown_uri + " was lost; reconnecting");
        env.conn.reset();
    }
    if (auto file = test_driver_file(cfg.open_uri)) {
        // Checked here because libxml2 would print its own warning to stderr for a missing file.
        struct stat st {};
        if (::stat(file->c_str(), &st) != 0)
            return {STOCKADE_RC_BAD_CONFIG,
                    "hypervisor_uri " + cfg.shown_uri + ": test driver file " + *file + ": " + std::strerror(errno)};
    }
    int64_t limit = stockade_monotonic_ms() + cfg.connect_timeout_ms;
    ch.begin_step("connecting to " + cfg.shown_uri, limit,
                  "connect_timeout (" + std::to_string(cfg.connect_timeout_ms / 1000) + " s)");
    static int cred_types[] = {VIR_CRED_AUTHNAME, VIR_CRED_USERNAME, VIR_CRED_PASSPHRASE, VIR_CRED_NOECHOPROMPT};
    virConnectAuth auth{cred_types, sizeof cred_types / sizeof cred_types[0], auth_callback,
                        const_cast<Config *>(&cfg)};
    const int64_t t0 = stockade_monotonic_ms();
    virConnectPtr c = virConnectOpenAuth(cfg.open_uri.c_str(), &auth, 0);
    if (!c)
        return fail(last_error(), Phase::Connect, "cannot connect to " + cfg.shown_uri);
    virConnSetErrorFunc(c, nullptr, route_libvirt_error);
    env.conn = std::make_shared<Connection>(c);
    ch.log(STOCKADE_LOG_DEBUG,
           "connected to " + cfg.shown_uri + " in " + std::to_string(stockade_monotonic_ms() - t0) + " ms");
    if (cfg.keepalive_interval > 0) {
        int ka = virConnectSetKeepAlive(c, cfg.keepalive_interval, cfg.keepalive_count);
        if (ka < 0) {
            LibvirtError e = last_error();
            if (e.code != VIR_ERR_NO_SUPPORT) // in-process drivers (test:///) have no keepalive
                ch.log(STOCKADE_LOG_WARNING, "keepalive not enabled on " + cfg.shown_uri + ": " + e.message);
        } else if (ka == 1) {
            ch.log(STOCKADE_LOG_WARNING, "the daemon behind " + cfg.shown_uri + " does not support keepalive");
        }
    }
    ch.begin_step("talking to " + cfg.shown_uri);
    return {};
}

// Looks the domain up by UUID when it looks like one, else (or then) by name.
Status lookup(OpChannel &ch, OpEnv &env, Domain &dom)
{
    virConnectPtr c = env.conn->get();
    const std::string &d = env.domain;
    if (looks_like_uuid(d)) {
        ch.begin_step("virDomainLookupByUUIDString(" + d + ")");
        dom.reset(virDomainLookupByUUIDString(c, d.c_str()));
        if (dom)
            return {};
        LibvirtError e = last_error();
        if (e.code != VIR_ERR_NO_DOMAIN)
            return fail(e, Phase::Operation, "looking up domain UUID " + d + " on " + env.cfg->shown_uri);
    }
    ch.begin_step("virDomainLookupByName(" + d + ")");
    dom.reset(virDomainLookupByName(c, d.c_str()));
    if (dom)
        return {};
    LibvirtError e = last_error();
    if (e.code == VIR_ERR_NO_DOMAIN)
        return {STOCKADE_RC_UNKNOWN_TARGET, "domain '" + d + "' (" + env.source + ") not found on " + env.cfg->shown_uri};
    return fail(e, Phase::Operation, "looking up domain '" + d + "' on " + env.cfg->shown_uri);
}

Status read_state(OpChannel &ch, OpEnv &env, virDomainPtr dom, DomainState &st)
{
    ch.begin_step("virDomainGetState(" + env.domain + ")");
    st = {};
    if (virDomainGetState(dom, &st.state, &st.reason, 0) < 0) {
        LibvirtError e = last_error();
        if (e.code == VIR_ERR_NO_DOMAIN) {
            st.gone = true;
            return {};
        }
        return fail(e, Phase::Operation, "reading the state of domain '" + env.domain + "' on " + env.cfg->shown_uri);
    }
    if (st.state == VIR_DOMAIN_CRASHED) {
        int a = virDomainIsActive(dom);
        st.active = a != 0; // unknown (-1) counts as active: destroy it to be sure
    }
    return {};
}

} // namespace stockade::libvirt_agent
