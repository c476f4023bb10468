// secret.hpp -- a std::string that is zeroed before its memory is released, for passwords, keys
// and session tokens an agent holds for the length of an operation.  Header-only: agents must not
// link libstockade.  (Zeroing cannot reach copies a library made; it keeps ours out of freed heap.)
#pragma once

#include <cstring>
#include <string>
#include <utility>

namespace stockade {

class SecretString {
public:
    SecretString() = default;
    explicit SecretString(std::string s) : s_(std::move(s)) {}
    SecretString(const SecretString &) = delete;
    SecretString &operator=(const SecretString &) = delete;
    SecretString(SecretString &&o) noexcept : s_(std::move(o.s_)) { o.wipe(); }
    SecretString &operator=(SecretString &&o) noexcept
    {
        if (this != &o) {
            wipe();
            s_ = std::move(o.s_);
            o.wipe();
        }
        return *this;
    }
    ~SecretString() { wipe(); }

    const std::string &str() const { return s_; }
    bool empty() const { return s_.empty(); }
    // Zeroes the bytes in place, then empties the string.
    void wipe() noexcept
    {
        if (!s_.empty())
            ::explicit_bzero(s_.data(), s_.size());
        s_.clear();
    }

private:
    std::string s_;
};

} // namespace stockade
