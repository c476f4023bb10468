// witness.cpp -- the witness protocol: sealing/opening messages, replay guard, client, server,
// and a node's own view of another node.  See witness.hpp for the wire format.
#include "stockade/witness.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "net_probe.hpp"
#include "stockade/hmac.hpp"
#include "stockade/process.hpp"
#include "strings.hpp"

namespace stockade {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

struct Fd {
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

bool is_hex(const std::string &s)
{
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return false;
    return true;
}

std::string mac_of(const std::string &key, std::string_view payload)
{
    std::string signed_part = std::string(kWitnessMagic) + " ";
    signed_part.append(payload);
    return to_hex(hmac_sha256(key, signed_part));
}

// The fields every message carries, checked after the MAC: who, for whom, which cluster, when.
Status check_envelope(const json &m, const Config &config, const std::string &self)
{
    for (const char *f : {"t", "from", "to", "cluster", "nonce"})
        if (!m.contains(f) || !m[f].is_string())
            return make_error(STOCKADE_RC_FAILED, "field '{}' missing", f);
    if (!m.contains("ts") || !m["ts"].is_number_integer())
        return make_error(STOCKADE_RC_FAILED, "field 'ts' missing");
    const std::string nonce = m["nonce"].get<std::string>();
    if (nonce.size() < 16 || nonce.size() > 128 || !is_hex(nonce))
        return make_error(STOCKADE_RC_FAILED, "bad nonce");
    if (!text::iequals(m["to"].get<std::string>(), self))
        return make_error(STOCKADE_RC_FAILED, "meant for '{}', this is '{}'", m["to"].get<std::string>(), self);
    if (m["cluster"].get<std::string>() != config.cluster_name)
        return make_error(STOCKADE_RC_FAILED, "cluster '{}' is not '{}'", m["cluster"].get<std::string>(),
                          config.cluster_name);
    return {};
}

json envelope(const Config &config, const std::string &from, const std::string &to, const std::string &type)
{
    return json{{"t", type},   {"from", from}, {"to", to}, {"cluster", config.cluster_name},
                {"nonce", random_hex(16)}, {"ts", unix_ms()}};
}

} // namespace

int64_t unix_ms()
{
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Result<std::string> load_cluster_key(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return make_error(STOCKADE_RC_BAD_CONFIG, "cluster key {}: {}", path, std::strerror(errno));
    Fd guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return make_error(STOCKADE_RC_BAD_CONFIG, "cluster key {}: {}", path, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return make_error(STOCKADE_RC_BAD_CONFIG, "cluster key {}: not a regular file", path);
    if (st.st_mode & 077)
        return make_error(STOCKADE_RC_ACCESS_DENIED,
                          "cluster key {}: mode {:04o} lets group/others in; chmod 600 it (owner only)", path,
                          st.st_mode & 07777);
    if (st.st_uid != ::geteuid())
        return make_error(STOCKADE_RC_ACCESS_DENIED, "cluster key {}: owned by uid {}, not by this user (uid {})", path,
                          st.st_uid, ::geteuid());
    std::string key;
    char buf[4096];
    for (;;) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        key.append(buf, size_t(r));
        if (key.size() > 65536)
            return make_error(STOCKADE_RC_BAD_CONFIG, "cluster key {}: larger than 64 KiB", path);
    }
    key = trim(key);
    if (key.size() < 16)
        return make_error(STOCKADE_RC_BAD_CONFIG, "cluster key {}: needs at least 16 bytes, has {}", path, key.size());
    return key;
}

std::string seal_message(const std::string &key, const json &payload)
{
    std::string body = payload.dump(-1, ' ', true, json::error_handler_t::replace);
    return fmt::format("{} {} {}\n", kWitnessMagic, mac_of(key, body), body);
}

Result<json> open_message(const std::string &key, std::string_view line)
{
    if (line.size() < kWitnessMagic.size() + 1 + 64 + 1 + 2 || line.substr(0, kWitnessMagic.size()) != kWitnessMagic ||
        line[kWitnessMagic.size()] != ' ')
        return make_error(STOCKADE_RC_FAILED, "not a witness message (truncated or wrong protocol)");
    std::string_view mac = line.substr(kWitnessMagic.size() + 1, 64);
    if (line[kWitnessMagic.size() + 65] != ' ')
        return make_error(STOCKADE_RC_FAILED, "malformed message header");
    std::string_view body = line.substr(kWitnessMagic.size() + 66);
    if (!equal_constant_time(mac, mac_of(key, body)))
        return make_error(STOCKADE_RC_ACCESS_DENIED, "authentication failed (wrong key or altered message)");
    try {
        json j = json::parse(body);
        if (!j.is_object())
            return make_error(STOCKADE_RC_FAILED, "payload is not an object");
        return j;
    } catch (const std::exception &) {
        return make_error(STOCKADE_RC_FAILED, "payload is not JSON");
    }
}

Status ReplayGuard::admit(const std::string &nonce, int64_t sent, int64_t now)
{
    int64_t skew = max_skew_.count();
    if (sent < now - skew)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "stale message ({} ms old, limit {} ms)", now - sent, skew);
    if (sent > now + skew)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "message from the future ({} ms ahead, limit {} ms)", sent - now, skew);
    std::lock_guard lock(mu_);
    for (auto it = seen_.begin(); it != seen_.end();)
        it = it->second < now ? seen_.erase(it) : std::next(it);
    if (seen_.count(nonce))
        return make_error(STOCKADE_RC_ACCESS_DENIED, "replayed message (nonce seen before)");
    if (seen_.size() >= capacity_)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "replay cache full; refusing until entries expire");
    // A nonce must be remembered as long as its timestamp could still pass the window.
    seen_.emplace(nonce, sent + skew + 1);
    return {};
}

