// glue_external.cpp -- stockade agents as cluster-glue "external" STONITH plugins.
//
// Pacemaker (through fence_legacy) and the cluster-glue `stonith` command run every script in
// ${libdir}/stonith/plugins/external/ as `<script> <op> [<host>]` with the device parameters in the
// environment (external.c: setenv per configured name, popen, read all of stdout).  This one binary
// is installed there as `stockade` (the agent named by the parameter `agent`) and as
// `stockade-<agent>` per native agent (the name after "stockade-" in argv[0] picks it), so any
// stockade agent can be a Linux-HA device.
//
// Protocol kept exactly: argv[1] is one of gethosts, on, off, reset, status, getconfignames,
// getinfo-devid, getinfo-devname, getinfo-devdescr, getinfo-devurl, getinfo-xml; argv[2] the target
// (on/off/reset only, already lower-cased by libstonith).  stdout carries only the answer (host
// and name lists one per line, getinfo text); logs go to stderr and syslog.  Exit 0 = success;
// failures exit with the cluster-glue S_* code of the result (code_tables.hpp's table): external.c
// maps any non-zero exit of on/off/reset to S_RESETFAIL and returns status's code unmapped.
// An off or reset succeeds only when the agent confirmed the target off (or a status read says
// so).  Parameters are read from the environment under their canonical names and aliases and then
// removed from it, so the isolated agent host (which gets secrets over its pipe) never inherits
// them.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "stockade/log.hpp"
#include "stockade/code_tables.hpp"
#include "stockade/registry.hpp"
#include "stockade/sequence.hpp"
#include "stockade/session.hpp"
#include "stockade/time_budget.hpp"
#include "stockade/text.hpp"

using namespace stockade;

