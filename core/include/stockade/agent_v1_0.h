/*
 * stockade/agent_v1_0.h -- the frozen layout of ABI 1.0, for hosts that still load 1.0 agents.
 *
 * ABI 1.1 gave stockade_param its {abi_major, struct_size} header and `flags` to every entry
 * point, which changed the types of parameters and function pointers an agent exchanges with the
 * host.  A 1.0 agent says so in its descriptor (abi_minor == 0); the host then reads the
 * descriptor through stockade_v1_0_agent and hands it stockade_v1_0_param arrays.  Never change
 * this file: it is what agents built in 2026 against 1.0 were compiled with.  New agents include
 * only stockade/agent.h.  The descriptor's fields sit at the same offsets as in 1.1; only the
 * function pointer types differ.  (Constants, stockade_param_desc and stockade_ctx are shared.)
 */
#ifndef STOCKADE_AGENT_V1_0_H
#define STOCKADE_AGENT_V1_0_H

#include "stockade/agent.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stockade_v1_0_param {
    const char *name;
    const char *value;
} stockade_v1_0_param;

typedef struct stockade_v1_0_agent {
    uint32_t abi_major;
    uint32_t struct_size;
    uint32_t abi_minor; /* 0 */
    uint32_t capabilities;
    const char *name;
    const char *version;
    const char *summary;
    const char *description;
    const stockade_param_desc *params;
    size_t n_params;
    uint32_t param_struct_size;
    uint32_t (*open)(const stockade_v1_0_param *params, size_t n_params, const stockade_ctx *ctx,
                     void **handle);
    void (*close)(void *handle);
    uint32_t (*power)(void *handle, const stockade_ctx *ctx, uint32_t action, const char *target,
                      uint32_t flags, uint32_t *verified);
    uint32_t (*status)(void *handle, const stockade_ctx *ctx, const char *target,
                       uint32_t *power_state);
    uint32_t (*list)(void *handle, const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx);
    uint32_t (*monitor)(void *handle, const stockade_ctx *ctx);
} stockade_v1_0_agent;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* STOCKADE_AGENT_V1_0_H */
