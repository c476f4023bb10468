// foreign_fence_agent.cpp -- the "foreign_fence" agent: runs any fence-agents executable (fence_ipmilan,
// fence_apc, fence_dummy, a site's own fence_* script) as one device of an escalation level.
//
// Existing sites escalate from their current agents into stockade's without rewriting their
// config, so this agent calls them exactly as cman's fenced (libfence make_args/run_agent) does:
// no argv, `key=value` lines on stdin, stdin closed, exit status 0 = success.  Unlike fenced it
// puts the program in its own process group and kills the whole tree at the device's deadline,
// and it reads and logs the program's stdout/stderr (with secret values masked) instead of
// discarding them.  Every parameter that is not in the table below is handed to the program
// unchanged (STOCKADE_CAP_EXTRA_PARAMS), so any fence agent's options work.
//
// Lines sent, in order: action=<a>, then every configured parameter as given, then
// nodename=<target> unless a nodename was configured (fence-agents use nodename as the plug when
// no plug/port is set).  action: the configured `action` (cluster.conf's action= pins it, as in
// libfence) or else the runner's (reboot/off/on).  status sends action=status (exit 0 = on,
// 2 = off), list sends action=list, monitor action=monitor.
#include <cstdio>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "../exec_common/run_child.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"

namespace {

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "agent", .type = STOCKADE_PARAM_STRING, .flags = STOCKADE_PARAM_REQUIRED,
     .aliases = "fence_agent",
     .description = "fence-agents executable: a name looked up in search_path (e.g. fence_ipmilan) or an absolute path"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "action", .type = STOCKADE_PARAM_STRING, .aliases = "option",
     .description = "Fixed action sent for every operation but status/list/monitor (cluster.conf action=: off, on, reboot, "
                    "enable, disable); unset = the action the runner asks for"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "search_path", .type = STOCKADE_PARAM_STRING,
     .default_value = "/usr/sbin:/sbin:/usr/local/sbin:/usr/bin:/bin",
     .description = "Colon-separated folders searched for `agent` when it is not an absolute path"},
};

struct FenceExec {
    std::string program;                             // resolved path
    std::string agent_name;                          // as configured, for messages
    std::string pinned_action;                       // "" = runner's
    std::vector<std::pair<std::string, std::string>> passthrough; // in order
    std::vector<std::string> secrets;                // values to mask
    bool has_nodename = false;
};

using stockade::agent::set_err;
using stockade::agent::log;
using stockade::agent::cancelled;

// The `list` output of a fence-agents program, by its grammar (fencing.py): one target per line,
// `plug[,alias]` (`plug,` when there is no alias), and nothing else on stdout.  An agent without
// list support prints "NOTICE: List option is not working on this device yet" and exits 0: that
// is "this device has no list", never a target called "NOTICE: ...".
struct ListParse {
    std::vector<std::pair<std::string, std::string>> targets;
    std::vector<std::string> rejected; // lines that are not target[,alias]
    bool no_list = false;
    std::string notice;
};

// A target name: printable ASCII without spaces or commas, and not a "WORD:" message prefix.
bool valid_target(const std::string &t)
{
    if (t.empty() || t.back() == ':')
        return false;
    for (unsigned char c : t)
        if (c <= ' ' || c >= 0x7f || c == ',')
            return false;
    return true;
}

ListParse parse_list_output(const std::string &out)
{
    ListParse p;
    size_t start = 0;
    while (start < out.size()) {
        size_t nl = out.find('\n', start);
        std::string line = out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? out.size() : nl + 1;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        if (line.empty())
            continue;
        if (line.rfind("NOTICE: List option is not working", 0) == 0) {
            p.no_list = true;
            p.notice = line;
            continue;
        }
        size_t comma = line.find(',');
        std::string name = line.substr(0, comma), alias = comma == std::string::npos ? "" : line.substr(comma + 1);
        bool alias_ok = true;
        for (unsigned char c : alias)
            alias_ok = alias_ok && c >= ' ' && c != 0x7f;
        if (valid_target(name) && alias_ok)
            p.targets.emplace_back(std::move(name), std::move(alias));
        else
            p.rejected.push_back(std::move(line));
    }
    return p;
}

