// command_agent.cpp -- the "command" device: a site's own fencing command lines, as in
// LifeKeeper's stonith.conf (`<node> <command line>`), run for off/on/reboot/status.
//
// Sites already have a working `ipmitool ... power reset` line per node; this agent lets such a
// line become a stockade level without a wrapper script.  The line is split like a shell would
// split words (quotes, backslashes) but no shell runs it, so a target name can never inject
// anything; {target} and {action} are substituted after splitting.  Each command runs in its own
// process group with an empty stdin and is killed (whole tree, SIGKILL) at the deadline.
//
// Results: the command's exit code is the result.  off/reboot/on: exit 0 = done (the command's
// promise: that is LifeKeeper's contract); with a status command configured, off is also read
// back until status reports off.  status follows fence-agents: exit 0 = on, 2 = off, anything
// else = unknown (the operation fails).  Command lines may hold passwords (ipmitool -P), so every
// command parameter is secret: never logged, masked in output.
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/process.hpp"

namespace {

constexpr uint32_t kSecret = STOCKADE_PARAM_SECRET;

const stockade_param_desc kParams[] = {
    {STOCKADE_PARAM_DESC_HEADER, .name = "command", .type = STOCKADE_PARAM_STRING, .flags = kSecret,
     .aliases = "stonith_command",
     .description = "Command line that fences the target (LifeKeeper stonith.conf); run for off and reboot unless "
                    "off_command/reboot_command are set"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "off_command", .type = STOCKADE_PARAM_STRING, .flags = kSecret,
     .description = "Command line that powers the target off (exit 0 = off)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "on_command", .type = STOCKADE_PARAM_STRING, .flags = kSecret,
     .description = "Command line that powers the target on (exit 0 = on)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "reboot_command", .type = STOCKADE_PARAM_STRING, .flags = kSecret,
     .description = "Command line that resets the target (exit 0 = reset done)"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "status_command", .type = STOCKADE_PARAM_STRING, .flags = kSecret,
     .description = "Command line that reads the target's power: exit 0 = on, 2 = off, other = unknown"},
    {STOCKADE_PARAM_DESC_HEADER, .name = "verify_interval", .type = STOCKADE_PARAM_SECONDS, .default_value = "1",
     .description = "Seconds between status reads while confirming off"},
};

struct CommandLines {
    std::string command, off_command, on_command, reboot_command, status_command;
    int verify_interval_s = 1;
};

using stockade::agent::set_err;
using stockade::agent::log;

// Splits a command line into words: blanks separate, '...' is literal, "..." allows \" \\ \$,
// a backslash outside quotes escapes the next character.  Returns false on an open quote.
bool split_words(const std::string &line, std::vector<std::string> &out, std::string &err)
{
    std::string cur;
    bool have = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (have)
                out.push_back(cur);
            cur.clear();
            have = false;
        } else if (c == '\'') {
            size_t end = line.find('\'', i + 1);
            if (end == std::string::npos) {
                err = "unterminated ' quote";
                return false;
            }
            cur.append(line, i + 1, end - i - 1);
            have = true;
            i = end;
        } else if (c == '"') {
            have = true;
            for (++i;; ++i) {
                if (i >= line.size()) {
                    err = "unterminated \" quote";
                    return false;
                }
                if (line[i] == '"')
                    break;
                if (line[i] == '\\' && i + 1 < line.size() && std::strchr("\"\\$`", line[i + 1]))
                    ++i;
                cur += line[i];
            }
        } else if (c == '\\' && i + 1 < line.size()) {
            cur += line[++i];
            have = true;
        } else {
            cur += c;
            have = true;
        }
    }
    if (have)
        out.push_back(cur);
    if (out.empty()) {
        err = "empty command line";
        return false;
    }
    return true;
}

void substitute(std::string &word, const std::string &token, const std::string &value)
{
    for (size_t p = 0; (p = word.find(token, p)) != std::string::npos; p += value.size())
        word.replace(p, token.size(), value);
}

struct RunResult {
    uint32_t rc = STOCKADE_RC_OK; // OK = the command exited (see exit_code)
    int exit_code = -1;
    std::string last_line; // last non-empty output line, for messages
};

std::string last_line_of(const std::string &out)
{
    size_t end = out.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return {};
    size_t start = out.find_last_of('\n', end);
    std::string l = out.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
    return l.size() > 200 ? l.substr(0, 200) : l;
}

