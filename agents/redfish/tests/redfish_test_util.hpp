// redfish_test_util.hpp -- helpers shared by the Redfish agent tests: parameters that reach a test
// service, one opened session on the agent (isolated unless asked), and a logger that keeps lines.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

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
    RawParams p{{"ip", svc.address()},    {"ipport", std::to_string(svc.port())},
                {"username", "admin"},    {"password", "secret"},
                {"ssl_ca_file", svc.ca_file()}, {"power_timeout", "10"}};
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
    p.erase(std::remove_if(p.begin(), p.end(), [](const auto &kv) { return kv.second == "<unset>"; }), p.end());
    return p;
}

// Keeps every log line (for "no secret in any log line" and "the warning was logged").
struct KeptLog {
    Logger logger;
    std::mutex mu;
    std::vector<std::string> lines;
    KeptLog()
    {
        logger.set_level(STOCKADE_LOG_DEBUG);
        logger.add_sink([this](int, std::string_view l) {
            std::lock_guard<std::mutex> g(mu);
            lines.emplace_back(l);
        });
    }
    std::string all()
    {
        std::lock_guard<std::mutex> g(mu);
        std::string out;
        for (const auto &l : lines)
            out += l + "\n";
        return out;
    }
};

inline std::unique_ptr<AgentSession> open_redfish(const RawParams &raw, bool isolate = true, Logger *logger = nullptr)
{
    auto params = resolve_params(redfish_agent(), raw, UnknownParams::Reject);
    if (!params)
        throw std::runtime_error(params.error().message);
    SessionOptions o;
    o.isolate = isolate;
    o.logger = logger;
    auto s = make_session(redfish_agent(), o);
    OpResult r = s->open(*params, std::chrono::seconds(10));
    if (!r.ok())
        throw std::runtime_error("open failed: " + r.message);
    return s;
}

inline long ms_since(std::chrono::steady_clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

#define REDFISH_SKIP_IF_NO_SERVICE()                                                           \
    do {                                                                                       \
        if (auto why = ::stockade::test::redfish_service_unavailable_reason()) {               \
            WARN("SKIPPED: " << *why);                                                         \
            return;                                                                            \
        }                                                                                      \
    } while (0)

} // namespace stockade::test
