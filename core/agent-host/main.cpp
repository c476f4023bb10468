// stockade-agent-host -- runs agent instances on behalf of isolated sessions.
//
// Two modes, one session loop.  `--agent PATH`: one session on stdin/stdout, then exit (the
// exec-per-session path).  `--serve PATH` (the fork server, host_protocol.hpp "fork server"):
// load the agent once, then for every "fork" request on the control socket fork a child that
// runs one session on the three descriptors the client sent, in a process group of its own.
// The server itself never calls the agent's functions: it only dlopen()s it (and so runs its
// constructors) before the first fork, and it refuses to fork once it has more than one thread,
// so every session starts from the same pristine image and nothing one session did is seen by
// the next.  The client owns each child's deadline: it kills the child's tree itself, and the
// server reaps a child only when the client asks ("reap"), so a group id is never reused under
// the client's feet.
//
// Secrets only ever travel over the session's stdin pipe, never through the server.  If the
// agent hangs, the client kills the session's whole tree; if it crashes, the session child
// dies and the client reports the failure.  The agent's own stdout is redirected to stderr so
// stray output can never corrupt the protocol stream.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <iostream>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "host_protocol.hpp"
#include "stockade/process.hpp"
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

// One session: requests on stdin, replies on stdout, until "close" or EOF.
int serve_session(const Result<AgentInfo> &agent)
{
    // Keep the protocol on a private descriptor; fd 1 becomes stderr for whatever the agent prints.
    int proto = ::dup(1);
    ::dup2(2, 1);
    g_out = ::fdopen(proto, "w");
    if (!g_out)
        return 2;

    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    logger.add_sink([](int level, std::string_view line) {
        send({{"type", "log"}, {"level", level}, {"msg", std::string(line)}});
    });

    std::unique_ptr<AgentRegistry> registry;
    std::unique_ptr<AgentSession> session;

    std::string line;
    while (std::getline(std::cin, line)) {
        auto req = nlohmann::json::parse(line, nullptr, false);
        if (req.is_discarded() || !req.is_object()) {
            send(host_protocol::result_to_json({STOCKADE_RC_INTERNAL, "agent host: malformed request", 0, 0, {}, 0}));
            continue;
        }
        std::string op = req.value("op", "");
        Millis timeout(req.value("timeout_ms", int64_t(0)));
        if (op == "close")
            break;
        if (!agent) {
            send(host_protocol::result_to_json({agent.error().rc, agent.error().message, 0, 0, {}, 0}));
            continue;
        }
        OpResult r;
        if (op == "open") {
            if (req.value("nested", false)) {
                std::vector<std::string> sp;
                if (auto it = req.find("search_path"); it != req.end() && it->is_array())
                    for (const auto &d : *it)
                        if (d.is_string())
                            sp.push_back(d.get<std::string>());
                registry = std::make_unique<AgentRegistry>(sp.empty() ? AgentRegistry::default_search_path() : sp);
            }
            SessionOptions o;
            o.isolate = false;
            o.logger = &logger;
            o.registry = registry.get();
            o.cancel = &g_cancel;
            session = make_session(*agent, o);
            ParamList params;
            if (auto it = req.find("params"); it != req.end() && it->is_array())
                for (const auto &p : *it)
                    if (p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string())
                        params.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
            r = session->open(params, timeout);
        } else if (!session) {
            r = {STOCKADE_RC_INTERNAL, "agent host: not open", 0, 0, {}, 0};
        } else if (op == "power") {
            r = session->power(PowerAction(req.value("action", 0u)), req.value("target", ""), timeout);
        } else if (op == "status") {
            r = session->status(req.value("target", ""), timeout);
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

// Threads in this process, from /proc/self/task (fork() copies only the calling one).
int thread_count()
{
    int n = 0;
    if (DIR *d = ::opendir("/proc/self/task")) {
        while (dirent *e = ::readdir(d))
            n += e->d_name[0] != '.';
        ::closedir(d);
    }
    return n;
}

// The fork server: one control message at a time on `ctl` (a SOCK_SEQPACKET socket).
int serve_forks(const Result<AgentInfo> &agent, int ctl)
{
    for (;;) {
        host_protocol::ControlMessage m;
        if (!host_protocol::receive(ctl, m))
            return 0; // the client is gone
        host_protocol::ControlMessage reply;
        if (m.verb == "fork") {
            if (m.fds.size() != 3) {
                reply.verb = "error";
                reply.text = "fork needs 3 descriptors";
            } else if (int threads = thread_count(); threads != 1) {
                reply.verb = "error";
                reply.text = "agent host has " + std::to_string(threads) + " threads; it forks only with one";
            } else if (pid_t pid = ::fork(); pid == 0) {
                become_forked_child(m.fds[0], m.fds[1], m.fds[2]);
                ::_exit(serve_session(agent));
            } else if (pid < 0) {
                reply.verb = "error";
                reply.text = std::string("fork: ") + std::strerror(errno);
            } else {
                ::setpgid(pid, pid); // both sides, so the group exists before the client can kill it
                reply.verb = "pid";
                reply.value = pid;
            }
            for (int fd : m.fds)
                ::close(fd);
        } else if (m.verb == "reap") {
            int st = 0;
            pid_t r;
            while ((r = ::waitpid(pid_t(m.value), &st, WNOHANG)) < 0 && errno == EINTR) {
            }
            reply.verb = r == pid_t(m.value) ? "status" : "unknown";
            reply.value = st;
        } else {
            reply.verb = "error";
            reply.text = "unknown request '" + m.verb + "'";
        }
        if (!host_protocol::send(ctl, reply))
            return 0;
    }
}

} // namespace

int main(int argc, char **argv)
{
    const std::string mode = argc >= 2 ? argv[1] : "";
    if (!((argc == 3 && mode == "--agent") || (argc == 4 && mode == "--serve"))) {
        std::fprintf(stderr, "usage: stockade-agent-host --agent PATH | --serve PATH CONTROL_FD "
                             "(started by stockade, not by hand)\n");
        return 2;
    }
    // SIGTERM from the parent means "cancel": the agent sees it through ctx->is_cancelled and
    // can clean up before the parent's SIGKILL.  Session children inherit the handler.
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);

    auto agent = load_agent_file(argv[2]);
    if (mode == "--agent")
        return serve_session(agent);
    return serve_forks(agent, std::atoi(argv[3]));
}
