// agent_host.cpp -- one isolated session, and the fork server that starts sessions by fork()
// (see agent_host.hpp and host_protocol.hpp for the protocols).
#include "agent_host.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <cerrno>
#include <map>
#include <mutex>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent_calls.hpp"
#include "host_protocol.hpp"
#include "stockade/process.hpp"
#include "stockade/session.hpp"

namespace stockade::agent_host {

namespace {

std::mutex g_out_mu;
FILE *g_out = nullptr;
std::atomic<bool> g_cancel{false};

extern "C" void on_term(int) { g_cancel.store(true); }

// One request line from fd 0 (requests are a few hundred bytes; std::getline on std::cin read
// them one locked getc at a time: ~13 % of a forked session's CPU).  False at EOF or error.
class RequestReader {
public:
    bool next(std::string &line)
    {
        for (;;) {
            if (size_t nl = buf_.find('\n', pos_); nl != std::string::npos) {
                line.assign(buf_, pos_, nl - pos_);
                pos_ = nl + 1;
                return true;
            }
            buf_.erase(0, pos_);
            pos_ = 0;
            char chunk[4096];
            ssize_t n = ::read(0, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) { // a last line without its newline still counts
                line = std::move(buf_);
                buf_.clear();
                return !line.empty();
            }
            buf_.append(chunk, size_t(n));
        }
    }

private:
    std::string buf_;
    size_t pos_ = 0;
};

void send(const nlohmann::json &j)
{
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(g_out_mu);
    std::fwrite(s.data(), 1, s.size(), g_out);
    std::fflush(g_out);
}

} // namespace

void install_cancel_handler()
{
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
}

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
    RequestReader requests;
    while (requests.next(line)) {
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
            // Lines the client would drop are not sent (a debug line per request otherwise
            // crossed the pipe and woke the client for nothing).
            logger.set_level(req.log_level);
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

namespace {

// This process becomes a session on the client's three descriptors (stdin, stdout, stderr): its
// own process group, every other descriptor closed, "stockade-agent" in ps (as the exec'd host's
// sessions are).  Returns the exit status.
int serve_session_on(const Result<AgentInfo> &agent, const std::vector<int> &fds)
{
    ::prctl(PR_SET_NAME, "stockade-agent");
    become_forked_child(fds[0], fds[1], fds[2]);
    return serve_session(agent);
}

// A session child on the client's three descriptors, or why not.
host_protocol::ControlMessage fork_session(const Result<AgentInfo> &agent, const std::vector<int> &fds)
{
    host_protocol::ControlMessage reply;
    if (int threads = thread_count(); threads != 1) {
        reply.verb = "error";
        reply.text = "agent host has " + std::to_string(threads) +
                     " threads (an agent's prepare left one running?); it forks only with one";
    } else if (pid_t pid = ::fork(); pid == 0) {
        ::_exit(serve_session_on(agent, fds));
    } else if (pid < 0) {
        reply.verb = "error";
        reply.text = std::string("fork: ") + std::strerror(errno);
    } else {
        ::setpgid(pid, pid); // both sides, so the group exists before the client can kill it
        reply.verb = "pid";
        reply.value = pid;
    }
    return reply;
}

} // namespace

int serve_forks(int ctl, const std::string &preloaded_path)
{
    // Agent files loaded so far (never unloaded: we never dlclose).
    std::map<std::string, Result<AgentInfo>> agents;
    auto agent_for = [&](const std::string &path) -> const Result<AgentInfo> & {
        auto it = agents.find(path);
        if (it == agents.end()) {
            it = agents.emplace(path, load_agent_file(path)).first;
            // Before any session of it is forked, so each inherits what it loaded.  Should it
            // leave a thread behind, fork_session refuses from then on and the client starts its
            // sessions another way.
            if (it->second)
                agent_calls::prepare_once(*it->second);
        }
        return it->second;
    };
    if (!preloaded_path.empty())
        (void)agent_for(preloaded_path);
    for (;;) {
        host_protocol::ControlMessage m;
        if (!host_protocol::receive(ctl, m))
            return 0; // the client is gone
        host_protocol::ControlMessage reply;
        if (m.verb == "load") { // a hint, answered by nothing
            (void)agent_for(m.text);
            for (int fd : m.fds)
                ::close(fd);
            continue;
        }
        if (m.verb == "fork" || m.verb == "become") {
            const std::string path = m.text.empty() ? preloaded_path : m.text;
            if (m.fds.size() != 3 || path.empty()) {
                reply.verb = "error";
                reply.text = m.verb + " needs an agent file and 3 descriptors";
            } else if (m.verb == "become") {
                // The client's last session: served by this process itself, which forks nothing
                // after it (a fork and an exit fewer).  Same isolation: its own process group, the
                // client's pipes as stdio, every other descriptor (this control socket too) closed.
                const Result<AgentInfo> &agent = agent_for(path);
                if (!host_protocol::send(ctl, {"pid", int64_t(::getpid()), "", {}}))
                    return 0;
                return serve_session_on(agent, m.fds);
            } else {
                reply = fork_session(agent_for(path), m.fds);
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

} // namespace stockade::agent_host