// Runs one command line for `target`; the whole process group dies at the deadline.
RunResult run_line(const stockade_ctx *ctx, const std::string &line, const std::string &target, const char *action)
{
    RunResult res;
    std::vector<std::string> words;
    std::string err;
    if (!split_words(line, words, err)) {
        res.rc = STOCKADE_RC_BAD_CONFIG;
        res.last_line = "command line: " + err;
        return res;
    }
    for (auto &w : words) {
        substitute(w, "{target}", target);
        substitute(w, "{action}", action);
    }
    stockade::SpawnSpec spec;
    spec.argv = std::move(words);
    spec.search_path = true; // as execvp
    spec.stderr_to = stockade::ChildStream::Stdout;
    spec.output_cap = 65536;
    auto run = stockade::run_command_until(spec, "", ctx->deadline_ms, [ctx] { return stockade::agent::cancelled(ctx); });
    if (!run) { // it could not start: a configuration problem (power_result's exit 127 rule)
        res.exit_code = 127;
        res.last_line = run.error().message;
        return res;
    }
    res.last_line = last_line_of(run->out);
    switch (run->end) {
    case stockade::ChildEnd::TimedOut:
    case stockade::ChildEnd::Cancelled:
        res.rc = run->end == stockade::ChildEnd::Cancelled ? STOCKADE_RC_CANCELLED : STOCKADE_RC_TIMEOUT;
        break;
    case stockade::ChildEnd::Exited:
        res.exit_code = *run->exit_code;
        break;
    case stockade::ChildEnd::Signaled:
        res.exit_code = 128 + run->signal.value_or(0);
        break;
    case stockade::ChildEnd::Unknown:
        res.rc = STOCKADE_RC_FAILED;
        res.last_line = run->describe();
        break;
    }
    return res;
}

// Turns a run into an ABI result code and message for a power action.
uint32_t power_result(const stockade_ctx *ctx, const RunResult &r, const char *what, const std::string &target)
{
    if (r.rc == STOCKADE_RC_TIMEOUT) {
        set_err(ctx, std::string(what) + " command for " + target + " killed at the deadline" +
                         (r.last_line.empty() ? "" : " (last output: " + r.last_line + ")"));
        return r.rc;
    }
    if (r.rc != STOCKADE_RC_OK) {
        set_err(ctx, std::string(what) + " command for " + target + ": " + (r.last_line.empty() ? "failed" : r.last_line));
        return r.rc;
    }
    if (r.exit_code == 127) {
        set_err(ctx, std::string(what) + " command for " + target + ": " + r.last_line);
        return STOCKADE_RC_BAD_CONFIG;
    }
    if (r.exit_code != 0) {
        set_err(ctx, std::string(what) + " command for " + target + " exited " + std::to_string(r.exit_code) +
                         (r.last_line.empty() ? "" : ": " + r.last_line));
        return STOCKADE_RC_FAILED;
    }
    return STOCKADE_RC_OK;
}

uint32_t read_status(const CommandLines &d, const stockade_ctx *ctx, const std::string &target, uint32_t *state)
{
    *state = STOCKADE_POWER_UNKNOWN;
    if (d.status_command.empty()) {
        set_err(ctx, "no status_command configured");
        return STOCKADE_RC_UNSUPPORTED;
    }
    RunResult r = run_line(ctx, d.status_command, target, "status");
    if (r.rc != STOCKADE_RC_OK || r.exit_code == 127)
        return power_result(ctx, r, "status", target);
    if (r.exit_code == 0) {
        *state = STOCKADE_POWER_ON;
        return STOCKADE_RC_OK;
    }
    if (r.exit_code == 2) {
        *state = STOCKADE_POWER_OFF;
        return STOCKADE_RC_OK;
    }
    set_err(ctx, "status command for " + target + " exited " + std::to_string(r.exit_code) +
                     " (0 = on, 2 = off expected)" + (r.last_line.empty() ? "" : ": " + r.last_line));
    return STOCKADE_RC_FAILED;
}

// After a successful off: read status back until it says off, or the deadline.
uint32_t confirm_off(const CommandLines &d, const stockade_ctx *ctx, const std::string &target)
{
    for (;;) {
        uint32_t state = STOCKADE_POWER_UNKNOWN;
        uint32_t rc = read_status(d, ctx, target, &state);
        if (rc == STOCKADE_RC_OK && state == STOCKADE_POWER_OFF)
            return STOCKADE_RC_OK;
        int64_t left = stockade_remaining_ms(ctx);
        if (left <= int64_t(d.verify_interval_s) * 1000 || stockade::agent::cancelled(ctx)) {
            set_err(ctx, "off command for " + target + " exited 0 but status still says " +
                             (rc == STOCKADE_RC_OK ? "on" : "unknown") + " at the deadline");
            return STOCKADE_RC_TIMEOUT;
        }
        ::usleep(useconds_t(d.verify_interval_s) * 1000000u);
    }
}

