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
    return with_params({{"ip", bmc.address()},
                        {"ipport", std::to_string(bmc.port())},
                        {"username", u.name},
                        {"password", u.password},
                        {"workarounds", "opensesspriv"},
                        {"hostlist", "node1"},
                        {"session_timeout", "2000"},
                        {"power_timeout", "10"}},
                       extra);
}

// An opened session on the ipmi agent (isolated in an agent-host child unless told otherwise).
inline std::unique_ptr<AgentSession> open_ipmi(const RawParams &raw, bool isolate = true, OpResult *open_result = nullptr)
{
    return open_session(ipmi_agent(), raw, isolate, nullptr, open_result);
}

#define IPMI_SKIP_IF_NO_SIM() STOCKADE_SKIP_IF_UNAVAILABLE(::stockade::test::sim_unavailable_reason())

} // namespace stockade::test
