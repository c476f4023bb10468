// stockade-meatclient -- the operator's side of the meatware agent.
//
// A drop-in for cluster-glue's `meatclient` (same -c/-w flags, same `PROCEED? [yN]` question,
// same 256-byte "meatware reply <node>" message, same exit codes from cluster-glue's stonith.h),
// so it confirms fences started by stockade's meatware agent and by `stonith -t meatware` alike.
// Differences, all on the side of safety: it refuses to run as non-root, refuses request FIFOs
// that are not 0600/root, reads the whole answer line (no fixed 3-byte buffer), accepts an
// upper-case Y, pads the message with NULs instead of stack bytes, and never dies of SIGPIPE
// when the request went away while the operator was deciding.  `-l` lists pending requests;
// `--yes` skips the question for scripts (dangerous: a wrong confirmation corrupts data).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <getopt.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "meatware_channel.hpp"

namespace mw = stockade::meatware;

namespace {

// Exit codes: cluster-glue's stonith.h values, as its meatclient uses them.
enum Exit : int {
    kExitOk = 0,       // S_OK: confirmation sent (or list printed)
    kExitAccess = 2,   // S_ACCESS: not root
    kExitInval = 3,    // S_INVAL: usage error, invalid node name, operator said no
    kExitBadHost = 4,  // S_BADHOST: no request is waiting for that node / unsafe request FIFO
    kExitOops = 8,     // S_OOPS: the confirmation could not be delivered
};

const char *g_prog = "stockade-meatclient";

void usage(FILE *to)
{
    std::fprintf(to,
                 "usage: %s -c node [-w] [--yes]\n"
                 "       %s -l\n"
                 "  -c node  confirm that node was powered off (or power-cycled) by hand; answers the\n"
                 "           fence request waiting on /run/meatware.<node>\n"
                 "  -w       wait for that request to appear (retry every second)\n"
                 "  -l       list pending requests: which nodes are waiting and since when\n"
                 "  --yes    confirm without asking.  DANGEROUS: only for scripts that have already\n"
                 "           made sure the node is off; a wrong confirmation can destroy shared data\n"
                 "exit codes: 0 confirmed, 2 not root, 3 usage/cancelled, 4 no such request, 8 not delivered\n",
                 g_prog, g_prog);
}

// Reads one whole line from stdin (any length; only the first bytes are kept) and says whether it
// is a yes: "y" or "yes" in any case, surrounding blanks ignored.  EOF is a no.
bool read_yes()
{
    std::string kept;
    int c;
    bool any = false;
    while ((c = std::getchar()) != EOF && c != '\n') {
        any = true;
        if (kept.size() < 16)
            kept += char(c);
    }
    if (!any && c == EOF)
        return false;
    size_t b = kept.find_first_not_of(" \t\r");
    size_t e = kept.find_last_not_of(" \t\r");
    std::string answer = b == std::string::npos ? "" : mw::ascii_lower(kept.substr(b, e - b + 1));
    return answer == "y" || answer == "yes";
}

struct OpenResult {
    int fd = -1;
    int err = 0;         // errno of the failed step
    std::string problem; // an unsafe FIFO (not retried)
};

OpenResult open_request(const std::string &path)
{
    OpenResult r;
    struct stat before {};
    if (::lstat(path.c_str(), &before) != 0) {
        r.err = errno;
        return r;
    }
    if (auto why = mw::fifo_problem(before, 0); !why.empty()) {
        r.problem = path + " " + why + "; refusing to send a confirmation into it";
        return r;
    }
    // O_NONBLOCK: fails with ENXIO at once when nobody is waiting on the FIFO.
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        r.err = errno;
        return r;
    }
    struct stat after {};
    if (::fstat(fd, &after) != 0 || after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
        ::close(fd);
        r.problem = path + " changed while it was being opened; refusing";
        return r;
    }
    r.fd = fd;
    return r;
}

std::string open_error_text(const std::string &path, const std::string &node, int err)
{
    std::string text = path + ": " + std::strerror(err);
    if (err == ENOENT)
        text += " (no fence request is waiting for '" + node + "')";
    else if (err == ENXIO)
        text += " (stale: no fence is waiting on it any more)";
    return text;
}

void print_warning(const std::string &node)
{
    std::printf("\nWARNING!\n\n"
                "You are about to tell the cluster that node \"%s\" is down for good: switched off\n"
                "or power-cycled by hand, or cut off from every shared disk and network.  If it is\n"
                "in fact still running, the cluster will start its services elsewhere and shared\n"
                "data can be corrupted beyond repair.\n"
                "Make sure \"%s\" is really the machine you just switched off.\n\n"
                "PROCEED? [yN] ",
                node.c_str(), node.c_str());
    std::fflush(stdout);
}

