// agent_support.hpp -- the few helpers every agent wrote for itself: an error line into the host's
// errbuf, a log line through the host's callback, the host's cancel flag, and the C entry-point
// thunks around an agent's C++ device class (Thunks<D>, STOCKADE_AGENT_ENTRY_POINTS).  Lower-casing,
// name comparison and host-list splitting are in stockade/text.hpp (included here).
// Agents must not link libstockade, so this is header-only and needs nothing but agent.h and the
// C++ standard library.  Only logic that really was identical in the agents lives here.
#pragma once

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// One configured parameter as text (a NULL name or value from the host reads as "").
struct NamedValue {
    std::string name, value;
};

// The parameters open()/time_needed() received, in the host's order, as text.
inline std::vector<NamedValue> named_values(const stockade_param *params, size_t n)
{
    std::vector<NamedValue> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const stockade_param *p = stockade_param_at(params, i);
        out.push_back({p->name ? p->name : "", p->value ? p->value : ""});
    }
    return out;
}

// The value of parameter `name`, or `fallback` when it is absent (the host fills defaults, so an
// optional one without a default may simply be missing).
inline std::string param_value(const stockade_param *params, size_t n, const std::string &name,
                               const std::string &fallback = "")
{
    for (size_t i = 0; i < n; ++i) {
        const stockade_param *p = stockade_param_at(params, i);
        if (p->name && p->value && name == p->name)
            return p->value;
    }
    return fallback;
}

// Whether the host asked the running operation to stop.
inline bool cancelled(const stockade_ctx *ctx) { return ctx && ctx->is_cancelled && ctx->is_cancelled(ctx); }

// ---- Entry-point thunks ---------------------------------------------------------------------
// Every agent's C entry points did the same few things around its own logic: refuse unknown flag
// bits, zero the out-values, map the C handle back to its C++ object, and catch every exception
// (none may cross the ABI) as STOCKADE_RC_INTERNAL with a line in errbuf.  Thunks<D> does them
// once.  An agent writes a device class D with
//
//   // Parse and validate params; on success set `out` (the handle), else errbuf + the rc.
//   static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
//                        std::unique_ptr<D> &out);
//   uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target,
//                  uint32_t *verified);                  // *verified is 0 on entry
//   // optional; the descriptor's pointer is NULL (unsupported) when D does not declare it:
//   uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *power_state);
//   uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *emit_ctx);
//   uint32_t monitor(const stockade_ctx *ctx);
//   // called on a device open()ed from the same params, never on one that did I/O:
//   uint32_t time_needed(const stockade_ctx *ctx, uint32_t action, uint32_t *needed_ms) const;
//   // once per process before the first open (agent.h `prepare`: no threads, no descriptors left
//   // open, no connections, no secrets):
//   static uint32_t prepare();
//
// and fills its descriptor's entry points with STOCKADE_AGENT_ENTRY_POINTS(D).  A NULL target
// reaches D as "".  No flag bit is defined yet, so every thunk refuses any.

// Runs `fn` (returning a result code) so that no exception escapes: an exception becomes
// STOCKADE_RC_INTERNAL and "internal error in <entry>[: what]" in errbuf (the host names the
// device and agent around it).
template <class Fn>
uint32_t guarded(const stockade_ctx *ctx, const char *entry, Fn &&fn) noexcept
{
    try {
        return fn();
    } catch (const std::exception &e) {
        try {
            set_err(ctx, std::string("internal error in ") + entry + ": " + e.what());
        } catch (...) {
        }
    } catch (...) {
        try {
            set_err(ctx, std::string("internal error in ") + entry);
        } catch (...) {
        }
    }
    return STOCKADE_RC_INTERNAL;
}

