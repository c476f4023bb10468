// redfish_link.cpp -- see redfish_link.hpp.
#include "redfish_link.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>
#include <time.h>

#include "redfish_curl.hpp"

#include "stockade/agent_support.hpp"

namespace stockade::redfish {

using agent::cancelled;
using agent::log;

namespace {

constexpr size_t kMaxBody = size_t(4) << 20; // a ComputerSystem is a few kB; anything this big is wrong

// What an HTTP status means for fencing: one row per class of answer.
struct StatusRule {
    long lo, hi;
    uint32_t rc;
    bool transient; // worth another attempt while time is left
    const char *meaning;
};
constexpr std::array<StatusRule, 8> kStatusRules{{
    {401, 401, STOCKADE_RC_ACCESS_DENIED, false, "authentication refused (401)"},
    {403, 403, STOCKADE_RC_ACCESS_DENIED, false, "not allowed for this user (403)"},
    {404, 404, STOCKADE_RC_BAD_CONFIG, false, "no such resource (404)"},
    {405, 405, STOCKADE_RC_UNSUPPORTED, false, "method not allowed on this resource (405)"},
    {400, 499, STOCKADE_RC_FAILED, false, "request refused"},
    {503, 503, STOCKADE_RC_UNREACHABLE, true, "service unavailable (503)"},
    {500, 599, STOCKADE_RC_FAILED, true, "server error"},
    {100, 399, STOCKADE_RC_FAILED, false, "unexpected answer"},
}};

const StatusRule &rule_for(long status)
{
    for (const auto &r : kStatusRules)
        if (status >= r.lo && status <= r.hi)
            return r;
    return kStatusRules.back();
}

void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    ::nanosleep(&ts, nullptr);
}

// JSON string literal of s, into a SecretString (the session login body carries the password).
void append_json_string(std::string &out, const std::string &s)
{
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += char(c);
        }
    }
    out += '"';
}

// A Location header may be a path or an absolute URL: keep the path.
std::string path_of(std::string loc)
{
    while (!loc.empty() && (loc.back() == '\r' || loc.back() == '\n' || loc.back() == ' '))
        loc.pop_back();
    if (auto scheme = loc.find("://"); scheme != std::string::npos) {
        auto slash = loc.find('/', scheme + 3);
        return slash == std::string::npos ? "/" : loc.substr(slash);
    }
    return loc;
}

} // namespace

std::string redfish_error_text(const nlohmann::json &body)
{
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object())
        return {};
    const auto &e = body["error"];
    std::string text;
    if (auto it = e.find("@Message.ExtendedInfo"); it != e.end() && it->is_array() && !it->empty() &&
                                                   (*it)[0].is_object() && (*it)[0].contains("Message") &&
                                                   (*it)[0]["Message"].is_string())
        text = (*it)[0]["Message"].get<std::string>();
    else if (auto m = e.find("message"); m != e.end() && m->is_string())
        text = m->get<std::string>();
    std::replace(text.begin(), text.end(), '\n', ' ');
    if (text.size() > 200)
        text = text.substr(0, 200) + "...";
    return text;
}

struct RedfishLink::Curl {
    bool tried = false;           // ensure_curl() ran
    const CurlApi *api = nullptr; // nullptr: libcurl could not be loaded (load_error says why)
    std::string load_error;
    CURL *h = nullptr;
    char errbuf[CURL_ERROR_SIZE] = {0};
    const stockade_ctx *ctx = nullptr; // of the call in progress (for the cancel check)
    std::string body;
    bool body_too_big = false;
    std::string location, token;
    // Certificate pinning: the expected fingerprint and what the server showed.
    const std::array<unsigned char, 32> *pin = nullptr;
    std::string seen_fingerprint;
    bool pin_mismatch = false;
    bool transient = false; // the last failure is worth another attempt (no answer, 5xx)

    ~Curl()
    {
        if (h)
            api->easy_cleanup(h);
    }

