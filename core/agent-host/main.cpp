// stockade-agent-host -- runs one agent instance on behalf of an isolated session.
//
// Started by the runner (or a front-end) in its own process group with the agent's path on the
// command line and nothing secret anywhere but stdin.  It loads the agent, then serves the
// line protocol of core/src/host_protocol.hpp until "close" or EOF.  If the agent hangs, the
// parent kills this process and everything it started; if the agent crashes, this process dies
// and the parent reports the failure.  The agent's own stdout is redirected to stderr so that
// stray output can never corrupt the protocol stream.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "host_protocol.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"

using namespace stockade;

namespace {

std::mutex g_out_mu;
FILE *g_out = nullptr;
std::atomic<bool> g_cancel{false};

extern "C" void on_term(int) { g_cancel.store(true); }

void send(const nlohmann::json &j)
{
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(g_out_mu);
    std::fwrite(s.data(), 1, s.size(), g_out);
    std::fflush(g_out);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 3 || std::string(argv[1]) != "--agent") {
        std::fprintf(stderr, "usage: stockade-agent-host --agent PATH (started by stockade, not by hand)\n");
        return 2;
    }
    // Keep the protocol on a private descriptor; fd 1 becomes stderr for whatever the agent prints.
    int proto = ::dup(1);
    ::dup2(2, 1);
    g_out = ::fdopen(proto, "w");
    if (!g_out)
        return 2;

    // SIGTERM from the parent means "cancel": the agent sees it through ctx->is_cancelled and
    // can clean up before the parent's SIGKILL.
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);

    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    logger.add_sink([](int level, std::string_view line) {
        send({{"type", "log"}, {"level", level}, {"msg", std::string(line)}});
    });

    auto agent = load_agent_file(argv[2]);
    std::unique_ptr<AgentRegistry> registry;
    std::unique_ptr<AgentSession> session;

    std::string line;
    while (std::getline(std::cin, line)) {
        auto parsed = host_protocol::parse_request(line);
        if (!parsed) {
            send(host_protocol::result_to_json({parsed.error().rc, parsed.error().message, 0, 0, {}, 0}));
            continue;
        }
        const host_protocol::Request &req = *parsed;
        const std::string &op = req.op;
        Millis timeout(req.timeout_ms);
        if (op == "close")
            break;
        if (!agent) {
            send(host_protocol::result_to_json({agent.error().rc, agent.error().message, 0, 0, {}, 0}));
            continue;
        }
        OpResult r;
        if (op == "open") {
            if (req.nested)
                registry = std::make_unique<AgentRegistry>(req.search_path.empty() ? AgentRegistry::default_search_path()
                                                                                    : req.search_path);
            SessionOptions o;
            o.isolate = false;
            o.logger = &logger;
            o.registry = registry.get();
            o.cancel = &g_cancel;
            session = make_session(*agent, o);
            const ParamList &params = req.params;
            r = session->open(params, timeout);
        } else if (!session) {
            r = {STOCKADE_RC_INTERNAL, "agent host: not open", 0, 0, {}, 0};
        } else if (op == "power") {
            r = session->power(PowerAction(req.action), req.target, timeout);
        } else if (op == "status") {
            r = session->status(req.target, timeout);
        } else if (op == "list") {
            r = session->list(timeout);
        } else if (op == "monitor") {
            r = session->monitor(timeout);
        } else {
            r = {STOCKADE_RC_INTERNAL, "agent host: unknown op '" + op + "'", 0, 0, {}, 0};
        }
        send(host_protocol::result_to_json(r));
    }
    if (session)
        session->close();
    std::fflush(g_out);
    return 0;
}