struct CommandDevice : CommandLines {
    static uint32_t open(const stockade_param *params, size_t n, const stockade_ctx *ctx, std::unique_ptr<CommandDevice> &out)
    {
        auto d = std::make_unique<CommandDevice>();
        for (const auto &[name, value] : stockade::agent::named_values(params, n)) {
            if (name == "command") d->command = value;
            else if (name == "off_command") d->off_command = value;
            else if (name == "on_command") d->on_command = value;
            else if (name == "reboot_command") d->reboot_command = value;
            else if (name == "status_command") d->status_command = value;
            else if (name == "verify_interval") d->verify_interval_s = std::max(1, std::atoi(value.c_str()));
        }
        if (d->command.empty() && d->off_command.empty()) {
            set_err(ctx, "parameter 'command' or 'off_command' is required");
            return STOCKADE_RC_BAD_CONFIG;
        }
        for (const std::string *line : {&d->command, &d->off_command, &d->on_command, &d->reboot_command, &d->status_command}) {
            std::vector<std::string> words;
            std::string err;
            if (!line->empty() && !split_words(*line, words, err)) {
                set_err(ctx, "command line: " + err);
                return STOCKADE_RC_BAD_CONFIG;
            }
        }
        out = std::move(d);
        return STOCKADE_RC_OK;
    }

    uint32_t power(const stockade_ctx *ctx, uint32_t action, const std::string &target, uint32_t *verified)
    {
        const CommandLines &d = *this;
        if (action == STOCKADE_ACTION_OFF) {
            const std::string &line = d.off_command.empty() ? d.command : d.off_command;
            uint32_t rc = power_result(ctx, run_line(ctx, line, target, "off"), "off", target);
            if (rc != STOCKADE_RC_OK)
                return rc;
            if (!d.status_command.empty()) {
                if ((rc = confirm_off(d, ctx, target)) != STOCKADE_RC_OK)
                    return rc;
                log(ctx, STOCKADE_LOG_INFO, "command: " + target + " off, confirmed by the status command");
            } else {
                log(ctx, STOCKADE_LOG_NOTICE, "command: " + target + " off, confirmed by the off command's exit code only");
            }
            *verified = STOCKADE_VERIFIED_OFF;
            return STOCKADE_RC_OK;
        }
        if (action == STOCKADE_ACTION_ON) {
            if (d.on_command.empty()) {
                set_err(ctx, "no on_command configured");
                return STOCKADE_RC_UNSUPPORTED;
            }
            uint32_t rc = power_result(ctx, run_line(ctx, d.on_command, target, "on"), "on", target);
            if (rc == STOCKADE_RC_OK)
                *verified = STOCKADE_VERIFIED_ON;
            return rc;
        }
        if (action == STOCKADE_ACTION_REBOOT) {
            const std::string &line = !d.reboot_command.empty() ? d.reboot_command : d.command;
            if (!line.empty()) {
                uint32_t rc = power_result(ctx, run_line(ctx, line, target, "reboot"), "reboot", target);
                if (rc == STOCKADE_RC_OK) {
                    *verified = STOCKADE_VERIFIED_OFF;
                    log(ctx, STOCKADE_LOG_NOTICE, "command: " + target + " reset, confirmed by the command's exit code");
                }
                return rc;
            }
            // Only off_command (+ on_command): off, confirm, on.
            uint32_t rc = power(ctx, STOCKADE_ACTION_OFF, target, verified);
            if (rc != STOCKADE_RC_OK || d.on_command.empty())
                return rc;
            uint32_t on_verified = 0;
            if (power(ctx, STOCKADE_ACTION_ON, target, &on_verified) == STOCKADE_RC_OK)
                *verified |= on_verified;
            else
                log(ctx, STOCKADE_LOG_WARNING, "command: " + target + " is off but powering it on failed");
            return STOCKADE_RC_OK;
        }
        set_err(ctx, "unsupported action");
        return STOCKADE_RC_UNSUPPORTED;
    }

    uint32_t status(const stockade_ctx *ctx, const std::string &target, uint32_t *state)
    {
        return read_status(*this, ctx, target, state);
    }
};

const stockade_agent kAgent = {
    STOCKADE_AGENT_HEADER,
    .capabilities = STOCKADE_CAP_OFF | STOCKADE_CAP_ON | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS,
    .name = "command",
    .version = "1.0",
    .summary = "Site command lines (LifeKeeper stonith.conf) for off/on/reboot/status",
    .description =
        "Runs a configured command line per action with {target} and {action} substituted, without a shell, in its own "
        "process group killed at the deadline. Exit 0 = done; status: 0 on, 2 off, other unknown. Command lines are "
        "treated as secrets (they often hold a password).",
    STOCKADE_AGENT_PARAM_TABLE(kParams),
    STOCKADE_AGENT_ENTRY_POINTS(CommandDevice),
};

} // namespace

extern "C" STOCKADE_EXPORT const stockade_agent *stockade_agent_entry(void) { return &kAgent; }