std::vector<WitnessPeer> witness_peers(const Config &c)
{
    std::vector<WitnessPeer> out;
    for (const auto &n : c.nodes)
        out.push_back({n.name, n.addresses, n.witness_port ? n.witness_port : c.witness.port});
    for (const auto &n : c.witness.nodes)
        out.push_back({n.name, n.addresses, n.witness_port ? n.witness_port : c.witness.port});
    return out;
}

std::optional<WitnessPeer> find_witness_peer(const Config &c, std::string_view name)
{
    for (auto &p : witness_peers(c))
        if (text::iequals(p.name, name))
            return p;
    return std::nullopt;
}

json NodeView::to_json() const { return json{{"node", node}, {"alive", alive}, {"evidence", evidence}}; }

// ---- client -----------------------------------------------------------------------------------

Result<json> WitnessClient::call(const WitnessPeer &peer, const std::string &address, json request,
                                 milliseconds timeout) const
{
    int64_t deadline = monotonic_ms() + timeout.count();
    json env = envelope(config_, self_, peer.name, request.value("t", "alive"));
    for (auto it = request.begin(); it != request.end(); ++it)
        env[it.key()] = it.value();
    if (env["nonce"].get<std::string>().empty())
        return make_error(STOCKADE_RC_INTERNAL, "no random bytes for a nonce");
    const std::string nonce = env["nonce"].get<std::string>();

    int fd = -1;
    auto reach = net::tcp_connect(address, peer.port, timeout, &fd);
    // UNREACHABLE only when nothing answered at all; any other error means the host's kernel did.
    if (reach.reach != net::Reach::Answered)
        return make_error(reach.reach == net::Reach::Refused ? STOCKADE_RC_FAILED : STOCKADE_RC_UNREACHABLE,
                          "{} ({}:{}): {}", peer.name, address, peer.port, reach.detail);
    Fd guard{fd};
    // Connected: from here on the host has answered, so no error is UNREACHABLE.
    auto answered_rc = [](uint32_t rc) { return rc == STOCKADE_RC_UNREACHABLE ? STOCKADE_RC_FAILED : rc; };
    if (auto s = net::write_all(fd, seal_message(key_, env), deadline); !s)
        return make_error(answered_rc(s.error().rc), "{} ({}:{}): {}", peer.name, address, peer.port, s.error().message);
    ::shutdown(fd, SHUT_WR);
    auto line = net::read_line(fd, kMaxWitnessMessage, deadline);
    if (!line)
        return make_error(answered_rc(line.error().rc), "{} ({}:{}): {}", peer.name, address, peer.port,
                          line.error().message);
    auto answer = open_message(key_, *line);
    if (!answer)
        return make_error(answer.error().rc, "{} ({}:{}): answer refused: {}", peer.name, address, peer.port,
                          answer.error().message);
    json &a = *answer;
    if (auto s = check_envelope(a, config_, self_); !s)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "{}: answer refused: {}", peer.name, s.error().message);
    if (a.value("re", "") != nonce)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "{}: answer refused: it answers another request (replay?)", peer.name);
    if (!text::iequals(a["from"].get<std::string>(), peer.name))
        return make_error(STOCKADE_RC_ACCESS_DENIED, "{}: answered as '{}'", peer.name, a["from"].get<std::string>());
    int64_t skew = config_.witness.max_skew.count(), now = unix_ms(), ts = a["ts"].get<int64_t>();
    if (ts < now - skew || ts > now + skew)
        return make_error(STOCKADE_RC_ACCESS_DENIED, "{}: answer refused: clock differs by {} ms", peer.name, ts - now);
    if (a["t"] == "error")
        return make_error(STOCKADE_RC_ACCESS_DENIED, "{} refused the request: {}", peer.name, a.value("error", "?"));
    return answer;
}

