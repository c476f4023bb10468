/*
 * stockade/agent.h -- the stockade fencing agent ABI.
 *
 * This header IS the contract between the stockade host (runner, front-ends) and a fencing agent
 * shared object.  It is plain C99 on purpose: agents may be written in C or C++, built by other
 * compilers and other C++ standard libraries, and must never share C++ objects, allocators or
 * exceptions with the host.  Everything that crosses the boundary is a C type; every buffer is
 * owned by whoever allocated it (stated per function below); nothing is ever freed across it.
 *
 * Shape (after SQLite's sqlite3_vfs and GStreamer's plugin descriptor):
 *   - An agent exports exactly one symbol, STOCKADE_AGENT_ENTRY_SYMBOL, returning a pointer to a
 *     static const stockade_agent descriptor.  Calling it must not touch any device, so the host
 *     can list agents and print metadata safely.
 *   - Every boundary struct starts with { abi_major, struct_size }.  Structs only ever grow at the
 *     end; a reader looks at a field only when struct_size reaches past it (STOCKADE_HAS_FIELD).
 *     A host refuses an agent whose abi_major differs from its own.
 *   - Every entry point takes `uint32_t flags`; an agent rejects bits it does not know with
 *     STOCKADE_CHECK_FLAGS (libvirt's virCheckFlags), so a later meaning can never be ignored.
 *
 * Versions and growth (the rule, after SQLite's iVersion and GStreamer's major/minor):
 *   - abi_major changes only when an agent built for the old one could not work in the new host.
 *     A host loads agents of its own major and of EVERY minor, older or newer:
 *       * newer minor: the host reads only the fields it knows (struct_size / param_struct_size
 *         tell it where the agent's larger structs end), ignores capability bits it does not
 *         know, and never calls an entry point it does not know;
 *       * older minor: the host hands the agent the structs of the agent's own minor.  Minor 0
 *         (ABI 1.0) predates versioned parameters and flags on every entry point; its frozen
 *         layout is stockade/agent_v1_0.h and the host still speaks it.
 *   - From 1.1 on, a minor may only APPEND: fields at the end of a struct, entry points at the
 *     end of the descriptor, new bits.  An agent reads a host field added after its own minor
 *     only when STOCKADE_HAS_FIELD says it is there, and walks parameter arrays with
 *     stockade_param_at() (the stride is the host's struct_size, not the agent's sizeof).
 *   - History: 1.0 first release.  1.1 versioned stockade_param, `flags` on open, close,
 *     status, list and monitor, and the time_needed entry point.  1.2 the prepare entry point.
 *   - A NULL operation pointer means "unsupported"; the host reports that in one place.  The
 *     capability bits must agree with the non-NULL pointers (checked at load).
 *   - Operations return a STOCKADE_RC_* code and write a human-readable reason into the
 *     caller-owned ctx->errbuf.  Power state and verification travel in out-parameters, never in
 *     the return code.
 *
 * Safety rules every agent must keep (fencing is the last line of defence against split brain):
 *   - power(OFF) and power(REBOOT) return STOCKADE_RC_OK only when the agent itself confirmed that
 *     the target is off (read the state back, operator confirmation, proof of death) and set
 *     STOCKADE_VERIFIED_OFF.  A timeout is a failure, never a success.
 *   - Honour ctx->deadline_ms and ctx->is_cancelled(); never block past the deadline.
 *   - Never call exit(), abort(), signal handlers or print to stdout; log through ctx->log.
 *   - Reject flag bits you do not know: STOCKADE_CHECK_FLAGS(flags, <bits you know>, ctx) first
 *     thing in every entry point (close, which cannot fail, ignores them).
 *   - Functions are never called concurrently on one handle; different handles may be used from
 *     different threads at once.
 */
#ifndef STOCKADE_AGENT_H
#define STOCKADE_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version.  A host accepts agents of its own major only, of any minor (see "Versions and
 * growth" above). */
#define STOCKADE_ABI_MAJOR 1u
#define STOCKADE_ABI_MINOR 2u

/* The one symbol an agent exports: `const stockade_agent *stockade_agent_entry(void)`. */
#define STOCKADE_AGENT_ENTRY_SYMBOL "stockade_agent_entry"

