// session.cpp -- in-process and isolated agent sessions.
//
// The in-process session is the only code that calls an agent's C functions; the agent host
// child uses it too, so both kinds behave the same.  The isolated session speaks the pipe
// protocol of host_protocol.hpp to a stockade-agent-host child and owns that child's deadline.
#include "stockade/session.hpp"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_calls.hpp"
#include "agent_host.hpp"
#include "host_protocol.hpp"
#include "paths.hpp"
#include "stockade/process.hpp"

namespace stockade {

namespace {

OpResult fail(uint32_t rc, std::string msg)
{
    OpResult r;
    r.rc = rc;
    r.message = std::move(msg);
    return r;
}

// ---------------------------------------------------------------------------------------------
class InProcessSession final : public AgentSession {
public:
    InProcessSession(const AgentInfo &a, SessionOptions o) : agent_(a), opt_(std::move(o)) {}
    ~InProcessSession() override { close(); }

    const AgentInfo &agent() const override { return agent_; }

    OpResult open(const ParamList &params, Millis timeout) override
    {
        if (handle_)
            return fail(STOCKADE_RC_INTERNAL, "session already open");
        return call(timeout, [&](const stockade_ctx *ctx, OpResult &) {
            void *h = nullptr;
            uint32_t rc = agent_calls::open(agent_, params, ctx, 0, &h);
            if (rc == STOCKADE_RC_OK)
                handle_ = h;
            return rc;
        });
    }

    OpResult power(PowerAction action, const std::string &target, Millis timeout) override
    {
        bool known = false;
        for (const auto &a : kPowerActions)
            known = known || a.action == action;
        if (!known)
            return fail(STOCKADE_RC_BAD_CONFIG, fmt::format("unknown power action {}", uint32_t(action)));
        const auto &info = power_action_info(action);
        if (!agent_.can(info.capability))
            return fail(STOCKADE_RC_UNSUPPORTED, fmt::format("agent '{}' does not support {}", agent_.name, info.name));
        if (!handle_)
            return fail(STOCKADE_RC_INTERNAL, "session not open");
        return call(timeout, [&](const stockade_ctx *ctx, OpResult &r) {
            return agent_calls::power(agent_, handle_, ctx, uint32_t(action), target.c_str(), 0, &r.verified);
        });
    }

    OpResult status(const std::string &target, Millis timeout) override
    {
        if (!agent_.can(STOCKADE_CAP_STATUS))
            return fail(STOCKADE_RC_UNSUPPORTED, fmt::format("agent '{}' does not support status", agent_.name));
        if (!handle_)
            return fail(STOCKADE_RC_INTERNAL, "session not open");
        return call(timeout, [&](const stockade_ctx *ctx, OpResult &r) {
            return agent_calls::status(agent_, handle_, ctx, target.c_str(), 0, &r.power_state);
        });
    }

    OpResult list(Millis timeout) override
    {
        if (!agent_.can(STOCKADE_CAP_LIST))
            return fail(STOCKADE_RC_UNSUPPORTED, fmt::format("agent '{}' does not support list", agent_.name));
        if (!handle_)
            return fail(STOCKADE_RC_INTERNAL, "session not open");
        return call(timeout, [&](const stockade_ctx *ctx, OpResult &r) {
            auto emit = [](void *c, const char *name, const char *alias) {
                if (name)
                    static_cast<OpResult *>(c)->targets.push_back({name, alias ? alias : ""});
            };
            return agent_calls::list(agent_, handle_, ctx, 0, emit, &r);
        });
    }

    OpResult monitor(Millis timeout) override
    {
        if (!agent_.can(STOCKADE_CAP_MONITOR))
            return fail(STOCKADE_RC_UNSUPPORTED, fmt::format("agent '{}' does not support monitor", agent_.name));
        if (!handle_)
            return fail(STOCKADE_RC_INTERNAL, "session not open");
        return call(timeout,
                    [&](const stockade_ctx *ctx, OpResult &) { return agent_calls::monitor(agent_, handle_, ctx, 0); });
    }

    void close() override
    {
        if (handle_)
            agent_calls::close(agent_, handle_, 0);
        handle_ = nullptr;
    }

private:
    struct Ctx {
        stockade_ctx c;
        InProcessSession *self;
    };

