/*
 * testagent -- a test-only fencing agent whose behaviour is chosen by its parameters.
 *
 * Written in plain C against stockade/agent.h to prove the ABI is usable from C.  It keeps each
 * target's power state in a file (state_file, "on"/"off"), so a sequence of operations across
 * separate agent-host processes behaves like a real device, and appends every call to a journal
 * file so tests can assert the order of operations across devices.  Never installed.
 *
 * Built three ways to prove the ABI's growth rule (agent.h, "Versions and growth"):
 *   - as is: today's minor;
 *   - TESTAGENT_V1_0: the frozen ABI 1.0 layout (agent_v1_0.h): unversioned parameters, no flags
 *     on open/close/status/list/monitor, abi_minor 0;
 *   - TESTAGENT_LATER_MINOR: as if from a later minor: a larger descriptor with an entry point
 *     today's host does not know, larger parameter rows, a larger stockade_param expected (with
 *     a field read only when the host provides it), and a capability bit no host knows yet.
 *   - TESTAGENT_V1_1: the ABI 1.1 descriptor (it ends at time_needed; its prepare, which a 1.1
 *     agent could not have, must never be called);
 *   - TESTAGENT_PREPARE_THREAD: a prepare that breaks its rule and leaves a thread running.
 *   (TESTAGENT_ABI_MAJOR=2 builds one the host must refuse.)
 * With report_prepare=1, open() journals how often this process ran prepare, in which process
 * (by=) and in which process the session runs (in=): a session forked from a prepared template
 * shows count=1 and by != in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include "stockade/agent.h"
#ifdef TESTAGENT_V1_0
#include "stockade/agent_v1_0.h"
#endif

#ifndef TESTAGENT_ABI_MAJOR
#define TESTAGENT_ABI_MAJOR STOCKADE_ABI_MAJOR
#endif
/* Variants with fewer (or more) capabilities are built from this file for the fence sequence
 * table (docs/fence-sequence.md): tests/CMakeLists.txt sets both. */
#ifndef TESTAGENT_NAME
#define TESTAGENT_NAME "testagent"
#endif
#ifndef TESTAGENT_CAPS
#define TESTAGENT_CAPS                                                                                  \
    (STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | \
     STOCKADE_CAP_MONITOR)
#endif

typedef struct {
    char mode[32];        /* succeed|fail|hang|crash|abort|unreachable|denied|timeout */
    char status_mode[32]; /* file|on|off|fail|hang */
    char state_file[1024];
    char journal[1024];
    char pid_file[1024];
    char fail_until_file[1024];
    char hostlist[1024];
    char label[64];
    long delay_ms;
    int verify;
    int fork_child;
    int report_prepare;
} testagent;

#if !defined(TESTAGENT_LATER_MINOR)
#define ROW(...) {STOCKADE_PARAM_DESC_HEADER, __VA_ARGS__}
static const stockade_param_desc params[] = {
    ROW(.name = "mode", .type = STOCKADE_PARAM_SELECT, .default_value = "succeed",
        .choices = "succeed|fail|hang|crash|abort|unreachable|denied|timeout", .aliases = "behaviour",
        .description = "What power actions do"),
    ROW(.name = "status_mode", .type = STOCKADE_PARAM_SELECT, .default_value = "file", .choices = "file|on|off|fail|hang",
        .description = "What status reports (file = the state file, default on)"),
    ROW(.name = "state_file", .type = STOCKADE_PARAM_STRING,
        .description = "File holding the simulated power state (on/off)"),
    ROW(.name = "journal", .type = STOCKADE_PARAM_STRING, .description = "File every call is appended to"),
    ROW(.name = "pid_file", .type = STOCKADE_PARAM_STRING,
        .description = "File the agent process (and its forked child) write their pids to"),
    ROW(.name = "fail_until_file", .type = STOCKADE_PARAM_STRING,
        .description = "Power actions fail until this file exists"),
    ROW(.name = "hostlist", .type = STOCKADE_PARAM_STRING, .aliases = "pcmk_host_list",
        .description = "Targets accepted (space/comma separated); empty = any"),
    ROW(.name = "label", .type = STOCKADE_PARAM_STRING, .default_value = "test",
        .description = "Name written to the journal"),
    ROW(.name = "delay_ms", .type = STOCKADE_PARAM_INTEGER, .default_value = "0",
        .description = "Sleep this long before every operation"),
    ROW(.name = "verify", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "1",
        .description = "Report the power action as verified"),
    ROW(.name = "fork_child", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
        .description = "Start a child process before hanging (tests tree kills)"),
    ROW(.name = "password", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_SECRET, .aliases = "passwd",
        .description = "A secret; never shown"),
    ROW(.name = "needed_ms", .type = STOCKADE_PARAM_INTEGER, .default_value = "0",
        .description = "What time_needed states for power actions (0 = no statement, the host's formula applies)"),
    ROW(.name = "report_prepare", .type = STOCKADE_PARAM_BOOLEAN, .default_value = "0",
        .description = "open() journals the calls of prepare this process saw"),
};
#undef ROW
#endif


