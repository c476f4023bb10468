// pr_device.cpp -- see pr_device.hpp.
#include "pr_device.hpp"

#include <chrono>
#include <thread>

namespace stockade::scsi {

namespace {

constexpr int kMaxAttempts = 6;     // UNIT ATTENTIONs queue one per event; a handful clears them
constexpr int64_t kBusyPauseMs = 20; // pause before resending after BUSY / TASK SET FULL

} // namespace

Result<Reply> PrDevice::run(const stockade_ctx *ctx, const Command &cmd, const char *what)
{
    std::string last;
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
        auto r = t_->execute(ctx, cmd);
        if (!r)
            return r.error();
        if (judge(r->status, r->sense) != Verdict::Retry)
            return r;
        last = describe(r->status, r->sense);
        agent::log(ctx, STOCKADE_LOG_DEBUG, name() + ": " + what + ": " + last + ", sending again");
        if (r->status != kStatusCheckCondition) {
            if (stockade_remaining_ms(ctx) <= kBusyPauseMs)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(kBusyPauseMs));
        }
    }
    return Error{STOCKADE_RC_FAILED, name() + ": " + what + " still answered " + last + " after " +
                                         std::to_string(kMaxAttempts) + " attempts"};
}

Result<std::vector<uint8_t>> PrDevice::pr_in(const stockade_ctx *ctx, PrIn sa)
{
    Command c;
    c.cdb = pr_in_cdb(sa);
    c.dir = Direction::In;
    c.in_len = kPrInAllocation;
    auto r = run(ctx, c, pr_in_name(sa));
    if (!r)
        return r.error();
    Verdict v = judge(r->status, r->sense);
    if (v == Verdict::Good)
        return std::move(r->data);
    std::string text = describe(r->status, r->sense);
    if (v == Verdict::NotImplemented)
        return Error{STOCKADE_RC_UNSUPPORTED, name() + " does not support SCSI-3 persistent reservations (PERSISTENT "
                                                       "RESERVE IN " + pr_in_name(sa) + ": " + text + ")"};
    return Error{STOCKADE_RC_FAILED, name() + ": PERSISTENT RESERVE IN " + pr_in_name(sa) + ": " + text};
}

Result<Keys> PrDevice::read_keys(const stockade_ctx *ctx)
{
    auto d = pr_in(ctx, PrIn::ReadKeys);
    if (!d)
        return d.error();
    std::string why;
    auto k = parse_read_keys(d->data(), d->size(), &why);
    if (!k)
        return Error{STOCKADE_RC_FAILED, name() + ": " + why};
    return *k;
}

Result<Reservation> PrDevice::read_reservation(const stockade_ctx *ctx)
{
    auto d = pr_in(ctx, PrIn::ReadReservation);
    if (!d)
        return d.error();
    std::string why;
    auto r = parse_read_reservation(d->data(), d->size(), &why);
    if (!r)
        return Error{STOCKADE_RC_FAILED, name() + ": " + why};
    return *r;
}

Result<std::optional<Capabilities>> PrDevice::report_capabilities(const stockade_ctx *ctx)
{
    auto d = pr_in(ctx, PrIn::ReportCapabilities);
    if (!d) {
        if (d.error().rc == STOCKADE_RC_UNSUPPORTED)
            return std::optional<Capabilities>{};
        return d.error();
    }
    std::string why;
    auto c = parse_report_capabilities(d->data(), d->size(), &why);
    if (!c)
        return Error{STOCKADE_RC_FAILED, name() + ": " + why};
    return std::optional<Capabilities>(*c);
}

Result<PrOutResult> PrDevice::pr_out(const stockade_ctx *ctx, PrOut sa, uint8_t type, Key key, Key sa_key, bool aptpl)
{
    auto params = pr_out_params(key, sa_key, aptpl);
    Command c;
    c.cdb = pr_out_cdb(sa, type);
    c.dir = Direction::Out;
    c.out = params.data();
    c.out_len = params.size();
    auto r = run(ctx, c, pr_out_name(sa));
    if (!r)
        return r.error();
    return PrOutResult{judge(r->status, r->sense), describe(r->status, r->sense)};
}

} // namespace stockade::scsi
