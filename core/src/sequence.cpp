// sequence.cpp -- the one device fence sequence (see sequence.hpp for the rules it keeps).
#include "stockade/sequence.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "stockade/process.hpp"

namespace stockade {

namespace {

class Sequence {
public:
    Sequence(std::span<SequenceDevice> devs, const SequencePolicy &p) : devs_(devs), p_(p), start_(monotonic_ms()) {}

    SequenceOutcome run(SequenceAction action);

private:
    bool cancelled() const { return p_.cancel && p_.cancel->load(); }
    Millis budget_for(std::string_view op, const SequenceDevice &d) const;
    Millis time_left(std::string_view op, SequenceDevice &d) const;
    void record(size_t i, std::string op, OpResult res, int64_t started, uint32_t expect = STOCKADE_POWER_UNKNOWN);
    bool fail(size_t i, std::string op, uint32_t rc, std::string message, uint32_t expect = STOCKADE_POWER_UNKNOWN);
    bool out_of_time(size_t i, std::string_view op, Millis t);
    bool open(size_t i);
    std::optional<OpResult> call(size_t i, std::string_view op, uint32_t expect = STOCKADE_POWER_UNKNOWN);
    std::optional<uint32_t> read_state(size_t i);
    bool send(size_t i, PowerAction a, unsigned attempts, OpResult *res);
    bool confirm(size_t i, const OpResult &res, uint32_t want);
    bool power_phase(PowerAction a, uint32_t want, unsigned attempts);
    void settle();

