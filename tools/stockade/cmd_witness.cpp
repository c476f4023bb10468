// cmd_witness.cpp -- `stockade witness` (the witness service every node and witness-only node
// runs), `stockade witness-query` (ask one member, as this node would before fencing),
// `stockade quorum` (does this node hold quorum now?) and `stockade witness-keygen`.
//
// The service answers "are you alive" and "what do you see of node X" for the cluster, signed
// with the shared key; it never fences anything.  Exit codes: 0 ok, 1 no answer / failure,
// 2 usage/config, 3 (quorum) no quorum.
#include <memory>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_common.hpp"
#include "stockade/hmac.hpp"
#include "stockade/quorum.hpp"
#include "stockade/witness.hpp"

namespace stockade::cli {

namespace {

std::optional<int> parse_port(const std::string &text)
{
    char *end = nullptr;
    long p = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end || p < 1 || p > 65535)
        return std::nullopt;
    return int(p);
}

struct WitnessArgs {
    std::optional<std::string> node, port_text, listen;
};

int run_witness(const GlobalOptions &g, const WitnessArgs &wa)
{
    const auto &[node, port_text, listen] = wa;
    Logger &log = setup_logger(g);
    AgentRegistry registry;
    auto config = load_checked_config(g, registry);
    if (!config)
        return 2;
    WitnessServer::Options o;
    o.self = node ? *node : config->local_node;
    o.listen = listen ? *listen : config->witness.listen;
    o.port = config->witness.port;
    if (auto peer = find_witness_peer(*config, o.self); peer)
        o.port = peer->port;
    if (port_text) {
        auto p = parse_port(*port_text);
        if (!p)
            return fail_usage(fmt::format("witness: --port '{}' is not 1-65535", *port_text));
        o.port = *p;
    }
    o.read_timeout = config->witness.timeout;
    auto key = load_cluster_key(config->witness.key_file);
    if (!key)
        return fail_usage(key.error().message);
    auto server = WitnessServer::bind(*config, *key, o, log);
    if (!server)
        return fail_usage(server.error().message, 1);
    const std::atomic<bool> *stop = install_cancel_signals();
    (*server)->serve(*stop);
    return 0;
}

int run_witness_query(const GlobalOptions &g, const std::string &member, const std::optional<std::string> &about)
{
    const bool json = g.json;
    const std::vector<std::string> args{member};
    setup_logger(g, false);
    AgentRegistry registry;
    auto config = load_checked_config(g, registry);
    if (!config)
        return 2;
    auto peer = find_witness_peer(*config, args[0]);
    if (!peer)
        return fail_usage(fmt::format("witness-query: '{}' is not a node or witness node in {}", args[0], config->source));
    auto key = load_cluster_key(config->witness.key_file);
    if (!key)
        return fail_usage(key.error().message);
    WitnessClient client(*config, *key, config->local_node);
    if (!about) {
        auto s = client.ping(*peer, config->witness.timeout);
        if (json) // --json is always an array: here of the one member asked
            fmt::print("{}\n", nlohmann::json::array({{{"member", peer->name}, {"alive", s.ok()},
                                                       {"error", s ? "" : s.error().message}}})
                                   .dump());
        else
            fmt::print("{}: {}\n", peer->name, s ? "alive (authenticated answer)" : s.error().message);
        return s ? 0 : 1;
    }
    auto v = client.observe(*peer, *about, config->witness.timeout * 2 + std::chrono::milliseconds(1000));
    if (!v) {
        if (json)
            fmt::print("{}\n", nlohmann::json::array({{{"member", peer->name}, {"about", *about},
                                                       {"error", v.error().message}}})
                                   .dump());
        else
            fmt::print("{}: {}\n", peer->name, v.error().message);
        return 1;
    }
    if (json)
        fmt::print("{}\n", nlohmann::json::array({v->to_json()}).dump());
    else
        fmt::print("{} sees {} {}: {}\n", peer->name, v->node, v->alive ? "ALIVE" : "dead", fmt::join(v->evidence, "; "));
    return 0;
}

int run_quorum(const GlobalOptions &g)
{
    const bool json = g.json;
    Logger &log = setup_logger(g, false);
    AgentRegistry registry;
    auto config = load_checked_config(g, registry);
    if (!config)
        return 2;
    std::string key;
    if (config->quorum.mode == QuorumMode::Majority) {
        auto k = load_cluster_key(config->witness.key_file);
        if (!k)
            return fail_usage(k.error().message);
        key = *k;
    }
    QuorumVerdict v = check_quorum(*config, key, log);
    if (json) // always an array: one record, this node's verdict
        fmt::print("{}\n", nlohmann::json::array({{{"node", config->local_node},
                                                   {"mode", quorum_mode_name(config->quorum.mode)},
                                                   {"quorate", v.quorate},
                                                   {"votes", v.votes},
                                                   {"total", v.total},
                                                   {"details", v.details}}})
                               .dump());
    else
        fmt::print("{}: {} ({})\n", config->local_node, v.quorate ? "quorate" : "NO QUORUM", v.summary());
    return v.quorate ? 0 : 3;
}

int run_keygen(const std::string &file)
{
    const std::vector<std::string> args{file};
    std::string key = random_hex(32);
    if (key.empty())
        return fail_usage("witness-keygen: no random bytes from the kernel", 1);
    int fd = ::open(args[0].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_usage(fmt::format("witness-keygen: {}: {}", args[0], std::strerror(errno)), 1);
    key += '\n';
    bool ok = ::write(fd, key.data(), key.size()) == ssize_t(key.size());
    ok = (::close(fd) == 0) && ok;
    if (!ok)
        return fail_usage(fmt::format("witness-keygen: {}: write failed", args[0]), 1);
    fmt::print("wrote a 256-bit cluster key to {} (mode 0600); copy it to every member\n", args[0]);
    return 0;
}

CommandBody setup_witness(CLI::App &app, const GlobalOptions &g)
{
    auto wa = std::make_shared<WitnessArgs>();
    app.add_option("--node", wa->node, "serve as this member (default: the config's local node)");
    app.add_option("--port", wa->port_text, "TCP port (default: the member's port in the config)");
    app.add_option("--listen", wa->listen, "address to listen on (default: witness.listen in the config)");
    return [&g, wa] { return run_witness(g, *wa); };
}

CommandBody setup_witness_query(CLI::App &app, const GlobalOptions &g)
{
    auto member = std::make_shared<std::string>();
    auto about = std::make_shared<std::optional<std::string>>();
    app.add_option("MEMBER", *member, "node or witness node to ask")->required();
    app.add_option("--about", *about, "ask what MEMBER sees of this node instead of whether it is alive");
    app.footer("--json prints an array holding the one answer (or the error).");
    return [&g, member, about] { return run_witness_query(g, *member, *about); };
}

CommandBody setup_quorum(CLI::App &app, const GlobalOptions &g)
{
    app.footer("--json prints an array holding this node's verdict (node, mode, quorate, votes, total, details).");
    return [&g] { return run_quorum(g); };
}

CommandBody setup_keygen(CLI::App &app, const GlobalOptions &)
{
    auto file = std::make_shared<std::string>();
    app.add_option("FILE", *file, "new key file (must not exist)")->required();
    return [file] { return run_keygen(*file); };
}

} // namespace

STOCKADE_COMMAND("witness", "run the witness service (answers signed alive/see requests; never fences)",
                 setup_witness);
STOCKADE_COMMAND("witness-query",
                 "ask one member's witness service whether it is alive, or what it sees of NODE (exit 0 answered, 1 not)",
                 setup_witness_query);
STOCKADE_COMMAND("quorum", "check whether this node holds quorum now (exit 0 quorate, 3 not)", setup_quorum);
STOCKADE_COMMAND("witness-keygen", "write a new random cluster key (mode 0600)", setup_keygen);

} // namespace stockade::cli
