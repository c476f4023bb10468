// pr_device.hpp -- persistent-reservation operations on one logical unit, written once above the
// transport: each sends its command, sends it again after a UNIT ATTENTION or BUSY (a preempted
// or re-registered nexus gets one UA per change; tgt reports 2A/03 and 2A/04), and turns what the
// device answered into a value or an Error naming the device and the sense data.
#pragma once

#include <memory>
#include <optional>

#include "transport.hpp"

namespace stockade::scsi {

// How one PR OUT ended, when the device answered at all.
struct PrOutResult {
    Verdict verdict = Verdict::Failed; // Good, ReservationConflict, NotImplemented or Failed
    std::string text;                  // "RESERVATION CONFLICT", "CHECK CONDITION, ILLEGAL REQUEST 24/00 (...)"
};

class PrDevice {
public:
    explicit PrDevice(std::unique_ptr<Transport> t) : t_(std::move(t)) {}
    const std::string &name() const { return t_->name(); }
    Result<void> connect(const stockade_ctx *ctx) { return t_->connect(ctx); }

    // PR IN.  A device without persistent reservations gives STOCKADE_RC_UNSUPPORTED.
    Result<Keys> read_keys(const stockade_ctx *ctx);
    Result<Reservation> read_reservation(const stockade_ctx *ctx);
    // Nothing when the device does not implement REPORT CAPABILITIES (it is optional).
    Result<std::optional<Capabilities>> report_capabilities(const stockade_ctx *ctx);

    // PR OUT with the basic parameter list (scope LU, the given type).
    Result<PrOutResult> pr_out(const stockade_ctx *ctx, PrOut sa, uint8_t type, Key key, Key sa_key, bool aptpl = false);

private:
    Result<Reply> run(const stockade_ctx *ctx, const Command &cmd, const char *what);
    Result<std::vector<uint8_t>> pr_in(const stockade_ctx *ctx, PrIn sa);

    std::unique_ptr<Transport> t_;
};

} // namespace stockade::scsi