/* True when the struct at p (which starts with abi_major, struct_size) is large enough to hold
 * `field`.  Use it before reading any field added after minor 0. */
#define STOCKADE_HAS_FIELD(p, type, field) \
    ((p)->struct_size >= offsetof(type, field) + STOCKADE_FIELD_SIZE(type, field))
#ifdef __cplusplus
#define STOCKADE_FIELD_SIZE(type, field) sizeof(type::field)
#define STOCKADE_CAST(type, expr) reinterpret_cast<type>(expr)
#else
#define STOCKADE_FIELD_SIZE(type, field) sizeof(((type *)0)->field)
#define STOCKADE_CAST(type, expr) ((type)(expr))
#endif

/* First statement of every entry point that has a ctx: refuse flag bits outside `allowed` with
 * STOCKADE_RC_BAD_CONFIG and a reason in ctx->errbuf.  No flags are defined yet, so today every
 * agent writes STOCKADE_CHECK_FLAGS(flags, 0, ctx). */
#define STOCKADE_CHECK_FLAGS(flags, allowed, ctx)                                                    \
    do {                                                                                            \
        if (((flags) & ~(0u | (allowed))) != 0u) {                                                  \
            stockade_flags_error((ctx), __func__, (flags) & ~(0u | (allowed)));                     \
            return STOCKADE_RC_BAD_CONFIG;                                                          \
        }                                                                                           \
    } while (0)

#if defined(__GNUC__)
#define STOCKADE_EXPORT __attribute__((visibility("default")))
#else
#define STOCKADE_EXPORT
#endif

/* ---- Result codes (return value of every operation) ------------------------------------------
 * The host maps each one, in one table, to fence-agents exit codes and cluster-glue S_* codes. */
#define STOCKADE_RC_OK             0u /* done and, for off/reboot, confirmed */
#define STOCKADE_RC_BAD_CONFIG     1u /* parameters missing/invalid, unknown flag bits */
#define STOCKADE_RC_ACCESS_DENIED  2u /* authentication or privilege refused by the device */
#define STOCKADE_RC_UNREACHABLE    3u /* the device did not answer / connection failed */
#define STOCKADE_RC_TIMEOUT        4u /* the deadline passed before the action was confirmed */
#define STOCKADE_RC_UNKNOWN_TARGET 5u /* the target is not one this device can fence */
#define STOCKADE_RC_FAILED         6u /* the device answered but the action did not take effect */
#define STOCKADE_RC_UNSUPPORTED    7u /* this agent or device cannot do this action */
#define STOCKADE_RC_CANCELLED      8u /* ctx->is_cancelled() became true */
#define STOCKADE_RC_INTERNAL       9u /* bug or resource exhaustion inside the agent */
#define STOCKADE_RC_COUNT          10u

/* ---- Actions ------------------------------------------------------------------------------- */
#define STOCKADE_ACTION_OFF    1u /* power the target off (the fencing action) */
#define STOCKADE_ACTION_ON     2u /* power the target on (unfence) */
#define STOCKADE_ACTION_REBOOT 3u /* off, confirm, then on */
#define STOCKADE_ACTION_DIAG   4u /* diagnostic interrupt (NMI) so the victim writes a crash dump */

/* ---- Power states (status out-parameter) --------------------------------------------------- */
#define STOCKADE_POWER_UNKNOWN 0u
#define STOCKADE_POWER_ON      1u
#define STOCKADE_POWER_OFF     2u

/* ---- Verification bits (power out-parameter) ----------------------------------------------- */
#define STOCKADE_VERIFIED_OFF 0x1u /* the target was confirmed off during this call */
#define STOCKADE_VERIFIED_ON  0x2u /* the target was confirmed on at the end of this call */