    static int ctx_cancelled(const stockade_ctx *c)
    {
        auto *s = static_cast<InProcessSession *>(c->host);
        return s->opt_.cancel && s->opt_.cancel->load() ? 1 : 0;
    }

    static void ctx_log(const stockade_ctx *c, int level, const char *msg)
    {
        auto *s = static_cast<InProcessSession *>(c->host);
        if (!s->opt_.logger || !msg)
            return;
        if (s->opt_.label.empty())
            s->opt_.logger->log(level, msg);
        else
            s->opt_.logger->log(level, fmt::format("{}: {}", s->opt_.label, msg));
    }

    static uint32_t ctx_invoke(const stockade_ctx *c, const char *agent, const stockade_param *params, size_t n,
                               uint32_t action, const char *target, uint32_t timeout_ms, uint32_t *power_state,
                               uint32_t *verified, char *err, size_t err_size)
    {
        auto *s = static_cast<InProcessSession *>(c->host);
        auto put_err = [&](const std::string &m) {
            if (err && err_size)
                std::snprintf(err, err_size, "%s", m.c_str());
        };
        if (!s->opt_.registry) {
            put_err("this host cannot nest agents");
            return STOCKADE_RC_UNSUPPORTED;
        }
        if (!agent || !target) {
            put_err("invoke: agent and target are required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        auto raw = agent_calls::params_from_caller(s->agent_, params, n);
        if (!raw) {
            put_err(raw.error().message);
            return STOCKADE_RC_BAD_CONFIG;
        }
        OpResult r = invoke_agent(*s->opt_.registry, agent, *raw, action, target, Millis(timeout_ms),
                                  s->opt_.logger ? *s->opt_.logger : Logger::null(), s->opt_.cancel);
        if (power_state)
            *power_state = r.power_state;
        if (verified)
            *verified = r.verified;
        put_err(r.message);
        return r.rc;
    }

    template <class F>
    OpResult call(Millis timeout, F &&f)
    {
        OpResult r;
        char errbuf[1024] = {0};
        stockade_ctx ctx{};
        ctx.abi_major = STOCKADE_ABI_MAJOR;
        ctx.struct_size = sizeof ctx;
        int64_t start = monotonic_ms();
        ctx.deadline_ms = timeout.count() > 0 ? start + timeout.count() : 0;
        ctx.is_cancelled = ctx_cancelled;
        ctx.log = ctx_log;
        ctx.errbuf = errbuf;
        ctx.errbuf_size = sizeof errbuf;
        ctx.invoke = opt_.registry ? ctx_invoke : nullptr;
        ctx.host = this;
        uint32_t rc = f(&ctx, r);
        errbuf[sizeof errbuf - 1] = 0;
        r.rc = rc < STOCKADE_RC_COUNT ? rc : STOCKADE_RC_INTERNAL;
        r.message = errbuf;
        if (rc >= STOCKADE_RC_COUNT)
            r.message = fmt::format("agent returned unknown code {}: {}", rc, r.message);
        if (r.rc != STOCKADE_RC_OK && r.message.empty())
            r.message = std::string(result_code_info(r.rc).meaning);
        r.elapsed_ms = monotonic_ms() - start;
        return r;
    }

    const AgentInfo &agent_;
    SessionOptions opt_;
    void *handle_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// The fork servers of this process.  Preferred: the template a front-end forked from itself
// before it started any thread or read any secret (start_fork_template): isolation then costs a
// fork, not an exec + dynamic linking of the agent host.  It loads each agent file on first use.
// Otherwise (a library user, a test, a custom agent host): one `stockade-agent-host --serve` per
// agent file, started on first use.  Either is kept for the life of the process (it exits on EOF
// of its control socket, i.e. when we do).  Each session is a child the server forks, with our
// pipes, in a process group of its own, and whose deadline we own.  Any trouble (spawn failure,
// a server with threads, a server that died) and sessions fall back to exec per session.
class ForkServer {
public:
    static ForkServer *get(const std::string &host, const std::string &agent_path)
    {
        std::lock_guard lock(pool_mu());
        auto &fs = pool()[host + '\n' + agent_path];
        if (!fs) {
            fs.reset(new ForkServer(agent_path));
            fs->spawn_host(host, agent_path);
        }
        return fs->broken_ ? nullptr : fs.get();
    }

    // The template, if this process started one and it still works.
    static ForkServer *template_server()
    {
        std::lock_guard lock(pool_mu());
        auto it = pool().find(kTemplateKey);
        return it != pool().end() && !it->second->broken_ ? it->second.get() : nullptr;
    }

    static Status start_template(int argc, char **argv, const std::string &preload_path)
    {
        if (template_server())
            return {};
        // Forked with no lock held, so the template's copy of this process has none held either
        // (a session child that nests agents takes them).
        std::unique_ptr<ForkServer> fs(new ForkServer(""));
        if (auto st = fs->fork_template(argc, argv, preload_path); !st)
            return st;
        std::lock_guard lock(pool_mu());
        pool()[kTemplateKey] = std::move(fs);
        return {};
    }

    // A session child on three new pipes.  `become`: the template itself serves it (it was
    // asked for the last session of this process) and is used up.
    Result<std::unique_ptr<Subprocess>> start_session(const std::string &agent_path, bool become = false)
    {
        int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
        auto close_all = [&] {
            for (int *p : {in, out, err})
                for (int i : {0, 1})
                    if (p[i] >= 0)
                        ::close(p[i]);
        };
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
            close_all();
            return make_error(STOCKADE_RC_INTERNAL, "fork server: pipe: {}", std::strerror(errno));
        }
        host_protocol::ControlMessage reply;
        {
            std::lock_guard lock(mu_);
            if (broken_ || !host_protocol::send(ctl_, {become ? "become" : "fork", 0, agent_path, {in[0], out[1], err[1]}}) ||
                !host_protocol::receive(ctl_, reply))
                broken_ = true;
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in[0] = out[1] = err[1] = -1;
        if (broken_ || reply.verb != "pid") {
            close_all();
            if (!broken_ && reply.verb == "error")
                broken_ = true; // e.g. it has threads: it will not get better
            return make_error(STOCKADE_RC_INTERNAL, "fork server for {}: {}", agent_path,
                              reply.text.empty() ? "gone" : reply.text);
        }
        SpawnSpec spec;
        spec.argv = {"stockade-agent-host"};
        if (become) {
            // The template is the session now, our own child in its own group: we reap it.  Its
            // old handle lets go of it without a kill, and nothing more is forked from it.
            std::lock_guard lock(mu_);
            broken_ = true;
            if (proc_)
                proc_->release();
            ::close(ctl_);
            ctl_ = -1;
            return Subprocess::adopt(pid_t(reply.value), in[1], out[0], err[0], spec, nullptr);
        }
        auto sp = Subprocess::adopt(pid_t(reply.value), in[1], out[0], err[0], spec,
                                    [this](pid_t pid) { return reap(pid); });
        if (!sp)
            broken_ = true;
        return sp;
    }

    // Starts loading an agent file in the server, without waiting for it (no reply).
    void preload(const std::string &agent_path)
    {
        std::lock_guard lock(mu_);
        if (!broken_ && !host_protocol::send(ctl_, {"load", 0, agent_path, {}}))
            broken_ = true;
    }

private:
    static constexpr const char *kTemplateKey = "\ntemplate";

    static std::mutex &pool_mu()
    {
        static std::mutex mu;
        return mu;
    }
    static std::map<std::string, std::unique_ptr<ForkServer>> &pool()
    {
        static auto *p = new std::map<std::string, std::unique_ptr<ForkServer>>(); // never torn down
        return *p;
    }

    explicit ForkServer(const std::string &agent_path) : agent_path_(agent_path) {}

    void spawn_host(const std::string &host, const std::string &agent_path)
    {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            broken_ = true;
            return;
        }
        SpawnSpec spec;
        spec.argv = {host, "--serve", agent_path, std::to_string(sv[1])};
        spec.keep_fds = {sv[1]};
        spec.stdout_to = ChildStream::Null;
        spec.stderr_to = ChildStream::Null;
        adopt_server(Subprocess::spawn(spec), sv);
    }

    Status fork_template(int argc, char **argv, const std::string &preload_path)
    {
        if (int threads = agent_host::thread_count(); threads != 1) {
            broken_ = true;
            return make_error(STOCKADE_RC_INTERNAL, "fork template: this process has {} threads", threads);
        }
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            broken_ = true;
            return make_error(STOCKADE_RC_INTERNAL, "fork template: socketpair: {}", std::strerror(errno));
        }
        SpawnSpec spec;
        spec.argv = {"stockade agent template"};
        spec.keep_fds = {sv[1]};
        spec.stdout_to = ChildStream::Null;
        spec.stderr_to = ChildStream::Null;
        std::fflush(nullptr); // nothing buffered in our stdio may be written twice
        const int ctl = sv[1];
        auto sp = Subprocess::fork_function(spec, [ctl, argc, argv, preload_path] {
            ::prctl(PR_SET_NAME, "stockade-tmpl");
            blank_inherited_argv(argc, argv);
            agent_host::install_cancel_handler();
            return agent_host::serve_forks(ctl, preload_path); // loads (and prepares) it at once
        });
        if (!sp)
            return sp.error();
        adopt_server(std::move(sp), sv);
        return {};
    }

    void adopt_server(Result<std::unique_ptr<Subprocess>> sp, int sv[2])
    {
        ::close(sv[1]);
        if (!sp) {
            ::close(sv[0]);
            broken_ = true;
            return;
        }
        proc_ = std::move(sp.value());
        ctl_ = sv[0];
    }

    std::optional<int> reap(pid_t pid)
    {
        std::lock_guard lock(mu_);
        host_protocol::ControlMessage reply;
        if (broken_ || !host_protocol::send(ctl_, {"reap", pid, "", {}}) || !host_protocol::receive(ctl_, reply)) {
            broken_ = true;
            return std::nullopt;
        }
        if (reply.verb != "status")
            return std::nullopt;
        return int(reply.value);
    }

    std::string agent_path_;
    std::mutex mu_;
    std::unique_ptr<Subprocess> proc_;
    int ctl_ = -1;
    std::atomic<bool> broken_{false};
};

bool fork_server_enabled()
{
    const char *env = std::getenv("STOCKADE_FORK_SERVER");
    return !(env && std::string_view(env) == "0");
}

// A child speaking host_protocol.hpp on its stdin/stdout for one session: forked by this
// process's template, else by the fork server of `host`, else `host` exec'd for this session.
Result<std::unique_ptr<Subprocess>> start_agent_host(const std::string &host, bool custom_host,
                                                     const std::string &agent_path, Logger *logger, bool last)
{
    auto fallback = [&](const Error &e, const char *next) {
        if (logger)
            logger->log(STOCKADE_LOG_DEBUG, e.message + "; " + next);
    };
    if (fork_server_enabled()) {
        if (ForkServer *t = custom_host ? nullptr : ForkServer::template_server()) {
            auto sp = t->start_session(agent_path, last);
            if (sp)
                return sp;
            fallback(sp.error(), "using the agent host's fork server");
        }
        if (ForkServer *fs = ForkServer::get(host, agent_path)) {
            auto sp = fs->start_session(agent_path);
            if (sp)
                return sp;
            fallback(sp.error(), "starting the agent host per session");
        }
    }
    SpawnSpec spec;
    spec.argv = {host, "--agent", agent_path};
    return Subprocess::spawn(spec);
}

class IsolatedSession final : public AgentSession {
    static constexpr int64_t kCancelGraceMs = 1000;

public:
    IsolatedSession(const AgentInfo &a, SessionOptions o) : agent_(a), opt_(std::move(o)) {}
    ~IsolatedSession() override { close(); }

