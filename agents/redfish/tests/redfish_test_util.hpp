// redfish_test_util.hpp -- helpers shared by the Redfish agent tests: parameters that reach a test
// service, one opened session on the agent (isolated unless asked), and a logger that keeps lines.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "redfish_service_fixture.hpp"
#include "stockade/log.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "test_support.hpp"

namespace stockade::test {

inline const AgentInfo &redfish_agent()
{
    return registered_agent("redfish");
}

// Parameters that reach `svc` as its first user, trusting its CA.
inline RawParams rf_params(const RedfishService &svc, RawParams extra = {})
{
    return with_params({{"ip", svc.address()},
                        {"ipport", std::to_string(svc.port())},
                        {"username", "admin"},
                        {"password", "secret"},
                        {"ssl_ca_file", svc.ca_file()},
                        {"power_timeout", "10"}},
                       extra);
}

inline std::unique_ptr<AgentSession> open_redfish(const RawParams &raw, bool isolate = true, Logger *logger = nullptr)
{
    return open_session(redfish_agent(), raw, isolate, logger);
}

#define REDFISH_SKIP_IF_NO_SERVICE() \
    STOCKADE_SKIP_IF_UNAVAILABLE(::stockade::test::redfish_service_unavailable_reason())

} // namespace stockade::test