/* ---- Capabilities (descriptor bitmask; must match the non-NULL operations) ------------------ */
#define STOCKADE_CAP_OFF     0x01u /* mandatory: power() accepts STOCKADE_ACTION_OFF */
#define STOCKADE_CAP_ON      0x02u /* power() accepts STOCKADE_ACTION_ON */
#define STOCKADE_CAP_REBOOT  0x04u /* power() accepts STOCKADE_ACTION_REBOOT (else host does off+on) */
#define STOCKADE_CAP_STATUS  0x08u /* status() is implemented */
#define STOCKADE_CAP_LIST    0x10u /* list() is implemented */
#define STOCKADE_CAP_MONITOR 0x20u /* monitor() is implemented */
#define STOCKADE_CAP_DIAG    0x40u /* power() accepts STOCKADE_ACTION_DIAG */
#define STOCKADE_CAP_EXTRA_PARAMS 0x80u /* open() also receives parameters that are not in the table,
                                           unchanged (wrappers that pass them on to another agent or
                                           program); names containing "pass" or "secret" are then
                                           treated as secret by the host */
#define STOCKADE_CAP_UNFENCE 0x100u /* ON is an unfencing action (storage fencing): it re-admits the
                                       node that runs it, so a cluster runs it automatically on
                                       each node as that node joins, on the node itself
                                       (fence-agents metadata automatic="1" on_target="1"); the
                                       host never uses it as the second half of a reboot */
#define STOCKADE_CAP_WAITS   0x200u /* the agent's work is waiting (an operator's answer, a standby
                                       wait) that a repeated attempt would start again: under
                                       Pacemaker one attempt (pcmk_<action>_retries=1) with a
                                       timeout of time_needed() is advised.  A power device whose
                                       quick failures a retry may cure leaves it clear. */
/* A host ignores capability bits it does not know (they come from a newer minor). */

/* ---- Log levels (syslog numbering) --------------------------------------------------------- */
#define STOCKADE_LOG_CRIT    2
#define STOCKADE_LOG_ERR     3
#define STOCKADE_LOG_WARNING 4
#define STOCKADE_LOG_NOTICE  5
#define STOCKADE_LOG_INFO    6
#define STOCKADE_LOG_DEBUG   7

/* ---- Parameter metadata -------------------------------------------------------------------- */
#define STOCKADE_PARAM_STRING  1u
#define STOCKADE_PARAM_INTEGER 2u
#define STOCKADE_PARAM_BOOLEAN 3u /* values: 1|0|yes|no|on|off|true|false */
#define STOCKADE_PARAM_SECONDS 4u /* non-negative integer seconds */
#define STOCKADE_PARAM_SELECT  5u /* one of `choices` (case-insensitive) */

#define STOCKADE_PARAM_REQUIRED      0x1u /* open() fails without it */
#define STOCKADE_PARAM_SECRET        0x2u /* never logged, never on argv/env; masked in output */
#define STOCKADE_PARAM_HOST_SUPPLIED 0x4u /* the front-end fills it from the target (plug/port) */

typedef struct stockade_param_desc {
    uint32_t abi_major;
    uint32_t struct_size;
    const char *name;          /* canonical name, [a-z0-9_] */
    uint32_t type;             /* STOCKADE_PARAM_* */
    uint32_t flags;            /* STOCKADE_PARAM_REQUIRED | ... */
    const char *default_value; /* NULL = no default */
    const char *choices;       /* SELECT only: '|'-separated, e.g. "onoff|cycle"; else NULL */
    const char *aliases;       /* space-separated other accepted names (fence-agents, cluster-glue);
                                  "" or NULL for none */
    const char *description;   /* one line, English */
} stockade_param_desc;

/* Opens a designated initializer of a parameter row / the descriptor with the version header:
 *   {STOCKADE_PARAM_DESC_HEADER, .name = "ip", .type = STOCKADE_PARAM_STRING, ...}
 *   {STOCKADE_AGENT_HEADER, .capabilities = ..., .name = "sim", ...}
 * Fields left out are zero/NULL. */
#define STOCKADE_PARAM_DESC_HEADER .abi_major = STOCKADE_ABI_MAJOR, .struct_size = sizeof(stockade_param_desc)
#define STOCKADE_AGENT_HEADER \
    .abi_major = STOCKADE_ABI_MAJOR, .struct_size = sizeof(stockade_agent), .abi_minor = STOCKADE_ABI_MINOR

/* A configured parameter handed to open() and time_needed(): canonical name (aliases already
 * resolved by the host) and its value as text.  Borrowed for the duration of the call only.
 * The host fills struct_size with ITS sizeof(stockade_param), the same in every element: walk
 * the array with stockade_param_at() and read a field added after minor 1 only when
 * STOCKADE_HAS_FIELD says it is there.  (Minor-0 agents get agent_v1_0.h's {name, value}.) */
