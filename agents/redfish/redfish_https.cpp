// redfish_https.cpp -- see redfish_https.hpp.
#include "redfish_https.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <poll.h>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace stockade::redfish {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxBody = size_t(4) << 20; // a ComputerSystem is a few kB; anything this big is wrong
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

double ms_since(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

beast::string_view bsv(std::string_view s) { return beast::string_view(s.data(), s.size()); }

// The oldest OpenSSL error queued by this thread, and the queue emptied.
std::string openssl_error()
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown OpenSSL error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// Wipes a header's value in place: the fields container owns that memory.
void wipe_field(http::fields &f, beast::string_view name)
{
    auto it = f.find(name);
    if (it != f.end()) {
        auto v = it->value();
        ::explicit_bzero(const_cast<char *>(v.data()), v.size());
    }
}

struct Lookup {
    std::vector<tcp::endpoint> endpoints;
    HttpFailure failure = HttpFailure::None;
    std::string error;
};

// The addresses of host:port.  An IP literal (`ip`) needs no lookup.  A name is looked up on a
// thread of its own, left behind when the lookup outlives `until` or a cancel (getaddrinfo cannot
// be interrupted; a session exits soon after anyway): a dead name server costs the connect budget,
// never the whole deadline.
Lookup resolve(const std::string &host, const std::optional<asio::ip::address> &ip, int port, Clock::time_point until,
               const std::function<bool()> &cancelled)
{
    if (ip)
        return {{tcp::endpoint(*ip, uint16_t(port))}, HttpFailure::None, {}};
    auto answer = std::make_shared<std::promise<Lookup>>();
    auto future = answer->get_future();
    std::thread([host, port, answer] {
        Lookup out;
        asio::io_context io{1};
        tcp::resolver resolver(io);
        beast::error_code e;
        auto results = resolver.resolve(host, std::to_string(port), e);
        if (e) {
            out.failure = HttpFailure::Resolve;
            out.error = "cannot resolve " + host + ": " + e.message();
        }
        for (const auto &r : results)
            out.endpoints.push_back(r.endpoint());
        answer->set_value(std::move(out));
    }).detach();
    for (;;) {
        auto now = Clock::now();
        if (now >= until)
            return {{}, HttpFailure::Resolve, "no answer from the name service for " + host};
        if (cancelled && cancelled())
            return {{}, HttpFailure::Cancelled, "cancelled"};
        if (future.wait_for(std::min<Clock::duration>(until - now, kCancelPoll)) == std::future_status::ready)
            return future.get();
    }
}

} // namespace

struct HttpsConnection::Impl {
    using Stream = beast::ssl_stream<beast::tcp_stream>;

    const RedfishConfig &cfg;
    std::string host;
    std::optional<asio::ip::address> host_ip; // host, when it is an IP literal
    std::string host_header;                  // host:port, [v6]:port
    asio::io_context io{1};
    std::optional<asio::ssl::context> tls; // made at the first connect (it reads ssl_ca_file)
    std::unique_ptr<Stream> stream;         // declared after tls: destroyed before it
    std::optional<tcp::socket> dialing;     // the TCP connect under way, before `stream` exists
    beast::flat_buffer buffer;
    bool pin_mismatch = false;
    std::string seen_fingerprint;

    Impl(const RedfishConfig &c, std::string h) : cfg(c) { set_host(std::move(h)); }

