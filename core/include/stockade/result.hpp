// result.hpp -- errors as values inside the core.
//
// g++ 12 has no std::expected, so the core uses this small Result<T>: a value, or an Error that
// carries a STOCKADE_RC_* code and a one-line message, and, when the error is about one field of
// a document (a config entry, an agent parameter), that field as a JSON pointer plus the problem
// on its own, so callers re-base or list errors without parsing the message.  Library code returns these and never
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
    std::string message;                // the whole line, as shown to a user
    std::string pointer;                // RFC 6901 pointer of the field at fault ("" = none; "/" = the root);
                                        // relative to the parameter list for agent parameters ("/ipaddr")
    std::string problem;                // what is wrong with that field, without the where

    Error() = default;
    Error(uint32_t code, std::string msg, std::string ptr = {}, std::string what = {})
        : rc(code), message(std::move(msg)), pointer(std::move(ptr)), problem(std::move(what))
    {
    }
};

template <class... Args>
Error make_error(uint32_t rc, fmt::format_string<Args...> f, Args &&...args)
{
    return Error{rc, fmt::format(f, std::forward<Args>(args)...)};
}

// One reference token of a JSON pointer: '~' -> "~0", '/' -> "~1" (RFC 6901).
inline std::string json_pointer_token(std::string_view key)
{
    std::string out;
    for (char c : key)
        out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
    return out;
}

// An error about the field at `pointer`: message "<prefix><pointer>: <problem>" (prefix e.g. "file.json: ").
inline Error field_error(uint32_t rc, std::string pointer, std::string problem, std::string_view prefix = {})
{
    std::string message = fmt::format("{}{}: {}", prefix, pointer.empty() ? "/" : pointer, problem);
    return Error{rc, std::move(message), std::move(pointer), std::move(problem)};
}

// An error about the agent parameter `name`: message "parameter '<name>': <problem>", pointer "/<name>".
inline Error param_field_error(uint32_t rc, std::string_view name, std::string problem)
{
    std::string message = fmt::format("parameter '{}': {}", name, problem);
    return Error{rc, std::move(message), "/" + json_pointer_token(name), std::move(problem)};
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
