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

#include <openssl/evp.h>

#include "redfish_https.hpp"

#include "stockade/agent_support.hpp"

namespace stockade::redfish {

using agent::cancelled;
using agent::log;

namespace {

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

RedfishLink::RedfishLink(const RedfishConfig &cfg)
    : cfg_(cfg), host_(cfg.host), https_(std::make_unique<HttpsConnection>(cfg, cfg.host))
{
    sessions_uri_ = cfg_.redfish_uri + "/SessionService/Sessions";
}

RedfishLink::~RedfishLink() = default;

void RedfishLink::set_host(const std::string &host)
{
    if (host == host_)
        return;
    (void)logout(1000);
    host_ = host;
    https_->set_host(host); // the next request connects to the new host
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
    if (r->auth_token.str().empty())
        return Error{STOCKADE_RC_FAILED, "redfish " + endpoint() + ": session login at " + sessions_uri_ +
                                             " answered " + std::to_string(r->status) + " without an X-Auth-Token"};
    token_ = std::move(r->auth_token);
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
        const bool transient = last_transient_ && rc != STOCKADE_RC_TIMEOUT && rc != STOCKADE_RC_CANCELLED;
        const int64_t left = stockade_remaining_ms(ctx);
        if (!transient || attempt >= cfg_.retries || left <= kRetryPauseMs * (attempt + 1) + 100)
            return r;
        log(ctx, STOCKADE_LOG_WARNING, r.error().message + "; trying again");
        sleep_ms(kRetryPauseMs * (attempt + 1));
        if (cancelled(ctx))
            return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
    }
}

// The Basic credentials header value ("Basic " + base64(user:password)), kept in a SecretString.
SecretString RedfishLink::basic_authorization() const
{
    SecretString plain(cfg_.username + ":" + cfg_.password.str());
    std::string out(4 * ((plain.str().size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(plain.str().data()), int(plain.str().size()));
    out.resize(size_t(std::max(n, 0)));
    return SecretString("Basic " + out);
}

Result<Response> RedfishLink::once(const stockade_ctx *ctx, Method m, const std::string &path,
                                   const std::string &body, int64_t deadline_ms)
{
    const std::string where = "redfish " + endpoint();
    last_transient_ = false;
    if (cancelled(ctx))
        return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
    const int64_t left = deadline_ms > 0 ? std::max<int64_t>(0, deadline_ms - stockade_monotonic_ms()) : INT64_MAX;
    if (left <= 0)
        return Error{STOCKADE_RC_TIMEOUT, where + ": the operation deadline passed before " + path + " was read"};
    const int64_t own = int64_t(cfg_.request_timeout_s) * 1000;
    const int64_t timeout = std::min(own, left);
    const bool cut_by_deadline = left < own;

    if (cfg_.trust == TlsTrust::Insecure && !warned_insecure_) {
        log(ctx, STOCKADE_LOG_WARNING,
            where + ": ssl_insecure=1: the BMC's certificate is NOT verified (anyone on the path can read the "
                    "credentials and fake the answers)");
        warned_insecure_ = true;
    }

    SecretString authorization;
    if (cfg_.auth == AuthType::Basic)
        authorization = basic_authorization();
    HttpExchange x;
    x.method = m == Method::Get ? HttpMethod::Get : m == Method::Post ? HttpMethod::Post : HttpMethod::Delete;
    x.target = path;
    x.body = body;
    x.authorization = authorization.str();
    x.auth_token = token_.str();
    x.timeout_ms = timeout;
    x.connect_timeout_ms = std::min<int64_t>(int64_t(cfg_.login_timeout_s) * 1000, timeout);
    x.cancelled = [ctx] { return ctx && cancelled(ctx); };

    const auto t0 = std::chrono::steady_clock::now();
    HttpResult r = https_->exchange(x);
    const double took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++requests_;
    if (r.new_connection && r.failure != HttpFailure::Connect && r.failure != HttpFailure::Resolve)
        ++connects_;
    const char *verb = m == Method::Get ? "GET " : m == Method::Post ? "POST " : "DELETE ";
    {
        // One debug line per request: where a fence's time goes (a new connection's TCP and TLS
        // parts named apart).
        char line[160];
        if (r.new_connection && r.failure == HttpFailure::None)
            std::snprintf(line, sizeof line, " -> %d in %.1f ms (new connection: TCP %.1f ms, TLS %.1f ms)", r.status,
                          took_ms, r.tcp_ms, r.tls_ms);
        else
            std::snprintf(line, sizeof line, " -> %d in %.1f ms", r.status, took_ms);
        log(ctx, STOCKADE_LOG_DEBUG, where + ": " + verb + path + line);
    }

    switch (r.failure) {
    case HttpFailure::None:
        break;
    case HttpFailure::Cancelled:
        return Error{STOCKADE_RC_CANCELLED, "redfish: cancelled"};
    case HttpFailure::Deadline:
        if (cut_by_deadline)
            return Error{STOCKADE_RC_TIMEOUT, where + ": the operation deadline passed waiting for " + verb + path};
        last_transient_ = true;
        return Error{STOCKADE_RC_UNREACHABLE,
                     where + ": no answer to " + verb + path + " within " + std::to_string(timeout) + " ms"};
    case HttpFailure::PinMismatch:
        return Error{STOCKADE_RC_BAD_CONFIG, where + ": TLS certificate fingerprint " + r.seen_fingerprint +
                                                 " is not ssl_fingerprint " + fingerprint_text(cfg_.fingerprint) +
                                                 "; nothing was sent"};
    case HttpFailure::Untrusted:
        return Error{STOCKADE_RC_BAD_CONFIG,
                     where + ": TLS certificate not trusted (" + r.detail +
                         "); nothing was sent. Give the CA in ssl_ca_file or the certificate's SHA-256 in "
                         "ssl_fingerprint (ssl_insecure=1 only if you accept an unauthenticated BMC)"};
    case HttpFailure::CaFile:
        return Error{STOCKADE_RC_BAD_CONFIG, where + ": " + r.detail + "; nothing was sent"};
    case HttpFailure::TlsHandshake:
        return Error{STOCKADE_RC_UNREACHABLE, where + ": TLS handshake failed (" + r.detail + ")"};
    case HttpFailure::BodyTooBig:
        return Error{STOCKADE_RC_FAILED, where + ": " + verb + path + ": answer larger than 4 MiB"};
    case HttpFailure::Resolve:
    case HttpFailure::Connect:
    case HttpFailure::Io:
    case HttpFailure::BadAnswer:
        last_transient_ = true;
        return Error{STOCKADE_RC_UNREACHABLE, where + ": " + verb + path + ": " + r.detail};
    }

    Response out;
    out.status = r.status;
    out.location = path_of(r.location);
    out.auth_token = SecretString(std::move(r.auth_token));
    if (!r.body.empty()) {
        out.body = nlohmann::json::parse(r.body, nullptr, false);
        if (out.body.is_discarded())
            out.body = nullptr;
    }
    if (out.status >= 200 && out.status < 300) {
        if (!r.body.empty() && out.body.is_null() && m == Method::Get)
            return Error{STOCKADE_RC_FAILED, where + ": " + verb + path + ": the answer is not JSON"};
        return out;
    }
    const StatusRule &rule = rule_for(out.status);
    std::string msg = where + ": " + verb + path + ": " + rule.meaning;
    if (rule.meaning[std::strlen(rule.meaning) - 1] != ')')
        msg += " (" + std::to_string(out.status) + ")";
    if (std::string text = redfish_error_text(out.body); !text.empty())
        msg += ": " + text;
    last_transient_ = rule.transient;
    return Error{rule.rc, msg};
}

} // namespace stockade::redfish
