// ipmi_link.cpp -- see ipmi_link.hpp.
#include "ipmi_link.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <string_view>

#include <freeipmi/freeipmi.h>

namespace stockade::ipmi {
namespace {

// How each FreeIPMI error number maps onto the agent ABI, and what it means in one phrase.
struct ErrnumInfo {
    int errnum;
    uint32_t rc;
    std::string_view cause;
};

constexpr std::array<ErrnumInfo, 22> kErrnums{{
    {IPMI_ERR_USERNAME_INVALID, STOCKADE_RC_ACCESS_DENIED, "wrong user: the BMC does not know this username"},
    {IPMI_ERR_PASSWORD_INVALID, STOCKADE_RC_ACCESS_DENIED, "wrong password"},
    {IPMI_ERR_PASSWORD_VERIFICATION_TIMEOUT, STOCKADE_RC_ACCESS_DENIED,
     "password verification failed (IPMI 1.5: usually a wrong password)"},
    {IPMI_ERR_K_G_INVALID, STOCKADE_RC_ACCESS_DENIED, "wrong k_g (BMC key)"},
    {IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT, STOCKADE_RC_ACCESS_DENIED, "privilege too low"},
    {IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED, STOCKADE_RC_ACCESS_DENIED,
     "privilege too low: the requested privilege level cannot be obtained for this user"},
    {IPMI_ERR_AUTHENTICATION_TYPE_UNAVAILABLE, STOCKADE_RC_ACCESS_DENIED,
     "authentication type unavailable for this user and privilege level"},
    {IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE, STOCKADE_RC_BAD_CONFIG, "the BMC does not offer this cipher suite"},
    {IPMI_ERR_IPMI_2_0_UNAVAILABLE, STOCKADE_RC_BAD_CONFIG, "the BMC does not speak IPMI 2.0 (try lanplus=0)"},
    {IPMI_ERR_CONNECTION_TIMEOUT, STOCKADE_RC_UNREACHABLE, "unreachable: no answer from the BMC"},
    {IPMI_ERR_SESSION_TIMEOUT, STOCKADE_RC_UNREACHABLE, "unreachable: the BMC stopped answering"},
    {IPMI_ERR_MESSAGE_TIMEOUT, STOCKADE_RC_UNREACHABLE, "unreachable: no reply to the command"},
    {IPMI_ERR_COMMAND_INVALID_OR_UNSUPPORTED, STOCKADE_RC_FAILED, "the BMC refused the command as invalid or unsupported"},
    {IPMI_ERR_BAD_COMPLETION_CODE, STOCKADE_RC_FAILED, "the BMC answered with an error completion code"},
    {IPMI_ERR_BAD_RMCPPLUS_STATUS_CODE, STOCKADE_RC_ACCESS_DENIED, "the BMC refused the RMCP+ session"},
    {IPMI_ERR_BMC_BUSY, STOCKADE_RC_FAILED, "BMC busy"},
    {IPMI_ERR_HOSTNAME_INVALID, STOCKADE_RC_BAD_CONFIG, "invalid BMC host name or address"},
    {IPMI_ERR_PARAMETERS, STOCKADE_RC_BAD_CONFIG, "FreeIPMI rejected the session parameters"},
    {IPMI_ERR_OUT_OF_MEMORY, STOCKADE_RC_INTERNAL, "out of memory"},
    {IPMI_ERR_SYSTEM_ERROR, STOCKADE_RC_INTERNAL, "system error inside FreeIPMI"},
    {IPMI_ERR_INTERNAL_ERROR, STOCKADE_RC_INTERNAL, "internal error inside FreeIPMI"},
    {IPMI_ERR_PERMISSION, STOCKADE_RC_INTERNAL, "permission denied by the local system"},
}};

const ErrnumInfo *errnum_info(int errnum)
{
    for (const auto &e : kErrnums)
        if (e.errnum == errnum)
            return &e;
    return nullptr;
}

struct FiidObj {
    explicit FiidObj(fiid_template_t tmpl) : obj(fiid_obj_create(tmpl)) {}
    ~FiidObj()
    {
        if (obj)
            fiid_obj_destroy(obj);
    }
    FiidObj(const FiidObj &) = delete;
    FiidObj &operator=(const FiidObj &) = delete;
    fiid_obj_t obj;
};

std::string hex2(unsigned v)
{
    char b[8];
    std::snprintf(b, sizeof b, "0x%02x", v & 0xffu);
    return b;
}

// FreeIPMI resends an unanswered packet after R, R, 2R, 2R, 3R, 3R, ... (its backoff) and only
// notices its session timeout when it is about to resend, so a plain (timeout, R) pair overshoots
// the timeout by up to a few R (measured: 1000 ms/400 ms gave up after 1617 ms).  These are the
// instants of that schedule in units of R; we pick R' <= R so one instant lands exactly on the
// limit and set FreeIPMI's timeout just below it: the call then gives up at the limit.  (The
// first instant, R itself, cannot be used: FreeIPMI needs R below its session timeout.)
constexpr std::array<unsigned, 18> kResendInstants{2, 4, 6, 9, 12, 16, 20, 25, 30, 36, 42, 49, 56, 64, 72, 81, 90, 100};

struct FreeIpmiTimeouts {
    unsigned session_ms;
    unsigned retransmission_ms;
};

FreeIpmiTimeouts fit_timeouts(unsigned limit_ms, unsigned wanted_retransmission_ms)
{
    unsigned r = std::max(limit_ms / kResendInstants.back(), 1u);
    for (unsigned m : kResendInstants)
        if (limit_ms / m <= wanted_retransmission_ms) {
            r = std::max(limit_ms / m, 1u);
            break;
        }
    return {std::max(limit_ms - r / 2, r + 1), r};
}

} // namespace

IpmiLink::~IpmiLink()
{
    close();
    drop_ctx();
}

void IpmiLink::drop_ctx()
{
    if (ctx_) {
        ipmi_ctx_destroy(ctx_);
        ctx_ = nullptr;
    }
    open_ = false;
}

void IpmiLink::close()
{
    if (ctx_ && open_)
        ipmi_ctx_close(ctx_);
    open_ = false;
}

Error IpmiLink::failure_from_ctx(const char *during, bool opening, void *obj_rs)
{
    const int errnum = ctx_ ? ipmi_ctx_errnum(ctx_) : IPMI_ERR_INTERNAL_ERROR;
    const ErrnumInfo *info = errnum_info(errnum);
    std::string msg = "ipmi " + cfg_.endpoint() + ": " + during + ": ";
    uint32_t rc = info ? info->rc : STOCKADE_RC_FAILED;
    if (info)
        msg += info->cause;
    else
        msg += std::string("FreeIPMI error ") + std::to_string(errnum) + " (" + ipmi_ctx_strerror(errnum) + ")";

    const bool timeout = errnum == IPMI_ERR_CONNECTION_TIMEOUT || errnum == IPMI_ERR_SESSION_TIMEOUT ||
                         errnum == IPMI_ERR_MESSAGE_TIMEOUT;
    if (timeout) {
        msg += " within " + std::to_string(session_timeout_ms_) + " ms";
        if (clamped_by_deadline_) {
            rc = STOCKADE_RC_TIMEOUT;
            msg += " (cut short by the operation deadline)";
        }
    }
    if (errnum == IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT || errnum == IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED)
        msg += " (privlvl=" + cfg_.privilege_name + ", user '" + cfg_.username + "')";
    if (errnum == IPMI_ERR_USERNAME_INVALID)
        msg += " ('" + cfg_.username + "')";
    if (errnum == IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE)
        msg += " (cipher " + std::to_string(cfg_.cipher) + ")";

    // The completion code is in the response even when the command failed.
    if (obj_rs) {
        uint64_t cc = 0;
        fiid_obj_t o = static_cast<fiid_obj_t>(obj_rs);
        if (fiid_obj_get(o, "comp_code", &cc) == 1 && cc != IPMI_COMP_CODE_COMMAND_SUCCESS) {
            char text[256] = {0};
            msg += ": completion code " + hex2(unsigned(cc));
            if (ipmi_completion_code_strerror_cmd_r(o, IPMI_NET_FN_CHASSIS_RQ, text, sizeof text) == 0 && text[0])
                msg += std::string(" (") + text + ")";
            if (cc == IPMI_COMP_CODE_INSUFFICIENT_PRIVILEGE_LEVEL) {
                rc = STOCKADE_RC_ACCESS_DENIED;
                // Said once: FreeIPMI's own errnum usually named it already.
                if (errnum != IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT &&
                    errnum != IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED)
                    msg += ": privilege too low (privlvl=" + cfg_.privilege_name + ", user '" + cfg_.username + "')";
            }
        }
    }
    // A failed open leaves the context unusable; any timeout means the session is gone.
    if (opening || timeout)
        drop_ctx();
    return Error{rc, msg};
}

Status IpmiLink::ensure_open(const stockade_ctx *ctx)
{
    if (ctx->is_cancelled && ctx->is_cancelled(ctx))
        return Error{STOCKADE_RC_CANCELLED, "ipmi " + cfg_.endpoint() + ": cancelled"};
    const int64_t remaining = stockade_remaining_ms(ctx);
    if (remaining <= 0)
        return Error{STOCKADE_RC_TIMEOUT, "ipmi " + cfg_.endpoint() + ": the operation deadline passed"};
    if (open_ && session_timeout_ms_ <= remaining)
        return {};
    close();

    init_crypto();
    if (!ctx_ && !(ctx_ = ipmi_ctx_create()))
        return Error{STOCKADE_RC_INTERNAL, "ipmi: cannot create a FreeIPMI context (out of memory)"};

    unsigned limit = cfg_.session_timeout_ms;
    clamped_by_deadline_ = false;
    if (int64_t(limit) > remaining) {
        limit = unsigned(std::max<int64_t>(remaining, 20));
        clamped_by_deadline_ = true;
    }
    const FreeIpmiTimeouts t = fit_timeouts(limit, cfg_.retransmission_timeout_ms);
    const unsigned session = t.session_ms, retrans = t.retransmission_ms;
    session_timeout_ms_ = limit;

    const std::string hostport = cfg_.endpoint();
    const char *user = cfg_.username.empty() ? nullptr : cfg_.username.c_str();
    const char *pass = cfg_.password.empty() ? nullptr : cfg_.password.str().c_str();
    int r;
    if (cfg_.lanplus) {
        const auto *kg = cfg_.k_g.empty() ? nullptr : reinterpret_cast<const unsigned char *>(cfg_.k_g.str().data());
        // Some BMCs (OpenIPMI's ipmi_sim among them) answer Open Session with a maximum privilege
        // of 0.  ipmitool, and so fence_ipmilan, never looks at that field; FreeIPMI refuses the
        // session unless told to ignore it.  Ignoring it always costs nothing: the privilege is
        // still set (and enforced by the BMC) with Set Session Privilege Level.
        constexpr unsigned kOpenSessPriv = IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE;
        r = ipmi_ctx_open_outofband_2_0(ctx_, hostport.c_str(), user, pass, kg, unsigned(cfg_.k_g.str().size()),
                                        cfg_.privilege, cfg_.cipher, session, retrans,
                                        cfg_.workaround_flags | kOpenSessPriv, IPMI_FLAGS_DEFAULT);
    } else {
        r = ipmi_ctx_open_outofband(ctx_, hostport.c_str(), user, pass, cfg_.auth_type, cfg_.privilege, session,
                                    retrans, cfg_.workaround_flags, IPMI_FLAGS_DEFAULT);
    }
    if (r < 0)
        return failure_from_ctx("opening session", true, nullptr);
    open_ = true;
    if (cfg_.bridge_target) {
        // fence_ipmilan's target (ipmitool -t): every command goes over IPMB to that controller.
        uint8_t addr = *cfg_.bridge_target;
        if (ipmi_ctx_set_target(ctx_, nullptr, &addr) < 0) {
            Error f = failure_from_ctx(("bridging to target " + hex2(addr)).c_str(), false, nullptr);
            close();
            return f;
        }
    }
    return {};
}

Result<uint32_t> IpmiLink::power_state(const stockade_ctx *ctx)
{
    Status s = ensure_open(ctx);
    if (!s)
        return s.error();
    FiidObj rs(tmpl_cmd_get_chassis_status_rs);
    if (!rs.obj)
        return Error{STOCKADE_RC_INTERNAL, "ipmi: out of memory"};
    if (ipmi_cmd_get_chassis_status(ctx_, rs.obj) < 0)
        return failure_from_ctx("Get Chassis Status", false, rs.obj);
    uint64_t on = 0;
    if (FIID_OBJ_GET(rs.obj, "current_power_state.power_is_on", &on) < 0)
        return Error{STOCKADE_RC_FAILED, "ipmi " + cfg_.endpoint() + ": Get Chassis Status: malformed reply (" +
                                            fiid_obj_errormsg(rs.obj) + ")"};
    return on ? uint32_t(STOCKADE_POWER_ON) : uint32_t(STOCKADE_POWER_OFF);
}

void IpmiLink::init_crypto()
{
    static std::once_flag once;
    std::call_once(once, [] { (void)ipmi_rmcpplus_init(); });
}

Status IpmiLink::chassis_control(const stockade_ctx *ctx, uint8_t value, const char *what)
{
    Status s = ensure_open(ctx);
    if (!s)
        return s;
    FiidObj rs(tmpl_cmd_chassis_control_rs);
    if (!rs.obj)
        return Error{STOCKADE_RC_INTERNAL, "ipmi: out of memory"};
    if (ipmi_cmd_chassis_control(ctx_, value, rs.obj) < 0)
        return failure_from_ctx((std::string("Chassis Control ") + what).c_str(), false, rs.obj);
    return {};
}

} // namespace stockade::ipmi
