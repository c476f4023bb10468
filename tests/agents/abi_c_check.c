/* Compiled as strict C99: proves stockade/agent.h (and the frozen agent_v1_0.h) are C headers with
 * no C++ in them, and freezes the layout of every boundary struct.  A change that moves or resizes
 * a field breaks every agent already built: this file must fail to compile first.  Growth is
 * appending a field at the end, which changes only that struct's sizeof line below (and is a
 * minor bump).  The numbers are for LP64 (x86_64, aarch64); on other data models only the
 * relations that hold everywhere are checked. */
#include <stddef.h>
#include <stdint.h>

#include "stockade/agent.h"
#include "stockade/agent_v1_0.h"

/* C99 has no static_assert: a negative array size stops the build. */
#define ABI_FROZEN(name, cond) typedef char abi_frozen_##name[(cond) ? 1 : -1]

ABI_FROZEN(rc_count, STOCKADE_RC_COUNT == 10u);
ABI_FROZEN(major, STOCKADE_ABI_MAJOR == 1u);

/* Every struct starts with the version header, at the same place. */
ABI_FROZEN(agent_header, offsetof(stockade_agent, abi_major) == 0 && offsetof(stockade_agent, struct_size) == 4);
ABI_FROZEN(param_desc_header,
           offsetof(stockade_param_desc, abi_major) == 0 && offsetof(stockade_param_desc, struct_size) == 4);
ABI_FROZEN(param_header, offsetof(stockade_param, abi_major) == 0 && offsetof(stockade_param, struct_size) == 4);
ABI_FROZEN(ctx_header, offsetof(stockade_ctx, abi_major) == 0 && offsetof(stockade_ctx, struct_size) == 4);
ABI_FROZEN(agent_minor, offsetof(stockade_agent, abi_minor) == 8);

/* A 1.0 descriptor is read through the 1.1 one for its checks: the shared fields must coincide. */
#define SAME_OFFSET(field) ABI_FROZEN(v1_0_##field, offsetof(stockade_agent, field) == offsetof(stockade_v1_0_agent, field))
SAME_OFFSET(capabilities);
SAME_OFFSET(name);
SAME_OFFSET(version);
SAME_OFFSET(summary);
SAME_OFFSET(description);
SAME_OFFSET(params);
SAME_OFFSET(n_params);
SAME_OFFSET(param_struct_size);
SAME_OFFSET(open);
SAME_OFFSET(close);
SAME_OFFSET(power);
SAME_OFFSET(status);
SAME_OFFSET(list);
SAME_OFFSET(monitor);
ABI_FROZEN(v1_0_is_prefix, sizeof(stockade_v1_0_agent) == offsetof(stockade_agent, time_needed));

#if UINTPTR_MAX == 0xffffffffffffffffu && SIZE_MAX == 0xffffffffffffffffu
#define AT(type, field, off) ABI_FROZEN(type##_##field, offsetof(type, field) == (off))
#define SIZE(type, size) ABI_FROZEN(type##_size, sizeof(type) == (size))

AT(stockade_param_desc, name, 8);
AT(stockade_param_desc, type, 16);
AT(stockade_param_desc, flags, 20);
AT(stockade_param_desc, default_value, 24);
AT(stockade_param_desc, choices, 32);
AT(stockade_param_desc, aliases, 40);
AT(stockade_param_desc, description, 48);
SIZE(stockade_param_desc, 56);

AT(stockade_param, name, 8);
AT(stockade_param, value, 16);
SIZE(stockade_param, 24);

AT(stockade_ctx, deadline_ms, 8);
AT(stockade_ctx, is_cancelled, 16);
AT(stockade_ctx, log, 24);
AT(stockade_ctx, errbuf, 32);
AT(stockade_ctx, errbuf_size, 40);
AT(stockade_ctx, invoke, 48);
AT(stockade_ctx, host, 56);
SIZE(stockade_ctx, 64);

AT(stockade_agent, capabilities, 12);
AT(stockade_agent, name, 16);
AT(stockade_agent, version, 24);
AT(stockade_agent, summary, 32);
AT(stockade_agent, description, 40);
AT(stockade_agent, params, 48);
AT(stockade_agent, n_params, 56);
AT(stockade_agent, param_struct_size, 64);
AT(stockade_agent, open, 72);
AT(stockade_agent, close, 80);
AT(stockade_agent, power, 88);
AT(stockade_agent, status, 96);
AT(stockade_agent, list, 104);
AT(stockade_agent, monitor, 112);
AT(stockade_agent, time_needed, 120); /* 1.1 */
AT(stockade_agent, prepare, 128); /* 1.2 */
SIZE(stockade_agent, 136);

AT(stockade_v1_0_param, name, 0);
AT(stockade_v1_0_param, value, 8);
SIZE(stockade_v1_0_param, 16);
SIZE(stockade_v1_0_agent, 120);
#endif

int stockade_abi_c_check(const stockade_ctx *ctx, uint32_t flags);
int stockade_abi_c_check(const stockade_ctx *ctx, uint32_t flags)
{
    STOCKADE_CHECK_FLAGS(flags, 0, ctx);
    return stockade_remaining_ms(ctx) > 0;
}
