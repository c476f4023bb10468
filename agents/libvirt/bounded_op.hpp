// bounded_op.hpp -- runs one hypervisor operation on its own thread so that a hung libvirt
// connection can never hold the caller past the operation's deadline.
//
// Why a thread: a libvirt RPC blocks inside the library until the daemon answers, and libvirt has
// no public call that aborts a call in flight from outside (virConnectClose itself sends an RPC).
// Keepalive (virConnectSetKeepAlive) eventually kills such a connection, but only with whole-second
// granularity measured from the last packet, not from our deadline.  So the operation body runs on
// a detached thread that owns everything it touches (shared_ptr copies of the connection and the
// configuration); the caller waits until the body finishes, the deadline passes or the host
// cancels.  On timeout the caller returns at once and abandons the body: the thread finishes later
// (when keepalive closes the dead connection, or the process ends) and frees what it owns.
//
// An abandoned body must not act later (a late destroy, or worse a late start, after the caller
// reported failure): every step begins with begin_step(), which throws OpAbandoned once the
// caller has stopped waiting, so the body unwinds before its next hypervisor call.
//
// Log lines from the body are queued and written to ctx->log by the caller's thread only: the
// ctx is the host's and is valid only during the call.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "stockade/agent.h"
#include "target_map.hpp"

namespace stockade::libvirt_agent {

// Thrown by OpChannel::begin_step in a body whose caller has stopped waiting.
struct OpAbandoned {};

// What the body shares with its caller: queued log lines, the step it is in (named in a
// timeout message) and the stop request the caller raises when it gives up waiting.
class OpChannel {
public:
    explicit OpChannel(int64_t deadline_ms) : deadline_ms_(deadline_ms) {}

    // ---- body side ----
    void log(int level, std::string msg)
    {
        std::lock_guard lk(mu_);
        logs_.emplace_back(level, std::move(msg));
    }

    // Names what the body is waiting for now.  A step may carry its own limit (connect_timeout):
    // when it passes first, the caller fails with `limit_rc` and names `limit_name`.  Throws
    // OpAbandoned when the caller has stopped waiting: call it before every hypervisor call.
    void begin_step(std::string what, int64_t step_deadline_ms = 0, std::string limit_name = {},
                    uint32_t limit_rc = STOCKADE_RC_UNREACHABLE)
    {
        std::lock_guard lk(mu_);
        if (stop_requested())
            throw OpAbandoned{};
        step_ = std::move(what);
        step_deadline_ms_ = step_deadline_ms;
        step_limit_name_ = std::move(limit_name);
        step_limit_rc_ = limit_rc;
    }

    bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }

    // The operation's deadline on CLOCK_MONOTONIC in ms (0 = none).
    int64_t deadline_ms() const { return deadline_ms_; }

    // Sleeps up to ms, waking early when the caller stops waiting.  False when stopped.
    bool sleep_ms(int64_t ms)
    {
        std::unique_lock lk(mu_);
        stop_cv_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(ms, 0)), [&] { return stop_requested(); });
        return !stop_requested();
    }

    // ---- caller side ----
    struct Wait {
        enum Kind { Done, StepLimit, Deadline, Cancelled } kind;
        std::string step;
        std::string limit_name;
        uint32_t limit_rc = STOCKADE_RC_UNREACHABLE;
    };

    // Waits for the body, forwarding its log lines to ctx->log as they come.
    Wait wait(const stockade_ctx *ctx)
    {
        for (;;) {
            std::vector<std::pair<int, std::string>> lines;
            std::unique_lock lk(mu_);
            lines.swap(logs_);
            bool done = done_;
            int64_t step_deadline = step_deadline_ms_;
            lk.unlock();
            forward(ctx, lines);
            if (done) {
                lk.lock();
                lines.swap(logs_);
                lk.unlock();
                forward(ctx, lines);
                return {Wait::Done, {}, {}, 0};
            }
            int64_t now = stockade_monotonic_ms();
            bool cancelled = ctx->is_cancelled && ctx->is_cancelled(ctx);
            bool step_over = step_deadline > 0 && now >= step_deadline;
            bool op_over = deadline_ms_ > 0 && now >= deadline_ms_;
            if (cancelled || step_over || op_over) {
                lk.lock();
                stop_.store(true);
                stop_cv_.notify_all();
                Wait w{cancelled ? Wait::Cancelled : (op_over && (!step_over || deadline_ms_ <= step_deadline))
                                                        ? Wait::Deadline
                                                        : Wait::StepLimit,
                       step_, step_limit_name_, step_limit_rc_};
                return w;
            }
            int64_t until = 50;
            if (deadline_ms_ > 0)
                until = std::min(until, deadline_ms_ - now);
            if (step_deadline > 0)
                until = std::min(until, step_deadline - now);
            lk.lock();
            done_cv_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(until, 1)),
                              [&] { return done_ || !logs_.empty(); });
        }
    }

    void finish()
    {
        std::lock_guard lk(mu_);
        done_ = true;
        done_cv_.notify_all();
    }

