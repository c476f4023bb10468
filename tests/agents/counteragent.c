/*
 * counteragent -- a test-only agent that keeps state in a global, to prove that sessions served
 * by the fork-server agent host never see each other's state.  Every status call adds one to a
 * global counter and answers "calls=N pid=P ppid=Q loaded_by=L pgid=G" in its message (and ON as the state); the
 * constructor records the pid that loaded the agent (L), so a test can also tell
 * which process ran the agent's code.  Never installed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "stockade/agent.h"

static int g_calls;
static pid_t g_loaded_by;

__attribute__((constructor)) static void on_load(void) { g_loaded_by = getpid(); }

static uint32_t ca_open(const stockade_param *p, size_t n, const stockade_ctx *ctx, uint32_t flags, void **handle)
{
    (void)p;
    (void)n;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    *handle = &g_calls;
    return STOCKADE_RC_OK;
}

static void ca_close(void *handle, uint32_t flags)
{
    (void)handle;
    (void)flags;
}

static uint32_t ca_power(void *handle, const stockade_ctx *ctx, uint32_t action, const char *target, uint32_t flags,
                         uint32_t *verified)
{
    (void)handle;
    (void)ctx;
    (void)action;
    (void)target;
    *verified = STOCKADE_VERIFIED_OFF;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    return STOCKADE_RC_OK;
}

static uint32_t ca_status(void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags,
                          uint32_t *power_state)
{
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    (void)handle;
    (void)target;
    ++g_calls;
    if (ctx->errbuf && ctx->errbuf_size)
        snprintf(ctx->errbuf, ctx->errbuf_size, "calls=%d pid=%d ppid=%d loaded_by=%d pgid=%d", g_calls,
                 (int)getpid(), (int)getppid(), (int)g_loaded_by, (int)getpgrp());
    *power_state = STOCKADE_POWER_ON;
    return STOCKADE_RC_OK;
}

static const stockade_agent descriptor = {
    .abi_major = STOCKADE_ABI_MAJOR,
    .struct_size = sizeof(stockade_agent),
    .abi_minor = STOCKADE_ABI_MINOR,
    .capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_STATUS,
    .name = "counteragent",
    .version = "1",
    .summary = "Test-only agent counting status calls in a global",
    .description = "Proves that fork-server sessions start from a pristine image.",
    .params = NULL,
    .n_params = 0,
    .param_struct_size = sizeof(stockade_param_desc),
    .open = ca_open,
    .close = ca_close,
    .power = ca_power,
    .status = ca_status,
    .list = NULL,
    .monitor = NULL,
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void)
{
    return &descriptor;
}