template <class D>
struct Thunks {
    // The C functions; named as the entry points, because STOCKADE_CHECK_FLAGS names __func__.
    struct Fn {
        static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx, uint32_t flags,
                             void **handle)
        {
            *handle = nullptr;
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "open", [&]() -> uint32_t {
                std::unique_ptr<D> dev;
                uint32_t rc = D::open(params, n, ctx, dev);
                if (rc != STOCKADE_RC_OK)
                    return rc;
                if (!dev) {
                    set_err(ctx, "internal error in open: no handle");
                    return STOCKADE_RC_INTERNAL;
                }
                *handle = dev.release();
                return STOCKADE_RC_OK;
            });
        }

        static void close(void *handle, uint32_t /*flags: none defined; close cannot fail*/)
        {
            try {
                delete static_cast<D *>(handle);
            } catch (...) {
            }
        }

        static uint32_t power(void *handle, const stockade_ctx *ctx, uint32_t action, const char *target,
                              uint32_t flags, uint32_t *verified)
        {
            *verified = 0;
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "power", [&] {
                return static_cast<D *>(handle)->power(ctx, action, std::string(target ? target : ""), verified);
            });
        }

        static uint32_t status(void *handle, const stockade_ctx *ctx, const char *target, uint32_t flags,
                               uint32_t *power_state)
        {
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "status", [&] {
                return static_cast<D *>(handle)->status(ctx, std::string(target ? target : ""), power_state);
            });
        }

        static uint32_t list(void *handle, const stockade_ctx *ctx, uint32_t flags, stockade_list_fn emit,
                             void *emit_ctx)
        {
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "list",
                           [&] { return static_cast<D *>(handle)->list(ctx, emit, emit_ctx); });
        }

        static uint32_t monitor(void *handle, const stockade_ctx *ctx, uint32_t flags)
        {
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "monitor", [&] { return static_cast<D *>(handle)->monitor(ctx); });
        }

        static uint32_t time_needed(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                                    uint32_t action, uint32_t flags, uint32_t *needed_ms)
        {
            STOCKADE_CHECK_FLAGS(flags, 0, ctx);
            return guarded(ctx, "time_needed", [&]() -> uint32_t {
                std::unique_ptr<D> dev;
                if (uint32_t rc = D::open(params, n, ctx, dev); rc != STOCKADE_RC_OK)
                    return rc;
                if (!dev) {
                    set_err(ctx, "internal error in time_needed: no handle");
                    return STOCKADE_RC_INTERNAL;
                }
                return std::as_const(*dev).time_needed(ctx, action, needed_ms);
            });
        }

        static uint32_t prepare(uint32_t flags)
        {
            STOCKADE_CHECK_FLAGS(flags, 0, static_cast<const stockade_ctx *>(nullptr));
            return guarded(nullptr, "prepare", [] { return D::prepare(); });
        }
    };

    static constexpr auto open = &Fn::open;
    static constexpr auto close = &Fn::close;
    static constexpr auto power = &Fn::power;
    // The optional entry points: NULL in the descriptor when D does not declare the member (and
    // then the thunk is never instantiated).
    static constexpr decltype(&Fn::status) pick_status()
    {
        if constexpr (requires(D &d, const stockade_ctx *c, const std::string &t, uint32_t *p) { d.status(c, t, p); })
            return &Fn::status;
        else
            return nullptr;
    }
    static constexpr decltype(&Fn::list) pick_list()
    {
        if constexpr (requires(D &d, const stockade_ctx *c, stockade_list_fn f, void *e) { d.list(c, f, e); })
            return &Fn::list;
        else
            return nullptr;
    }
    static constexpr decltype(&Fn::monitor) pick_monitor()
    {
        if constexpr (requires(D &d, const stockade_ctx *c) { d.monitor(c); })
            return &Fn::monitor;
        else
            return nullptr;
    }
    static constexpr decltype(&Fn::time_needed) pick_time_needed()
    {
        if constexpr (requires(const D &d, const stockade_ctx *c, uint32_t a, uint32_t *ms) {
                          d.time_needed(c, a, ms);
                      })
            return &Fn::time_needed;
        else
            return nullptr;
    }
    static constexpr decltype(&Fn::prepare) pick_prepare()
    {
        if constexpr (requires { D::prepare(); })
            return &Fn::prepare;
        else
            return nullptr;
    }
    static constexpr auto status = pick_status();
    static constexpr auto list = pick_list();
    static constexpr auto monitor = pick_monitor();
    static constexpr auto time_needed = pick_time_needed();
    static constexpr auto prepare = pick_prepare();
};

} // namespace stockade::agent

// The parameter table of a descriptor: {.params, .n_params, .param_struct_size} from a static array.
#define STOCKADE_AGENT_PARAM_TABLE(table) \
    .params = (table), .n_params = sizeof(table) / sizeof((table)[0]), .param_struct_size = sizeof(stockade_param_desc)

// The entry points of a descriptor (open ... prepare, in declaration order) from a device class;
// see Thunks above.
#define STOCKADE_AGENT_ENTRY_POINTS(D)                                                                  \
    .open = ::stockade::agent::Thunks<D>::open, .close = ::stockade::agent::Thunks<D>::close,            \
    .power = ::stockade::agent::Thunks<D>::power, .status = ::stockade::agent::Thunks<D>::status,         \
    .list = ::stockade::agent::Thunks<D>::list, .monitor = ::stockade::agent::Thunks<D>::monitor,         \
    .time_needed = ::stockade::agent::Thunks<D>::time_needed, .prepare = ::stockade::agent::Thunks<D>::prepare
