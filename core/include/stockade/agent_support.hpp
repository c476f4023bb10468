// agent_support.hpp -- the few helpers every agent wrote for itself: an error line into the host's
// errbuf, a log line through the host's callback, the host's cancel flag.  Lower-casing,
// name comparison and host-list splitting are in stockade/text.hpp (included here).
// Agents must not link libstockade, so this is header-only and needs nothing but agent.h and the
// C++ standard library.  Only logic that really was identical in the agents lives here.
#pragma once

#include <cstdio>
#include <string>

#include "stockade/agent.h"
#include "stockade/text.hpp"

namespace stockade::agent {

// Puts `msg` (truncated to fit) into the host's error buffer, if it gave one.
inline void set_err(const stockade_ctx *ctx, const std::string &msg)
{
    if (ctx && ctx->errbuf && ctx->errbuf_size)
        std::snprintf(ctx->errbuf, ctx->errbuf_size, "%s", msg.c_str());
}

// Hands one line to the host's logger, if it gave one.
inline void log(const stockade_ctx *ctx, int level, const std::string &msg)
{
    if (ctx && ctx->log)
        ctx->log(ctx, level, msg.c_str());
}

// Whether the host asked the running operation to stop.
inline bool cancelled(const stockade_ctx *ctx) { return ctx && ctx->is_cancelled && ctx->is_cancelled(ctx); }

} // namespace stockade::agent