__attribute__((format(printf, 2, 3))) static void set_err(const stockade_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    if (!ctx->errbuf || !ctx->errbuf_size)
        return;
    va_start(ap, fmt);
    vsnprintf(ctx->errbuf, ctx->errbuf_size, fmt, ap);
    va_end(ap);
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static void journal(const testagent *t, const char *what, const char *target)
{
    FILE *f;
    if (!t->journal[0])
        return;
    f = fopen(t->journal, "a");
    if (!f)
        return;
    fprintf(f, "%s %s %s\n", t->label, what, target ? target : "-");
    fclose(f);
}

static void sleep_ms(const stockade_ctx *ctx, long ms)
{
    while (ms > 0 && !(ctx->is_cancelled && ctx->is_cancelled(ctx))) {
        long step = ms > 20 ? 20 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static void write_pid(const testagent *t, pid_t pid)
{
    FILE *f;
    if (!t->pid_file[0])
        return;
    f = fopen(t->pid_file, "a");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

static void hang(const testagent *t)
{
    write_pid(t, getpid());
    if (t->fork_child) {
        pid_t c = fork();
        if (c == 0) {
            setsid(); /* even a child that leaves the process group must die */
            for (;;)
                pause();
        }
        if (c > 0)
            write_pid(t, c);
    }
    for (;;)
        pause();
}

static int target_ok(const testagent *t, const char *target)
{
    char buf[1024];
    char *save = NULL, *tok;
    if (!t->hostlist[0])
        return 1;
    copy(buf, sizeof buf, t->hostlist);
    for (tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
        if (strcasecmp(tok, target) == 0)
            return 1;
    return 0;
}

static uint32_t read_state(const testagent *t)
{
    char buf[16] = {0};
    FILE *f;
    if (!t->state_file[0])
        return STOCKADE_POWER_ON;
    f = fopen(t->state_file, "r");
    if (!f)
        return STOCKADE_POWER_ON;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    return strncmp(buf, "off", 3) == 0 ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON;
}

static void write_state(const testagent *t, uint32_t st)
{
    FILE *f;
    if (!t->state_file[0])
        return;
    f = fopen(t->state_file, "w");
    if (f) {
        fputs(st == STOCKADE_POWER_OFF ? "off\n" : "on\n", f);
        fclose(f);
    }
}

/* One parameter; 0 when the name is unknown. */
static int take_param(testagent *t, const char *k, const char *v)
{
    if (!strcmp(k, "mode")) copy(t->mode, sizeof t->mode, v);
    else if (!strcmp(k, "status_mode")) copy(t->status_mode, sizeof t->status_mode, v);
    else if (!strcmp(k, "state_file")) copy(t->state_file, sizeof t->state_file, v);
    else if (!strcmp(k, "journal")) copy(t->journal, sizeof t->journal, v);
    else if (!strcmp(k, "pid_file")) copy(t->pid_file, sizeof t->pid_file, v);
    else if (!strcmp(k, "fail_until_file")) copy(t->fail_until_file, sizeof t->fail_until_file, v);
    else if (!strcmp(k, "hostlist")) copy(t->hostlist, sizeof t->hostlist, v);
    else if (!strcmp(k, "label")) copy(t->label, sizeof t->label, v);
    else if (!strcmp(k, "delay_ms")) t->delay_ms = strtol(v, NULL, 10);
    else if (!strcmp(k, "verify")) t->verify = !strcmp(v, "1");
    else if (!strcmp(k, "fork_child")) t->fork_child = !strcmp(v, "1");
    else if (!strcmp(k, "password")) { /* accepted, never used or shown */ }
    else if (!strcmp(k, "needed_ms")) { /* read by time_needed only */ }
    else if (!strcmp(k, "report_prepare")) t->report_prepare = !strcmp(v, "1");
    else return 0;
    return 1;
}

static testagent *new_testagent(const stockade_ctx *ctx)
{
    testagent *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(ctx, "%s", "out of memory");
        return NULL;
    }
    copy(t->mode, sizeof t->mode, "succeed");
    copy(t->status_mode, sizeof t->status_mode, "file");
    copy(t->label, sizeof t->label, "test");
    t->verify = 1;
    return t;
}

static uint32_t unknown_param(const stockade_ctx *ctx, testagent *t, const char *k)
{
    set_err(ctx, "unknown parameter '%s'", k);
    free(t);
    return STOCKADE_RC_BAD_CONFIG;
}

/* What prepare did in this process (a forked session inherits the template's values). */
static int prepare_count;
static long prepare_pid;

static void report_prepare(const testagent *t)
{
    char buf[96];
    snprintf(buf, sizeof buf, "count=%d,by=%ld,in=%ld", prepare_count, prepare_pid, (long)getpid());
    journal(t, "prepared", buf);
}

static uint32_t ta_power(void *h, const stockade_ctx *ctx, uint32_t action, const char *target, uint32_t flags,
                         uint32_t *verified)
{
    testagent *t = h;
    const char *name = action == STOCKADE_ACTION_OFF ? "off" : action == STOCKADE_ACTION_ON ? "on"
                     : action == STOCKADE_ACTION_REBOOT ? "reboot" : action == STOCKADE_ACTION_DIAG ? "diag" : "?";
    *verified = 0;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    journal(t, name, target);
    if (ctx->log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s %s (mode %s)", name, target, t->mode);
        ctx->log(ctx, STOCKADE_LOG_INFO, msg);
    }
    sleep_ms(ctx, t->delay_ms);
    if (!target_ok(t, target)) {
        set_err(ctx, "target '%s' is not in hostlist", target);
        return STOCKADE_RC_UNKNOWN_TARGET;
    }
    if (t->fail_until_file[0] && access(t->fail_until_file, F_OK) != 0) {
        set_err(ctx, "failing until %s exists", t->fail_until_file);
        return STOCKADE_RC_FAILED;
    }
    if (!strcmp(t->mode, "fail")) { set_err(ctx, "%s", "simulated failure"); return STOCKADE_RC_FAILED; }
    if (!strcmp(t->mode, "unreachable")) { set_err(ctx, "%s", "simulated: no route"); return STOCKADE_RC_UNREACHABLE; }
    if (!strcmp(t->mode, "denied")) { set_err(ctx, "%s", "simulated: bad password"); return STOCKADE_RC_ACCESS_DENIED; }
    if (!strcmp(t->mode, "timeout")) { set_err(ctx, "%s", "simulated: timed out"); return STOCKADE_RC_TIMEOUT; }
    if (!strcmp(t->mode, "hang")) hang(t);
    if (!strcmp(t->mode, "crash")) { volatile int *p = NULL; *p = 1; }
    if (!strcmp(t->mode, "abort")) abort();
    if (action == STOCKADE_ACTION_OFF || action == STOCKADE_ACTION_REBOOT) {
        write_state(t, STOCKADE_POWER_OFF);
        if (t->verify)
            *verified |= STOCKADE_VERIFIED_OFF;
    }
    if (action == STOCKADE_ACTION_ON || action == STOCKADE_ACTION_REBOOT) {
        write_state(t, STOCKADE_POWER_ON);
        if (t->verify)
            *verified |= STOCKADE_VERIFIED_ON;
    }
    if (action == STOCKADE_ACTION_DIAG && (TESTAGENT_CAPS & STOCKADE_CAP_DIAG))
        return STOCKADE_RC_OK; /* an NMI changes no power state */
    if (action != STOCKADE_ACTION_OFF && action != STOCKADE_ACTION_ON && action != STOCKADE_ACTION_REBOOT) {
        set_err(ctx, "%s", "unsupported action");
        return STOCKADE_RC_UNSUPPORTED;
    }
    return STOCKADE_RC_OK;
}

static uint32_t status_impl(void *h, const stockade_ctx *ctx, const char *target, uint32_t *state)
{
    testagent *t = h;
    journal(t, "status", target);
    sleep_ms(ctx, t->delay_ms);
    if (!target_ok(t, target)) {
        set_err(ctx, "target '%s' is not in hostlist", target);
        return STOCKADE_RC_UNKNOWN_TARGET;
    }
    if (!strcmp(t->status_mode, "hang")) hang(t);
    if (!strcmp(t->status_mode, "fail")) { set_err(ctx, "%s", "simulated status failure"); return STOCKADE_RC_UNREACHABLE; }
    if (!strcmp(t->status_mode, "on")) *state = STOCKADE_POWER_ON;
    else if (!strcmp(t->status_mode, "off")) *state = STOCKADE_POWER_OFF;
    else *state = read_state(t);
    return STOCKADE_RC_OK;
}

static uint32_t list_impl(void *h, const stockade_ctx *ctx, stockade_list_fn emit, void *ectx)
{
    testagent *t = h;
    char buf[1024];
    char *save = NULL, *tok;
    (void)ctx;
    copy(buf, sizeof buf, t->hostlist);
    for (tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
        emit(ectx, tok, "");
    return STOCKADE_RC_OK;
}

static uint32_t monitor_impl(void *h, const stockade_ctx *ctx)
{
    testagent *t = h;
    if (!strcmp(t->mode, "unreachable")) {
        set_err(ctx, "%s", "simulated: no route");
        return STOCKADE_RC_UNREACHABLE;
    }
    return STOCKADE_RC_OK;
}

static const char *const testagent_summary = "Test-only agent whose behaviour is chosen by parameters";
static const char *const testagent_description =
    "Simulates a power switch with a state file; can fail, hang, crash or lie on request.";

#if defined(TESTAGENT_V1_0)
/* ---- ABI 1.0: {name, value} parameters, no flags but on power() ------------------------------ */

static uint32_t ta_open(const stockade_v1_0_param *p, size_t n, const stockade_ctx *ctx, void **handle)
{
    size_t i;
    testagent *t = new_testagent(ctx);
    if (!t)
        return STOCKADE_RC_INTERNAL;
    for (i = 0; i < n; ++i)
        if (!take_param(t, p[i].name, p[i].value))
            return unknown_param(ctx, t, p[i].name);
    journal(t, "open", "abi-1.0");
    if (t->report_prepare)
        report_prepare(t);
    *handle = t;
    return STOCKADE_RC_OK;
}

static void ta_close(void *h)
{
    free(h);
}

static const stockade_v1_0_agent descriptor = {
    .abi_major = TESTAGENT_ABI_MAJOR,
    .struct_size = sizeof(stockade_v1_0_agent),
    .abi_minor = 0,
    .capabilities = TESTAGENT_CAPS,
    .name = TESTAGENT_NAME,
    .version = "1",
    .summary = testagent_summary,
    .description = testagent_description,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .param_struct_size = sizeof(stockade_param_desc),
    .open = ta_open,
    .close = ta_close,
    .power = ta_power,
    .status = (TESTAGENT_CAPS & STOCKADE_CAP_STATUS) ? status_impl : NULL,
    .list = list_impl,
    .monitor = monitor_impl,
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    /* The 1.0 descriptor has the same field offsets; the host reads it as stockade_v1_0_agent
     * because abi_minor is 0. */
    return (const stockade_agent *)(const void *)&descriptor;
}

#else
/* ---- today's minor (and a later one below) ---------------------------------------------------- */

#if defined(TESTAGENT_LATER_MINOR)
/* What a later minor might append (invented for the test: no host knows these fields). */
typedef struct {
    stockade_param base;
    uint32_t origin; /* where the value came from */
} later_param;
typedef struct {
    stockade_ctx base;
    uint64_t trace_id;
} later_ctx;
#endif

static uint32_t ta_open(const stockade_param *p, size_t n, const stockade_ctx *ctx, uint32_t flags, void **handle)
{
    size_t i;
    testagent *t;
    int later_fields = 0;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    t = new_testagent(ctx);
    if (!t)
        return STOCKADE_RC_INTERNAL;
    for (i = 0; i < n; ++i) {
        const stockade_param *q = stockade_param_at(p, i);
#if defined(TESTAGENT_LATER_MINOR)
        if (STOCKADE_HAS_FIELD(q, later_param, origin))
            later_fields = 1;
#endif
        if (!take_param(t, q->name, q->value))
            return unknown_param(ctx, t, q->name);
    }
#if defined(TESTAGENT_LATER_MINOR)
    if (STOCKADE_HAS_FIELD(ctx, later_ctx, trace_id))
        later_fields = 1;
    journal(t, "open", later_fields ? "later-fields-present" : "later-fields-absent");
    t->report_prepare = 1;
#else
    (void)later_fields;
#endif
    if (t->report_prepare)
        report_prepare(t);
    *handle = t;
    return STOCKADE_RC_OK;
}

static void ta_close(void *h, uint32_t flags)
{
    (void)flags; /* none defined; close cannot fail */
    free(h);
}

static uint32_t ta_status(void *h, const stockade_ctx *ctx, const char *target, uint32_t flags, uint32_t *state)
{
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    return status_impl(h, ctx, target, state);
}

static uint32_t ta_list(void *h, const stockade_ctx *ctx, uint32_t flags, stockade_list_fn emit, void *ectx)
{
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    return list_impl(h, ctx, emit, ectx);
}

static uint32_t ta_monitor(void *h, const stockade_ctx *ctx, uint32_t flags)
{
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    return monitor_impl(h, ctx);
}

/* needed_ms for power actions; no statement (the host's formula) when it is 0 or for status. */
static uint32_t ta_time_needed(const stockade_param *p, size_t n, const stockade_ctx *ctx, uint32_t action,
                               uint32_t flags, uint32_t *needed_ms)
{
    size_t i;
    long v = 0;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    for (i = 0; i < n; ++i)
        if (!strcmp(stockade_param_at(p, i)->name, "needed_ms"))
            v = strtol(stockade_param_at(p, i)->value, NULL, 10);
    if (v <= 0 || action == 0)
        return STOCKADE_RC_UNSUPPORTED;
    *needed_ms = (uint32_t)v;
    return STOCKADE_RC_OK;
}

#if defined(TESTAGENT_PREPARE_THREAD)
static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}
#endif

static uint32_t ta_prepare(uint32_t flags)
{
    STOCKADE_CHECK_FLAGS(flags, 0, (const stockade_ctx *)NULL);
    ++prepare_count;
    prepare_pid = (long)getpid();
#if defined(TESTAGENT_PREPARE_THREAD)
    {
        pthread_t th;
        if (pthread_create(&th, NULL, idle_thread, NULL) == 0)
            pthread_detach(th);
    }
#endif
    return STOCKADE_RC_OK;
}

#if defined(TESTAGENT_LATER_MINOR)
/* A later minor's larger parameter row and descriptor, and a capability bit no host knows. */
typedef struct {
    stockade_param_desc base;
    const char *unit;
    uint32_t role;
} later_param_desc;

typedef struct {
    stockade_agent base;
    uint32_t (*fence_check)(void *handle, const stockade_ctx *ctx, uint32_t flags);
    void *reserved[4];
} later_agent;

#define TESTAGENT_CAP_LATER 0x40000000u
#define LATER_ROW(...) {.base = {.abi_major = STOCKADE_ABI_MAJOR, .struct_size = sizeof(later_param_desc), __VA_ARGS__}}

static const later_param_desc later_params[] = {
    LATER_ROW(.name = "mode", .type = STOCKADE_PARAM_SELECT, .default_value = "succeed",
              .choices = "succeed|fail|hang|crash|abort|unreachable|denied|timeout", .description = "power actions"),
    LATER_ROW(.name = "status_mode", .type = STOCKADE_PARAM_SELECT, .default_value = "file",
              .choices = "file|on|off|fail|hang", .description = "what status reports"),
    LATER_ROW(.name = "state_file", .type = STOCKADE_PARAM_STRING, .description = "simulated power state"),
    LATER_ROW(.name = "journal", .type = STOCKADE_PARAM_STRING, .description = "call journal"),
    LATER_ROW(.name = "hostlist", .type = STOCKADE_PARAM_STRING, .aliases = "pcmk_host_list",
              .description = "accepted targets"),
    LATER_ROW(.name = "label", .type = STOCKADE_PARAM_STRING, .default_value = "later", .description = "journal name"),
    LATER_ROW(.name = "needed_ms", .type = STOCKADE_PARAM_INTEGER, .default_value = "0",
              .description = "time_needed for power actions"),
};
#undef LATER_ROW

static uint32_t ta_fence_check(void *h, const stockade_ctx *ctx, uint32_t flags)
{
    (void)h;
    (void)flags;
    set_err(ctx, "%s", "a host that does not know fence_check must never call it");
    return STOCKADE_RC_INTERNAL;
}

static const later_agent descriptor = {
    .base =
        {
            .abi_major = TESTAGENT_ABI_MAJOR,
            .struct_size = sizeof(later_agent),
            .abi_minor = STOCKADE_ABI_MINOR + 1,
            .capabilities = TESTAGENT_CAPS | TESTAGENT_CAP_LATER,
            .name = "testagent",
            .version = "later",
            .summary = testagent_summary,
            .description = testagent_description,
            .params = &later_params[0].base,
            .n_params = sizeof later_params / sizeof later_params[0],
            .param_struct_size = sizeof(later_param_desc),
            .open = ta_open,
            .close = ta_close,
            .power = ta_power,
            .status = ta_status,
            .list = ta_list,
            .monitor = ta_monitor,
            .time_needed = ta_time_needed,
            .prepare = ta_prepare,
        },
    .fence_check = ta_fence_check,
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &descriptor.base;
}

#else
static const stockade_agent descriptor = {
    .abi_major = TESTAGENT_ABI_MAJOR,
#if defined(TESTAGENT_V1_1)
    .struct_size = offsetof(stockade_agent, prepare), /* 1.1 ended at time_needed */
    .abi_minor = 1,
#else
    .struct_size = sizeof(stockade_agent),
    .abi_minor = STOCKADE_ABI_MINOR,
#endif
    .capabilities = TESTAGENT_CAPS,
    .name = TESTAGENT_NAME,
    .version = "1",
    .summary = testagent_summary,
    .description = testagent_description,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .param_struct_size = sizeof(stockade_param_desc),
    .open = ta_open,
    .close = ta_close,
    .power = ta_power,
    .status = (TESTAGENT_CAPS & STOCKADE_CAP_STATUS) ? ta_status : NULL,
    .list = ta_list,
    .monitor = ta_monitor,
    .time_needed = ta_time_needed,
    .prepare = ta_prepare, /* past a 1.1 descriptor's end: a host must not see it there */
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &descriptor;
}
#endif
#endif
