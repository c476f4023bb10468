/*
 * testagent -- a test-only fencing agent whose behaviour is chosen by its parameters.
 *
 * Written in plain C against stockade/agent.h to prove the ABI is usable from C.  It keeps each
 * target's power state in a file (state_file, "on"/"off"), so a sequence of operations across
 * separate agent-host processes behaves like a real device, and appends every call to a journal
 * file so tests can assert the order of operations across devices.  Never installed.
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
#include <unistd.h>

#include "stockade/agent.h"

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
} testagent;

static const stockade_param_desc params[] = {
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "mode", STOCKADE_PARAM_SELECT, 0, "succeed",
     "succeed|fail|hang|crash|abort|unreachable|denied|timeout", "behaviour", "What power actions do"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "status_mode", STOCKADE_PARAM_SELECT, 0, "file",
     "file|on|off|fail|hang", NULL, "What status reports (file = the state file, default on)"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "state_file", STOCKADE_PARAM_STRING, 0, NULL, NULL, NULL,
     "File holding the simulated power state (on/off)"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "journal", STOCKADE_PARAM_STRING, 0, NULL, NULL, NULL,
     "File every call is appended to"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "pid_file", STOCKADE_PARAM_STRING, 0, NULL, NULL, NULL,
     "File the agent process (and its forked child) write their pids to"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "fail_until_file", STOCKADE_PARAM_STRING, 0, NULL, NULL, NULL,
     "Power actions fail until this file exists"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "hostlist", STOCKADE_PARAM_STRING, 0, NULL, NULL,
     "pcmk_host_list", "Targets accepted (space/comma separated); empty = any"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "label", STOCKADE_PARAM_STRING, 0, "test", NULL, NULL,
     "Name written to the journal"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "delay_ms", STOCKADE_PARAM_INTEGER, 0, "0", NULL, NULL,
     "Sleep this long before every operation"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "verify", STOCKADE_PARAM_BOOLEAN, 0, "1", NULL, NULL,
     "Report the power action as verified"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "fork_child", STOCKADE_PARAM_BOOLEAN, 0, "0", NULL, NULL,
     "Start a child process before hanging (tests tree kills)"},
    {STOCKADE_ABI_MAJOR, sizeof(stockade_param_desc), "password", STOCKADE_PARAM_STRING, STOCKADE_PARAM_SECRET, NULL,
     NULL, "passwd", "A secret; never shown"},
};

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

static uint32_t ta_open(const stockade_param *p, size_t n, const stockade_ctx *ctx, void **handle)
{
    size_t i;
    testagent *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(ctx, "%s", "out of memory");
        return STOCKADE_RC_INTERNAL;
    }
    copy(t->mode, sizeof t->mode, "succeed");
    copy(t->status_mode, sizeof t->status_mode, "file");
    copy(t->label, sizeof t->label, "test");
    t->verify = 1;
    for (i = 0; i < n; ++i) {
        const char *k = p[i].name, *v = p[i].value;
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
        else {
            set_err(ctx, "unknown parameter '%s'", k);
            free(t);
            return STOCKADE_RC_BAD_CONFIG;
        }
    }
    *handle = t;
    return STOCKADE_RC_OK;
}

static void ta_close(void *h)
{
    free(h);
}

static uint32_t ta_power(void *h, const stockade_ctx *ctx, uint32_t action, const char *target, uint32_t flags,
                         uint32_t *verified)
{
    testagent *t = h;
    const char *name = action == STOCKADE_ACTION_OFF ? "off" : action == STOCKADE_ACTION_ON ? "on"
                     : action == STOCKADE_ACTION_REBOOT ? "reboot" : action == STOCKADE_ACTION_DIAG ? "diag" : "?";
    *verified = 0;
    if (flags) {
        set_err(ctx, "%s", "unknown flags");
        return STOCKADE_RC_BAD_CONFIG;
    }
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

static uint32_t ta_status(void *h, const stockade_ctx *ctx, const char *target, uint32_t *state)
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

static uint32_t ta_list(void *h, const stockade_ctx *ctx, stockade_list_fn emit, void *ectx)
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

static uint32_t ta_monitor(void *h, const stockade_ctx *ctx)
{
    testagent *t = h;
    if (!strcmp(t->mode, "unreachable")) {
        set_err(ctx, "%s", "simulated: no route");
        return STOCKADE_RC_UNREACHABLE;
    }
    return STOCKADE_RC_OK;
}

static const stockade_agent descriptor = {
    TESTAGENT_ABI_MAJOR,
    sizeof(stockade_agent),
    STOCKADE_ABI_MINOR,
    TESTAGENT_CAPS,
    TESTAGENT_NAME,
    "1",
    "Test-only agent whose behaviour is chosen by parameters",
    "Simulates a power switch with a state file; can fail, hang, crash or lie on request.",
    params,
    sizeof params / sizeof params[0],
    sizeof(stockade_param_desc),
    ta_open,
    ta_close,
    ta_power,
    (TESTAGENT_CAPS & STOCKADE_CAP_STATUS) ? ta_status : NULL,
    ta_list,
    ta_monitor,
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &descriptor;
}
