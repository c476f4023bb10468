// fuzz_config.cpp -- the JSON configuration with its schema check (core/src/config.cpp,
// json_schema.cpp): any bytes must give a Config or one error line, never a crash or an escaping
// exception; an accepted config must hold no NUL byte in any name or parameter.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "stockade/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view text(reinterpret_cast<const char *>(data), size);
    auto c = stockade::parse_config(text, "fuzz.json");
    if (!c) {
        if (c.error().message.empty())
            std::abort();
        return 0;
    }
    for (const auto &[name, d] : c->devices)
        for (const auto &[k, v] : d.params)
            if (k.find('\0') != std::string::npos || v.find('\0') != std::string::npos)
                std::abort();
    for (const auto &n : c->nodes)
        (void)c->find_node(n.name);
    return 0;
}
