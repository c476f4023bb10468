// fuzz_fence_options.cpp -- the fence-agents stdin grammar and the GNU getopt argv parser of
// fence_stockade (frontends/common/fence_options.cpp), then settle() on what they produced.
//
// Input: the first byte picks stdin (even) or argv (odd); for argv the rest is split at NUL or
// '\n' into arguments.  Both run against a generic table and an IPMI-like agent table.  Nothing
// may crash or throw; a line with a NUL byte must come back as an error, never as a value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "stockade/frontend/fence_options.hpp"

using namespace stockade;
using namespace stockade::frontend;

namespace {

ParamInfo param(std::string name, uint32_t type, uint32_t flags, std::vector<std::string> aliases,
                std::vector<std::string> choices = {})
{
    ParamInfo p;
    p.name = std::move(name);
    p.type = type;
    p.flags = flags;
    p.aliases = std::move(aliases);
    p.choices = std::move(choices);
    p.description = "d";
    return p;
}

const AgentInfo &agent()
{
    static AgentInfo a = [] {
        AgentInfo x;
        x.name = "bmc";
        x.version = "1";
        x.capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS |
                         STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_EXTRA_PARAMS;
        x.params = {param("ip", STOCKADE_PARAM_STRING, STOCKADE_PARAM_REQUIRED, {"ipaddr"}),
                    param("password", STOCKADE_PARAM_STRING, STOCKADE_PARAM_SECRET, {"passwd"}),
                    param("lanplus", STOCKADE_PARAM_BOOLEAN, 0, {}),
                    param("port", STOCKADE_PARAM_INTEGER, 0, {"ipport"}),
                    param("privlvl", STOCKADE_PARAM_STRING, 0, {}, {"user", "operator", "administrator"}),
                    param("plug", STOCKADE_PARAM_STRING, STOCKADE_PARAM_HOST_SUPPLIED, {"port_name"})};
        return x;
    }();
    return a;
}

void check(const ParsedInput &in, const OptionTable &t)
{
    for (const auto &[k, v] : in.fields)
        if (v.find('\0') != std::string::npos)
            std::abort(); // a NUL must be an error, never part of a value
    for (const auto &[k, v] : in.agent_params)
        if (v.find('\0') != std::string::npos || k.find('\0') != std::string::npos)
            std::abort();
    std::vector<std::string> problems;
    (void)settle(in, t, &problems);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    std::string body(reinterpret_cast<const char *>(data) + 1, size - 1);
    static const OptionTable generic(nullptr, true);
    static const OptionTable typed(&agent(), false);
    if (data[0] % 2 == 0) {
        for (const OptionTable *t : {&generic, &typed}) {
            ParsedInput in = parse_stdin(body, *t);
            if (in.errors.empty())
                check(in, *t);
        }
        (void)peek_agent_stdin(body);
        return 0;
    }
    std::vector<std::string> args;
    std::string cur;
    for (char c : body) {
        if (c == '\0' || c == '\n') {
            args.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    args.push_back(cur);
    for (const OptionTable *t : {&generic, &typed}) {
        auto r = parse_argv(args, *t);
        if (r)
            check(*r, *t);
    }
    (void)peek_agent_argv(args);
    return 0;
}
