// fence_node.cpp -- cman's fence_node, on stockade: `fence_node [-U] [-v] [-c cluster.conf] node`.
//
// Scripts and operators of cman clusters call fence_node by hand and parse what it prints, so the
// grammar, the words and the exit codes are cman's: one pass over the node's <fence> methods in
// order (a method succeeds when every device in it does; the first method that succeeds ends
// it), `fence <node> success` exit 0, `fence <node> failed` exit 1, `fence <node> undefined`
// exit 2 (no such node or no method); with -U every <unfence> device is run, even after a failure,
// and the words are `unfence <node> ...`.  -v adds one line per device run
// (`fence <node> dev <method>.<device> agent <agent> result: <result>`, 0-based as libfence
// counts); -vv adds the agent's arguments, with secret values masked (cman printed passwords).
// What differs from cman, on purpose: each agent run has a timeout (the fencedevice's
// stockade_timeout=, default 60 s) after which its process tree is killed, and the agent's output
// is logged instead of discarded.  The configuration is read from -c FILE (default
// /etc/cluster/cluster.conf; there is no ccs daemon), the local node for -U is the host name.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <getopt.h>
#include <map>
#include <unistd.h>

#include <fmt/format.h>

#include "cluster_conf.hpp"
#include "stockade/log.hpp"
#include "stockade/runner.hpp"
#include "stockade/session.hpp"

using namespace stockade;

namespace {

constexpr const char *kDefaultClusterConf = "/etc/cluster/cluster.conf";
constexpr const char *kVersion = "stockade fence_node 0.1";

// libfence's fence_log result strings, by what happened to one device.
struct DeviceResultInfo {
    uint32_t rc_class; // STOCKADE_RC_OK for success, STOCKADE_RC_BAD_CONFIG for "could not start"
    const char *text;
};
constexpr DeviceResultInfo kSuccess{STOCKADE_RC_OK, "success"};
constexpr DeviceResultInfo kAgentError{STOCKADE_RC_FAILED, "error from agent"};
constexpr DeviceResultInfo kConfigError{STOCKADE_RC_BAD_CONFIG, "error config agent"};

const DeviceResultInfo &device_result(uint32_t rc)
{
    if (rc == STOCKADE_RC_OK)
        return kSuccess;
    return rc == STOCKADE_RC_BAD_CONFIG ? kConfigError : kAgentError;
}

std::atomic<bool> g_cancel{false};
extern "C" void on_signal(int) { g_cancel.store(true); }

void usage(const char *prog)
{
    std::printf("Usage:\n\n%s [options] node_name\n\nOptions:\n\n", prog);
    std::printf("  -U               Unfence the node (default: this host's name)\n");
    std::printf("  -v               Show fence agent results, -vv to also show agent args (secrets masked)\n");
    std::printf("  -c <file>        cluster.conf to read (default %s)\n", kDefaultClusterConf);
    std::printf("  -h               Print this help, then exit\n");
    std::printf("  -V               Print program version information, then exit\n\n");
}

// The agent's arguments as make_args writes them, secrets masked.
std::string agent_args(const AgentInfo *agent, const DeviceConfig &d, const LevelDevice &e)
{
    std::string out;
    bool has_nodename = false;
    RawParams line = e.params;
    for (const auto &[k, v] : e.params)
        has_nodename = has_nodename || k == "nodename";
    for (const auto &[k, v] : d.params)
        has_nodename = has_nodename || k == "nodename";
    if (!has_nodename)
        line.emplace_back("nodename", e.target);
    line.insert(line.end(), d.params.begin(), d.params.end());
    for (const auto &[k, v] : line)
        out += fmt::format("{}={} ", k, agent && is_secret_param(*agent, k) ? "***" : v);
    if (!out.empty())
        out.pop_back();
    return out;
}

int run(int argc, char **argv)
{
    const char *prog = "fence_node";
    bool unfence = false;
    int verbose = 0;
    std::string conf_path = kDefaultClusterConf;
    opterr = 0;
    for (int c; (c = getopt(argc, argv, "UvhVc:")) != -1;) {
        switch (c) {
        case 'U': unfence = true; break;
        case 'v': ++verbose; break;
        case 'c': conf_path = optarg; break;
        case 'h': usage(prog); return 0;
        case 'V': std::printf("%s\n", kVersion); return 0;
        default:
            std::fprintf(stderr, "Please use '-h' for usage.\n");
            return 1;
        }
    }
    std::string node;
    if (optind < argc) {
        node = argv[optind];
    } else if (unfence) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        node = host;
    }
    if (node.empty()) {
        std::fprintf(stderr, "%s: no node name specified\n", prog);
        return 1;
    }
    const char *what = unfence ? "unfence" : "fence";

