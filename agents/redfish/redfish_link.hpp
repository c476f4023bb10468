// redfish_link.hpp -- one HTTPS connection to one Redfish service (redfish_https.hpp: Beast + OpenSSL).
//
// A link owns one HttpsConnection for the whole life of the agent handle, so every request
// of an operation (and of the operations that follow on the same handle) reuses one kept-alive
// TLS connection: one handshake, one login.  Every request is cut to what is left of the caller's
// deadline and stops when the host cancels.  Trust is decided before the first byte of a request
// leaves: the system CA store or ssl_ca_file with the host name checked, or a pinned SHA-256
// certificate fingerprint checked inside the TLS handshake, or nothing at all only with
// ssl_insecure=1 (logged).  The password goes out in each request's Authorization header (Basic,
// built and wiped per request) or once in the session login body (Session), never in a URL, a log
// line or an error message.
//
// HTTP outcomes are mapped to result codes in one table (redfish_link.cpp): 401/403 access denied
// and never retried, 404 bad config, 5xx and no answer retried `retries` times while time is left,
// then unreachable/failed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "redfish_config.hpp"
#include "redfish_https.hpp"
#include "stockade/agent.h"
#include "stockade/result.hpp"

namespace stockade::redfish {

struct Response {
    long status = 0;
    std::string location;          // Location header ("" when none), reduced to its path
    SecretString auth_token;       // X-Auth-Token header ("" when none): a session login's answer
    nlohmann::json body;           // parsed JSON (null when the body was empty)
};

class RedfishLink {
public:
    explicit RedfishLink(const RedfishConfig &cfg);
    ~RedfishLink();
    RedfishLink(const RedfishLink &) = delete;
    RedfishLink &operator=(const RedfishLink &) = delete;

    // Points the link at another BMC (port_as_ip); drops the connection and any session.
    void set_host(const std::string &host);
    const std::string &host() const { return host_; }
    std::string endpoint() const { return cfg_.endpoint(host_); }

    // Where the session login goes (from the service root's Links.Sessions); has a default.
    void set_sessions_uri(const std::string &uri) { sessions_uri_ = uri; }

    Result<Response> get(const stockade_ctx *ctx, const std::string &path);
    // GET without logging in first (the service root is readable without a session).
    Result<Response> get_public(const stockade_ctx *ctx, const std::string &path);
    Result<Response> post(const stockade_ctx *ctx, const std::string &path, const std::string &json_body);

    // Deletes the Redfish session, if one is open, within `budget_ms`.  Returns "" or the reason.
    std::string logout(int64_t budget_ms);

    // Counters for the log: requests sent and TCP connections opened since the last reset.
    void reset_counters() { requests_ = connects_ = 0; }
    unsigned requests() const { return requests_; }
    unsigned connects() const { return connects_; }

private:
    enum class Method { Get, Post, Delete };
    Result<Response> request(const stockade_ctx *ctx, Method m, const std::string &path, const std::string &body,
                             bool log_in = true);
    Result<Response> once(const stockade_ctx *ctx, Method m, const std::string &path, const std::string &body,
                          int64_t deadline_ms);
    Status login(const stockade_ctx *ctx);
    SecretString basic_authorization() const;

    const RedfishConfig &cfg_;
    std::string host_;
    std::string sessions_uri_;
    SecretString token_;                 // X-Auth-Token of our session ("" = none)
    std::string session_uri_;      // where to DELETE it
    std::unique_ptr<HttpsConnection> https_;
    bool last_transient_ = false; // the last failure is worth another attempt (no answer, 5xx)
    unsigned requests_ = 0, connects_ = 0;
    bool warned_insecure_ = false;
};

// The text a Redfish error body carries (@Message.ExtendedInfo[0].Message or error.message), cut
// to a line; "" when there is none.
std::string redfish_error_text(const nlohmann::json &body);

} // namespace stockade::redfish
