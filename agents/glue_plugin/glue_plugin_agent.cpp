// glue_plugin_agent.cpp -- the "glue" agent: any cluster-glue STONITH plugin (external/ipmi,
// external/libvirt, meatware, ipmilan, null, ...) as one device of an escalation level.
//
// Sites that fence with Heartbeat/cluster-glue plugins keep them as a level and escalate into
// stockade's agents.  Parameters reach a plugin only the ways it accepts, and never on argv:
//   - external/<script>: the script is run directly with the external protocol (argv[1] = op,
//     argv[2] = lower-cased target for on/off/reset) and its parameters in its environment, which
//     is how libstonith's external.c and fence_legacy pass them (the protocol has no other way;
//     /proc/<pid>/environ is readable by the owner only).  The script must be a regular
//     executable file that is not group/other-writable, the rule external.c applies.
//   - compiled plugins (stonith2/*.so): through the `stonith` command with `-F <file>`: a 0600
//     temporary file holding the values in the order `stonith -t <type> -n` names them (cluster-
//     glue's -F grammar: one line, split on whitespace, the last name takes the rest), removed
//     right after.  Nothing on argv, nothing in the environment.
// Exit codes are read as cluster-glue's S_* codes (table below).  A glue plugin's zero exit for
// off/reset is its only confirmation (Pacemaker and stonithd accept it the same way), so it sets
// STOCKADE_VERIFIED_OFF; plugins have no per-target status, so status is not offered.
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "../exec_common/run_child.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"

namespace {

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "plugin", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "type stonith_type",
     .description = "cluster-glue plugin type: external/<script> (e.g. external/ipmi) or a compiled plugin (meatware, ipmilan, ...)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "stonith_command", .type = STOCKADE_PARAM_STRING,
     .default_value = "/usr/sbin/stonith", .description = "cluster-glue's stonith command, used for compiled plugins"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "plugin_dir", .type = STOCKADE_PARAM_STRING,
     .default_value = "/usr/lib/stonith/plugins/external",
     .description = "Folder of external/* scripts (${libdir}/stonith/plugins/external)"},
};

// cluster-glue's stonith.h codes, as the exit status of `stonith` and of an external status.
struct GlueExit {
    int code;
    const char *name;
    uint32_t rc;
};
constexpr GlueExit kGlueExits[] = {
    {0, "S_OK", STOCKADE_RC_OK},
    {1, "S_BADCONFIG", STOCKADE_RC_BAD_CONFIG},
    {2, "S_ACCESS", STOCKADE_RC_ACCESS_DENIED},
    {3, "S_INVAL", STOCKADE_RC_FAILED},
    {4, "S_BADHOST", STOCKADE_RC_UNKNOWN_TARGET},
    {5, "S_RESETFAIL", STOCKADE_RC_FAILED},
    {6, "S_TIMEOUT", STOCKADE_RC_TIMEOUT},
    {7, "S_ISOFF", STOCKADE_RC_FAILED},
    {8, "S_OOPS", STOCKADE_RC_FAILED},
};

const GlueExit *glue_exit(int code)
{
    for (const auto &g : kGlueExits)
        if (g.code == code)
            return &g;
    return nullptr;
}

struct Glue {
    std::string plugin;     // as configured
    std::string script;     // external/*: path of the script; "" for compiled plugins
    std::string stonith;    // stonith command
    std::vector<std::pair<std::string, std::string>> params; // plugin parameters, in order
    std::vector<std::string> secrets;
};

using stockade::agent::set_err;
using stockade::agent::log;
using stockade::text::ascii_lower;
using stockade::agent::cancelled;

bool safe_name(const std::string &s)
{
    if (s.empty() || s[0] == '.' || s[0] == '-')
        return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
            return false;
    return true;
}

std::vector<std::string> words(const std::string &s)
{
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        size_t j = i;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])))
            ++j;
        if (j > i)
            out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// external/*: one protocol call.