bool executable_file(const std::string &p)
{
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

// Pinned actions libfence configs use, and whether a zero exit means the target went off / on.
struct PinnedAction {
    const char *name;
    bool means_off;
    bool means_on;
};
constexpr PinnedAction kPinnedActions[] = {
    {"off", true, false}, {"disable", true, false}, {"reboot", true, true},
    {"on", false, true},  {"enable", false, true},
};

const PinnedAction *pinned_info(const std::string &a)
{
    for (const auto &p : kPinnedActions)
        if (a == p.name)
            return &p;
    return nullptr;
}

// Runs the program with one action; logs its output line by line (masked).
stockade_exec::ChildResult run_action(const FenceExec &f, const stockade_ctx *ctx, const std::string &action,
                                      const std::string &target)
{
    std::string input = "action=" + action + "\n";
    for (const auto &[k, v] : f.passthrough)
        input += k + "=" + v + "\n";
    if (!target.empty() && !f.has_nodename)
        input += "nodename=" + target + "\n";
    auto r = stockade_exec::run_child({f.program}, {{"PYTHONWARNINGS", "ignore"}}, input, ctx);
    stockade_exec::log_output(ctx, f.agent_name, r, f.secrets);
    return r;
}

// Turns a finished run into a result code and one-line reason; "what" names the action.
uint32_t judge(const FenceExec &f, const stockade_ctx *ctx, const stockade_exec::ChildResult &r,
               const std::string &what)
{
    if (!r.started) {
        set_err(ctx, r.spawn_error);
        return STOCKADE_RC_INTERNAL;
    }
    if (r.cancelled) {
        set_err(ctx, f.agent_name + " action=" + what + " cancelled; its process tree was killed");
        return STOCKADE_RC_CANCELLED;
    }
    if (r.timed_out) {
        set_err(ctx, f.agent_name + " action=" + what + " did not finish before the deadline; its process tree was killed");
        return STOCKADE_RC_TIMEOUT;
    }
    if (!r.exit_code) { // a signal, or an outcome we could not read: never success
        set_err(ctx, f.agent_name + " action=" + what + " " + r.describe());
        return STOCKADE_RC_FAILED;
    }
    if (r.exit_code == 0)
        return STOCKADE_RC_OK;
    // The last line the program printed on stderr (fence-agents: "ERROR: ..." / "Failed: ...").
    std::string last;
    for (const std::string *s : {&r.err, &r.out}) {
        size_t end = s->find_last_not_of("\n \t");
        if (end == std::string::npos)
            continue;
        size_t begin = s->rfind('\n', end);
        last = s->substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
        break;
    }
    set_err(ctx, f.agent_name + " action=" + what + " exited " + std::to_string(*r.exit_code) +
                     (last.empty() ? "" : ": " + stockade_exec::mask_secrets(last, f.secrets)));
    return STOCKADE_RC_FAILED;
}

struct FenceExecDevice : FenceExec {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx,
                             std::unique_ptr<FenceExecDevice> &out)
    {
        auto f = std::make_unique<FenceExecDevice>();
        std::string search = "/usr/sbin:/sbin:/usr/local/sbin:/usr/bin:/bin";
        for (const auto &[k, v] : stockade::agent::named_values(params, n)) {
            if (k == "agent")
                f->agent_name = v;
            else if (k == "action")
                f->pinned_action = v;
            else if (k == "search_path")
                search = v;
            else {
                f->has_nodename = f->has_nodename || k == "nodename";
                if (stockade_exec::secret_name(k))
                    f->secrets.push_back(v);
                f->passthrough.emplace_back(k, v);
            }
        }
        if (f->agent_name.empty() || f->agent_name.find_first_of("\n=") != std::string::npos) {
            set_err(ctx, "parameter 'agent': a fence-agents executable name or path is required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        for (const auto &[k, v] : f->passthrough)
            if (k.empty() || k.find_first_of("=\n") != std::string::npos || v.find('\n') != std::string::npos) {
                set_err(ctx, "parameter '" + k + "': names must not contain '=' or newlines, values no newlines");
                return STOCKADE_RC_BAD_CONFIG;
            }
        if (!f->pinned_action.empty() && !pinned_info(f->pinned_action)) {
            set_err(ctx, "parameter 'action': '" + f->pinned_action + "' is not one of off, on, reboot, enable, disable");
            return STOCKADE_RC_BAD_CONFIG;
        }
        if (f->agent_name[0] == '/') {
            f->program = f->agent_name;
        } else {
            size_t start = 0;
            while (start <= search.size() && f->program.empty()) {
                size_t c = search.find(':', start);
                std::string dir = search.substr(start, c == std::string::npos ? std::string::npos : c - start);
                start = c == std::string::npos ? search.size() + 1 : c + 1;
                if (!dir.empty() && executable_file(dir + "/" + f->agent_name))
                    f->program = dir + "/" + f->agent_name;
            }
        }
        if (f->program.empty() || !executable_file(f->program)) {
            set_err(ctx, "parameter 'agent': no executable '" + f->agent_name + "'" +
                             (f->agent_name[0] == '/' ? std::string() : " in " + search));
            return STOCKADE_RC_BAD_CONFIG;
        }
        out = std::move(f);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        const FenceExec &f = *this;
        std::string act;
        switch (action) {
        case STOCKADE_ACTION_OFF: act = "off"; break;
        case STOCKADE_ACTION_ON: act = "on"; break;
        case STOCKADE_ACTION_REBOOT: act = "reboot"; break;
        default:
            set_err(ctx, "unsupported action");
            return STOCKADE_RC_UNSUPPORTED;
        }
        if (!f.pinned_action.empty() && f.pinned_action != act)
            log(ctx, STOCKADE_LOG_INFO,
                f.agent_name + ": sending the configured action=" + f.pinned_action + " (asked: " + act + ")");
        if (!f.pinned_action.empty())
            act = f.pinned_action;
        auto r = run_action(f, ctx, act, target);
        uint32_t rc = judge(f, ctx, r, act);
        if (rc != STOCKADE_RC_OK)
            return rc;
        // fence-agents verify the outcome themselves (status read back after off/on) and exit
        // non-zero when it did not take effect: a zero exit is their confirmation, as for fenced.
        const PinnedAction *pi = pinned_info(act);
        if (pi && pi->means_off)
            *verified |= STOCKADE_VERIFIED_OFF;
        if (pi && pi->means_on)
            *verified |= STOCKADE_VERIFIED_ON;
        return STOCKADE_RC_OK;
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *state)
    {
        const FenceExec &f = *this;
        auto r = run_action(f, ctx, "status", target);
        if (r.started && !r.timed_out && !r.cancelled && !r.signal && (r.exit_code == 0 || r.exit_code == 2)) {
            *state = r.exit_code == 0 ? STOCKADE_POWER_ON : STOCKADE_POWER_OFF;
            return STOCKADE_RC_OK;
        }
        uint32_t rc = judge(f, ctx, r, "status");
        return rc == STOCKADE_RC_FAILED ? STOCKADE_RC_UNREACHABLE : rc; // status 1 = device unreachable
    }

    uint32_t list(const stockade_ctx *ctx, stockade_list_fn emit, void *ectx)
    {
        const FenceExec &f = *this;
        auto r = run_action(f, ctx, "list", "");
        if (uint32_t rc = judge(f, ctx, r, "list"); rc != STOCKADE_RC_OK)
            return rc;
        ListParse parsed = parse_list_output(r.out);
        if (parsed.no_list) {
            set_err(ctx, f.agent_name + " has no list operation on this device (it says: " + parsed.notice + ")");
            return STOCKADE_RC_UNSUPPORTED;
        }
        for (const auto &line : parsed.rejected)
            log(ctx, STOCKADE_LOG_WARNING, f.agent_name + " list: ignoring a line that is not target[,alias]: '" +
                                               line.substr(0, 120) + "'");
        if (parsed.targets.empty() && !parsed.rejected.empty()) {
            set_err(ctx, f.agent_name + " list printed no target[,alias] line (first line: '" +
                             parsed.rejected.front().substr(0, 120) + "')");
            return STOCKADE_RC_FAILED;
        }
        for (const auto &[name, alias] : parsed.targets)
            emit(ectx, name.c_str(), alias.c_str());
        return STOCKADE_RC_OK;
    }

    uint32_t monitor(const stockade_ctx *ctx)
    {
        const FenceExec &f = *this;
        auto r = run_action(f, ctx, "monitor", "");
        uint32_t rc = judge(f, ctx, r, "monitor");
        return rc == STOCKADE_RC_FAILED ? STOCKADE_RC_UNREACHABLE : rc;
    }
};

const stockade_agent kDescriptor = {
    STOCKADE_AGENT_HEADER,
    .capabilities =
        STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST | STOCKADE_CAP_MONITOR | STOCKADE_CAP_EXTRA_PARAMS,
    .name = "foreign_fence",
    .version = "1.0",
    .summary = "Runs any fence-agents executable (fence_ipmilan, fence_apc, ...) as fenced does",
    .description =
        "Calls a fence-agents program with key=value lines on stdin (action, every other parameter unchanged, "
        "nodename=<target>) and reads its exit code as cman's fenced: 0 success; status 0 on, 2 off. The program "
        "runs in its own process group, killed with every descendant at the device timeout; its output is logged "
        "with secret values masked.",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(FenceExecDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kDescriptor; }
