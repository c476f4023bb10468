// ipmi_error.hpp -- errors as values inside the IPMI agent.
//
// The agent never throws across its C entry points; internally every step returns either a value
// or an IpmiFailure holding the STOCKADE_RC_* code and the one-line reason that ends up in the
// caller's errbuf.  Kept tiny on purpose: the agent links only FreeIPMI, never libstockade.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "stockade/agent.h"

namespace stockade::ipmi {

struct IpmiFailure {
    uint32_t rc = STOCKADE_RC_INTERNAL;
    std::string message;
};

template <class T>
class [[nodiscard]] Expected {
public:
    Expected(T v) : v_(std::move(v)) {}
    Expected(IpmiFailure f) : v_(std::move(f)) {}
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T &value() { return std::get<0>(v_); }
    const T &value() const { return std::get<0>(v_); }
    T &operator*() { return value(); }
    const IpmiFailure &failure() const { return std::get<1>(v_); }

private:
    std::variant<T, IpmiFailure> v_;
};

// Result of a step that yields nothing: empty = success.
class [[nodiscard]] Step {
public:
    Step() = default;
    Step(IpmiFailure f) : f_(std::move(f)), failed_(true) {}
    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const IpmiFailure &failure() const { return f_; }

private:
    IpmiFailure f_;
    bool failed_ = false;
};

inline IpmiFailure fail(uint32_t rc, std::string message) { return IpmiFailure{rc, std::move(message)}; }

} // namespace stockade::ipmi
