// agent_driver.cpp -- test helper: run one action of one agent and print the outcome on stdout.
//
// The death-check tests need the agent to run inside a network namespace (127/8 is local in the
// root namespace, so 127.0.10.x on veth pairs is only reachable from a namespace), and a test
// thread cannot easily move itself there.  So the test runs `ip netns exec NS helper_agent_driver
// AGENT ACTION TARGET key=value...`; this loads the agent from $STOCKADE_AGENT_PATH, opens it
// (isolated: the agent host child inherits the namespace) and prints one line:
//   rc=R verified=V state=S elapsed_ms=E message=...
// Agent log lines go to stderr.  Exit 0 when the action ran (whatever its rc), 2 on bad usage.
#include <cstdio>
#include <string>

#include "stockade/registry.hpp"
#include "stockade/session.hpp"

using namespace stockade;

int main(int argc, char **argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s AGENT off|reboot|on|status|monitor TARGET [key=value ...]\n", argv[0]);
        return 2;
    }
    std::string agent_name = argv[1], action = argv[2], target = argv[3];
    RawParams raw;
    for (int i = 4; i < argc; ++i) {
        std::string kv = argv[i];
        auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::fprintf(stderr, "not key=value: %s\n", argv[i]);
            return 2;
        }
        raw.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    AgentRegistry reg;
    auto agent = reg.find(agent_name);
    if (!agent) {
        std::printf("rc=%u verified=0 state=0 elapsed_ms=0 message=%s\n", agent.error().rc,
                    agent.error().message.c_str());
        return 0;
    }
    auto params = resolve_params(**agent, raw, UnknownParams::Reject);
    if (!params) {
        std::printf("rc=%u verified=0 state=0 elapsed_ms=0 message=%s\n", params.error().rc,
                    params.error().message.c_str());
        return 0;
    }
    Logger logger;
    logger.set_level(STOCKADE_LOG_DEBUG);
    logger.add_stderr_sink("driver");
    SessionOptions o;
    o.isolate = true;
    o.logger = &logger;
    o.label = agent_name;
    o.registry = &reg;
    auto s = make_session(**agent, o);
    OpResult r = s->open(*params, std::chrono::seconds(10));
    if (r.ok()) {
        auto timeout = std::chrono::seconds(120);
        if (action == "off")
            r = s->power(PowerAction::Off, target, timeout);
        else if (action == "reboot")
            r = s->power(PowerAction::Reboot, target, timeout);
        else if (action == "on")
            r = s->power(PowerAction::On, target, timeout);
        else if (action == "status")
            r = s->status(target, timeout);
        else if (action == "monitor")
            r = s->monitor(timeout);
        else {
            std::fprintf(stderr, "unknown action %s\n", action.c_str());
            return 2;
        }
    }
    s->close();
    std::printf("rc=%u verified=%u state=%u elapsed_ms=%lld message=%s\n", r.rc, r.verified, r.power_state,
                static_cast<long long>(r.elapsed_ms), r.message.c_str());
    return 0;
}
