// witness.hpp -- the stockade witness protocol, its client and its server.
//
// Each cluster node (and any witness-only node) runs `stockade witness`.  A node that wants to
// fence asks the others "are you alive" (majority quorum) and "what do you see of node X"
// (remote_verify: each answers from its own vantage point).  The service never fences anything.
//
// Wire format: one TCP connection per request, one line each way:
//     STKW1 <hmac-sha256 hex> <payload JSON>\n
// The HMAC covers "STKW1 " plus the payload bytes exactly as sent, with the shared cluster key
// (a file readable by its owner only).  A request names its sender, the node it is meant for,
// the cluster, a random nonce and the sender's clock (unix ms); the server refuses a message
// outside witness.max_skew or whose nonce it has seen (replay), and logs the refusal.  An answer
// echoes the request's nonce ("re"), so an old answer cannot be passed off as a new one.  Every
// read has a deadline; a message longer than kMaxMessage is refused.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stockade/config.hpp"
#include "stockade/log.hpp"
#include "stockade/result.hpp"

namespace stockade {

inline constexpr std::string_view kWitnessMagic = "STKW1";
inline constexpr size_t kMaxWitnessMessage = 16384;

// Reads the cluster key: the file must be a regular file owned by this user with no group/other
// permission bits, holding at least 16 bytes (surrounding whitespace is ignored).
Result<std::string> load_cluster_key(const std::string &path);

// "STKW1 <mac> <payload>\n" for a payload object.
std::string seal_message(const std::string &key, const nlohmann::json &payload);
// Checks the MAC (constant time) and parses the payload; the line is without its '\n'.
Result<nlohmann::json> open_message(const std::string &key, std::string_view line);
// A client's check of an opened answer to its request `nonce` sent to `peer_name`: the envelope
// (to `self`, this cluster), the nonce echoed, the sender, the clock, an error reply.  Never
// throws, whatever the types in the payload.
Status check_answer(const nlohmann::json &answer, const Config &config, const std::string &self,
                    const std::string &peer_name, const std::string &nonce);

int64_t unix_ms();

// Remembers nonces for the validity window; refuses stale, future and repeated messages.
class ReplayGuard {
public:
    explicit ReplayGuard(std::chrono::milliseconds max_skew, size_t capacity = 65536)
        : max_skew_(max_skew), capacity_(capacity) {}
    // Records the nonce when the message is fresh and new; otherwise says why not.
    Status admit(const std::string &nonce, int64_t sent_unix_ms, int64_t now_unix_ms);

private:
    std::mutex mu_;
    std::chrono::milliseconds max_skew_;
    size_t capacity_;
    std::map<std::string, int64_t> seen_; // nonce -> expiry (unix ms)
};

// A node that answers the witness protocol: name, addresses, port.
struct WitnessPeer {
    std::string name;
    std::vector<std::string> addresses;
    int port = 0;
};

// Every member of the cluster as a peer (fenced nodes and witness-only nodes), in config order.
std::vector<WitnessPeer> witness_peers(const Config &config);
std::optional<WitnessPeer> find_witness_peer(const Config &config, std::string_view name);

// What a witness saw of a node.
struct NodeView {
    std::string node;
    bool alive = false;                 // any evidence of life
    std::vector<std::string> evidence;  // one line per probe: "icmp 127.0.10.1: echo reply"
    nlohmann::json to_json() const;
};

// The client side: one request, one authenticated answer, within `timeout` overall per address.
class WitnessClient {
public:
    WitnessClient(const Config &config, std::string key, std::string self)
        : config_(config), key_(std::move(key)), self_(std::move(self)) {}

    // "are you alive": OK when the peer answered, signed, as itself.
    Status ping(const WitnessPeer &peer, std::chrono::milliseconds timeout) const;
    // "what do you see of node X": the peer's own view.
    Result<NodeView> observe(const WitnessPeer &peer, const std::string &node, std::chrono::milliseconds timeout) const;

    // Sends one request payload (fields t/from/to/cluster/nonce/ts are added) to one address and
    // returns the verified answer payload.  Exposed for tests of the protocol.
    Result<nlohmann::json> call(const WitnessPeer &peer, const std::string &address, nlohmann::json request,
                                std::chrono::milliseconds timeout) const;

private:
    Result<nlohmann::json> call_any(const WitnessPeer &peer, const nlohmann::json &request,
                                    std::chrono::milliseconds timeout) const;
    const Config &config_;
    std::string key_;
    std::string self_;
};

// This node's own view of another: ICMP and TCP probes of its addresses (witness.check_ports
// and its witness port), and whether it answers the witness protocol; all in parallel.
NodeView observe_node(const Config &config, const WitnessClient &client, const WitnessPeer &node);

// The server.  Binds at construction; serve() answers until *stop becomes true.
class WitnessServer {
public:
    struct Options {
        std::string self;        // this node's name (must be a node or witness node)
        std::string listen;      // address to bind, "" = any
        int port = 0;            // 0 = choose (tests)
        std::chrono::milliseconds read_timeout{2000};
        unsigned max_connections = 32;
    };

    static Result<std::unique_ptr<WitnessServer>> bind(const Config &config, std::string key, Options options,
                                                       Logger &logger);
    ~WitnessServer();
    int port() const { return port_; }
    void serve(const std::atomic<bool> &stop);

    // Counters, for logs and tests.
    uint64_t answered() const { return answered_.load(); }
    uint64_t refused() const { return refused_.load(); }

private:
    WitnessServer(const Config &config, std::string key, Options options, Logger &logger);
    void handle(int fd, std::string peer_addr);
    nlohmann::json answer(const nlohmann::json &request);

    const Config &config_;
    std::string key_;
    Options options_;
    Logger &logger_;
    int listen_fd_ = -1;
    int port_ = 0;
    ReplayGuard replay_;
    std::unique_ptr<WitnessClient> client_;
    std::atomic<unsigned> active_{0};
    std::atomic<uint64_t> answered_{0}, refused_{0};
    std::mutex done_mu_;
};

} // namespace stockade