    std::span<SequenceDevice> devs_;
    const SequencePolicy &p_;
    int64_t start_;
    bool on_taken_on_word_ = false;
    SequenceOutcome out_;
};

Millis Sequence::budget_for(std::string_view op, const SequenceDevice &d) const
{
    const DeviceBudget &b = d.budget;
    if (op == "open")
        return b.open;
    if (op == "off")
        return b.off;
    if (op == "on")
        return b.on;
    if (op == "reboot")
        return b.reboot;
    if (op == "diag")
        return b.diag;
    return b.status; // status, verify
}

// The time an operation may take: its budget, cut by the device's total and the overall deadline.
Millis Sequence::time_left(std::string_view op, SequenceDevice &d) const
{
    int64_t now = monotonic_ms();
    int64_t t = budget_for(op, d).count();
    if (d.budget.total.count() > 0)
        t = std::min<int64_t>(t, d.first_op_ms + d.budget.total.count() - now);
    if (p_.deadline_ms)
        t = std::min<int64_t>(t, p_.deadline_ms - now);
    return Millis(std::max<int64_t>(t, 0));
}

void Sequence::record(size_t i, std::string op, OpResult res, int64_t started, uint32_t expect)
{
    SequenceStep s;
    s.device = i;
    s.op = std::move(op);
    s.expect = expect;
    s.result = std::move(res);
    s.started_ms = started - start_;
    out_.steps.push_back(std::move(s));
    const SequenceStep &last = out_.steps.back();
    if (!last.result.ok() && !out_.failed_step) {
        out_.failed_step = out_.steps.size() - 1;
        out_.rc = last.result.rc;
        out_.exec = last.result.exec;
        out_.reason = fmt::format("{}: {} failed: {}", devs_[i].name, last.op,
                                  last.result.message.empty() ? std::string(result_code_info(last.result.rc).meaning)
                                                              : last.result.message);
    }
    if (p_.on_step)
        p_.on_step(devs_[i], last);
}

bool Sequence::fail(size_t i, std::string op, uint32_t rc, std::string message, uint32_t expect)
{
    OpResult r;
    r.rc = rc;
    r.message = std::move(message);
    // Decided here without asking the agent (no time left, cancelled, incapable, unconfirmed).
    r.exec = ExecStatus::NotRun;
    record(i, std::move(op), std::move(r), monotonic_ms(), expect);
    return false;
}

bool Sequence::out_of_time(size_t i, std::string_view op, Millis t)
{
    if (cancelled())
        return !fail(i, std::string(op), STOCKADE_RC_CANCELLED, "cancelled");
    if (t.count() > 0)
        return false;
    return !fail(i, std::string(op), STOCKADE_RC_TIMEOUT,
                 p_.deadline_ms && monotonic_ms() >= p_.deadline_ms ? "overall escalation timeout reached"
                                                                     : "the device's time budget is used up");
}

bool Sequence::open(size_t i)
{
    SequenceDevice &d = devs_[i];
    if (!d.first_op_ms)
        d.first_op_ms = monotonic_ms();
    if (d.session)
        return true;
    Millis t = time_left("open", d);
    if (out_of_time(i, "open", t))
        return false;
    if (!d.open)
        return fail(i, "open", STOCKADE_RC_INTERNAL, "no session and no way to open one");
    if (p_.on_start)
        p_.on_start(d, "open", t);
    int64_t t0 = monotonic_ms();
    OpResult r = d.open(d, t);
    if (r.ok() && (!d.session || !d.agent)) {
        r.rc = STOCKADE_RC_INTERNAL;
        r.message = "open returned no session";
    }
    if (!r.ok()) {
        record(i, "open", std::move(r), t0);
        return false;
    }
    return true;
}

// One call on an open device: status/verify or a power action.  nullopt when it never started.
std::optional<OpResult> Sequence::call(size_t i, std::string_view op, uint32_t expect)
{
    SequenceDevice &d = devs_[i];
    Millis t = time_left(op, d);
    std::string step_op = expect != STOCKADE_POWER_UNKNOWN ? "verify" : std::string(op);
    if (out_of_time(i, step_op, t))
        return std::nullopt;
    if (p_.on_start)
        p_.on_start(d, step_op, t);
    int64_t t0 = monotonic_ms();
    OpResult r;
    if (op == "status" || op == "verify")
        r = d.session->status(d.target, t);
    else
        r = d.session->power(*parse_power_action(op), d.target, t);
    if (!r.elapsed_ms)
        r.elapsed_ms = monotonic_ms() - t0;
    return r;
}

// The device's state; nullopt (and a failed step) when it cannot be read as on or off.
std::optional<uint32_t> Sequence::read_state(size_t i)
{
    int64_t t0 = monotonic_ms();
    auto r = call(i, "status");
    if (!r)
        return std::nullopt;
    if (r->ok() && r->power_state != STOCKADE_POWER_ON && r->power_state != STOCKADE_POWER_OFF) {
        r->rc = STOCKADE_RC_FAILED;
        r->message = fmt::format("the state of '{}' is {}", devs_[i].target, power_state_info(r->power_state).name);
    }
    uint32_t state = r->power_state;
    bool ok = r->ok();
    record(i, "status", std::move(*r), t0);
    return ok ? std::optional<uint32_t>(state) : std::nullopt;
}

void Sequence::settle()
{
    if (p_.settle.count() <= 0)
        return;
    int64_t until = monotonic_ms() + p_.settle.count();
    if (p_.deadline_ms)
        until = std::min(until, p_.deadline_ms);
    while (monotonic_ms() < until && !cancelled())
        std::this_thread::sleep_for(Millis(std::min<int64_t>(50, until - monotonic_ms())));
}

// Sends a power action (up to `attempts` times while it fails); false after recording the failure.
bool Sequence::send(size_t i, PowerAction a, unsigned attempts, OpResult *res)
{
    SequenceDevice &d = devs_[i];
    const auto &info = power_action_info(a);
    if (!d.agent->can(info.capability))
        return fail(i, std::string(info.name), STOCKADE_RC_UNSUPPORTED,
                    fmt::format("agent '{}' cannot {}", d.agent->name, info.name));
    for (unsigned n = 1;; ++n) {
        int64_t t0 = monotonic_ms();
        auto r = call(i, info.name);
        if (!r)
            return false;
        bool ok = r->ok();
        *res = *r;
        if (ok || n >= std::max(1u, attempts)) {
            record(i, std::string(info.name), std::move(*r), t0);
            return ok;
        }
        // A failed attempt that will be retried is still a step, but not the outcome.
        auto failed = out_.failed_step;
        record(i, std::string(info.name), std::move(*r), t0);
        if (!failed) {
            out_.failed_step.reset();
            out_.rc = STOCKADE_RC_OK;
            out_.exec = ExecStatus::Completed;
            out_.reason.clear();
        }
    }
}

// Confirms the state a power action was meant to reach: the agent's word, else a status read.
bool Sequence::confirm(size_t i, const OpResult &res, uint32_t want)
{
    SequenceDevice &d = devs_[i];
    uint32_t bit = want == STOCKADE_POWER_OFF ? STOCKADE_VERIFIED_OFF : STOCKADE_VERIFIED_ON;
    if (res.verified & bit)
        return true;
    const char *what = want == STOCKADE_POWER_OFF ? "off" : "on";
    if (!d.agent->can(STOCKADE_CAP_STATUS)) {
        if (want == STOCKADE_POWER_ON) {
            on_taken_on_word_ = true; // its word is all there is (fence-agents' no_status)
            return true;
        }
        return fail(i, "verify", STOCKADE_RC_FAILED,
                    fmt::format("agent '{}' neither confirmed the target {} nor can read its status", d.agent->name,
                                what),
                    want);
    }
    int64_t t0 = monotonic_ms();
    auto v = call(i, "status", want);
    if (!v)
        return false;
    if (v->ok() && v->power_state != want) {
        v->rc = STOCKADE_RC_FAILED;
        v->message = fmt::format("status reads {} after {}", power_state_info(v->power_state).name, what);
    }
    bool ok = v->ok();
    record(i, "verify", std::move(*v), t0, want);
    return ok;
}

// The action on every device in order, each confirmed; the first failure ends it.
bool Sequence::power_phase(PowerAction a, uint32_t want, unsigned attempts)
{
    for (size_t i = 0; i < devs_.size(); ++i) {
        if (!open(i))
            return false;
        OpResult res;
        if (!send(i, a, attempts, &res))
            return false;
        settle();
        if (!confirm(i, res, want))
            return false;
    }
    return true;
}

SequenceOutcome Sequence::run(SequenceAction action)
{
    auto finish = [&](bool success) {
        out_.success = success;
        if (success) {
            out_.rc = STOCKADE_RC_OK;
            out_.exec = ExecStatus::Completed;
            out_.failed_step.reset();
        }
        out_.elapsed_ms = monotonic_ms() - start_;
        return std::move(out_);
    };
    if (devs_.empty()) {
        out_.rc = STOCKADE_RC_BAD_CONFIG;
        out_.reason = "no device";
        return finish(false);
    }

    if (action == SequenceAction::ReadStatus) {
        bool any_on = false, asked = false;
        for (size_t i = 0; i < devs_.size(); ++i) {
            if (devs_[i].agent && !devs_[i].agent->can(STOCKADE_CAP_STATUS))
                continue; // this device cannot tell; others may
            if (!open(i))
                return finish(false);
            if (!devs_[i].agent->can(STOCKADE_CAP_STATUS))
                continue;
            asked = true;
            auto s = read_state(i);
            if (!s)
                return finish(false);
            any_on |= *s == STOCKADE_POWER_ON;
        }
        if (!asked) {
            out_.rc = STOCKADE_RC_UNSUPPORTED;
            out_.reason = "no device can read the status";
            return finish(false);
        }
        out_.state = any_on ? STOCKADE_POWER_ON : STOCKADE_POWER_OFF;
        return finish(true);
    }

    // fence-agents reads the state first: already there means nothing is sent.
    std::optional<uint32_t> known; // every device's state when all agree, from status_first
    if (p_.status_first && action != SequenceAction::Diag) {
        bool all_off = true, all_on = true, all_read = true;
        for (size_t i = 0; i < devs_.size(); ++i) {
            if (!open(i))
                return finish(false);
            if (!devs_[i].agent->can(STOCKADE_CAP_STATUS)) {
                all_read = false;
                continue;
            }
            auto s = read_state(i);
            if (!s)
                return finish(false);
            all_off &= *s == STOCKADE_POWER_OFF;
            all_on &= *s == STOCKADE_POWER_ON;
        }
        if (all_read)
            known = all_off ? std::optional<uint32_t>(STOCKADE_POWER_OFF)
                    : all_on ? std::optional<uint32_t>(STOCKADE_POWER_ON)
                             : std::nullopt;
        if ((action == SequenceAction::Off && known == STOCKADE_POWER_OFF) ||
            (action == SequenceAction::On && known == STOCKADE_POWER_ON)) {
            out_.already = true;
            out_.state = *known;
            return finish(true);
        }
    }

    switch (action) {
    case SequenceAction::Off:
        if (!power_phase(PowerAction::Off, STOCKADE_POWER_OFF, 1))
            return finish(false);
        out_.state = STOCKADE_POWER_OFF;
        return finish(true);
    case SequenceAction::On: {
        if (!power_phase(PowerAction::On, STOCKADE_POWER_ON, p_.on_attempts))
            return finish(false);
        out_.state = on_taken_on_word_ ? STOCKADE_POWER_UNKNOWN : STOCKADE_POWER_ON;
        return finish(true);
    }
    case SequenceAction::Diag:
        for (size_t i = 0; i < devs_.size(); ++i) {
            OpResult res;
            if (!open(i) || !send(i, PowerAction::Diag, 1, &res))
                return finish(false);
        }
        return finish(true);
    case SequenceAction::Reboot:
    case SequenceAction::ReadStatus:
        break;
    }

    // Reboot.  One device that can reboot itself does it in one call (unless it is known to be
    // off and can simply be switched on); the agent must confirm the off.
    if (devs_.size() == 1) {
        if (!open(0))
            return finish(false);
        const AgentInfo &agent = *devs_[0].agent;
        if (agent.can(STOCKADE_CAP_REBOOT) && !(known == STOCKADE_POWER_OFF && agent.can(STOCKADE_CAP_ON))) {
            OpResult res;
            if (!send(0, PowerAction::Reboot, 1, &res))
                return finish(false);
            if (!(res.verified & STOCKADE_VERIFIED_OFF)) {
                fail(0, "verify", STOCKADE_RC_FAILED, "the agent did not confirm the target went off during the reboot",
                     STOCKADE_POWER_OFF);
                return finish(false);
            }
            out_.power_on_failed = !(res.verified & STOCKADE_VERIFIED_ON);
            if (out_.power_on_failed)
                out_.reason = fmt::format("'{}' is off but was not confirmed on again", devs_[0].target);
            out_.state = out_.power_on_failed ? STOCKADE_POWER_OFF : STOCKADE_POWER_ON;
            return finish(true);
        }
    }
    // Several devices (or one without reboot): off on every device, confirmed, then on on every one.
    if (known != STOCKADE_POWER_OFF && !power_phase(PowerAction::Off, STOCKADE_POWER_OFF, 1))
        return finish(false);
    out_.state = STOCKADE_POWER_OFF;
    if (!std::all_of(devs_.begin(), devs_.end(), [](const SequenceDevice &d) { return d.agent && d.agent->can(STOCKADE_CAP_ON); })) {
        // Devices that cannot power on (fabric fencing) leave the node off: fenced all the same.
        out_.power_on_failed = true;
        out_.reason = "a device cannot power on; the node stays off";
        return finish(true);
    }
    // An unfencing "on" (storage fencing) re-admits only the node that runs it: the victim
    // unfences itself when it rejoins, never the fencer as the second half of a reboot.
    if (std::any_of(devs_.begin(), devs_.end(), [](const SequenceDevice &d) { return d.agent->can(STOCKADE_CAP_UNFENCE); })) {
        out_.power_on_failed = true;
        out_.reason = "a device's on is unfencing, which the node runs on itself when it rejoins; the node stays fenced";
        return finish(true);
    }
    // The on phase never loses the fence: every off was confirmed.
    if (!power_phase(PowerAction::On, STOCKADE_POWER_ON, p_.reboot_on_attempts)) {
        out_.power_on_failed = true;
        out_.reason = "power-on was not confirmed: " + out_.reason;
    } else {
        out_.state = on_taken_on_word_ ? STOCKADE_POWER_UNKNOWN : STOCKADE_POWER_ON;
    }
    return finish(true);
}

} // namespace

SequenceOutcome run_sequence(std::span<SequenceDevice> devices, SequenceAction action, const SequencePolicy &policy)
{
    return Sequence(devices, policy).run(action);
}

} // namespace stockade
