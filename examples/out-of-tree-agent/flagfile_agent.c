/* flagfile_agent.c -- an agent built outside the stockade tree, against the stockade-dev package.
 *
 * It "fences" a target by creating <dir>/<target>.off and powers it on by removing that file;
 * status reads the file back.  Useful as a template (one parameter table, one descriptor, the
 * entry point) and as the proof, in stockade's own tests, that the installed agent.h and CMake
 * package build an agent the installed host loads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stockade/agent.h>

typedef struct flagfile {
    char dir[512];
} flagfile;

static const stockade_param_desc params[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "dir", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .description = "Folder holding one <target>.off file per fenced target"},
};

static uint32_t fail(const stockade_ctx *ctx, uint32_t rc, const char *what, const char *detail)
{
    if (ctx->errbuf && ctx->errbuf_size)
        snprintf(ctx->errbuf, ctx->errbuf_size, "%s: %s", what, detail);
    return rc;
}

static uint32_t ff_open(const stockade_param *p, size_t n, const stockade_ctx *ctx, uint32_t flags, void **handle)
{
    const char *dir = NULL;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    for (size_t i = 0; i < n; ++i) /* stockade_param_at: the stride is the host's struct_size */
        if (strcmp(stockade_param_at(p, i)->name, "dir") == 0)
            dir = stockade_param_at(p, i)->value;
    if (!dir || !*dir || strlen(dir) >= sizeof(((flagfile *)0)->dir))
        return fail(ctx, STOCKADE_RC_BAD_CONFIG, "parameter 'dir'", "a folder name is required");
    flagfile *f = calloc(1, sizeof *f);
    if (!f)
        return fail(ctx, STOCKADE_RC_INTERNAL, "open", "out of memory");
    strcpy(f->dir, dir);
    *handle = f;
    return STOCKADE_RC_OK;
}

static void ff_close(void *handle, uint32_t flags)
{
    (void)flags; /* none defined; close cannot fail */
    free(handle);
}

static int flag_path(const flagfile *f, const char *target, char *out, size_t size)
{
    if (!target || !*target || strchr(target, '/'))
        return -1;
    int n = snprintf(out, size, "%s/%s.off", f->dir, target);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static uint32_t ff_status(void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags, uint32_t *state)
{
    char path[1024];
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    if (flag_path(handle, target, path, sizeof path) != 0)
        return fail(ctx, STOCKADE_RC_UNKNOWN_TARGET, "target", "not a plain name");
    *state = access(path, F_OK) == 0 ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON;
    return STOCKADE_RC_OK;
}

static uint32_t ff_power(void *handle, const stockade_ctx *ctx, uint32_t action, const char *target, uint32_t flags,
                         uint32_t *verified)
{
    char path[1024];
    uint32_t state = STOCKADE_POWER_UNKNOWN;
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    if (flag_path(handle, target, path, sizeof path) != 0)
        return fail(ctx, STOCKADE_RC_UNKNOWN_TARGET, "target", "not a plain name");
    if (action == STOCKADE_ACTION_OFF) {
        FILE *f = fopen(path, "w");
        if (!f || fclose(f) != 0)
            return fail(ctx, STOCKADE_RC_FAILED, path, strerror(errno));
    } else if (action == STOCKADE_ACTION_ON) {
        if (unlink(path) != 0 && errno != ENOENT)
            return fail(ctx, STOCKADE_RC_FAILED, path, strerror(errno));
    } else {
        return fail(ctx, STOCKADE_RC_UNSUPPORTED, "power", "only off and on");
    }
    /* Confirm by reading the state back, as every agent must. */
    ff_status(handle, ctx, target, 0, &state);
    if (state != (action == STOCKADE_ACTION_OFF ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON))
        return fail(ctx, STOCKADE_RC_FAILED, path, "state did not change");
    *verified = action == STOCKADE_ACTION_OFF ? STOCKADE_VERIFIED_OFF : STOCKADE_VERIFIED_ON;
    return STOCKADE_RC_OK;
}

static const stockade_agent agent = {
    STOCKADE_AGENT_HEADER,
    .capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_STATUS,
    .name = "flagfile",
    .version = "1.0",
    .summary = "Fences a target by creating <dir>/<target>.off (an out-of-tree example)",
    .description = "",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .param_struct_size = sizeof(stockade_param_desc),
    .open = ff_open,
    .close = ff_close,
    .power = ff_power,
    .status = ff_status,
};

STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &agent; }