    void set_host(std::string h)
    {
        host = std::move(h);
        beast::error_code not_ip;
        auto ip = asio::ip::make_address(host, not_ip);
        host_ip = not_ip ? std::nullopt : std::optional(ip);
        host_header = (host_ip && host_ip->is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(cfg.port);
    }

    // Replaces OpenSSL's chain verification: the leaf certificate must have the pinned SHA-256.
    static int verify_pin(X509_STORE_CTX *store, void *self)
    {
        auto *c = static_cast<Impl *>(self);
        X509 *leaf = X509_STORE_CTX_get0_cert(store);
        std::array<unsigned char, 32> got{};
        unsigned int len = 0;
        if (!leaf || !X509_digest(leaf, EVP_sha256(), got.data(), &len) || len != got.size()) {
            c->seen_fingerprint = "(none)";
            c->pin_mismatch = true;
        } else {
            c->seen_fingerprint = fingerprint_text(got);
            c->pin_mismatch = got != c->cfg.fingerprint;
        }
        if (c->pin_mismatch)
            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return c->pin_mismatch ? 0 : 1;
    }

    // The TLS context for cfg's trust choice; "" or why it cannot be made.
    std::string ensure_tls_context()
    {
        if (tls)
            return {};
        tls.emplace(asio::ssl::context::tls_client);
        SSL_CTX *ctx = tls->native_handle();
        switch (cfg.trust) {
        case TlsTrust::SystemCa:
            // The hashed directory (Debian: /etc/ssl/certs): only the issuer is read at verify
            // time; loading the whole bundle file costs ~16 ms per session.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
            if (SSL_CTX_set_default_verify_dir(ctx) != 1) {
                std::string why = "the system CA directory cannot be used (" + openssl_error() + ")";
                tls.reset();
                return why;
            }
            break;
        case TlsTrust::CaFile:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
            if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
                std::string why = "ssl_ca_file " + cfg.ca_file + " cannot be loaded (" + openssl_error() + ")";
                tls.reset();
                return why;
            }
            break;
        case TlsTrust::Fingerprint:
            // The pin replaces chain and name checks; it runs inside the handshake.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
            SSL_CTX_set_cert_verify_callback(ctx, &Impl::verify_pin, this);
            break;
        case TlsTrust::Insecure:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
            break;
        }
        return {};
    }

    // Runs the io_context until `done`, `until` or a cancel; on deadline or cancel the operation is
    // aborted before returning.
    HttpFailure drive(bool &done, Clock::time_point until, const std::function<bool()> &cancelled)
    {
        io.restart();
        HttpFailure why = HttpFailure::None;
        while (!done) {
            auto now = Clock::now();
            if (now >= until) {
                why = HttpFailure::Deadline;
                break;
            }
            if (cancelled && cancelled()) {
                why = HttpFailure::Cancelled;
                break;
            }
            if (io.stopped())
                io.restart();
            io.run_one_for(std::min<Clock::duration>(until - now, kCancelPoll));
        }
        if (!done)
            abort(done);
        return why;
    }

    // Ends the operation under way: the connection (or the connect) is closed and the aborted
    // operation's handler run (it points into the caller's frame), then everything dropped.
    void abort(bool &done)
    {
        beast::error_code ignored;
        if (stream)
            beast::get_lowest_layer(*stream).close();
        if (dialing)
            dialing->close(ignored);
        io.restart();
        while (!done && io.run_one() > 0) {
        }
        drop();
    }

    // Starts one asynchronous operation (start(handler)) and drives it to its end, `until` or a
    // cancel; `ec` is the operation's own outcome.
    template <class Start>
    HttpFailure run_op(Start &&start, beast::error_code &ec, Clock::time_point until,
                       const std::function<bool()> &cancelled)
    {
        bool done = false;
        start([&](beast::error_code e, auto &&...) {
            ec = e;
            done = true;
        });
        return drive(done, until, cancelled);
    }

    void drop()
    {
        dialing.reset();
        if (stream) {
            beast::error_code ignored;
            auto &sock = beast::get_lowest_layer(*stream).socket();
            if (sock.is_open())
                sock.shutdown(tcp::socket::shutdown_both, ignored);
            beast::get_lowest_layer(*stream).close();
            stream.reset();
        }
        buffer.clear();
    }