    static size_t on_body(char *p, size_t size, size_t n, void *self)
    {
        auto *c = static_cast<Curl *>(self);
        if (c->body.size() + size * n > kMaxBody) {
            c->body_too_big = true;
            return 0;
        }
        c->body.append(p, size * n);
        return size * n;
    }

    static size_t on_header(char *p, size_t size, size_t n, void *self)
    {
        auto *c = static_cast<Curl *>(self);
        std::string_view line(p, size * n);
        auto colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string name = text::ascii_lower(line.substr(0, colon));
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
                value.remove_prefix(1);
            while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
                value.remove_suffix(1);
            if (name == "location")
                c->location = std::string(value);
            else if (name == "x-auth-token")
                c->token = std::string(value);
        }
        return size * n;
    }

    static int on_progress(void *self, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
    {
        auto *c = static_cast<Curl *>(self);
        return c->ctx && cancelled(c->ctx) ? 1 : 0;
    }

    // Replaces OpenSSL's chain verification: the leaf certificate must have the pinned SHA-256.
    static int verify_pin(X509_STORE_CTX *store, void *self)
    {
        auto *c = static_cast<Curl *>(self);
        X509 *leaf = c->api->x509_store_ctx_get0_cert(store);
        std::array<unsigned char, 32> got{};
        unsigned int len = 0;
        if (!leaf || !c->api->x509_digest(leaf, c->api->evp_sha256(), got.data(), &len) || len != got.size()) {
            c->pin_mismatch = true;
            c->seen_fingerprint = "(none)";
            return 0;
        }
        c->seen_fingerprint = fingerprint_text(got);
        c->pin_mismatch = !c->pin || got != *c->pin;
        return c->pin_mismatch ? 0 : 1;
    }

    static CURLcode on_ssl_ctx(CURL *, void *ssl_ctx, void *self)
    {
        auto *c = static_cast<Curl *>(self);
        auto *ctx = static_cast<SSL_CTX *>(ssl_ctx);
        c->api->ssl_ctx_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        c->api->ssl_ctx_set_cert_verify_callback(ctx, verify_pin, self);
        return CURLE_OK;
    }
};

RedfishLink::RedfishLink(const RedfishConfig &cfg) : cfg_(cfg), host_(cfg.host), curl_(std::make_unique<Curl>())
{
    sessions_uri_ = cfg_.redfish_uri + "/SessionService/Sessions";
}

// libcurl is loaded and the handle made at the first request, not when the handle is opened: a
// device opened only to state its time need (time_needed, in the front-end's own process) or to
// be validated never loads libcurl's 33 libraries.
void RedfishLink::ensure_curl()
{
    if (curl_->tried)
        return;
    curl_->tried = true;
    curl_->api = curl_api(&curl_->load_error);
    if (!curl_->api)
        return; // reported by the first request
    const CurlApi &api = *curl_->api;
    curl_->h = api.easy_init();
    if (!curl_->h)
        return; // reported by the first request
    CURL *h = curl_->h;
    api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(h, CURLOPT_ERRORBUFFER, curl_->errbuf);
    api.easy_setopt(h, CURLOPT_WRITEFUNCTION, &Curl::on_body);
    api.easy_setopt(h, CURLOPT_WRITEDATA, curl_.get());
    api.easy_setopt(h, CURLOPT_HEADERFUNCTION, &Curl::on_header);
    api.easy_setopt(h, CURLOPT_HEADERDATA, curl_.get());
    api.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    api.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Curl::on_progress);
    api.easy_setopt(h, CURLOPT_XFERINFODATA, curl_.get());
    api.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    api.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    api.easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    api.easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    api.easy_setopt(h, CURLOPT_MAXCONNECTS, 1L);
    api.easy_setopt(h, CURLOPT_USERAGENT, "stockade-redfish/1.0");
    if (cfg_.auth == AuthType::Basic) {
        api.easy_setopt(h, CURLOPT_HTTPAUTH, long(CURLAUTH_BASIC));
        api.easy_setopt(h, CURLOPT_USERNAME, cfg_.username.c_str());
        api.easy_setopt(h, CURLOPT_PASSWORD, cfg_.password.str().c_str());
    }
    configure_tls();
}

