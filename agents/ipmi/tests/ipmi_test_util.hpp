// ipmi_test_util.hpp -- small helpers shared by the IPMI agent tests: parameters for a simulated
// BMC, and one-call wrappers around an agent session.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "ipmi_sim_fixture.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "test_support.hpp"

namespace stockade::test {

inline const AgentInfo &ipmi_agent()
{
    return registered_agent("ipmi");
}

// Parameters that reach `bmc` as its first user, fencing node "node1".
inline RawParams sim_params(const SimBmc &bmc, RawParams extra = {})
{
    const SimUser &u = bmc.options().users.front();
    RawParams p{{"ip", bmc.address()},        {"ipport", std::to_string(bmc.port())},
                {"username", u.name},         {"password", u.password},
                {"workarounds", "opensesspriv"}, {"hostlist", "node1"},
                {"session_timeout", "2000"},  {"power_timeout", "10"}};
    for (auto &kv : extra) {
        bool replaced = false;
        for (auto &q : p)
            if (q.first == kv.first) {
                q.second = kv.second;
                replaced = true;
            }
        if (!replaced)
            p.push_back(kv);
    }
    return p;
}

// An opened session on the ipmi agent (isolated in an agent-host child unless told otherwise).
inline std::unique_ptr<AgentSession> open_ipmi(const RawParams &raw, bool isolate = true, OpResult *open_result = nullptr)
{
    auto params = resolve_params(ipmi_agent(), raw, UnknownParams::Reject);
    if (!params)
        throw std::runtime_error(params.error().message);
    SessionOptions o;
    o.isolate = isolate;
    auto s = make_session(ipmi_agent(), o);
    OpResult r = s->open(*params, std::chrono::seconds(10));
    if (open_result)
        *open_result = r;
    else if (!r.ok())
        throw std::runtime_error("open failed: " + r.message);
    return s;
}

inline long elapsed_ms_since(std::chrono::steady_clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

#define IPMI_SKIP_IF_NO_SIM()                                                                  \
    do {                                                                                       \
        if (auto why = ::stockade::test::sim_unavailable_reason()) {                           \
            WARN("SKIPPED: " << *why);                                                         \
            return;                                                                            \
        }                                                                                      \
    } while (0)

} // namespace stockade::test
