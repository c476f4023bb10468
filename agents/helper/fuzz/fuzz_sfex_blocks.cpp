// fuzz_sfex_blocks.cpp -- libFuzzer target for the SFEX block parsers.
//
// The parsers read blocks written by other nodes (or by nobody: a wrong device, a wiped disk), so
// they must survive any bytes.  The input is fed both as a control block and as a lock block; a
// block that parses must re-encode to a block that parses to the same values.  Built only with
// clang (target sfex_fuzz, not part of ALL): `cmake --build build --target sfex_fuzz` then
// `build/tests/bin/sfex_fuzz -runs=1000000`.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "stockade/sfex.hpp"

using namespace stockade::sfex;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::span<const uint8_t> in(data, size);
    ControlData c;
    if (parse_control_block(in, c).ok()) {
        std::vector<uint8_t> out(512);
        if (!format_control_block(c, out).ok())
            std::abort();
        ControlData again;
        if (!parse_control_block(out, again).ok() || again.blocksize != c.blocksize ||
            again.numlocks != c.numlocks || again.version != c.version || again.revision != c.revision)
            std::abort();
    }
    LockData l;
    if (parse_lock_block(in, 1, l).ok()) {
        std::vector<uint8_t> out(512);
        if (!format_lock_block(l, out).ok())
            std::abort();
        LockData again;
        if (!parse_lock_block(out, 1, again).ok() || again.status != l.status || again.count != l.count ||
            again.nodename != l.nodename)
            std::abort();
    }
    return 0;
}
