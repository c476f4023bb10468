// lazy_library.hpp -- a shared library loaded on first use instead of at process start.
//
// Every library in a program's DT_NEEDED is mapped and relocated at exec, and the fork template
// and every session forked from it carry it too.  A library that only some commands need (OpenSSL's
// libcrypto for the witness HMAC, libcurl for the redfish agent) is cheaper opened by soname when
// first needed: `stockade status` no longer pays libcrypto's ~0.5 ms start.  Never dlclosed.
#pragma once

#include <dlfcn.h>
#include <string>

namespace stockade {

// The library `soname` (RTLD_NOW | RTLD_LOCAL), or nullptr with `why` naming the package to install.
inline void *open_library(const char *soname, const char *package, std::string &why)
{
    void *lib = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = ::dlerror();
        why = std::string("cannot load ") + soname + " (package " + package + "): " + (e ? e : "unknown error");
    }
    return lib;
}

// `name` from `lib` into the function pointer `out` (its type is the real prototype's, e.g.
// decltype(&EVP_Digest)); false with `why` set when the library lacks it.
template <class Fn>
bool resolve_symbol(void *lib, const char *soname, const char *name, Fn &out, std::string &why)
{
    void *sym = ::dlsym(lib, name);
    if (!sym) {
        why = std::string(soname) + " has no " + name;
        return false;
    }
    out = reinterpret_cast<Fn>(sym);
    return true;
}

} // namespace stockade