RedfishLink::~RedfishLink() = default;

void RedfishLink::configure_tls()
{
    const CurlApi &api = *curl_->api;
    CURL *h = curl_->h;
    switch (cfg_.trust) {
    case TlsTrust::SystemCa:
    case TlsTrust::CaFile:
        api.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        api.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cfg_.trust == TlsTrust::CaFile)
            api.easy_setopt(h, CURLOPT_CAINFO, cfg_.ca_file.c_str());
        break;
    case TlsTrust::Fingerprint:
        // The pin replaces chain and name checks; it runs inside the handshake, before any request.
        api.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        api.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_->pin = &cfg_.fingerprint;
        api.easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, &Curl::on_ssl_ctx);
        api.easy_setopt(h, CURLOPT_SSL_CTX_DATA, curl_.get());
        break;
    case TlsTrust::Insecure:
        api.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        api.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        break;
    }
}

void RedfishLink::set_host(const std::string &host)
{
    if (host == host_)
        return;
    (void)logout(1000);
    host_ = host;
    if (curl_->h) // forget the old connection: the next request connects to the new host
        curl_->api->easy_setopt(curl_->h, CURLOPT_FRESH_CONNECT, 1L);
}

Result<Response> RedfishLink::get(const stockade_ctx *ctx, const std::string &path)
{
    return request(ctx, Method::Get, path, {});
}

Result<Response> RedfishLink::get_public(const stockade_ctx *ctx, const std::string &path)
{
    return request(ctx, Method::Get, path, {}, /*log_in=*/false);
}

Result<Response> RedfishLink::post(const stockade_ctx *ctx, const std::string &path, const std::string &json_body)
{
    return request(ctx, Method::Post, path, json_body);
}

Status RedfishLink::login(const stockade_ctx *ctx)
{
    std::string body = "{\"UserName\":";
    append_json_string(body, cfg_.username);
    body += ",\"Password\":";
    append_json_string(body, cfg_.password.str());
    body += '}';
    SecretString wiped(std::move(body));
    auto r = once(ctx, Method::Post, sessions_uri_, wiped.str(), ctx->deadline_ms);
    if (!r)
        return Error{r.error().rc, r.error().message + " (session login)"};
    if (curl_->token.empty())
        return Error{STOCKADE_RC_FAILED, "redfish " + endpoint() + ": session login at " + sessions_uri_ +
                                             " answered " + std::to_string(r->status) + " without an X-Auth-Token"};
    token_ = SecretString(std::move(curl_->token));
    curl_->token.clear();
    session_uri_ = r->location;
    if (session_uri_.empty() && r->body.is_object() && r->body.contains("@odata.id") &&
        r->body["@odata.id"].is_string())
        session_uri_ = r->body["@odata.id"].get<std::string>();
    log(ctx, STOCKADE_LOG_DEBUG, "redfish " + endpoint() + ": session opened" +
                                     (session_uri_.empty() ? std::string() : " (" + session_uri_ + ")"));
    return {};
}

std::string RedfishLink::logout(int64_t budget_ms)
{
    if (token_.str().empty())
        return {};
    std::string uri = session_uri_;
    stockade_ctx ctx{};
    ctx.abi_major = STOCKADE_ABI_MAJOR;
    ctx.struct_size = sizeof ctx;
    ctx.deadline_ms = stockade_monotonic_ms() + budget_ms;
    std::string why;
    if (uri.empty()) {
        why = "the BMC gave no session URI to delete";
    } else {
        auto r = once(&ctx, Method::Delete, uri, {}, ctx.deadline_ms);
        if (!r)
            why = r.error().message;
    }
    token_.wipe();
    session_uri_.clear();
    return why;
}

