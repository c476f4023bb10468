// The witness protocol against a real WitnessServer on 127.0.0.1: HMAC-SHA256 against the FIPS
// and RFC 4231 vectors, the key file rules, and every way a request can be wrong (wrong key,
// replayed, truncated, stale, slow peer) -- refused or timed out, logged, and the server still
// answers the next honest request.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <csignal>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "stockade/hmac.hpp"
#include "stockade/witness.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string unhex(const std::string &h)
{
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        out += char(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

// A server for member "w" in a cluster of n1, n2, w; this test process speaks as n1.
struct Lab {
    test::TempDir dir;
    std::string key = "0123456789abcdef0123456789abcdef";
    Config config;
    Logger logger;
    std::mutex mu;
    std::vector<std::string> lines;
    std::unique_ptr<WitnessServer> server;
    std::atomic<bool> stop{false};
    std::thread thread;

    explicit Lab(int read_timeout_ms = 500)
    {
        logger.set_level(STOCKADE_LOG_DEBUG);
        logger.add_sink([this](int, std::string_view l) {
            std::lock_guard lock(mu);
            lines.emplace_back(l);
        });
        auto c = parse_config(R"({"cluster_name": "lab", "local_node": "n1",
            "witness": {"mode": "remote_verify", "timeout": 0.5, "max_skew": 5, "icmp": false,
                        "nodes": {"w": {"addresses": ["127.0.0.1"]}}},
            "devices": {"d": {"agent": "testagent"}},
            "nodes": {"n1": {"levels": [["d"]], "addresses": ["127.0.0.1"]},
                      "n2": {"levels": [["d"]], "addresses": ["127.0.0.1"], "witness_port": 1}}})",
                              "lab.json");
        REQUIRE(c);
        config = std::move(*c);
        WitnessServer::Options o;
        o.self = "w";
        o.listen = "127.0.0.1";
        o.read_timeout = std::chrono::milliseconds(read_timeout_ms);
        auto s = WitnessServer::bind(config, key, o, logger);
        REQUIRE(s);
        server = std::move(*s);
        // The config must point at the server's port for clients.
        config.witness.nodes[0].witness_port = server->port();
        thread = std::thread([this] { server->serve(stop); });
    }
    ~Lab()
    {
        stop = true;
        thread.join();
    }
    WitnessPeer peer() const { return *find_witness_peer(config, "w"); }
    bool logged(const std::string &needle)
    {
        std::lock_guard lock(mu);
        for (const auto &l : lines)
            if (l.find(needle) != std::string::npos)
                return true;
        return false;
    }
    // Sends raw bytes, returns whatever comes back before EOF or the timeout.
    std::string raw(const std::string &bytes, bool half_close = true, int wait_ms = 3000)
    {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(server->port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        if (!bytes.empty())
            REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
        if (half_close)
            ::shutdown(fd, SHUT_WR);
        timeval tv{wait_ms / 1000, (wait_ms % 1000) * 1000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string out;
        char buf[4096];
        ssize_t r;
        while ((r = ::recv(fd, buf, sizeof buf, 0)) > 0)
            out.append(buf, size_t(r));
        ::close(fd);
        return out;
    }
    json request(const std::string &type, const std::string &signing_key, int64_t ts_offset_ms = 0)
    {
        return json{{"t", type}, {"from", "n1"}, {"to", "w"}, {"cluster", "lab"}, {"nonce", random_hex(16)},
                    {"ts", unix_ms() + ts_offset_ms}};
        (void)signing_key;
    }
};

} // namespace

TEST_CASE("SHA-256 and HMAC-SHA256 match FIPS 180-4 and RFC 4231", "[quorum][hmac]")
{
    CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(to_hex(sha256(std::string(1000000, 'a'))) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    struct Vector {
        std::string key, data, mac;
    } vectors[] = {
        {std::string(20, '\x0b'), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {std::string(20, '\xaa'), std::string(50, '\xdd'), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {std::string(131, '\xaa'),
         "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
         "hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (const auto &v : vectors) {
        INFO(v.data);
        CHECK(to_hex(hmac_sha256(v.key, v.data)) == v.mac);
    }
    // RFC 4231 case 5: truncated to 128 bits.
    CHECK(to_hex(hmac_sha256(std::string(20, '\x0c'), "Test With Truncation")).substr(0, 32) ==
          "a3b6167473100ee06e0c796c2955552b");
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "ab"));
    CHECK(random_hex(16).size() == 32);
    CHECK(random_hex(16) != random_hex(16));
}

TEST_CASE("the cluster key must be readable by its owner only", "[quorum][key]")
{
    test::TempDir d;
    std::string good = d.file("good.key"), open_key = d.file("open.key"), short_key = d.file("short.key");
    test::write_file(good, "0123456789abcdef0123456789abcdef\n", 0600);
    test::write_file(open_key, "0123456789abcdef0123456789abcdef\n", 0640);
    test::write_file(short_key, "tooshort\n", 0600);
    auto k = load_cluster_key(good);
    REQUIRE(k);
    CHECK(*k == "0123456789abcdef0123456789abcdef");
    auto o = load_cluster_key(open_key);
    REQUIRE_FALSE(o);
    CHECK_THAT(o.error().message, Catch::Contains("mode 0640 lets group/others in"));
    ::chmod(open_key.c_str(), 0604);
    CHECK_FALSE(load_cluster_key(open_key));
    auto s = load_cluster_key(short_key);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message, Catch::Contains("at least 16 bytes"));
    CHECK_FALSE(load_cluster_key(d.file("missing.key")));
}

TEST_CASE("an honest request is answered, signed, bound to its nonce", "[quorum][witness]")
{
    Lab lab;
    WitnessClient client(lab.config, lab.key, "n1");
    REQUIRE(client.ping(lab.peer(), 2s));
    // "see" about n2: its witness port 1 refuses the connection.  Its witness is down but its
    // kernel answered, so it is alive (dead verdicts are in the namespace scenarios).
    auto v = client.observe(lab.peer(), "n2", 5s);
    REQUIRE(v);
    CHECK(v->alive);
    REQUIRE(v->evidence.size() == 1);
    CHECK_THAT(v->evidence.at(0), Catch::Contains("witness service of n2 at 127.0.0.1:1") &&
                                         Catch::Contains("refused (the host answered)"));
    // "see" about the witness itself: alive.
    auto me = client.observe(lab.peer(), "w", 5s);
    REQUIRE(me);
    CHECK(me->alive);
    CHECK(lab.server->answered() == 3);
    CHECK(lab.server->refused() == 0);
}

TEST_CASE("wrong key, replay, truncation, strangers and stale clocks are refused and logged", "[quorum][witness]")
{
    Lab lab;
    WitnessClient honest(lab.config, lab.key, "n1");

    SECTION("wrong key")
    {
        WitnessClient wrong(lab.config, "ffffffffffffffffffffffffffffffff", "n1");
        auto s = wrong.ping(lab.peer(), 2s);
        REQUIRE_FALSE(s);
        CHECK(s.error().rc == STOCKADE_RC_ACCESS_DENIED);
        CHECK(lab.server->refused() == 1);
        CHECK(lab.logged("refused request from 127.0.0.1"));
        CHECK(lab.logged("authentication failed"));
    }
    SECTION("replayed request")
    {
        std::string msg = seal_message(lab.key, lab.request("alive", lab.key));
        std::string first = lab.raw(msg);
        auto a = open_message(lab.key, first.substr(0, first.find('\n')));
        REQUIRE(a);
        CHECK((*a)["t"] == "alive");
        std::string second = lab.raw(msg);
        auto b = open_message(lab.key, second.substr(0, second.find('\n')));
        REQUIRE(b);
        CHECK((*b)["t"] == "error");
        CHECK_THAT((*b)["error"].get<std::string>(), Catch::Contains("replayed"));
        CHECK(lab.logged("replayed message"));
        CHECK(lab.server->answered() == 1);
        CHECK(lab.server->refused() == 1);
    }
    SECTION("altered payload")
    {
        std::string msg = seal_message(lab.key, lab.request("alive", lab.key));
        msg.replace(msg.find("\"n1\""), 4, "\"n2\"");
        lab.raw(msg);
        CHECK(lab.logged("authentication failed"));
        CHECK(lab.server->answered() == 0);
    }
    SECTION("truncated message, then EOF")
    {
        std::string msg = seal_message(lab.key, lab.request("alive", lab.key));
        std::string reply = lab.raw(msg.substr(0, msg.size() / 2));
        CHECK(reply.empty());
        CHECK(lab.logged("truncated message"));
        CHECK(lab.server->refused() == 1);
    }
    SECTION("stale and future timestamps")
    {
        lab.raw(seal_message(lab.key, lab.request("alive", lab.key, -60000)));
        CHECK(lab.logged("stale message"));
        lab.raw(seal_message(lab.key, lab.request("alive", lab.key, +60000)));
        CHECK(lab.logged("from the future"));
        CHECK(lab.server->refused() == 2);
    }
    SECTION("sender that is not a member, request meant for someone else")
    {
        json r = lab.request("alive", lab.key);
        r["from"] = "mallory";
        lab.raw(seal_message(lab.key, r));
        CHECK(lab.logged("'mallory' is not a cluster member"));
        json r2 = lab.request("alive", lab.key);
        r2["to"] = "n2";
        lab.raw(seal_message(lab.key, r2));
        CHECK(lab.logged("meant for 'n2'"));
        CHECK(lab.server->refused() == 2);
    }
    SECTION("garbage and an oversized line")
    {
        lab.raw("GET / HTTP/1.0\r\n\r\n");
        CHECK(lab.logged("not a witness message"));
        lab.raw(std::string(kMaxWitnessMessage + 100, 'x') + "\n");
        CHECK(lab.logged("longer than"));
    }
    // Whatever came before, the next honest request is answered.
    CHECK(honest.ping(lab.peer(), 2s));
}

TEST_CASE("a slow peer times out on both sides and blocks nobody", "[quorum][witness]")
{
    Lab lab(1500);
    // Server side: a client that connects and sends half a line, then stalls.
    std::string msg = seal_message(lab.key, lab.request("alive", lab.key));
    auto t0 = monotonic_ms();
    std::thread slow([&] { lab.raw(msg.substr(0, 20), false, 6000); });
    // Meanwhile an honest client is served at once.
    WitnessClient honest(lab.config, lab.key, "n1");
    std::this_thread::sleep_for(50ms);
    auto t1 = monotonic_ms();
    CHECK(honest.ping(lab.peer(), 2s));
    CHECK(monotonic_ms() - t1 < 1000); // well before the slow peer is dropped
    slow.join();
    auto elapsed = monotonic_ms() - t0;
    CHECK(elapsed >= 1400);
    CHECK(elapsed < 5000); // the server hung up at its read timeout, not at the client's 6 s
    CHECK(lab.logged("read timed out"));

    // Client side: a "witness" that accepts and never answers.
    auto listener = std::make_unique<test::SilentListener>();
    WitnessPeer mute{"w", {"127.0.0.1"}, listener->port()};
    auto t2 = monotonic_ms();
    auto s = honest.ping(mute, 700ms);
    auto took = monotonic_ms() - t2;
    listener.reset();
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message, Catch::Contains("timed out"));
    CHECK(took >= 650);
    CHECK(took < 1500);
}

TEST_CASE("stockade witness: serves as a process, refuses an open key file, stops on SIGTERM", "[quorum][witness]")
{
    test::TempDir d;
    int port = test::free_tcp_port();
    test::write_file(d.file("key"), "0123456789abcdef0123456789abcdef\n", 0600);
    test::write_file(d.file("c.json"), R"({"cluster_name": "p", "local_node": "a",
        "witness": {"mode": "remote_verify", "key_file": ")" + d.file("key") + R"(", "port": )" + std::to_string(port) +
                                           R"(, "timeout": 1},
        "devices": {"d": {"agent": "testagent"}},
        "nodes": {"a": {"levels": [["d"]], "addresses": ["127.0.0.1"]}, "b": {"levels": [["d"]], "addresses": ["127.0.0.1"]}}})");
    SpawnSpec spec;
    spec.argv = {test::bin_path("stockade"), "-c", d.file("c.json"), "witness"};
    auto p = Subprocess::spawn(spec);
    REQUIRE(p);
    (*p)->on_stderr = [](std::string_view) {};
    CommandResult q;
    for (int i = 0; i < 50; ++i) { // until it listens
        q = test::run({test::bin_path("stockade"), "-c", d.file("c.json"), "witness-query", "a"});
        if (q.exit_code == 0)
            break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(q.out << q.err);
    CHECK(q.exit_code == 0);
    CHECK_THAT(q.out, Catch::Contains("a: alive (authenticated answer)"));
    auto qj = test::run({test::bin_path("stockade"), "-c", d.file("c.json"), "witness-query", "a", "--json"});
    CHECK(qj.exit_code == 0);
    auto answers = nlohmann::json::parse(qj.out);
    REQUIRE(answers.is_array()); // --json is always an array: the one member asked
    REQUIRE(answers.size() == 1);
    CHECK(answers[0]["member"] == "a");
    CHECK(answers[0]["alive"] == true);
    ::kill((*p)->pid(), SIGTERM);
    auto status = (*p)->wait(monotonic_ms() + 3000);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);

    ::chmod(d.file("key").c_str(), 0644);
    auto r = test::run({test::bin_path("stockade"), "-c", d.file("c.json"), "witness"}, "", 10s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("mode 0644 lets group/others in"));
}
