// fuzz_stonith_conf.cpp -- the stonith.conf importer (tools/stockade/stonith_conf.cpp): any bytes
// give a configuration or one error; an accepted import must itself be a valid stockade config.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "stockade/config.hpp"
#include "stonith_conf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view text(reinterpret_cast<const char *>(data), size);
    auto r = stockade::cli::import_stonith_conf(text, "stonith.conf");
    if (!r)
        return 0;
    auto c = stockade::parse_config(r->config.dump(), "imported.json");
    if (!c) {
        // The importer promised a config "ready for stockade validate".
        std::fprintf(stderr, "import is not a valid config: %s\n", c.error().message.c_str());
        std::abort();
    }
    return 0;
}
