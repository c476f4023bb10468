// run_child.hpp -- what the wrapper agents (foreign_fence, glue) add around stockade::process for
// the programs they wrap: fenced's rules (the program's environment is ours plus its variables;
// background children that let go of our pipes are left alone), the agent's deadline and
// cancellation from its ctx, and masking of secret values in what they log of its output.
// Process control itself (own group, pipes, tree kill at the deadline) is stockade/process.hpp.
#pragma once

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/process.hpp"

namespace stockade_exec {

struct ChildResult : stockade::CommandResult {
    bool started = false;
    std::string spawn_error; // why it could not start
};

// Runs argv[0] (a path; no PATH search) with our environment plus `env_set`, writing `input` to
// its stdin; killed with its whole tree at ctx's deadline or when ctx is cancelled.
inline ChildResult run_child(const std::vector<std::string> &argv,
                             const std::vector<std::pair<std::string, std::string>> &env_set,
                             const std::string &input, const stockade_ctx *ctx)
{
    stockade::SpawnSpec spec;
    spec.argv = argv;
    spec.env_set = env_set;
    spec.on_exit = stockade::OnExit::LeaveGroup;
    ChildResult r;
    auto run = stockade::run_command_until(spec, input, ctx->deadline_ms,
                                           [ctx] { return stockade::agent::cancelled(ctx); });
    if (!run) {
        r.spawn_error = run.error().message;
        return r;
    }
    static_cast<stockade::CommandResult &>(r) = std::move(run.value());
    r.started = true;
    return r;
}

// Replaces every occurrence of each secret value in text by "***".
inline std::string mask_secrets(std::string text, const std::vector<std::string> &secrets)
{
    for (const auto &s : secrets) {
        if (s.empty())
            continue;
        for (size_t p = 0; (p = text.find(s, p)) != std::string::npos;) {
            text.replace(p, s.size(), "***");
            p += 3;
        }
    }
    return text;
}

// True for parameter names the host treats as secret for wrapper agents (see agent.h,
// STOCKADE_CAP_EXTRA_PARAMS), so the agent masks the same values in what it logs.
inline bool secret_name(std::string_view name)
{
    const std::string n = stockade::text::ascii_lower(name);
    return n.find("pass") != std::string::npos || n.find("secret") != std::string::npos || n == "k_g";
}

// Logs each non-empty line of the child's stdout, then stderr, at INFO as "<name> stdout: <line>"
// with secrets masked -- what both wrapper agents show of the program they ran.
inline void log_output(const stockade_ctx *ctx, const std::string &name, const ChildResult &r,
                       const std::vector<std::string> &secrets)
{
    for (const std::string *s : {&r.out, &r.err}) {
        size_t start = 0;
        while (start < s->size()) {
            size_t nl = s->find('\n', start);
            std::string line = s->substr(start, nl == std::string::npos ? std::string::npos : nl - start);
            start = nl == std::string::npos ? s->size() : nl + 1;
            if (!line.empty())
                stockade::agent::log(ctx, STOCKADE_LOG_INFO,
                                     name + (s == &r.out ? " stdout: " : " stderr: ") + mask_secrets(line, secrets));
        }
    }
}

} // namespace stockade_exec
