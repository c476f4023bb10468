// host_protocol.hpp -- the pipe protocol between an isolated session and stockade-agent-host.
//
// One JSON object per line.  Requests (parent -> child, on the child's stdin):
//   {"op":"open","params":[[name,value],...],"timeout_ms":N,"label":"dev","search_path":[...]}
//   {"op":"power","action":A,"target":"t","timeout_ms":N}
//   {"op":"status","target":"t","timeout_ms":N}   {"op":"list","timeout_ms":N}
//   {"op":"monitor","timeout_ms":N}               {"op":"close"}
// Replies (child -> parent, on the child's stdout): any number of
//   {"type":"log","level":L,"msg":"..."}
// then exactly one {"type":"result","rc":R,"message":"...","verified":V,"state":S,
//   "targets":[[name,alias],...]} per request.  Secrets only ever travel in "open" over the pipe.
#pragma once

#include <nlohmann/json.hpp>

#include "stockade/session.hpp"

namespace stockade::host_protocol {

inline nlohmann::json result_to_json(const OpResult &r)
{
    nlohmann::json t = nlohmann::json::array();
    for (const auto &x : r.targets)
        t.push_back({x.name, x.alias});
    return {{"type", "result"}, {"rc", r.rc},         {"message", r.message},     {"verified", r.verified},
            {"state", r.power_state}, {"targets", t}, {"elapsed_ms", r.elapsed_ms}};
}

inline OpResult result_from_json(const nlohmann::json &j)
{
    OpResult r;
    r.rc = j.value("rc", uint32_t(STOCKADE_RC_INTERNAL));
    r.message = j.value("message", std::string());
    r.verified = j.value("verified", 0u);
    r.power_state = j.value("state", uint32_t(STOCKADE_POWER_UNKNOWN));
    r.elapsed_ms = j.value("elapsed_ms", int64_t(0));
    if (auto it = j.find("targets"); it != j.end() && it->is_array())
        for (const auto &t : *it)
            if (t.is_array() && t.size() == 2 && t[0].is_string() && t[1].is_string())
                r.targets.push_back({t[0].get<std::string>(), t[1].get<std::string>()});
    if (r.rc >= STOCKADE_RC_COUNT)
        r.rc = STOCKADE_RC_INTERNAL;
    return r;
}

} // namespace stockade::host_protocol
