// result.hpp -- errors as values inside the core.
//
// g++ 12 has no std::expected, so the core uses this small Result<T>: a value, or an Error that
// carries a STOCKADE_RC_* code and a one-line message.  Library code returns these and never
// throws across its public functions, never exits and never prints; only main() turns an Error
// into an exit code and a message.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "stockade/agent.h"

namespace stockade {

struct Error {
    uint32_t rc = STOCKADE_RC_INTERNAL; // a STOCKADE_RC_* code
    std::string message;
};

template <class... Args>
Error make_error(uint32_t rc, fmt::format_string<Args...> f, Args &&...args)
{
    return Error{rc, fmt::format(f, std::forward<Args>(args)...)};
}

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }

    const Error &error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : err_(std::move(e)), failed_(true) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error &error() const { return err_; }

private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

} // namespace stockade