    const AgentInfo &agent() const override { return agent_; }

    OpResult open(const ParamList &params, Millis timeout) override
    {
        if (child_)
            return fail(STOCKADE_RC_INTERNAL, "session already open");
        const bool custom_host = !opt_.agent_host.empty();
        auto sp = start_agent_host(custom_host ? opt_.agent_host : locate_agent_host(), custom_host, agent_.path,
                                   opt_.logger, opt_.last_of_process);
        if (!sp)
            return fail(STOCKADE_RC_INTERNAL, sp.error().message);
        child_ = std::move(sp.value());
        child_->on_stderr = [this](std::string_view line) {
            if (opt_.logger)
                opt_.logger->log(STOCKADE_LOG_WARNING, fmt::format("{}{}stderr: {}", opt_.label,
                                                                   opt_.label.empty() ? "" : ": ", line));
        };
        nlohmann::json p = nlohmann::json::array();
        for (const auto &[k, v] : params)
            p.push_back({k, v});
        nlohmann::json sp_json = nlohmann::json::array();
        if (opt_.registry)
            for (const auto &d : opt_.registry->search_path())
                sp_json.push_back(d);
        return request({{"op", "open"},
                        {"params", p},
                        {"label", opt_.label},
                        {"search_path", sp_json},
                        {"nested", opt_.registry != nullptr},
                        {"log_level", opt_.logger ? opt_.logger->level() : int(STOCKADE_LOG_DEBUG)}},
                       timeout);
    }

