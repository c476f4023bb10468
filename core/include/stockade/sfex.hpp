// sfex.hpp -- reading and writing SFEX shared-disk locks, byte-compatible with resource-agents.
//
// SFEX (Shared Disk File EXclusiveness) keeps "which node owns the resource" on a small shared
// partition, so that in a split brain each side can tell whether it is the active one.  The format
// (resource-agents tools/sfex*, version 1 revision 3) is: block 0 = control data, block i = lock i,
// block size = the device's logical sector size; every number is ASCII decimal, left-aligned,
// NUL-padded, with the field's last byte NUL.  The holder proves it is alive by bumping the lock's
// count; a lock whose count stands still for lock_timeout is stale.
//
// This file and sfex.cpp use only the C++ standard library and POSIX, so an agent (which must not
// link libstockade) can compile sfex.cpp into its own shared object.  Errors are values: nothing
// here throws on bad data, prints or exits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace stockade::sfex {

inline constexpr int kVersion = 1;
inline constexpr int kRevision = 3;
inline constexpr int kMinLocks = 1;
inline constexpr int kMaxLocks = 999;
inline constexpr int kMaxCount = 999;
inline constexpr std::size_t kMaxNodename = 255;
inline constexpr char kStatusLocked = 'l';
inline constexpr char kStatusUnlocked = 'u';
inline constexpr std::size_t kMinBlockSize = 512; // the fixed fields fill 261 bytes

// What went wrong.  Each code maps (in one table) to the resource-agents tools' exit codes.
enum class Errc : uint8_t {
    ok,
    bad_argument,  // caller error: index out of range, node name too long, bad numlocks
    open_failed,   // device cannot be opened / sized / memory not available (tools: exit 3)
    io_error,      // read/write failed or was short
    bad_magic,     // block 0 is not SFEX data
    bad_version,   // version field is not 1
    bad_format,    // a field without its NUL, non-decimal text, out-of-range value, bad status
    bad_index,     // index > numlocks stored in the header
    blocksize_mismatch, // header blocksize differs from the device's sector size
    held_by_other, // acquire: the lock is held and its holder keeps renewing it
    collision,     // acquire: another node wrote the lock during the collision window
    not_holder,    // renew/release: the lock is not (or no longer) held by this node
    cancelled,     // the caller's cancel predicate became true during a wait
};

struct ErrcInfo {
    Errc code;
    const char *name;
    int tool_exit; // exit code of the resource-agents tool for this condition
};
const ErrcInfo &errc_info(Errc c);

struct Status {
    Errc code = Errc::ok;
    std::string message; // one line naming the field / cause
    bool ok() const { return code == Errc::ok; }
};

struct ControlData {
    char magic[4] = {'S', 'F', 'E', 'X'};
    int version = kVersion;
    int revision = kRevision;
    uint32_t blocksize = 512;
    int numlocks = 1;
};

struct LockData {
    char status = kStatusUnlocked;
    int count = 0;
    std::string nodename; // kept on unlock
    bool locked() const { return status == kStatusLocked; }
    bool held_by(std::string_view node) const { return locked() && nodename == node; }
};

// The count that follows c (0..999, wrapping from 999 to 0).
constexpr int next_count(int c) { return c >= kMaxCount ? c - kMaxCount : c + 1; }

// ---- Pure block codecs (no I/O; these are what the fuzz target feeds) ------------------------
// Parse a whole control block (block 0).  `block` may be any size; fewer than the fixed field
// bytes is a format error.
Status parse_control_block(std::span<const uint8_t> block, ControlData &out);
// Parse a whole lock block; `index` only names the lock in messages.
Status parse_lock_block(std::span<const uint8_t> block, int index, LockData &out);
// Encode into `block` (whole block zeroed first).  Values out of range are a bad_argument.
Status format_control_block(const ControlData &c, std::span<uint8_t> block);
Status format_lock_block(const LockData &l, std::span<uint8_t> block);

// ---- Device access --------------------------------------------------------------------------
// One opened SFEX device (block device or regular file).  Whole-block I/O at i * block size with
// O_DIRECT|O_SYNC and an aligned buffer; where O_DIRECT is refused (tmpfs, some filesystems) it
// falls back to O_SYNC buffered I/O and says so in direct_io().
class Device {
public:
    Device() = default;
    ~Device();
    Device(Device &&other) noexcept;
    Device &operator=(Device &&other) noexcept;
    Device(const Device &) = delete;
    Device &operator=(const Device &) = delete;

    // Opens `path` read-write (or read-only) and reads its logical sector size (BLKSSZGET for a
    // block device, 512 for a regular file).
    static Status open(const std::string &path, bool writable, Device &out);

    const std::string &path() const { return path_; }
    uint32_t sector_size() const { return sector_size_; }
    bool direct_io() const { return direct_; }
    bool is_open() const { return fd_ >= 0; }

    // Reads and validates block 0, including blocksize == sector size.
    Status read_control(ControlData &out);
    // Reads lock `index` (1-based) after checking it against the header's numlocks.
    Status read_lock(const ControlData &c, int index, LockData &out);
    Status write_control(const ControlData &c);
    Status write_lock(const ControlData &c, int index, const LockData &l);

private:
    Status read_block(uint64_t block_no, std::span<uint8_t> into);
    Status write_block(uint64_t block_no, std::span<const uint8_t> from);
    Status transfer(bool write, uint64_t offset, uint8_t *buf, std::size_t len);
    void close_fd();

    int fd_ = -1;
    std::string path_;
    uint32_t sector_size_ = 512;
    bool direct_ = false;
};

// ---- Operations with the tools' semantics ---------------------------------------------------
// uname(2) node name, as the tools use (error when longer than 255 bytes).
Status local_nodename(std::string &out);

// sfex_init -n numlocks: header + numlocks unlocked locks (count 0, empty name).
Status init(const std::string &device, int numlocks);

// sfex_stat -i index: header and lock.  Read-only.
Status stat(const std::string &device, int index, ControlData &control, LockData &lock);

// Waits are injectable so tests and agents can honour deadlines; `cancelled` is polled while
// sleeping (nullptr = never).
struct Timing {
    std::chrono::milliseconds collision_timeout{1000};
    std::chrono::milliseconds lock_timeout{60000};
    std::function<bool()> cancelled;
};

// sfex_daemon's acquisition: if another node holds the lock, wait lock_timeout and give up
// (held_by_other) when its count moved; then write l/count+1/our name, wait collision_timeout,
// re-read and give up (collision) when the name changed; then write count+1 again.  `result`
// (may be null) gets the final lock.
Status acquire(const std::string &device, int index, const std::string &nodename, const Timing &timing,
               LockData *result = nullptr);

// One monitor-interval update: the lock must be ours (else not_holder); write count+1.
Status renew(const std::string &device, int index, const std::string &nodename, LockData *result = nullptr);

// SIGTERM path: the lock must be ours (else not_holder, "lock was already released"); write
// status u keeping count and name.
Status release(const std::string &device, int index, const std::string &nodename);

} // namespace stockade::sfex
