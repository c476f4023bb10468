// meatware_channel.hpp -- the operator-confirmation channel shared by the meatware agent and
// stockade-meatclient, byte-compatible with cluster-glue's meatware plugin and meatclient.
//
// One request = one named pipe /run/meatware.<host> (host lower-cased, mode 0600, owned by root)
// created by the waiting fence; the operator's client writes exactly 256 bytes into it:
// "meatware reply <host>" followed by NUL padding.  Everything that decides whether a host name
// is safe to put in a path, and whether a message confirms a host, lives here so the agent and
// the client can never disagree.  Library code: no printing, no exits; errors are returned.
#pragma once

#include <array>
#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

#include "stockade/text.hpp"

namespace stockade::meatware {

// Fixed by compatibility: Debian's cluster-glue uses HA_VARRUNDIR "/meatware." <host>.
inline constexpr std::string_view kRunDir = "/run";
inline constexpr std::string_view kFifoPrefix = "meatware.";
// Every message is exactly this many bytes (meatclient always writes 256).
inline constexpr std::size_t kMessageSize = 256;
inline constexpr std::string_view kReplyWord1 = "meatware";
inline constexpr std::string_view kReplyWord2 = "reply";
// "meatware reply " + host + NUL must fit in one message; this also keeps "meatware.<host>"
// well under NAME_MAX.
inline constexpr std::size_t kMaxHostLength = kMessageSize - 1 - (kReplyWord1.size() + 1 + kReplyWord2.size() + 1);
// The only mode a request FIFO may have: owner read/write, nobody else anything.
inline constexpr mode_t kFifoMode = 0600;

// ASCII lower-casing, as cluster-glue's strdown() does in the C locale.
using stockade::text::ascii_lower;

// Empty when `host` may be used in a path and a message; otherwise why not ("contains '/'").
// Refused: empty, longer than kMaxHostLength, '/', "..", whitespace, control characters, bytes
// outside printable ASCII, and "." alone.
std::string host_name_problem(std::string_view host);

// /run/meatware.<host>; host must already be lower-case and pass host_name_problem().
std::string fifo_path(std::string_view lower_host);

// The 256-byte confirmation for `lower_host`, NUL-padded (never uninitialised bytes).
std::array<char, kMessageSize> build_reply(std::string_view lower_host);

enum class ReplyVerdict { Confirmed, Malformed, OtherHost };

struct ParsedReply {
    ReplyVerdict verdict = ReplyVerdict::Malformed;
    std::string named_host; // the host the message names (lower-cased), when it names one
    std::string problem;    // why it is not a confirmation (empty when Confirmed)
};

// Parses what a client wrote: text up to the first NUL (bytes after it are padding and ignored),
// exactly three whitespace-separated words "meatware" "reply" <host>.  The host must equal
// `expected_lower_host` as a whole name, ASCII case-insensitively: "node1" never confirms
// "node10" (cluster-glue compares only strlen(reply) characters, a prefix match).
ParsedReply parse_reply(std::string_view bytes, std::string_view expected_lower_host);

// True when a message buffer is complete enough to judge: it holds kMessageSize bytes, a NUL or
// a newline.  (A writer that closes early is judged at EOF instead.)
bool message_complete(std::string_view bytes);

// Empty when `st` describes an acceptable request FIFO owned by `owner`; otherwise why not.
std::string fifo_problem(const struct stat &st, uid_t owner);

// A process holding a request FIFO open, found through /proc (needs root to see others).
struct FifoHolder {
    pid_t pid = 0;
    uid_t uid = 0;
    std::string command; // /proc/<pid>/comm
    bool reads = false;  // opened O_RDONLY or O_RDWR: a waiting fence
    bool writes = false; // opened O_WRONLY or O_RDWR: an operator's client
    bool blocked_in_open = false; // still inside open(path) (cluster-glue's waiter blocks there)
};

// Every process (except `exclude`) with a descriptor on the object with this device and inode,
// plus every process blocked inside open()/openat() of `path` (found from /proc/<pid>/syscall
// and the path argument read from /proc/<pid>/mem; a FIFO open blocks until the other side
// comes, and the blocked opener holds no descriptor yet).  Read-only: never opens the FIFO.
std::vector<FifoHolder> processes_holding(dev_t dev, ino_t ino, const std::string &path, pid_t exclude = 0);

// One /run/meatware.* entry, for `stockade-meatclient -l`.
struct PendingRequest {
    std::string host;      // as in the file name (non-printable bytes shown as '?')
    std::string path;
    std::string problem;   // fifo_problem() for uid 0, empty when fine
    std::time_t since = 0; // creation (birth) time, or ctime when the filesystem has none
    std::vector<FifoHolder> holders;

    bool has_waiter() const;
};

// Every request entry in kRunDir, oldest first.  Errors reading the directory are returned in
// *error (and the list is empty).
std::vector<PendingRequest> pending_requests(std::string *error);

// Why the run directory is unsafe for request FIFOs (not a root-owned directory, or writable by
// group/others), or empty when it is fine.
std::string run_dir_problem();

} // namespace stockade::meatware
