// fuzz_agent_host_protocol.cpp -- both directions of the pipe protocol between a session and
// stockade-agent-host (core/src/host_protocol.hpp): each input line is decoded as a request (the
// host's side) and as a reply (the parent's side).  Whatever the types in the JSON, decoding
// must give a value or an error, never throw: an exception in the host or the parent ends a
// fencing operation with a crash instead of an answer.  A decoded reply's rc is always a valid
// STOCKADE_RC_* code.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "host_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view text(reinterpret_cast<const char *>(data), size);
    size_t start = 0;
    while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        (void)stockade::host_protocol::parse_request(line);
        auto reply = stockade::host_protocol::parse_reply(line);
        if (reply && reply->is_result && reply->result.rc >= STOCKADE_RC_COUNT)
            std::abort();
        if (nl == std::string_view::npos)
            break;
        start = nl + 1;
    }
    return 0;
}
