// agent_util.hpp -- small pieces both helper agents share: printf-style errors over the C ABI,
// parameter lookup, waiting under the host's deadline and cancel flag, and the SFEX "is this node
// active?" question.  Header-only so each agent .so stays self-contained.
#pragma once

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/sfex.hpp"

namespace stockade::helper {

__attribute__((format(printf, 2, 3))) inline void set_err(const stockade_ctx *ctx, const char *fmt, ...)
{
    if (!ctx || !ctx->errbuf || !ctx->errbuf_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(ctx->errbuf, ctx->errbuf_size, fmt, ap);
    va_end(ap);
}

// Shared with every other agent (stockade/agent_support.hpp).  set_err stays here: the helper
// agents format their errors printf-style.
using stockade::agent::cancelled;
using stockade::agent::log;
using stockade::text::ascii_lower;

using stockade::agent::param_value;

inline bool parse_long(const std::string &s, long &out)
{
    if (s.empty())
        return false;
    char *end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (!end || *end)
        return false;
    out = v;
    return true;
}

using stockade::text::split_list;

enum class WaitEnd { done, cancelled, deadline };

// Sleeps `ms`, stopping early on cancel or at the host's deadline.
inline WaitEnd wait_ms(const stockade_ctx *ctx, int64_t ms)
{
    const int64_t end = stockade_monotonic_ms() + ms;
    for (;;) {
        if (cancelled(ctx))
            return WaitEnd::cancelled;
        int64_t now = stockade_monotonic_ms();
        if (now >= end)
            return WaitEnd::done;
        if (ctx && ctx->deadline_ms > 0 && now >= ctx->deadline_ms)
            return WaitEnd::deadline;
        int64_t step = std::min<int64_t>(end - now, 20);
        if (ctx && ctx->deadline_ms > 0)
            step = std::min<int64_t>(step, std::max<int64_t>(1, ctx->deadline_ms - now));
        std::this_thread::sleep_for(std::chrono::milliseconds(step));
    }
}

// What the SFEX lock says about this node.
struct LockView {
    bool read_ok = false;
    bool ours = false;
    sfex::LockData lock;
    std::string message; // error, or a description of the lock
};

inline LockView read_lock_view(const std::string &device, int index, const std::string &nodename)
{
    LockView v;
    sfex::ControlData c;
    sfex::Status s = sfex::stat(device, index, c, v.lock);
    if (!s.ok()) {
        v.message = s.message;
        return v;
    }
    v.read_ok = true;
    v.ours = v.lock.held_by(nodename);
    v.message = "SFEX lock #" + std::to_string(index) + " on " + device + " is " +
                (v.lock.locked() ? "held by '" + v.lock.nodename + "'" : std::string("free")) + ", count " +
                std::to_string(v.lock.count);
    return v;
}

// monitor of an agent whose device is an SFEX partition: readable and holding our lock index.
inline uint32_t check_lock_readable(const stockade_ctx *ctx, const std::string &device, int index,
                                    const std::string &nodename)
{
    LockView v = read_lock_view(device, index, nodename);
    if (!v.read_ok) {
        set_err(ctx, "%s", v.message.c_str());
        return STOCKADE_RC_UNREACHABLE;
    }
    return STOCKADE_RC_OK;
}

} // namespace stockade::helper