typedef struct stockade_param {
    uint32_t abi_major;
    uint32_t struct_size;
    const char *name;
    const char *value;
} stockade_param;

/* ---- The per-call context, supplied by the host --------------------------------------------- */
typedef struct stockade_ctx stockade_ctx;
struct stockade_ctx {
    uint32_t abi_major;
    uint32_t struct_size;

    /* Absolute deadline on CLOCK_MONOTONIC, in milliseconds; 0 = none.  See stockade_remaining_ms. */
    int64_t deadline_ms;

    /* Returns non-zero once the host wants the call to stop as soon as possible. */
    int (*is_cancelled)(const stockade_ctx *ctx);

    /* Log a line (no trailing newline needed).  msg is borrowed; the host copies it.  Never pass
     * secret parameter values. */
    void (*log)(const stockade_ctx *ctx, int level, const char *msg);

    /* Caller-owned buffer for the reason of a non-OK result.  Write with snprintf-style
     * truncation; always NUL-terminated when errbuf_size > 0. */
    char *errbuf;
    size_t errbuf_size;

    /* Run another agent by name (the SFEX wrapper uses this to call the real device).  The host
     * opens `agent` with `params` (names may be aliases), runs `action` (a STOCKADE_ACTION_*, or 0
     * for status) on `target` under its own process isolation, killing it at timeout_ms, then
     * closes it.  *power_state (may be NULL) gets the state for status, *verified (may be NULL)
     * the STOCKADE_VERIFIED_* bits for power actions; the reason of a failure goes to
     * err/err_size (caller-owned).  Returns a STOCKADE_RC_* code.  May be NULL in a host that
     * cannot nest agents (then treat it as STOCKADE_RC_UNSUPPORTED). */
    uint32_t (*invoke)(const stockade_ctx *ctx, const char *agent, const stockade_param *params,
                       size_t n_params, uint32_t action, const char *target, uint32_t timeout_ms,
                       uint32_t *power_state, uint32_t *verified, char *err, size_t err_size);

    /* Opaque host data; agents must not touch it. */
    void *host;
};

/* Callback for list(): one target, its name and an optional alias (NULL or "").  Both strings
 * are borrowed for the duration of the callback; the host copies them. */
typedef void (*stockade_list_fn)(void *emit_ctx, const char *name, const char *alias);