    OpResult power(PowerAction action, const std::string &target, Millis timeout) override
    {
        return request({{"op", "power"}, {"action", uint32_t(action)}, {"target", target}}, timeout);
    }
    OpResult status(const std::string &target, Millis timeout) override
    {
        return request({{"op", "status"}, {"target", target}}, timeout);
    }
    OpResult list(Millis timeout) override { return request({{"op", "list"}}, timeout); }
    OpResult monitor(Millis timeout) override { return request({{"op", "monitor"}}, timeout); }

    void close() override
    {
        if (!child_)
            return;
        if (!dead_) {
            int64_t deadline = monotonic_ms() + 2000;
            (void)child_->write_all("{\"op\":\"close\"}\n", deadline);
            child_->close_stdin();
            std::string out, err;
            child_->read_all(out, err, deadline);
            if (!child_->wait(deadline))
                child_->kill_tree();
        }
        child_->kill_tree(); // reaps, and catches anything the agent left running
        child_.reset();
    }

private:
    OpResult request(nlohmann::json req, Millis timeout)
    {
        if (!child_)
            return fail(STOCKADE_RC_INTERNAL, "session not open");
        if (dead_) {
            OpResult r = fail(STOCKADE_RC_INTERNAL, dead_reason_);
            r.exec = ExecStatus::NotRun;
            return r;
        }
        int64_t start = monotonic_ms();
        int64_t t = timeout.count() > 0 ? timeout.count() : int64_t(24) * 3600 * 1000;
        // The agent is told a slightly earlier deadline so it can report a clean timeout; at the
        // real one its whole process tree dies.
        int64_t margin = std::min<int64_t>(250, t / 10);
        req["timeout_ms"] = t - margin;
        int64_t deadline = start + t;
        std::string line = req.dump() + "\n";
        if (auto w = child_->write_all(line, deadline); !w)
            return die(STOCKADE_RC_INTERNAL, ExecStatus::HostDied,
                       "agent host does not accept requests: " + w.error().message, start);
        for (;;) {
            std::string reply;
            auto rd = child_->read_line(reply, deadline, opt_.cancel);
            if (rd == Subprocess::Read::Timeout)
                return die(STOCKADE_RC_TIMEOUT, ExecStatus::TimedOut,
                           fmt::format("no answer from agent '{}' within {} ms; its process tree was killed",
                                       agent_.name, t),
                           start);
            if (rd == Subprocess::Read::Cancelled) {
                // Ask the agent to stop (SIGTERM feeds its ctx->is_cancelled) so it can clean up,
                // e.g. remove a FIFO; whatever is left after a short grace is killed.
                ::kill(child_->pid(), SIGTERM);
                int64_t grace = std::min(deadline, monotonic_ms() + kCancelGraceMs);
                std::string late;
                while (child_->read_line(late, grace) == Subprocess::Read::Line) {
                    auto lr = host_protocol::parse_reply(late);
                    if (lr && lr->is_result)
                        break;
                }
                return die(STOCKADE_RC_CANCELLED, ExecStatus::Cancelled, "cancelled; agent process tree killed", start);
            }
            if (rd == Subprocess::Read::Eof) {
                auto st = child_->wait(monotonic_ms() + 1000);
                return die(STOCKADE_RC_INTERNAL, ExecStatus::HostDied,
                           fmt::format("agent '{}' process died ({})", agent_.name,
                                       st ? describe_wait_status(*st) : "no exit status"),
                           start);
            }
            auto rep = host_protocol::parse_reply(reply);
            if (!rep)
                continue; // not ours: ignore stray output
            if (!rep->is_result) {
                const std::string &msg = rep->log_msg;
                if (opt_.logger)
                    opt_.logger->log(rep->log_level, opt_.label.empty() ? msg : fmt::format("{}: {}", opt_.label, msg));
                continue;
            }
            OpResult r = std::move(rep->result);
            r.elapsed_ms = monotonic_ms() - start;
            return r;
        }
    }