Result<json> WitnessClient::call_any(const WitnessPeer &peer, const json &request, milliseconds timeout) const
{
    if (peer.addresses.empty())
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: no addresses configured", peer.name);
    std::vector<std::string> failures;
    uint32_t rc = STOCKADE_RC_UNREACHABLE;
    for (const auto &addr : peer.addresses) {
        auto r = call(peer, addr, request, timeout);
        if (r || r.error().rc == STOCKADE_RC_ACCESS_DENIED)
            return r; // an authenticated refusal is an answer; do not retry elsewhere
        failures.push_back(r.error().message);
        if (r.error().rc != STOCKADE_RC_UNREACHABLE)
            rc = r.error().rc; // something answered on this address
    }
    return make_error(rc, "{}", join(failures, "; "));
}

Status WitnessClient::ping(const WitnessPeer &peer, milliseconds timeout) const
{
    auto r = call_any(peer, json{{"t", "alive"}}, timeout);
    if (!r)
        return r.error();
    if ((*r)["t"] != "alive")
        return make_error(STOCKADE_RC_FAILED, "{}: unexpected answer '{}'", peer.name, (*r)["t"].dump());
    return {};
}

Result<NodeView> WitnessClient::observe(const WitnessPeer &peer, const std::string &node, milliseconds timeout) const
{
    auto r = call_any(peer, json{{"t", "see"}, {"node", node}}, timeout);
    if (!r)
        return r.error();
    const json &a = *r;
    if (a["t"] != "view" || !a.contains("alive") || !a["alive"].is_boolean())
        return make_error(STOCKADE_RC_FAILED, "{}: unexpected answer to 'see'", peer.name);
    NodeView v;
    v.node = a.value("node", node);
    v.alive = a["alive"].get<bool>();
    if (a.contains("evidence") && a["evidence"].is_array())
        for (const auto &e : a["evidence"])
            if (e.is_string())
                v.evidence.push_back(e.get<std::string>());
    return v;
}

NodeView observe_node(const Config &config, const WitnessClient &client, const WitnessPeer &node)
{
    NodeView view;
    view.node = node.name;
    struct Probe {
        std::string label;
        std::function<net::ReachResult()> run;
        net::ReachResult result;
    };
    std::vector<Probe> probes;
    milliseconds t = config.witness.timeout;
    for (const auto &addr : node.addresses) {
        if (config.witness.icmp)
            probes.push_back({fmt::format("icmp {}", addr), [addr, t] { return net::icmp_echo(addr, t); }, {}});
        for (int port : config.witness.check_ports)
            probes.push_back({fmt::format("tcp {}:{}", addr, port), [addr, port, t] { return net::tcp_connect(addr, port, t); }, {}});
    }
    // Each address's witness service separately, so the view takes one timeout, not one per address.
    for (const auto &addr : node.addresses)
        probes.push_back({fmt::format("witness service of {} at {}:{}", node.name, addr, node.port),
                          [&client, &node, addr, t] {
                              // Any answer but silence is a sign of life: a refused port or a bad
                              // answer still came from the node's running kernel.
                              auto r = client.call(node, addr, nlohmann::json{{"t", "alive"}}, t);
                              if (r && (*r)["t"] == "alive")
                                  return net::ReachResult{net::Reach::Answered, "answered, authenticated"};
                              if (r)
                                  return net::ReachResult{net::Reach::Refused, "answered something unexpected"};
                              return net::ReachResult{r.error().rc == STOCKADE_RC_UNREACHABLE ? net::Reach::NoAnswer
                                                                                               : net::Reach::Refused,
                                                      r.error().message};
                          },
                          {}});
    std::vector<std::thread> threads;
    for (auto &p : probes)
        threads.emplace_back([&p] {
            try {
                p.result = p.run();
            } catch (...) {
                p.result = {net::Reach::NoAnswer, "probe failed"};
            }
        });
    for (auto &th : threads)
        th.join();
    for (const auto &p : probes) {
        view.alive = view.alive || p.result.reach != net::Reach::NoAnswer;
        view.evidence.push_back(fmt::format("{}: {}", p.label, p.result.detail));
    }
    return view;
}