/* ---- The agent descriptor ------------------------------------------------------------------ */
typedef struct stockade_agent {
    uint32_t abi_major;         /* STOCKADE_ABI_MAJOR the agent was built against */
    uint32_t struct_size;       /* sizeof(stockade_agent) as the agent saw it */
    uint32_t abi_minor;         /* STOCKADE_ABI_MINOR the agent was built against */
    uint32_t capabilities;      /* STOCKADE_CAP_* */
    const char *name;           /* short name, [a-z0-9_-], unique in the search path */
    const char *version;        /* agent version, free text */
    const char *summary;        /* one line */
    const char *description;    /* a paragraph; may be "" */

    const stockade_param_desc *params; /* table of n_params entries, static storage */
    size_t n_params;
    uint32_t param_struct_size;        /* sizeof(stockade_param_desc) as the agent saw it: the
                                          stride of `params` */

    /* Every entry point below takes `flags`; none is defined yet: the host passes 0 and the
     * agent refuses any other bit with STOCKADE_CHECK_FLAGS(flags, 0, ctx). */

    /* Create a handle from validated parameters.  params is borrowed for the call.  On success
     * *handle is set (owned by the agent until close()); on failure nothing is allocated.
     * Opening need not contact the device. */
    uint32_t (*open)(const stockade_param *params, size_t n_params, const stockade_ctx *ctx,
                     uint32_t flags, void **handle);

    /* Release everything open() created.  handle may be NULL.  Never fails, so it ignores flag
     * bits it does not know. */
    void (*close)(void *handle, uint32_t flags);

    /* Perform action (STOCKADE_ACTION_*) on target.  *verified (never NULL) gets
     * STOCKADE_VERIFIED_* bits.  REBOOT returns OK when the off part was confirmed, even if the
     * power-on then failed (log that as a warning and leave STOCKADE_VERIFIED_ON clear). */
    uint32_t (*power)(void *handle, const stockade_ctx *ctx, uint32_t action, const char *target,
                      uint32_t flags, uint32_t *verified);

    /* Read the target's power state into *power_state (never NULL).  NULL = unsupported. */
    uint32_t (*status)(void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags,
                       uint32_t *power_state);

    /* Emit every target this device can fence.  NULL = unsupported. */
    uint32_t (*list)(void *handle, const stockade_ctx *ctx, uint32_t flags, stockade_list_fn emit,
                     void *emit_ctx);

    /* Check the device itself is reachable and usable (not a target).  NULL = unsupported. */
    uint32_t (*monitor)(void *handle, const stockade_ctx *ctx, uint32_t flags);

    /* ---- added in 1.1 (read only when STOCKADE_HAS_FIELD(desc, stockade_agent, ...)) ---- */

    /* How long this agent needs, in milliseconds, for `action` (a STOCKADE_ACTION_*, or 0 for
     * status/list/monitor) with these parameters: open included, its own waits included
     * (an operator's time to answer, a standby wait, a death check, a nested device's limit).
     * The front-ends and the runner give each such call at least this long instead of their
     * generic power-device formula, and refuse at validate/monitor time a configuration whose
     * caller timeout is shorter.  Pure: parameters in, a number out; no I/O, no device, no
     * blocking, because the host may call it in its own process.  params are validated and
     * complete (defaults filled) exactly as for open().  Returning STOCKADE_RC_UNSUPPORTED
     * makes no statement for that action; NULL makes none for any: the host's formula applies
     * (a plain power device). */
    uint32_t (*time_needed)(const stockade_param *params, size_t n_params, const stockade_ctx *ctx,
                            uint32_t action, uint32_t flags, uint32_t *needed_ms);

    /* ---- added in 1.2 (read only when STOCKADE_HAS_FIELD(desc, stockade_agent, prepare)) ---- */

    /* Work every session of this agent would otherwise repeat in its own process: loading and
     * initialising libraries (a dlopen, a library's global init).  The host calls it at most once
     * per process, after loading the agent file and before that process's first open() of the
     * agent; the fork template calls it before it forks any session, so every session inherits
     * the result instead of paying for it.  Process-wide and without parameters or ctx: it must
     * not start threads (the template forks only while it has one thread; if prepare leaves
     * another, sessions are started without it), leave descriptors open, connect anywhere, read
     * secrets or touch a device.  What it creates belongs to the agent for the life of the
     * process (never freed by the host).  Every open() of the agent in that process waits for it
     * to return.  A result other than STOCKADE_RC_OK only means "not prepared":
     * open() must still work (do the same work lazily there).  NULL = nothing to prepare. */
    uint32_t (*prepare)(uint32_t flags);
} stockade_agent;

typedef const stockade_agent *(*stockade_agent_entry_fn)(void);

/* ---- Helpers for agents (header-only, C) --------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds: the clock ctx->deadline_ms is expressed in. */
static inline int64_t stockade_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The i-th parameter of an array the host handed over (stride = the host's struct_size). */
static inline const stockade_param *stockade_param_at(const stockade_param *params, size_t i)
{
    return STOCKADE_CAST(const stockade_param *, STOCKADE_CAST(const char *, params) + i * params->struct_size);
}

/* Used by STOCKADE_CHECK_FLAGS: names the entry point and the refused bits in ctx->errbuf. */
static inline void stockade_flags_error(const stockade_ctx *ctx, const char *where, unsigned long bits)
{
    if (ctx && ctx->errbuf && ctx->errbuf_size)
        snprintf(ctx->errbuf, ctx->errbuf_size, "%s: unknown flag bits 0x%lx (the host is newer than this agent)",
                 where, bits);
}

/* Milliseconds left before ctx->deadline_ms (INT64_MAX when there is no deadline, 0 when past). */
static inline int64_t stockade_remaining_ms(const stockade_ctx *ctx)
{
    int64_t now;
    if (ctx->deadline_ms <= 0)
        return INT64_MAX;
    now = stockade_monotonic_ms();
    return ctx->deadline_ms > now ? ctx->deadline_ms - now : 0;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* STOCKADE_AGENT_H */
