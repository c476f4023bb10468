// agent_host.hpp -- the agent-host side of isolation, shared by the stockade-agent-host program
// and the fork template a front-end starts in-process (start_fork_template in session.hpp).
//
// serve_session runs one isolated session on stdin/stdout (host_protocol.hpp).  serve_forks is
// the fork server: for each "fork" request on its control socket it forks a child, in a process
// group of its own, that runs serve_session on the three descriptors sent with the request.  It
// loads an agent file (dlopen, so the agent's constructors run here) before its first fork for
// it, never calls the agent's functions itself, and refuses to fork once it has more than one
// thread, so every session starts from the same pristine image.
#pragma once

#include <string>

#include "stockade/registry.hpp"
#include "stockade/result.hpp"

namespace stockade::agent_host {

// SIGTERM (the client cancelling) sets the flag sessions see through ctx->is_cancelled.
void install_cancel_handler();

// One session on fds 0/1 (requests/replies) until "close" or EOF; the exit code for _exit.
int serve_session(const Result<AgentInfo> &agent);

// The fork server loop on `ctl` until the client hangs up.  A "fork" request names its agent file
// in its text; `preloaded` (the exec'd server's --serve PATH) also serves requests naming none.
int serve_forks(int ctl, const std::string &preloaded_path = {});

// The registry found an agent file this process may open isolated sessions of: this process's
// fork template (if any) starts loading it now, in parallel, rather than at the first fork.
// Defined in session.cpp, next to the template's client.
void preload_in_template(const std::string &agent_path);

// Threads in this process, from /proc/self/task (fork() copies only the calling one).
int thread_count();

} // namespace stockade::agent_host