    OpResult die(uint32_t rc, ExecStatus exec, std::string msg, int64_t start)
    {
        child_->kill_tree();
        dead_ = true;
        dead_reason_ = "agent process is gone after an earlier failure: " + msg;
        OpResult r = fail(rc, std::move(msg));
        r.exec = exec;
        r.elapsed_ms = monotonic_ms() - start;
        return r;
    }

    const AgentInfo &agent_;
    SessionOptions opt_;
    std::unique_ptr<Subprocess> child_;
    bool dead_ = false;
    std::string dead_reason_;
};

} // namespace

std::unique_ptr<AgentSession> make_session(const AgentInfo &agent, SessionOptions options)
{
    if (options.isolate)
        return std::make_unique<IsolatedSession>(agent, std::move(options));
    return std::make_unique<InProcessSession>(agent, std::move(options));
}

Status start_fork_template(int argc, char **argv, std::string_view preload_agent)
{
    if (!fork_server_enabled())
        return make_error(STOCKADE_RC_UNSUPPORTED, "fork template: STOCKADE_FORK_SERVER=0");
    // The front-end knows its agent (fence_stockade_<agent>) and reads its descriptor anyway: it
    // is loaded here, checked as every agent file is (load_agent_file), before the fork, so the
    // template inherits it mapped and relocated and only prepares it (OpenSSL's set-up for
    // redfish), in parallel with the front-end's own start.  Loaded after the fork instead, the
    // same relocations ran twice, and the template's copy was what a fork request waited for.
    std::string path;
    if (!preload_agent.empty())
        if (auto p = AgentRegistry().locate(preload_agent)) {
            path = *p;
            (void)load_agent_file(path); // a refusal is reported where the agent is used
        }
    return ForkServer::start_template(argc, argv, path);
}

namespace agent_host {
void preload_in_template(const std::string &agent_path)
{
    if (ForkServer *t = ForkServer::template_server())
        t->preload(agent_path);
}
} // namespace agent_host

std::string locate_agent_host()
{
    if (const char *env = std::getenv("STOCKADE_AGENT_HOST"); env && *env)
        return env;
    if (auto dir = exe_dir()) {
        std::string cand = *dir + "/" + kRelBinToLibexec + "/stockade-agent-host";
        if (::access(cand.c_str(), X_OK) == 0)
            return cand;
    }
    return std::string(kInstallLibexecDir) + "/stockade-agent-host";
}

OpResult invoke_agent(const AgentRegistry &registry, const std::string &agent_name, const RawParams &raw,
                      uint32_t action, const std::string &target, Millis timeout, Logger &logger,
                      const std::atomic<bool> *cancel)
{
    int64_t start = monotonic_ms();
    auto agent = registry.find(agent_name);
    if (!agent)
        return fail(agent.error().rc, agent.error().message);
    auto params = resolve_params(**agent, raw, UnknownParams::Reject);
    if (!params)
        return fail(params.error().rc, params.error().message);
    SessionOptions o;
    o.isolate = true;
    o.logger = &logger;
    o.label = agent_name;
    o.cancel = cancel;
    o.registry = &registry;
    auto s = make_session(**agent, o);
    auto left = [&] { return Millis(std::max<int64_t>(1, timeout.count() - (monotonic_ms() - start))); };
    OpResult r = s->open(*params, left());
    if (r.ok()) {
        if (action == 0)
            r = s->status(target, left());
        else
            r = s->power(PowerAction(action), target, left());
    }
    s->close();
    r.elapsed_ms = monotonic_ms() - start;
    return r;
}

} // namespace stockade
