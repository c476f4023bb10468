/* Compiled as strict C99: proves stockade/agent.h is a C header with no C++ in it. */
#include <stddef.h>

#include "stockade/agent.h"

typedef char check_rc_count[STOCKADE_RC_COUNT == 10u ? 1 : -1];
typedef char check_first_fields[offsetof(stockade_agent, struct_size) == 4 ? 1 : -1];

int stockade_abi_c_check(const stockade_ctx *ctx);
int stockade_abi_c_check(const stockade_ctx *ctx)
{
    return stockade_remaining_ms(ctx) > 0;
}
