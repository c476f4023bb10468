// redfish_https.hpp -- one kept-alive HTTPS/1.1 connection to one BMC, on Boost.Beast + OpenSSL.
//
// Why Beast on OpenSSL's libssl and not libcurl (measured, bench/RESULTS.md redfish run 11):
// Debian's libcurl4 needs 33 shared libraries (GnuTLS, Kerberos, LDAP, libssh2, librtmp...); their
// load and constructors were ~6 ms of CPU in every fence_stockade_redfish run, on its critical
// path, against ~1.5 ms for libssl + libcrypto.  Beast (header-only, Boost 1.74) brings the HTTP/1.1
// grammar (chunked bodies, keep-alive, header and body limits); what a BMC client needs on top is
// here: one io_context driven in the calling thread to a deadline (no thread is ever started, so
// the fork template may fork after prepare), the host's cancel checked every 20 ms, the trust
// decision made before the first request byte, one transparent reconnect of a kept-alive
// connection the BMC had closed.
//
// Trust: the system CA directory (hashed lookups: only the issuing CA is read, not the whole
// bundle) or ssl_ca_file, with the host name or IP checked against the certificate; or a pinned
// SHA-256 of the leaf certificate checked inside the handshake; or nothing, only for ssl_insecure.
// No secret is kept here: the caller passes the Authorization / X-Auth-Token values per exchange
// and they are wiped from the request after it was written.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "redfish_config.hpp"

namespace stockade::redfish {

enum class HttpMethod { Get, Post, Delete };

// Why an exchange got no HTTP answer; one row each in redfish_link.cpp's mapping.
enum class HttpFailure {
    None,
    Cancelled,       // the host cancelled
    Deadline,        // the exchange's time ran out (timeout_ms)
    Resolve,         // the host name does not resolve
    Connect,         // TCP connect refused or timed out (connect_timeout_ms)
    TlsHandshake,    // the TLS handshake failed for another reason than trust
    Untrusted,       // chain or name verification failed (detail: OpenSSL's reason)
    PinMismatch,     // the certificate is not the pinned one (seen_fingerprint says which it is)
    CaFile,          // ssl_ca_file cannot be loaded
    Io,              // the connection broke while the request or answer was on the wire
    BodyTooBig,      // the answer's body is larger than the limit
    BadAnswer,       // not HTTP/1.x
};

struct HttpExchange {
    HttpMethod method = HttpMethod::Get;
    std::string_view target;          // absolute path (and query)
    std::string_view body;            // sent as application/json with POST
    std::string_view authorization;   // Authorization header value ("" = none); wiped after the write
    std::string_view auth_token;      // X-Auth-Token header value ("" = none); wiped after the write
    int64_t timeout_ms = 0;           // the whole exchange, connect included
    int64_t connect_timeout_ms = 0;   // TCP connect + TLS handshake, when a connection is made
    std::function<bool()> cancelled;  // polled every 20 ms; may be empty
};

struct HttpResult {
    HttpFailure failure = HttpFailure::None;
    std::string detail;               // the library's words for a failure
    int status = 0;
    std::string location;             // Location header, as sent
    std::string auth_token;           // X-Auth-Token header of the answer (session login)
    std::string body;
    bool new_connection = false;      // this exchange connected (TCP + TLS)
    double tcp_ms = 0, tls_ms = 0;    // of that connection
    std::string seen_fingerprint;     // PinMismatch: what the BMC showed
};

class HttpsConnection {
public:
    HttpsConnection(const RedfishConfig &cfg, std::string host);
    ~HttpsConnection();
    HttpsConnection(const HttpsConnection &) = delete;
    HttpsConnection &operator=(const HttpsConnection &) = delete;

    // Another BMC (port_as_ip): the current connection is dropped.
    void set_host(std::string host);
    // One request and its answer.  Connects first when there is no connection; a kept-alive
    // connection found closed by the BMC is reopened once.  Bodies over 4 MiB are refused.
    HttpResult exchange(const HttpExchange &x);
    // Drops the connection (TCP close after a TLS close_notify attempt); the next exchange reconnects.
    void close();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// For the agent's prepare (ABI 1.2: once per process, in the fork template before any session):
// initialises OpenSSL and makes and frees one client SSL_CTX, so OpenSSL 3 has fetched and cached
// its ciphers, digests and groups (the first SSL_CTX_new of a process costs ~0.9 ms, a later one
// ~0.2).  No thread, no descriptor, nothing secret: the context's ticket keys are freed with it,
// and a forked session's DRBG reseeds itself (its pid differs).
bool prepare_tls();

} // namespace stockade::redfish