// ---- server -----------------------------------------------------------------------------------

WitnessServer::WitnessServer(const Config &config, std::string key, Options options, Logger &logger)
    : config_(config), key_(std::move(key)), options_(std::move(options)), logger_(logger), replay_(config.witness.max_skew)
{
    client_ = std::make_unique<WitnessClient>(config_, key_, options_.self);
}

WitnessServer::~WitnessServer()
{
    // Connection threads hold `this`; wait for them (each is bounded by its read timeout).
    while (active_.load() > 0)
        std::this_thread::sleep_for(milliseconds(10));
    if (listen_fd_ >= 0)
        ::close(listen_fd_);
}

Result<std::unique_ptr<WitnessServer>> WitnessServer::bind(const Config &config, std::string key, Options options,
                                                           Logger &logger)
{
    if (!find_witness_peer(config, options.self))
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: '{}' is neither a node nor a witness node", config.source,
                          options.self);
    std::unique_ptr<WitnessServer> s(new WitnessServer(config, std::move(key), options, logger));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo *res = nullptr;
    std::string port = std::to_string(options.port);
    if (int rc = ::getaddrinfo(options.listen.empty() ? nullptr : options.listen.c_str(), port.c_str(), &hints, &res);
        rc != 0)
        return make_error(STOCKADE_RC_BAD_CONFIG, "witness: cannot resolve listen address '{}': {}", options.listen,
                          gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    // Prefer IPv6 any (dual stack) when binding to any address.
    addrinfo *pick = res;
    for (addrinfo *ai = res; ai; ai = ai->ai_next)
        if (options.listen.empty() && ai->ai_family == AF_INET6)
            pick = ai;
    int fd = ::socket(pick->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return make_error(STOCKADE_RC_INTERNAL, "witness: socket: {}", std::strerror(errno));
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (pick->ai_family == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(fd, pick->ai_addr, pick->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(STOCKADE_RC_UNREACHABLE, "witness: cannot listen on {}:{}: {}",
                          options.listen.empty() ? "*" : options.listen, options.port, std::strerror(e));
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
    s->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    s->listen_fd_ = fd;
    return s;
}

void WitnessServer::serve(const std::atomic<bool> &stop)
{
    logger_.logf(STOCKADE_LOG_NOTICE, "witness {}: listening on {}:{}", options_.self,
                 options_.listen.empty() ? "*" : options_.listen, port_);
    while (!stop.load()) {
        pollfd p{listen_fd_, POLLIN, 0};
        int n = ::poll(&p, 1, 200);
        if (n <= 0)
            continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr *>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
        ::getnameinfo(reinterpret_cast<sockaddr *>(&ss), len, host, sizeof host, serv, sizeof serv,
                      NI_NUMERICHOST | NI_NUMERICSERV);
        std::string peer = fmt::format("{}:{}", host, serv);
        if (active_.load() >= options_.max_connections) {
            logger_.logf(STOCKADE_LOG_WARNING, "witness {}: {} connections open; dropping {}", options_.self,
                         options_.max_connections, peer);
            ::close(fd);
            continue;
        }
        ++active_;
        std::thread([this, fd, peer] {
            try {
                handle(fd, peer);
            } catch (...) {
                logger_.logf(STOCKADE_LOG_ERR, "witness {}: internal error answering {}", options_.self, peer);
            }
            ::close(fd);
            --active_;
        }).detach();
    }
    while (active_.load() > 0)
        std::this_thread::sleep_for(milliseconds(10));
    logger_.logf(STOCKADE_LOG_NOTICE, "witness {}: stopped ({} answered, {} refused)", options_.self, answered_.load(),
                 refused_.load());
}

void WitnessServer::handle(int fd, std::string peer)
{
    int64_t deadline = monotonic_ms() + options_.read_timeout.count();
    auto line = net::read_line(fd, kMaxWitnessMessage, deadline);
    if (!line) {
        ++refused_;
        logger_.logf(STOCKADE_LOG_WARNING, "witness {}: refused request from {}: {}", options_.self, peer,
                     line.error().message);
        return;
    }
    auto refuse = [&](const std::string &why, const json *req) {
        ++refused_;
        logger_.logf(STOCKADE_LOG_WARNING, "witness {}: refused request from {}: {}", options_.self, peer, why);
        json e = envelope(config_, options_.self, req && req->contains("from") && (*req)["from"].is_string()
                                                      ? (*req)["from"].get<std::string>()
                                                      : std::string("?"),
                          "error");
        e["error"] = why;
        if (req && req->contains("nonce") && (*req)["nonce"].is_string())
            e["re"] = (*req)["nonce"];
        (void)net::write_all(fd, seal_message(key_, e), monotonic_ms() + options_.read_timeout.count());
    };
    auto msg = open_message(key_, *line);
    if (!msg)
        return refuse(msg.error().message, nullptr);
    const json &req = *msg;
    if (auto s = check_envelope(req, config_, options_.self); !s)
        return refuse(s.error().message, &req);
    if (!find_witness_peer(config_, req["from"].get<std::string>()))
        return refuse(fmt::format("sender '{}' is not a cluster member", req["from"].get<std::string>()), &req);
    if (auto s = replay_.admit(req["nonce"].get<std::string>(), req["ts"].get<int64_t>(), unix_ms()); !s)
        return refuse(s.error().message, &req);
    json a = answer(req);
    if (a["t"] == "error")
        return refuse(a.value("error", "?"), &req);
    ++answered_;
    logger_.logf(STOCKADE_LOG_INFO, "witness {}: answered '{}' from {} ({})", options_.self, req["t"].get<std::string>(),
                 req["from"].get<std::string>(), peer);
    if (auto s = net::write_all(fd, seal_message(key_, a), monotonic_ms() + options_.read_timeout.count()); !s)
        logger_.logf(STOCKADE_LOG_WARNING, "witness {}: could not send the answer to {}: {}", options_.self, peer,
                     s.error().message);
}

json WitnessServer::answer(const json &req)
{
    const std::string from = req["from"].get<std::string>();
    const std::string type = req["t"].get<std::string>();
    if (type == "alive") {
        json a = envelope(config_, options_.self, from, "alive");
        a["re"] = req["nonce"];
        return a;
    }
    if (type == "see") {
        if (!req.contains("node") || !req["node"].is_string())
            return json{{"t", "error"}, {"error", "'see' without a node"}};
        auto target = find_witness_peer(config_, req["node"].get<std::string>());
        if (!target)
            return json{{"t", "error"}, {"error", fmt::format("'{}' is not a cluster member", req["node"].get<std::string>())}};
        NodeView v;
        if (text::iequals(target->name, options_.self)) {
            v.node = target->name;
            v.alive = true;
            v.evidence.push_back("that is me, and I am answering");
        } else {
            v = observe_node(config_, *client_, *target);
        }
        logger_.logf(STOCKADE_LOG_NOTICE, "witness {}: {} asked about {}: {} ({})", options_.self, from, v.node,
                     v.alive ? "alive" : "dead", join(v.evidence, "; "));
        json a = envelope(config_, options_.self, from, "view");
        a["re"] = req["nonce"];
        a["node"] = v.node;
        a["alive"] = v.alive;
        a["evidence"] = v.evidence;
        return a;
    }
    return json{{"t", "error"}, {"error", fmt::format("unknown request '{}'", type)}};
}

} // namespace stockade