int confirm(const std::string &raw_node, bool wait, bool assume_yes)
{
    std::string node = mw::ascii_lower(raw_node);
    if (auto why = mw::host_name_problem(node); !why.empty()) {
        std::fprintf(stderr, "%s: invalid node name: it %s\n", g_prog, why.c_str());
        return kExitInval;
    }
    std::string path = mw::fifo_path(node);
    OpenResult o = open_request(path);
    bool dotted = false;
    while (wait && o.fd < 0 && o.problem.empty() && (o.err == ENOENT || o.err == ENXIO)) {
        std::putchar('.');
        std::fflush(stdout);
        dotted = true;
        ::sleep(1);
        o = open_request(path);
    }
    if (dotted)
        std::putchar('\n');
    if (o.fd < 0) {
        std::fprintf(stderr, "%s: Meatware_IPC failed: %s\n", g_prog,
                     o.problem.empty() ? open_error_text(path, node, o.err).c_str() : o.problem.c_str());
        return kExitBadHost;
    }

    print_warning(node);
    bool yes = assume_yes;
    if (assume_yes)
        std::printf("y (--yes given)\n");
    else
        yes = read_yes();
    if (!yes) {
        std::printf("%s: operation cancelled; nothing was confirmed.\n", g_prog);
        ::close(o.fd);
        return kExitInval;
    }

    struct stat st {};
    if (::fstat(o.fd, &st) != 0 || !mw::fifo_problem(st, 0).empty()) {
        std::fprintf(stderr, "%s: Meatware_IPC failed: %s changed owner or mode while you were deciding; "
                             "nothing was confirmed\n", g_prog, path.c_str());
        ::close(o.fd);
        return kExitBadHost;
    }
    auto msg = mw::build_reply(node);
    ssize_t n = ::write(o.fd, msg.data(), msg.size());
    int e = errno;
    ::close(o.fd);
    if (n != ssize_t(msg.size())) {
        std::string why = n < 0 ? std::strerror(e) : "short write";
        if (n < 0 && e == EPIPE)
            why = "the fence request went away (timed out or cancelled)";
        std::fprintf(stderr, "%s: Meatware_IPC failed: %s: %s; nothing was confirmed\n", g_prog, path.c_str(),
                     why.c_str());
        return kExitOops;
    }
    std::printf("%s: power-off of \"%s\" confirmed to the waiting fence request.\n", g_prog, node.c_str());
    return kExitOk;
}

std::string format_age(std::time_t seconds)
{
    if (seconds < 0)
        seconds = 0;
    char buf[64];
    if (seconds >= 3600)
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(seconds / 3600), long(seconds / 60 % 60));
    else
        std::snprintf(buf, sizeof buf, "%ldm%02lds", long(seconds / 60), long(seconds % 60));
    return buf;
}

int list_pending()
{
    std::string error;
    auto requests = mw::pending_requests(&error);
    if (!error.empty()) {
        std::fprintf(stderr, "%s: %s\n", g_prog, error.c_str());
        return kExitOops;
    }
    if (requests.empty()) {
        std::printf("no fence request is waiting for an operator\n");
        return kExitOk;
    }
    std::time_t now = std::time(nullptr);
    std::printf("%-24s %-24s %-9s %s\n", "NODE", "WAITING SINCE", "FOR", "WAITER");
    for (const auto &r : requests) {
        char since[64] = "?";
        struct tm tm {};
        if (::localtime_r(&r.since, &tm))
            std::strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S %Z", &tm);
        std::string waiter;
        for (const auto &h : r.holders) {
            if (!waiter.empty())
                waiter += ", ";
            waiter += (h.reads ? "pid " : "operator client pid ") + std::to_string(h.pid) + " (" + h.command +
                      (h.blocked_in_open ? ", blocked in open" : "") + ")";
        }
        if (!r.has_waiter())
            waiter = (waiter.empty() ? "" : waiter + "; ") + "nobody: stale, the next fence for this node replaces it";
        if (!r.problem.empty())
            waiter += "; UNSAFE: " + r.path + " " + r.problem;
        std::printf("%-24s %-24s %-9s %s\n", r.host.c_str(), since, format_age(now - r.since).c_str(),
                    waiter.c_str());
    }
    return kExitOk;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0]) {
        const char *slash = std::strrchr(argv[0], '/');
        g_prog = slash ? slash + 1 : argv[0];
    }
    // A request that vanished while the operator was deciding must be an error message, not a
    // silent death by SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    static const option kLong[] = {
        {"yes", no_argument, nullptr, 'Y'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    std::string node;
    bool have_node = false, wait = false, list = false, assume_yes = false, errors = false;
    int c;
    while ((c = ::getopt_long(argc, argv, "c:wlh", kLong, nullptr)) != -1) {
        switch (c) {
        case 'c': node = optarg; have_node = true; break;
        case 'w': wait = true; break;
        case 'l': list = true; break;
        case 'Y': assume_yes = true; break;
        case 'h': usage(stdout); return kExitOk;
        default: errors = true; break;
        }
    }
    if (optind != argc || have_node == list || (list && (wait || assume_yes)))
        errors = true;
    if (errors) {
        usage(stderr);
        return kExitInval;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr,
                     "%s: must be run as root: only root may confirm that a node was switched off "
                     "(the request FIFOs in %s are mode 0600, owned by root)\n",
                     g_prog, std::string(mw::kRunDir).c_str());
        return kExitAccess;
    }
    return list ? list_pending() : confirm(node, wait, assume_yes);
}