    // A kept-alive connection the BMC has closed (or that has unasked-for bytes waiting) is not
    // reused.
    bool reusable()
    {
        if (!stream || buffer.size() != 0)
            return false;
        auto &sock = beast::get_lowest_layer(*stream).socket();
        if (!sock.is_open())
            return false;
        pollfd p{sock.native_handle(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }

    // TCP connect and TLS handshake, within connect_timeout_ms and `until`.
    HttpResult connect(const HttpExchange &x, Clock::time_point until)
    {
        HttpResult r;
        r.new_connection = true;
        const auto t0 = Clock::now();
        auto conn_until = until;
        if (x.connect_timeout_ms > 0)
            conn_until = std::min(until, t0 + std::chrono::milliseconds(x.connect_timeout_ms));
        const bool own_limit = conn_until < until;
        Lookup where = resolve(host, host_ip, cfg.port, conn_until, x.cancelled);
        if (where.failure != HttpFailure::None) {
            r.failure = where.failure == HttpFailure::Resolve && !own_limit && Clock::now() >= until
                            ? HttpFailure::Deadline
                            : where.failure;
            r.detail = where.error;
            return r;
        }

        // The SYN goes out first; the TLS context (a process's first reads ssl_ca_file: ~0.4 ms)
        // is made while the BMC accepts the connection.  Its failure is still the one reported.
        buffer.clear();
        dialing.emplace(io);
        bool connected = false;
        beast::error_code ec;
        asio::async_connect(*dialing, where.endpoints, [&](beast::error_code e, const tcp::endpoint &) {
            ec = e;
            connected = true;
        });
        if (std::string why = ensure_tls_context(); !why.empty()) {
            abort(connected);
            r.failure = HttpFailure::CaFile;
            r.detail = why;
            return r;
        }
        if (HttpFailure f = drive(connected, conn_until, x.cancelled); f != HttpFailure::None) {
            r.failure = f == HttpFailure::Deadline && own_limit ? HttpFailure::Connect : f;
            r.detail = "TCP connect: no answer within " + std::to_string(x.connect_timeout_ms) + " ms";
            return r;
        }
        if (ec) {
            drop();
            r.failure = HttpFailure::Connect;
            r.detail = "TCP connect: " + ec.message();
            return r;
        }
        stream = std::make_unique<Stream>(std::move(*dialing), *tls);
        dialing.reset();
        r.tcp_ms = ms_since(t0);
        beast::error_code ignored;
        auto &sock = beast::get_lowest_layer(*stream).socket();
        sock.set_option(tcp::no_delay(true), ignored);
        sock.set_option(asio::socket_base::keep_alive(true), ignored);

        SSL *ssl = stream->native_handle();
        if (cfg.trust == TlsTrust::SystemCa || cfg.trust == TlsTrust::CaFile) {
            X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
            int set = 0;
            if (host_ip) {
                set = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
            } else {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                set = X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
            }
            if (set != 1) {
                drop();
                r.failure = HttpFailure::TlsHandshake;
                r.detail = "cannot check the certificate against " + host + " (" + openssl_error() + ")";
                return r;
            }
        }
        if (!host_ip) // SNI carries names only (RFC 6066)
            SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char *>(host.c_str()));
        pin_mismatch = false;
        seen_fingerprint.clear();
        const auto t1 = Clock::now();
        auto handshake = [&](auto handler) { stream->async_handshake(asio::ssl::stream_base::client, handler); };
        if (HttpFailure f = run_op(handshake, ec, conn_until, x.cancelled); f != HttpFailure::None) {
            r.failure = f == HttpFailure::Deadline && own_limit ? HttpFailure::TlsHandshake : f;
            r.detail = "no TLS handshake within " + std::to_string(x.connect_timeout_ms) + " ms";
            return r;
        }
        if (ec) {
            const long verify = SSL_get_verify_result(ssl);
            if (pin_mismatch) {
                r.failure = HttpFailure::PinMismatch;
                r.seen_fingerprint = seen_fingerprint;
            } else if (verify != X509_V_OK) {
                r.failure = HttpFailure::Untrusted;
                r.detail = X509_verify_cert_error_string(verify);
            } else {
                r.failure = HttpFailure::TlsHandshake;
                r.detail = ec.message();
            }
            ERR_clear_error();
            drop();
            return r;
        }
        r.tls_ms = ms_since(t1);
        return r;
    }
};

HttpsConnection::HttpsConnection(const RedfishConfig &cfg, std::string host)
    : impl_(std::make_unique<Impl>(cfg, std::move(host)))
{
}

HttpsConnection::~HttpsConnection() { impl_->drop(); }

void HttpsConnection::set_host(std::string host)
{
    impl_->drop();
    impl_->set_host(std::move(host));
}

void HttpsConnection::close() { impl_->drop(); }

HttpResult HttpsConnection::exchange(const HttpExchange &x)
{
    Impl &c = *impl_;
    const auto until = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, x.timeout_ms));

    const http::verb verb = x.method == HttpMethod::Get    ? http::verb::get
                            : x.method == HttpMethod::Post ? http::verb::post
                                                           : http::verb::delete_;
    http::request<http::string_body> req{verb, bsv(x.target), 11};
    req.set(http::field::host, c.host_header);
    req.set(http::field::user_agent, "stockade-redfish/1.0");
    req.set(http::field::accept, "application/json");
    req.set("OData-Version", "4.0");
    if (!x.authorization.empty())
        req.set(http::field::authorization, bsv(x.authorization));
    if (!x.auth_token.empty())
        req.set("X-Auth-Token", bsv(x.auth_token));
    if (x.method == HttpMethod::Post) {
        req.set(http::field::content_type, "application/json");
        req.body().assign(x.body.data(), x.body.size());
    }
    req.keep_alive(true);
    req.prepare_payload();
    struct Wipe {
        http::request<http::string_body> &req;
        ~Wipe()
        {
            wipe_field(req, "Authorization");
            wipe_field(req, "X-Auth-Token");
            ::explicit_bzero(req.body().data(), req.body().size());
        }
    } wipe{req};

    for (int attempt = 0;; ++attempt) {
        HttpResult r;
        const bool reused = c.reusable();
        if (!reused) {
            c.drop();
            r = c.connect(x, until);
            if (r.failure != HttpFailure::None)
                return r;
        }
        beast::error_code ec;
        auto write = [&](auto handler) { http::async_write(*c.stream, req, handler); };
        if (HttpFailure f = c.run_op(write, ec, until, x.cancelled); f != HttpFailure::None) {
            r.failure = f;
            return r;
        }
        if (ec) {
            c.drop();
            if (reused && attempt == 0)
                continue; // the BMC had closed the kept-alive connection: once more on a new one
            r.failure = HttpFailure::Io;
            r.detail = "sending the request: " + ec.message();
            return r;
        }

        http::response_parser<http::string_body> parser;
        parser.body_limit(kMaxBody);
        auto read = [&](auto handler) { http::async_read(*c.stream, c.buffer, parser, handler); };
        if (HttpFailure f = c.run_op(read, ec, until, x.cancelled); f != HttpFailure::None) {
            r.failure = f;
            return r;
        }
        if (ec) {
            c.drop();
            if (ec == http::error::body_limit) {
                r.failure = HttpFailure::BodyTooBig;
                return r;
            }
            if (reused && attempt == 0 && !parser.got_some())
                continue; // closed under us before any answer: once more on a new connection
            const bool grammar = ec.category() == http::make_error_code(http::error::bad_version).category() &&
                                 ec != http::error::end_of_stream && ec != http::error::partial_message;
            r.failure = grammar ? HttpFailure::BadAnswer : HttpFailure::Io;
            r.detail = "reading the answer: " + ec.message();
            return r;
        }
        auto &res = parser.get();
        r.status = int(res.result_int());
        r.location = std::string(res[http::field::location]);
        r.auth_token = std::string(res["X-Auth-Token"]);
        r.body = std::move(res.body());
        if (!res.keep_alive())
            c.drop();
        return r;
    }
}

bool prepare_tls()
{
    if (OPENSSL_init_ssl(0, nullptr) != 1)
        return false;
    if (SSL_CTX *warm = SSL_CTX_new(TLS_client_method()))
        SSL_CTX_free(warm);
    return true;
}

} // namespace stockade::redfish