Result<Response> RedfishLink::request(const stockade_ctx *ctx, Method m, const std::string &path,
                                      const std::string &body, bool log_in)
{
    if (log_in && cfg_.auth == AuthType::Session && token_.str().empty())
        if (Status s = login(ctx); !s)
            return s.error();
    for (unsigned attempt = 0;; ++attempt) {
        auto r = once(ctx, m, path, body, ctx->deadline_ms);
        if (r)
            return r;
        const uint32_t rc = r.error().rc;
        const bool transient = curl_->transient && rc != STOCKADE_RC_TIMEOUT && rc != STOCKADE_RC_CANCELLED;
        const int64_t left = stockade_remaining_ms(ctx);
        if (!transient || attempt >= cfg_.retries || left <= kRetryPauseMs * (attempt + 1) + 100)
            return r;
        log(ctx, STOCKADE_LOG_WARNING, r.error().message + "; trying again");
        sleep_ms(kRetryPauseMs * (attempt + 1));
        if (cancelled(ctx))
            return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
    }
}

Result<Response> RedfishLink::once(const stockade_ctx *ctx, Method m, const std::string &path,
                                   const std::string &body, int64_t deadline_ms)
{
    const std::string where = "redfish " + endpoint();
    ensure_curl();
    if (!curl_->api)
        return Error{STOCKADE_RC_INTERNAL, where + ": " + curl_->load_error};
    const CurlApi &api = *curl_->api;
    CURL *h = curl_->h;
    if (!h)
        return Error{STOCKADE_RC_INTERNAL, where + ": libcurl could not create a handle"};
    if (cancelled(ctx))
        return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
    const int64_t left = deadline_ms > 0 ? std::max<int64_t>(0, deadline_ms - stockade_monotonic_ms()) : INT64_MAX;
    if (left <= 0)
        return Error{STOCKADE_RC_TIMEOUT, where + ": the operation deadline passed before " + path + " was read"};
    const int64_t own = int64_t(cfg_.request_timeout_s) * 1000;
    const int64_t timeout = std::min(own, left);
    const bool cut_by_deadline = left < own;
    api.easy_setopt(h, CURLOPT_TIMEOUT_MS, long(timeout));
    api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, long(std::min<int64_t>(int64_t(cfg_.login_timeout_s) * 1000, timeout)));

    if (cfg_.trust == TlsTrust::Insecure && !warned_insecure_) {
        log(ctx, STOCKADE_LOG_WARNING,
            where + ": ssl_insecure=1: the BMC's certificate is NOT verified (anyone on the path can read the "
                    "credentials and fake the answers)");
        warned_insecure_ = true;
    }

    const std::string url = cfg_.base_url(host_) + path;
    api.easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_slist *headers = nullptr;
    headers = api.slist_append(headers, "Accept: application/json");
    headers = api.slist_append(headers, "OData-Version: 4.0");
    std::string token_header;
    if (!token_.str().empty()) {
        token_header = "X-Auth-Token: " + token_.str();
        headers = api.slist_append(headers, token_header.c_str());
        ::explicit_bzero(token_header.data(), token_header.size());
    }
    switch (m) {
    case Method::Get:
        api.easy_setopt(h, CURLOPT_HTTPGET, 1L);
        api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
        break;
    case Method::Post:
        headers = api.slist_append(headers, "Content-Type: application/json");
        api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
        api.easy_setopt(h, CURLOPT_POST, 1L);
        api.easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
        api.easy_setopt(h, CURLOPT_POSTFIELDSIZE, long(body.size()));
        break;
    case Method::Delete:
        api.easy_setopt(h, CURLOPT_HTTPGET, 1L);
        api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    }
    api.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_->ctx = ctx;
    curl_->body.clear();
    curl_->body_too_big = false;
    curl_->location.clear();
    curl_->token.clear();
    curl_->errbuf[0] = 0;
    curl_->pin_mismatch = false;
    curl_->transient = false;

    const auto t0 = std::chrono::steady_clock::now();
    const CURLcode rc = api.easy_perform(h);
    const double took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++requests_;
    long new_connects = 0;
    api.easy_getinfo(h, CURLINFO_NUM_CONNECTS, &new_connects);
    connects_ += unsigned(new_connects);
    const char *verb = m == Method::Get ? "GET " : m == Method::Post ? "POST " : "DELETE ";
    {
        // One debug line per request: where a fence's time goes (a new connection's TCP and TLS
        // parts, from libcurl's own clock, named apart).
        long code = 0;
        api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        char line[160];
        curl_off_t tcp_us = 0, tls_us = 0;
        if (new_connects && api.easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &tcp_us) == CURLE_OK &&
            api.easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_us) == CURLE_OK)
            std::snprintf(line, sizeof line, " -> %ld in %.1f ms (new connection: TCP %.1f ms, TLS %.1f ms)", code,
                          took_ms, double(tcp_us) / 1000, double(std::max<curl_off_t>(0, tls_us - tcp_us)) / 1000);
        else
            std::snprintf(line, sizeof line, " -> %ld in %.1f ms", code, took_ms);
        log(ctx, STOCKADE_LOG_DEBUG, where + ": " + verb + path + line);
    }
    api.easy_setopt(h, CURLOPT_FRESH_CONNECT, 0L);
    api.easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    api.easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);
    api.slist_free_all(headers); // the token header line is freed here; curl never logs it (no VERBOSE)
    curl_->ctx = nullptr;

    if (rc != CURLE_OK) {
        std::string detail = curl_->errbuf[0] ? curl_->errbuf : api.easy_strerror(rc);
        if (curl_->pin_mismatch)
            return Error{STOCKADE_RC_BAD_CONFIG, where + ": TLS certificate fingerprint " + curl_->seen_fingerprint +
                                                     " is not ssl_fingerprint " + fingerprint_text(cfg_.fingerprint) +
                                                     "; nothing was sent"};
        switch (rc) {
        case CURLE_ABORTED_BY_CALLBACK:
            return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
        case CURLE_OPERATION_TIMEDOUT:
            if (cut_by_deadline)
                return Error{STOCKADE_RC_TIMEOUT, where + ": the operation deadline passed waiting for " + verb +
                                                      path + " (" + detail + ")"};
            curl_->transient = true;
            return Error{STOCKADE_RC_UNREACHABLE, where + ": no answer to " + verb + path + " within " +
                                                      std::to_string(timeout) + " ms (" + detail + ")"};
        case CURLE_SSL_CONNECT_ERROR:
            return Error{STOCKADE_RC_UNREACHABLE, where + ": TLS handshake failed (" + detail + ")"};
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_ISSUER_ERROR:
            return Error{STOCKADE_RC_BAD_CONFIG,
                         where + ": TLS certificate not trusted (" + detail +
                             "); nothing was sent. Give the CA in ssl_ca_file or the certificate's SHA-256 in "
                             "ssl_fingerprint (ssl_insecure=1 only if you accept an unauthenticated BMC)"};
        case CURLE_WRITE_ERROR:
            if (curl_->body_too_big)
                return Error{STOCKADE_RC_FAILED, where + ": " + verb + path + ": answer larger than 4 MiB"};
            [[fallthrough]];
        default:
            curl_->transient = true;
            return Error{STOCKADE_RC_UNREACHABLE, where + ": " + verb + path + ": " + detail};
        }
    }
    Response out;
    api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
    out.location = path_of(curl_->location);
    if (!curl_->body.empty()) {
        out.body = nlohmann::json::parse(curl_->body, nullptr, false);
        if (out.body.is_discarded())
            out.body = nullptr;
    }
    if (out.status >= 200 && out.status < 300) {
        if (!curl_->body.empty() && out.body.is_null() && m == Method::Get)
            return Error{STOCKADE_RC_FAILED, where + ": " + verb + path + ": the answer is not JSON"};
        return out;
    }
    const StatusRule &rule = rule_for(out.status);
    std::string msg = where + ": " + verb + path + ": " + rule.meaning;
    if (rule.meaning[std::strlen(rule.meaning) - 1] != ')')
        msg += " (" + std::to_string(out.status) + ")";
    if (std::string text = redfish_error_text(out.body); !text.empty())
        msg += ": " + text;
    curl_->transient = rule.transient;
    return Error{rule.rc, msg};
}

} // namespace stockade::redfish
