// stockade-agent-host -- runs agent instances on behalf of isolated sessions.
//
// Two modes, one session loop (core/src/agent_host.cpp).  `--agent PATH`: one session on
// stdin/stdout, then exit (the exec-per-session path).  `--serve PATH FD` (the fork server,
// host_protocol.hpp): load the agent once, then for every "fork" request on the control socket
// fork a child that runs one session on the three descriptors the client sent, in a process
// group of its own.  The server itself never calls the agent's functions: it only dlopen()s it
// (and so runs its constructors) before the first fork, and it refuses to fork once it has more
// than one thread, so every session starts from the same pristine image and nothing one session
// did is seen by the next.  The client owns each child's deadline: it kills the child's tree
// itself, and the server reaps a child only when the client asks ("reap"), so a group id is
// never reused under the client's feet.  Front-ends that fork a template early
// (start_fork_template) run the same server loop without this exec.
//
// Secrets only ever travel over the session's stdin pipe, never through the server.  If the
// agent hangs, the client kills the session's whole tree; if it crashes, the session child
// dies and the client reports the failure.  The agent's own stdout is redirected to stderr so
// stray output can never corrupt the protocol stream.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent_host.hpp"

using namespace stockade;

int main(int argc, char **argv)
{
    const std::string mode = argc >= 2 ? argv[1] : "";
    if (!((argc == 3 && mode == "--agent") || (argc == 4 && mode == "--serve"))) {
        std::fprintf(stderr, "usage: stockade-agent-host --agent PATH | --serve PATH CONTROL_FD "
                             "(started by stockade, not by hand)\n");
        return 2;
    }
    // SIGTERM from the parent means "cancel": the agent sees it through ctx->is_cancelled and
    // can clean up before the parent's SIGKILL.  Session children inherit the handler.
    agent_host::install_cancel_handler();
    if (mode == "--agent")
        return agent_host::serve_session(load_agent_file(argv[2]));
    return agent_host::serve_forks(std::atoi(argv[3]), argv[2]);
}