    Logger logger;
    logger.set_level(verbose >= 2 ? STOCKADE_LOG_DEBUG : STOCKADE_LOG_INFO);
    logger.add_syslog_sink("fence_node");
    if (verbose >= 2)
        logger.add_stderr_sink("fence_node");

    auto cc = load_cluster_conf(conf_path);
    if (!cc) {
        std::fprintf(stderr, "%s: %s\n", prog, cc.error().message.c_str());
        return 1;
    }
    for (const auto &w : cc->warnings)
        logger.log(STOCKADE_LOG_WARNING, w);
    cc->config.escalation.max_loops = 1; // fence_node does one pass: no retry, no override
    cc->config.escalation.retry_delay = Millis(0);

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    AgentRegistry registry;
    auto fence_agent = registry.find(kClusterConfAgent);
    const AgentInfo *agent = fence_agent ? *fence_agent : nullptr;

    auto finish = [&](const char *result, int code) {
        logger.logf(code == 0 ? STOCKADE_LOG_NOTICE : STOCKADE_LOG_ERR, "{} {} {}", what, node, result);
        std::fprintf(stderr, "%s %s %s\n", what, node.c_str(), result);
        return code;
    };
    auto device_line = [&](unsigned method, unsigned device, const std::string &dev_name, const LevelDevice *e,
                           const char *result) {
        if (verbose < 1)
            return;
        std::fprintf(stderr, "%s %s dev %u.%u agent %s result: %s\n", what, node.c_str(), method, device,
                     cc->program_of(dev_name).c_str(), result);
        auto it = cc->config.devices.find(dev_name);
        if (verbose >= 2 && e && it != cc->config.devices.end())
            std::fprintf(stderr, "agent args: %s\n", agent_args(agent, it->second, *e).c_str());
    };

    if (unfence) {
        const auto *devices = cc->find_unfence(node);
        if (!devices || !cc->config.find_node(node))
            return finish("undefined", 2);
        if (!agent) {
            std::fprintf(stderr, "%s: %s\n", prog, fence_agent.error().message.c_str());
            return finish("failed", 1);
        }
        bool all_ok = true;
        unsigned d = 0;
        for (const auto &e : *devices) { // every device, even after a failure, as unfence_node()
            const DeviceConfig &dev = cc->config.devices.at(e.device);
            OpResult r = invoke_agent(registry, std::string(kClusterConfAgent), merged_params(dev, e), STOCKADE_ACTION_ON,
                                      e.target, dev.timeout, logger, &g_cancel);
            if (!r.ok())
                logger.logf(STOCKADE_LOG_ERR, "unfence {} dev 0.{} {}: {}", node, d, dev.name, r.message);
            all_ok = all_ok && r.ok();
            device_line(0, d++, e.device, &e, device_result(r.rc).text);
        }
        return finish(all_ok ? "success" : "failed", all_ok ? 0 : 1);
    }

    const NodeConfig *n = cc->config.find_node(node);
    if (!n || n->levels.empty())
        return finish("undefined", 2);
    if (auto s = check_config_agents(cc->config, registry); !s) {
        std::fprintf(stderr, "%s: %s\n", prog, s.error().message.c_str());
        return finish("failed", 1);
    }
    EscalationRunner runner(cc->config, registry, logger);
    runner.set_cancel(&g_cancel);
    runner.set_one_node_process(true);
    FenceReport report = runner.fence(n->name);
    // One result per device run, the worst step of that device deciding (libfence's fence_log).
    std::map<std::pair<unsigned, unsigned>, const StepRecord *> per_device;
    for (const auto &s : report.steps) {
        auto key = std::make_pair(s.level, s.index);
        auto it = per_device.find(key);
        if (it == per_device.end() || it->second->rc == STOCKADE_RC_OK)
            per_device[key] = &s;
    }
    for (const auto &[key, s] : per_device) {
        const LevelDevice *e = nullptr;
        if (key.first >= 1 && key.first <= n->levels.size() && key.second >= 1 &&
            key.second <= n->levels[key.first - 1].size())
            e = &n->levels[key.first - 1][key.second - 1];
        device_line(key.first - 1, key.second - 1, s->device, e, device_result(s->rc).text);
    }
    return finish(report.success ? "success" : "failed", report.success ? 0 : 1);
}

} // namespace

int main(int argc, char **argv)
{
    (void)stockade::start_fork_template(argc, argv); // isolated sessions fork from it (before threads, secrets)
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fence_node: internal error: %s\n", e.what());
        return 1;
    } catch (...) {
        std::fprintf(stderr, "fence_node: internal error\n");
        return 1;
    }
}
