// paths.cpp -- locating the running binary.
#include "paths.hpp"

#include <climits>
#include <unistd.h>

namespace stockade {

std::optional<std::string> exe_dir()
{
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return std::nullopt;
    std::string p(buf, static_cast<size_t>(n));
    auto slash = p.rfind('/');
    if (slash == std::string::npos)
        return std::nullopt;
    return p.substr(0, slash);
}

} // namespace stockade