stockade_exec::ChildResult run_external(const Glue &g, const stockade_ctx *ctx, const std::string &op,
                                        const std::string &target)
{
    std::vector<std::pair<std::string, std::string>> set = g.params;
    const char *path = std::getenv("PATH");
    set.emplace_back("PATH", std::string("/usr/share/cluster-glue:") + (path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"));
    set.emplace_back("HA_LOGTAG", g.plugin);
    std::vector<std::string> argv{g.script, op};
    if (!target.empty())
        argv.push_back(target);
    auto r = stockade_exec::run_child(argv, set, "", ctx);
    stockade_exec::log_output(ctx, g.plugin, r, g.secrets);
    return r;
}

// Compiled plugins: `stonith -t <type> -F <0600 file> <op args>`.
stockade_exec::ChildResult run_stonith(const Glue &g, const stockade_ctx *ctx, const std::vector<std::string> &op_args,
                                       std::string &problem)
{
    stockade_exec::ChildResult r;
    auto names = stockade_exec::run_child({g.stonith, "-t", g.plugin, "-n"}, {}, "", ctx);
    if (!names.success()) {
        problem = "'" + g.stonith + " -t " + g.plugin + " -n' failed (" +
                  (names.started ? names.describe() : names.spawn_error) + "): is '" + g.plugin +
                  "' a cluster-glue plugin?";
        return r;
    }
    auto confignames = words(names.out);
    std::string line;
    for (size_t i = 0; i < confignames.size(); ++i) {
        std::string value;
        bool found = false;
        for (const auto &[k, v] : g.params)
            if (k == confignames[i]) {
                value = v;
                found = true;
            }
        if (!found) {
            problem = "plugin " + g.plugin + " needs parameter '" + confignames[i] + "'";
            return r;
        }
        if (i + 1 < confignames.size() && (value.empty() || words(value).size() != 1)) {
            problem = "parameter '" + confignames[i] + "': cluster-glue's -F grammar cannot carry an empty value "
                      "or whitespace for any but the last parameter (" + confignames.back() + ")";
            return r;
        }
        line += (i ? " " : "") + value;
    }
    for (const auto &[k, v] : g.params) {
        bool known = false;
        for (const auto &n : confignames)
            known = known || n == k;
        if (!known)
            log(ctx, STOCKADE_LOG_WARNING, g.plugin + ": ignoring parameter '" + k + "' (not in its confignames)");
    }
    char path[] = "/tmp/stockade-glue-XXXXXX";
    int fd = mkstemp(path); // 0600
    if (fd < 0) {
        problem = "cannot create a temporary parameter file in /tmp";
        return r;
    }
    line += "\n";
    bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size());
    ::close(fd);
    if (!ok) {
        unlink(path);
        problem = "cannot write the temporary parameter file";
        return r;
    }
    std::vector<std::string> argv{g.stonith, "-t", g.plugin, "-F", path};
    argv.insert(argv.end(), op_args.begin(), op_args.end());
    r = stockade_exec::run_child(argv, {}, "", ctx);
    unlink(path);
    stockade_exec::log_output(ctx, g.plugin, r, g.secrets);
    return r;
}

// One operation either way; fills `r` and returns a STOCKADE_RC_* after mapping the exit code.
// raw_status: the external status code is returned unmapped by external.c (any S_* value).
uint32_t run_op(const Glue &g, const stockade_ctx *ctx, const std::string &op, const std::string &target,
                stockade_exec::ChildResult &r)
{
    std::string problem;
    if (!g.script.empty()) {
        r = run_external(g, ctx, op, target);
    } else {
        std::vector<std::string> args;
        if (op == "gethosts")
            args = {"-l"};
        else if (op == "status")
            args = {"-S"};
        else
            args = {"-T", op, target};
        r = run_stonith(g, ctx, args, problem);
        if (!problem.empty()) {
            set_err(ctx, problem);
            return STOCKADE_RC_BAD_CONFIG;
        }
    }
    std::string what = g.plugin + " " + op + (target.empty() ? "" : " " + target);
    if (!r.started) {
        set_err(ctx, "cannot start " + what + ": " + r.spawn_error);
        return STOCKADE_RC_INTERNAL;
    }
    if (r.cancelled || r.timed_out) {
        set_err(ctx, what + (r.cancelled ? " cancelled" : " did not finish before the deadline") +
                         "; its process tree was killed");
        return r.cancelled ? STOCKADE_RC_CANCELLED : STOCKADE_RC_TIMEOUT;
    }
    if (!r.exit_code) { // a signal, or an outcome we could not read: never success
        set_err(ctx, what + " " + r.describe());
        return STOCKADE_RC_FAILED;
    }
    if (r.exit_code == 0)
        return STOCKADE_RC_OK;
    const GlueExit *ge = glue_exit(*r.exit_code);
    // external.c maps any non-zero exit of reset/on/off to S_RESETFAIL.
    if (!g.script.empty() && op != "status")
        ge = glue_exit(5);
    set_err(ctx, what + " exited " + std::to_string(*r.exit_code) + (ge ? std::string(" (") + ge->name + ")" : ""));
    return ge ? ge->rc : STOCKADE_RC_FAILED;
}

struct GlueDevice : Glue {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx, std::unique_ptr<GlueDevice> &out)
    {
        auto g = std::make_unique<GlueDevice>();
        std::string dir = "/usr/lib/stonith/plugins/external";
        g->stonith = "/usr/sbin/stonith";
        for (const auto &[k, v] : stockade::agent::named_values(params, n)) {
            if (k == "plugin")
                g->plugin = v;
            else if (k == "stonith_command")
                g->stonith = v;
            else if (k == "plugin_dir")
                dir = v;
            else {
                bool shell_name = !k.empty() && !std::isdigit(static_cast<unsigned char>(k[0]));
                for (char c : k)
                    shell_name = shell_name && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
                if (!shell_name || v.find('\n') != std::string::npos) {
                    set_err(ctx, "parameter '" + k + "': plugin parameter names must be [A-Za-z0-9_] and values one line");
                    return STOCKADE_RC_BAD_CONFIG;
                }
                if (stockade_exec::secret_name(k))
                    g->secrets.push_back(v);
                g->params.emplace_back(k, v);
            }
        }
        if (g->plugin.rfind("external/", 0) == 0) {
            std::string script = g->plugin.substr(9);
            if (!safe_name(script)) {
                set_err(ctx, "parameter 'plugin': '" + g->plugin + "' is not a valid external plugin name");
                return STOCKADE_RC_BAD_CONFIG;
            }
            g->script = dir + "/" + script;
            struct stat st {};
            if (stat(g->script.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
                set_err(ctx, "parameter 'plugin': no executable " + g->script);
                return STOCKADE_RC_BAD_CONFIG;
            }
            if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                set_err(ctx, "parameter 'plugin': " + g->script + " is group- or world-writable; cluster-glue refuses it and so do we");
                return STOCKADE_RC_BAD_CONFIG;
            }
        } else if (!safe_name(g->plugin)) {
            set_err(ctx, "parameter 'plugin': '" + g->plugin + "' is not a valid cluster-glue plugin name");
            return STOCKADE_RC_BAD_CONFIG;
        } else if (access(g->stonith.c_str(), X_OK) != 0) {
            set_err(ctx, "parameter 'stonith_command': " + g->stonith + " is not executable (install cluster-glue)");
            return STOCKADE_RC_BAD_CONFIG;
        }
        out = std::move(g);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        const Glue &g = *this;
        const char *op = action == STOCKADE_ACTION_OFF ? "off" : action == STOCKADE_ACTION_ON ? "on"
                         : action == STOCKADE_ACTION_REBOOT ? "reset" : nullptr;
        if (!op) {
            set_err(ctx, "unsupported action");
            return STOCKADE_RC_UNSUPPORTED;
        }
        std::string t = ascii_lower(target); // libstonith lower-cases the node name
        if (t.empty() || t.find_first_of(" \t\n") != std::string::npos) {
            set_err(ctx, "invalid target '" + t + "'");
            return STOCKADE_RC_UNKNOWN_TARGET;
        }
        stockade_exec::ChildResult r;
        uint32_t rc = run_op(g, ctx, op, t, r);
        if (rc != STOCKADE_RC_OK)
            return rc;
        if (action != STOCKADE_ACTION_ON)
            *verified |= STOCKADE_VERIFIED_OFF;
        if (action != STOCKADE_ACTION_OFF)
            *verified |= STOCKADE_VERIFIED_ON;
        return STOCKADE_RC_OK;
    }

    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *ectx)
    {
        const Glue &g = *this;
        stockade_exec::ChildResult r;
        if (uint32_t rc = run_op(g, ctx, "gethosts", "", r); rc != STOCKADE_RC_OK)
            return rc;
        auto hosts = words(r.out);
        if (hosts.empty()) {
            set_err(ctx, g.plugin + " gethosts returned no host (cluster-glue treats that as an error)");
            return STOCKADE_RC_FAILED;
        }
        for (const auto &host : hosts)
            emit(ectx, host.c_str(), "");
        return STOCKADE_RC_OK;
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        const Glue &g = *this;
        stockade_exec::ChildResult r;
        return run_op(g, ctx, "status", "", r);
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_EXTRA_PARAMS,
    .name = "glue",
    .version = "1.0",
    .summary = "Runs a cluster-glue STONITH plugin (external/* or compiled, e.g. meatware)",
    .description =
        "external/* scripts are run directly with the external protocol and their parameters in the environment; "
        "compiled plugins through `stonith -t <type> -F <0600 file>`. Every parameter not listed here goes to the "
        "plugin. Exit codes are read as cluster-glue S_* codes; a zero exit of off/reset is the plugin's confirmation.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(GlueDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kDescriptor; }