namespace {

using text::xml_escape;

// The shim's own parameters, besides the agent's.
constexpr std::string_view kAgentParam = "agent";
constexpr std::string_view kTimeoutParam = "stockade_timeout";
constexpr int kDefaultTimeoutS = 120;

enum class Op { GetHosts, On, Off, Reset, Status, ConfigNames, DevId, DevName, DevDescr, DevUrl, Xml };

struct OpInfo {
    Op op;
    std::string_view name;
    bool takes_target;
};

inline constexpr OpInfo kOps[] = {
    {Op::GetHosts, "gethosts", false},      {Op::On, "on", true},
    {Op::Off, "off", true},                 {Op::Reset, "reset", true},
    {Op::Status, "status", false},          {Op::ConfigNames, "getconfignames", false},
    {Op::DevId, "getinfo-devid", false},    {Op::DevName, "getinfo-devname", false},
    {Op::DevDescr, "getinfo-devdescr", false}, {Op::DevUrl, "getinfo-devurl", false},
    {Op::Xml, "getinfo-xml", false},
};

const OpInfo *find_op(std::string_view name)
{
    for (const auto &o : kOps)
        if (o.name == name)
            return &o;
    return nullptr;
}

int glue_exit(uint32_t rc) { return result_code_info(rc).glue; }

// The names the plugin accepts from the environment: canonical names first, aliases after.
std::vector<std::string> config_names(const AgentInfo *agent, bool generic)
{
    std::vector<std::string> names;
    if (generic)
        names.emplace_back(kAgentParam);
    if (agent)
        for (const auto &p : agent->params)
            if (!p.host_supplied())
                names.push_back(p.name);
    names.emplace_back(kTimeoutParam);
    return names;
}

void print_xml(const AgentInfo *agent, bool generic)
{
    auto param = [](std::string_view name, bool required, std::string_view type, const std::optional<std::string> &def,
                    std::string_view shortdesc, std::string_view longdesc) {
        fmt::print("<parameter name=\"{}\" unique=\"0\" required=\"{}\">\n", xml_escape(name), required ? 1 : 0);
        if (def)
            fmt::print("<content type=\"{}\" default=\"{}\" />\n", type, xml_escape(*def));
        else
            fmt::print("<content type=\"{}\" />\n", type);
        fmt::print("<shortdesc lang=\"en\">\n{}\n</shortdesc>\n", xml_escape(shortdesc));
        fmt::print("<longdesc lang=\"en\">\n{}\n</longdesc>\n</parameter>\n\n", xml_escape(longdesc));
    };
    fmt::print("<parameters>\n");
    if (generic)
        param(kAgentParam, true, "string", std::nullopt, "stockade agent",
              "Name of the stockade agent that fences (see `stockade agents`), e.g. ipmi, libvirt, sim.");
    if (agent)
        for (const auto &p : agent->params) {
            if (p.host_supplied())
                continue;
            const ParamTypeInfo *t = param_type_info(p.type);
            std::string type = t && p.type != STOCKADE_PARAM_SELECT && p.type != STOCKADE_PARAM_SECONDS
                                   ? std::string(t->name)
                                   : p.type == STOCKADE_PARAM_SECONDS ? "integer" : "string";
            std::string longdesc = p.description;
            if (!p.aliases.empty()) {
                longdesc += " (also accepted as:";
                for (const auto &a : p.aliases)
                    longdesc += " " + a;
                longdesc += ")";
            }
            if (!p.choices.empty()) {
                longdesc += " One of:";
                for (const auto &c : p.choices)
                    longdesc += " " + c;
                longdesc += ".";
            }
            param(p.name, p.required(), type, p.default_value, p.description, longdesc);
        }
    param(kTimeoutParam, false, "integer", std::to_string(kDefaultTimeoutS), "stockade operation timeout",
          "Seconds after which the agent's process tree is killed and the operation fails.");
    fmt::print("</parameters>\n");
}

// Removes NAME from the environment, first overwriting its value where it lies: unsetenv() only
// drops the pointer, and /proc/<pid>/environ shows the bytes the kernel copied at exec for as
// long as the process lives, so a password would stay readable there (by root and by the same
// user) for the whole operation.
void erase_env(const std::string &name)
{
    if (char *v = std::getenv(name.c_str()))
        explicit_bzero(v, std::strlen(v));
    unsetenv(name.c_str());
}

// Reads every parameter the agent accepts (canonical names and aliases) from the environment and
// erases it from the environment afterwards (erase_env).
RawParams take_params_from_env(const AgentInfo &agent)
{
    RawParams raw;
    for (const auto &p : agent.params) {
        std::vector<std::string> names{p.name};
        names.insert(names.end(), p.aliases.begin(), p.aliases.end());
        for (const auto &n : names) {
            if (const char *v = std::getenv(n.c_str()))
                raw.emplace_back(n, v);
        }
    }
    for (const auto &p : agent.params) {
        erase_env(p.name);
        for (const auto &a : p.aliases)
            erase_env(a);
    }
    return raw;
}

int run(int argc, char **argv)
{
    std::string self = argv[0];
    if (auto slash = self.rfind('/'); slash != std::string::npos)
        self = self.substr(slash + 1);
    const bool generic = self.rfind("stockade-", 0) != 0;
    std::string agent_name = generic ? "" : self.substr(9);
    if (generic) {
        if (const char *a = std::getenv(std::string(kAgentParam).c_str()))
            agent_name = a;
    }
    unsetenv(std::string(kAgentParam).c_str());

    Logger logger;
    logger.set_level(STOCKADE_LOG_INFO);
    logger.add_stderr_sink("external/" + self);
    logger.add_syslog_sink("stockade-glue");

    if (argc < 2) {
        fmt::print(stderr, "usage: {} gethosts|on|off|reset|status|getconfignames|getinfo-devid|getinfo-devname|"
                           "getinfo-devdescr|getinfo-devurl|getinfo-xml [host]\n", self);
        return S_INVAL;
    }
    const OpInfo *op = find_op(argv[1]);
    if (!op) {
        logger.logf(STOCKADE_LOG_ERR, "unknown operation '{}'", argv[1]);
        return S_INVAL;
    }
    std::string target = argc > 2 ? argv[2] : "";
    if (op->takes_target && target.empty()) {
        logger.logf(STOCKADE_LOG_ERR, "{}: no host given", op->name);
        return S_INVAL;
    }

    AgentRegistry registry;
    const AgentInfo *agent = nullptr;
    std::string agent_error;
    if (agent_name.empty()) {
        agent_error = "parameter 'agent' is not set (the stockade agent to use, e.g. agent=ipmi)";
    } else if (agent_name.find('/') != std::string::npos) {
        agent_error = fmt::format("parameter 'agent': '{}' is not an agent name", agent_name);
    } else if (auto a = registry.find(agent_name); a) {
        agent = *a;
    } else {
        agent_error = a.error().message;
    }

    // Answers that need no device.
    switch (op->op) {
    case Op::ConfigNames:
        for (const auto &n : config_names(agent, generic))
            fmt::print("{}\n", n);
        return S_OK;
    case Op::Xml:
        print_xml(agent, generic);
        return S_OK;
    case Op::DevId:
        fmt::print("{}\n", agent ? fmt::format("stockade {} STONITH device", agent->name) : "stockade STONITH device");
        return S_OK;
    case Op::DevName:
        fmt::print("{}\n", agent ? fmt::format("stockade {} external device", agent->name) : "stockade external device");
        return S_OK;
    case Op::DevDescr:
        fmt::print("{}\n", agent ? fmt::format("{}\n{}", agent->summary, agent->description)
                                 : "stockade: fencing through stockade agents (set agent=NAME)");
        return S_OK;
    case Op::DevUrl:
        fmt::print("file:///usr/share/doc/stockade/README.md\n");
        return S_OK;
    default:
        break;
    }
    if (!agent) {
        logger.logf(STOCKADE_LOG_ERR, "{}", agent_error);
        return S_BADCONFIG;
    }

    RawParams raw = take_params_from_env(*agent);
    // Isolated sessions fork from this template: started only now that the parameters (secrets
    // among them) are wiped from our environment, and before any thread.
    (void)start_fork_template(argc, argv);
    int timeout_s = kDefaultTimeoutS;
    if (const char *t = std::getenv(std::string(kTimeoutParam).c_str())) {
        char *end = nullptr;
        long v = std::strtol(t, &end, 10);
        if (!*t || *end || v <= 0 || v > 86400) {
            logger.logf(STOCKADE_LOG_ERR, "parameter '{}': '{}' is not a number of seconds", kTimeoutParam, t);
            return S_BADCONFIG;
        }
        timeout_s = int(v);
    }
    Millis timeout{int64_t(timeout_s) * 1000};
    auto params = resolve_params(*agent, raw, UnknownParams::Reject);
    if (!params) {
        logger.logf(STOCKADE_LOG_ERR, "{}", params.error().message);
        return S_BADCONFIG;
    }

    // The agent's own need (time_needed: an operator's answer, a standby wait) replaces the
    // per-operation timeout for power actions.  cluster-glue sets no limit of its own; the caller's
    // is what stockade_timeout says it is, so a need beyond a given stockade_timeout is refused
    // by `status` (the monitor) with both numbers, and only warned about when fencing.
    const bool timeout_given = std::getenv(std::string(kTimeoutParam).c_str()) != nullptr;
    DeviceBudget budget{timeout, timeout, timeout, timeout, timeout, timeout, Millis(0)};
    std::string refusal;
    for (uint32_t action : {STOCKADE_ACTION_OFF, STOCKADE_ACTION_REBOOT}) {
        if (!agent->can(power_action_info(PowerAction(action)).capability))
            continue;
        auto need = agent_time_needed(*agent, *params, action);
        if (!need) {
            logger.logf(STOCKADE_LOG_ERR, "{}", need.error().message);
            return S_BADCONFIG;
        }
        if (!need->has_value())
            continue;
        if (!timeout_given)
            (action == STOCKADE_ACTION_OFF ? budget.off : budget.reboot) = std::max(timeout, **need);
        else if (auto fits = check_fits(agent->name, power_action_info(PowerAction(action)).name, **need,
                                        kTimeoutParam, timeout);
                 !fits && refusal.empty())
            refusal = fits.error().message;
    }

    SessionOptions o;
    o.isolate = true;
    o.logger = &logger;
    o.label = agent->name;
    o.registry = &registry;
    o.last_of_process = true; // one operation per run: the fork template serves it itself
    auto session = make_session(*agent, o);
    if (auto r = session->open(*params, timeout); !r.ok()) {
        logger.logf(STOCKADE_LOG_ERR, "{}: {}", agent->name, r.message);
        return glue_exit(r.rc);
    }

    int rc = S_OK;
    switch (op->op) {
    case Op::GetHosts: {
        std::vector<std::string> hosts;
        if (agent->can(STOCKADE_CAP_LIST)) {
            OpResult r = session->list(timeout);
            if (!r.ok()) {
                logger.logf(STOCKADE_LOG_ERR, "gethosts: {}", r.message);
                rc = glue_exit(r.rc);
                break;
            }
            for (const auto &t : r.targets)
                hosts.push_back(t.name);
        } else {
            for (const auto &[k, v] : *params)
                if (k == "hostlist")
                    for (auto &h : text::split_list(v))
                        hosts.push_back(std::move(h));
        }
        if (hosts.empty()) {
            logger.logf(STOCKADE_LOG_ERR, "gethosts: agent '{}' reported no host", agent->name);
            rc = S_BADCONFIG;
            break;
        }
        for (const auto &h : hosts)
            fmt::print("{}\n", h);
        break;
    }
    case Op::Status: {
        if (!refusal.empty()) {
            logger.logf(STOCKADE_LOG_ERR, "status: {}", refusal);
            rc = S_BADCONFIG;
            break;
        }
        OpResult r;
        if (agent->can(STOCKADE_CAP_MONITOR))
            r = session->monitor(timeout);
        if (!r.ok()) {
            logger.logf(STOCKADE_LOG_ERR, "status: {}", r.message);
            rc = glue_exit(r.rc);
        }
        break;
    }
    case Op::On:
    case Op::Off:
    case Op::Reset: {
        // The one sequence (core/src/sequence.cpp): off/reset succeed only when the off is confirmed.
        SequenceAction a = op->op == Op::On    ? SequenceAction::On
                           : op->op == Op::Off ? SequenceAction::Off
                                               : SequenceAction::Reboot;
        SequenceDevice dev;
        dev.name = agent->name;
        dev.target = target;
        dev.agent = agent;
        dev.session = session.get();
        dev.budget = budget;
        if (!refusal.empty())
            logger.logf(STOCKADE_LOG_WARNING, "{}; this {} is cut at {}", refusal, op->name, kTimeoutParam);
        SequencePolicy policy;
        SequenceOutcome out = run_sequence(std::span(&dev, 1), a, policy);
        if (!out.success) {
            logger.logf(STOCKADE_LOG_ERR, "{} {}: {}", op->name, target, out.reason);
            rc = glue_exit(out.rc);
            break;
        }
        if (out.power_on_failed)
            logger.logf(STOCKADE_LOG_WARNING, "reset {}: off confirmed, {}", target, out.reason);
        fmt::print("{} {}: {}\n", op->name, target, a == SequenceAction::On ? "on" : "confirmed off");
        logger.logf(STOCKADE_LOG_NOTICE, "{} {}: success ({} ms)", op->name, target, out.elapsed_ms);
        break;
    }
    default:
        break;
    }
    session->close();
    return rc;
}

} // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "stockade external plugin: internal error: %s\n", e.what());
        return S_OOPS;
    } catch (...) {
        std::fprintf(stderr, "stockade external plugin: internal error\n");
        return S_OOPS;
    }
}