private:
    static void forward(const stockade_ctx *ctx, const std::vector<std::pair<int, std::string>> &lines)
    {
        if (!ctx->log)
            return;
        for (const auto &[level, msg] : lines)
            ctx->log(ctx, level, msg.c_str());
    }

    const int64_t deadline_ms_;
    std::mutex mu_;
    std::condition_variable done_cv_, stop_cv_;
    std::vector<std::pair<int, std::string>> logs_;
    std::string step_ = "starting";
    int64_t step_deadline_ms_ = 0;
    std::string step_limit_name_;
    uint32_t step_limit_rc_ = STOCKADE_RC_UNREACHABLE;
    bool done_ = false;
    std::atomic<bool> stop_{false};
};

// Runs `body(OpChannel&) -> Out` (Out has a `Status status` member) on its own thread and waits
// for it within ctx's deadline.  *abandoned is set when the caller stopped waiting; Out then
// holds only the failure.  The body must own (by value or shared_ptr) everything it touches.
template <class Out, class Body>
Out run_bounded(const stockade_ctx *ctx, const std::string &uri_shown, Body body, bool *abandoned)
{
    struct Shared {
        explicit Shared(int64_t deadline) : channel(deadline) {}
        OpChannel channel;
        Out out;
    };
    auto shared = std::make_shared<Shared>(ctx->deadline_ms);
    const int64_t started = stockade_monotonic_ms();
    std::thread([shared, body = std::move(body)]() mutable {
        Out out;
        try {
            out = body(shared->channel);
        } catch (const OpAbandoned &) {
            out = Out{};
            out.status = {STOCKADE_RC_CANCELLED, "abandoned by its caller"};
        } catch (...) {
            out = Out{};
            out.status = {STOCKADE_RC_INTERNAL, "unexpected exception inside the libvirt agent"};
        }
        {
            // Release the body's references (the connection) before reporting, so the caller
            // that adopts the result holds the only ones.
            auto discard = std::move(body);
        }
        shared->out = std::move(out);
        shared->channel.finish();
    }).detach();

    OpChannel::Wait w = shared->channel.wait(ctx);
    *abandoned = w.kind != OpChannel::Wait::Done;
    if (!*abandoned)
        return std::move(shared->out);

    Out failed{};
    const int64_t waited = stockade_monotonic_ms() - started;
    switch (w.kind) {
    case OpChannel::Wait::Cancelled:
        failed.status = {STOCKADE_RC_CANCELLED, "cancelled after " + std::to_string(waited) + " ms while " + w.step};
        break;
    case OpChannel::Wait::StepLimit:
        failed.status = {w.limit_rc, uri_shown + " did not answer within " + w.limit_name + " while " + w.step};
        break;
    default:
        failed.status = {STOCKADE_RC_TIMEOUT, "operation deadline passed after " + std::to_string(waited) +
                                                  " ms while " + w.step + " (" + uri_shown +
                                                  " did not answer; connection abandoned)"};
        break;
    }
    return failed;
}

} // namespace stockade::libvirt_agent
