// agent_poll.hpp -- how a power agent waits for a device to confirm a state: sleep in short steps
// that notice the host's cancel flag and never pass the operation deadline, and read the state
// again with growing pauses until it is confirmed, a failure no further read can cure appears, or
// the agent's own window (power_timeout) closes.  ipmi and redfish each had this loop; it is where
// a "fenced" answer is earned, so it lives once.  Header-only (agents must not link libstockade).
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string>
#include <type_traits>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/result.hpp"

namespace stockade::agent {

// Failures that reading again cannot cure (the rest -- unreachable, failed -- may pass).
inline bool is_final(uint32_t rc)
{
    return rc == STOCKADE_RC_ACCESS_DENIED || rc == STOCKADE_RC_BAD_CONFIG || rc == STOCKADE_RC_CANCELLED ||
           rc == STOCKADE_RC_TIMEOUT || rc == STOCKADE_RC_INTERNAL || rc == STOCKADE_RC_UNSUPPORTED;
}

// Sleeps up to ms in steps of at most 20 ms, waking for cancellation and never past ctx's deadline;
// `who` starts the error line ("ipmi", "redfish").
inline Status sleep_within(const stockade_ctx *ctx, int64_t ms, const std::string &who)
{
    const int64_t until = stockade_monotonic_ms() + ms;
    for (;;) {
        if (cancelled(ctx))
            return Error{STOCKADE_RC_CANCELLED, who + ": cancelled"};
        const int64_t now = stockade_monotonic_ms();
        if (now >= until)
            return {};
        const int64_t step = std::min<int64_t>({until - now, 20, stockade_remaining_ms(ctx)});
        if (step <= 0)
            return Error{STOCKADE_RC_TIMEOUT, who + ": the operation deadline passed"};
        struct timespec ts{step / 1000, (step % 1000) * 1000000L};
        ::nanosleep(&ts, nullptr);
    }
}

// When and how often to read.  Times are stockade_monotonic_ms() values or milliseconds.
struct PollPlan {
    int64_t give_up_at = 0;        // the window closes here (a failure, not a timeout)
    int64_t first_pause_ms = 0;    // before the first read (power_wait)
    int64_t first_interval_ms = 50; // after a read that did not confirm; doubles ...
    int64_t max_interval_ms = 1000; // ... up to this
    // Before that schedule: this many shorter pauses, 1 ms doubling (1, 2, 4...), for a device
    // that often switches within milliseconds.  Bounded on purpose: a real device is never polled
    // faster for long.  0 = none.
    int fast_pauses = 0;
};

// Reads with `read()` -> Result<bool> (true = confirmed) until it confirms (returns {}), a final
// error appears (returned as it is), or plan.give_up_at passes: then `closed(last_error)` makes
// the failure (last_error = the last non-final read error, "" if none).  Non-final read errors are
// logged as warnings with `waiting_for` ("still waiting for off").  A cancel during a pause ends
// it with sleep_within's error; so does the operation deadline, unless `on_deadline()` is given:
// then its Error (saying what was still awaited) replaces sleep_within's timeout line.
template <class Read, class Closed, class OnDeadline = std::nullptr_t>
Status poll_until(const stockade_ctx *ctx, const PollPlan &plan, const std::string &who,
                  const std::string &waiting_for, Read read, Closed closed, OnDeadline on_deadline = nullptr)
{
    auto pause = [&](int64_t ms) -> Status {
        Status s = sleep_within(ctx, ms, who);
        if constexpr (!std::is_null_pointer_v<OnDeadline>)
            if (!s && s.error().rc == STOCKADE_RC_TIMEOUT)
                return on_deadline();
        return s;
    };
    if (plan.first_pause_ms > 0)
        if (Status s = pause(std::min(plan.first_pause_ms, plan.give_up_at - stockade_monotonic_ms())); !s)
            return s;
    int fast_left = plan.fast_pauses;
    int64_t interval = std::min(fast_left > 0 ? int64_t(1) : plan.first_interval_ms, plan.max_interval_ms);
    std::string last_error;
    for (;;) {
        Result<bool> r = read();
        if (r && *r)
            return {};
        if (!r) {
            if (is_final(r.error().rc))
                return r.error();
            last_error = r.error().message;
            log(ctx, STOCKADE_LOG_WARNING, last_error + " (still waiting for " + waiting_for + ")");
        }
        const int64_t now = stockade_monotonic_ms();
        if (now >= plan.give_up_at)
            return closed(last_error);
        if (Status s = pause(std::min(interval, plan.give_up_at - now)); !s)
            return s;
        if (fast_left > 0 && --fast_left == 0)
            interval = std::min(plan.first_interval_ms, plan.max_interval_ms);
        else
            interval = std::min(interval * 2, plan.max_interval_ms);
    }
}

} // namespace stockade::agent
