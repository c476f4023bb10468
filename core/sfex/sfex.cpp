// sfex.cpp -- SFEX on-disk format and lock operations (see sfex.hpp for the format and why).
//
// Deliberately only the C++ standard library and POSIX: agents compile this file into their own
// shared object.  The parsers never trust a byte they read: every field is bounds-checked, must
// end in NUL, must be decimal and in range, so corrupt or foreign data becomes a Status naming
// the field, never a crash or a plausible-looking lock.
#include "stockade/sfex.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace stockade::sfex {

namespace {

// On-disk field layout (offset, size) of the control block and the lock block.
struct Field {
    const char *name;
    std::size_t offset;
    std::size_t size;
};
constexpr Field kMagic{"magic", 0, 4};
constexpr Field kVersionField{"version", 4, 4};
constexpr Field kRevisionField{"revision", 8, 4};
constexpr Field kBlocksizeField{"blocksize", 12, 8};
constexpr Field kNumlocksField{"numlocks", 20, 4};
constexpr std::size_t kControlBytes = 24;

constexpr Field kStatusField{"status", 0, 1};
constexpr Field kCountField{"count", 1, 4};
constexpr Field kNodenameField{"nodename", 5, 256};
constexpr std::size_t kLockBytes = 261;

constexpr uint32_t kMaxBlockSize = 9999999; // the largest value the 8-byte field can hold

constexpr std::array<ErrcInfo, 13> kErrcTable{{
    {Errc::ok, "ok", 0},
    {Errc::bad_argument, "bad argument", 4},
    {Errc::open_failed, "cannot open device", 3},
    {Errc::io_error, "I/O error", 1},
    {Errc::bad_magic, "bad magic", 1},
    {Errc::bad_version, "wrong version", 1},
    {Errc::bad_format, "format error", 1},
    {Errc::bad_index, "index too large", 1},
    {Errc::blocksize_mismatch, "blocksize mismatch", 1},
    {Errc::held_by_other, "held by another node", 2},
    {Errc::collision, "collision", 2},
    {Errc::not_holder, "not the holder", 1},
    {Errc::cancelled, "cancelled", 1},
}};

Status fail(Errc c, std::string msg) { return Status{c, std::move(msg)}; }

std::string errno_text(int e) { return std::strerror(e); }

// The text of a NUL-padded field: the bytes before the first NUL.  The field's last byte must be
// NUL (the tools' own check), so the text is always shorter than the field.
Status field_text(std::span<const uint8_t> block, const Field &f, const char *what, std::string &out)
{
    if (block.size() < f.offset + f.size)
        return fail(Errc::bad_format, std::string(what) + ": block too short for field '" + f.name + "'");
    const uint8_t *p = block.data() + f.offset;
    if (p[f.size - 1] != 0)
        return fail(Errc::bad_format, std::string(what) + ": field '" + f.name + "' is not NUL-terminated");
    std::size_t n = 0;
    while (n < f.size && p[n] != 0)
        ++n;
    out.assign(reinterpret_cast<const char *>(p), n);
    return {};
}

Status decimal_field(std::span<const uint8_t> block, const Field &f, const char *what, long min, long max,
                     long &out)
{
    std::string text;
    if (Status s = field_text(block, f, what, text); !s.ok())
        return s;
    if (text.empty())
        return fail(Errc::bad_format, std::string(what) + ": field '" + f.name + "' is empty");
    long v = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9')
            return fail(Errc::bad_format,
                        std::string(what) + ": field '" + f.name + "' is not a decimal number");
        v = v * 10 + (ch - '0'); // at most 7 digits: cannot overflow
    }
    if (v < min || v > max)
        return fail(Errc::bad_format, std::string(what) + ": field '" + f.name + "' = " + std::to_string(v) +
                                          " is out of range " + std::to_string(min) + ".." + std::to_string(max));
    out = v;
    return {};
}

void put_decimal(std::span<uint8_t> block, const Field &f, long v)
{
    std::string s = std::to_string(v);
    std::memcpy(block.data() + f.offset, s.data(), std::min(s.size(), f.size - 1));
}

Status check_nodename(const std::string &name)
{
    if (name.empty())
        return fail(Errc::bad_argument, "node name is empty");
    if (name.size() > kMaxNodename)
        return fail(Errc::bad_argument,
                    "node name '" + name.substr(0, 32) + "...' is too long (at most 255 bytes)");
    if (name.find('\0') != std::string::npos)
        return fail(Errc::bad_argument, "node name contains a NUL byte");
    return {};
}

Status check_index(int index)
{
    if (index < kMinLocks || index > kMaxLocks)
        return fail(Errc::bad_argument, "index " + std::to_string(index) + " is out of range " +
                                            std::to_string(kMinLocks) + ".." + std::to_string(kMaxLocks));
    return {};
}

struct FreeDeleter {
    void operator()(uint8_t *p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

AlignedBuffer aligned_buffer(std::size_t size)
{
    long page = ::sysconf(_SC_PAGESIZE);
    std::size_t align = std::max<std::size_t>(page > 0 ? std::size_t(page) : 4096, 512);
    void *p = nullptr;
    if (::posix_memalign(&p, align, std::max(size, align)) != 0)
        return nullptr;
    std::memset(p, 0, std::max(size, align));
    return AlignedBuffer(static_cast<uint8_t *>(p));
}

// Sleeps `d`, polling `cancelled` every 20 ms.  False when cancelled.
bool wait_for(std::chrono::milliseconds d, const std::function<bool()> &cancelled)
{
    auto end = std::chrono::steady_clock::now() + d;
    for (;;) {
        if (cancelled && cancelled())
            return false;
        auto now = std::chrono::steady_clock::now();
        if (now >= end)
            return true;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(end - now,
                                                                                   std::chrono::milliseconds(20)));
    }
}

// Opens the device and reads its header: the common first steps of every operation.
Status open_checked(const std::string &device, bool writable, Device &dev, ControlData &control)
{
    if (Status s = Device::open(device, writable, dev); !s.ok())
        return s;
    return dev.read_control(control);
}

} // namespace

const ErrcInfo &errc_info(Errc c)
{
    for (const auto &e : kErrcTable)
        if (e.code == c)
            return e;
    return kErrcTable[0];
}

// ---- Codecs ---------------------------------------------------------------------------------

Status parse_control_block(std::span<const uint8_t> block, ControlData &out)
{
    const char *what = "control data";
    if (block.size() < kControlBytes)
        return fail(Errc::bad_format, "control data: block of " + std::to_string(block.size()) +
                                          " bytes is shorter than the " + std::to_string(kControlBytes) +
                                          "-byte header");
    if (std::memcmp(block.data() + kMagic.offset, "SFEX", 4) != 0) {
        char hex[64];
        std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", block[0], block[1], block[2], block[3]);
        return fail(Errc::bad_magic,
                    std::string("control data: bad magic ") + hex + " (expected 53 46 45 58 \"SFEX\"): not an SFEX device");
    }
    ControlData c;
    std::memcpy(c.magic, block.data(), 4);
    // The tools check every NUL terminator before looking at any value.
    std::string ignored;
    for (const Field *f : {&kVersionField, &kRevisionField, &kBlocksizeField, &kNumlocksField})
        if (Status s = field_text(block, *f, what, ignored); !s.ok())
            return s;
    long v = 0;
    if (Status s = decimal_field(block, kVersionField, what, 0, 999, v); !s.ok())
        return s;
    if (v != kVersion)
        return fail(Errc::bad_version, "control data: version " + std::to_string(v) + " is not supported (expected " +
                                           std::to_string(kVersion) + ")");
    c.version = int(v);
    if (Status s = decimal_field(block, kRevisionField, what, 0, 999, v); !s.ok())
        return s;
    c.revision = int(v); // a different revision is tolerated, as by the tools
    if (Status s = decimal_field(block, kBlocksizeField, what, long(kMinBlockSize), long(kMaxBlockSize), v); !s.ok())
        return s;
    c.blocksize = uint32_t(v);
    if (Status s = decimal_field(block, kNumlocksField, what, kMinLocks, kMaxLocks, v); !s.ok())
        return s;
    c.numlocks = int(v);
    out = c;
    return {};
}

Status parse_lock_block(std::span<const uint8_t> block, int index, LockData &out)
{
    std::string what = "lock data #" + std::to_string(index);
    if (block.size() < kLockBytes)
        return fail(Errc::bad_format, what + ": block of " + std::to_string(block.size()) + " bytes is shorter than the " +
                                          std::to_string(kLockBytes) + "-byte lock record");
    LockData l;
    std::string name;
    if (Status s = field_text(block, kCountField, what.c_str(), name); !s.ok())
        return s;
    if (Status s = field_text(block, kNodenameField, what.c_str(), name); !s.ok())
        return s;
    char st = char(block[kStatusField.offset]);
    if (st != kStatusLocked && st != kStatusUnlocked) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "%02x", unsigned(block[kStatusField.offset]));
        return fail(Errc::bad_format, what + ": status byte 0x" + hex + " is neither 'l' nor 'u'");
    }
    long count = 0;
    if (Status s = decimal_field(block, kCountField, what.c_str(), 0, kMaxCount, count); !s.ok())
        return s;
    l.status = st;
    l.count = int(count);
    l.nodename = std::move(name);
    out = std::move(l);
    return {};
}

Status format_control_block(const ControlData &c, std::span<uint8_t> block)
{
    if (block.size() < kControlBytes || c.blocksize < kMinBlockSize || c.blocksize > kMaxBlockSize)
        return fail(Errc::bad_argument, "control data: blocksize " + std::to_string(c.blocksize) + " is out of range");
    if (c.numlocks < kMinLocks || c.numlocks > kMaxLocks)
        return fail(Errc::bad_argument, "numlocks " + std::to_string(c.numlocks) + " is out of range 1..999");
    if (c.version < 0 || c.version > 999 || c.revision < 0 || c.revision > 999)
        return fail(Errc::bad_argument, "control data: version/revision out of range 0..999");
    std::fill(block.begin(), block.end(), 0);
    std::memcpy(block.data() + kMagic.offset, c.magic, 4);
    put_decimal(block, kVersionField, c.version);
    put_decimal(block, kRevisionField, c.revision);
    put_decimal(block, kBlocksizeField, long(c.blocksize));
    put_decimal(block, kNumlocksField, c.numlocks);
    return {};
}

Status format_lock_block(const LockData &l, std::span<uint8_t> block)
{
    if (block.size() < kLockBytes)
        return fail(Errc::bad_argument, "lock block too small");
    if (l.status != kStatusLocked && l.status != kStatusUnlocked)
        return fail(Errc::bad_argument, "lock status must be 'l' or 'u'");
    if (l.count < 0 || l.count > kMaxCount)
        return fail(Errc::bad_argument, "lock count " + std::to_string(l.count) + " is out of range 0..999");
    if (l.nodename.size() > kMaxNodename || l.nodename.find('\0') != std::string::npos)
        return fail(Errc::bad_argument, "node name is longer than 255 bytes or contains NUL");
    std::fill(block.begin(), block.end(), 0);
    block[kStatusField.offset] = uint8_t(l.status);
    put_decimal(block, kCountField, l.count);
    std::memcpy(block.data() + kNodenameField.offset, l.nodename.data(), l.nodename.size());
    return {};
}

// ---- Device ---------------------------------------------------------------------------------

Device::~Device() { close_fd(); }

Device::Device(Device &&o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), sector_size_(o.sector_size_), direct_(o.direct_)
{
    o.fd_ = -1;
}

Device &Device::operator=(Device &&o) noexcept
{
    if (this != &o) {
        close_fd();
        fd_ = o.fd_;
        path_ = std::move(o.path_);
        sector_size_ = o.sector_size_;
        direct_ = o.direct_;
        o.fd_ = -1;
    }
    return *this;
}

void Device::close_fd()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

Status Device::open(const std::string &path, bool writable, Device &out)
{
    int base = (writable ? O_RDWR : O_RDONLY) | O_SYNC | O_CLOEXEC;
    bool direct = true;
    int fd;
    for (;;) {
        fd = ::open(path.c_str(), base | (direct ? O_DIRECT : 0));
        if (fd >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EINVAL && direct) { // the filesystem refuses O_DIRECT (tmpfs)
            direct = false;
            continue;
        }
        return fail(Errc::open_failed, "can't open device " + path + ": " + errno_text(errno));
    }
    Device d;
    d.fd_ = fd;
    d.path_ = path;
    d.direct_ = direct;
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(Errc::open_failed, "can't stat device " + path + ": " + errno_text(errno));
    if (S_ISBLK(st.st_mode)) {
        int ss = 0;
        if (::ioctl(fd, BLKSSZGET, &ss) != 0 || ss <= 0)
            return fail(Errc::open_failed, "can't get the sector size of " + path + ": " + errno_text(errno));
        d.sector_size_ = uint32_t(ss);
    } else if (S_ISREG(st.st_mode)) {
        d.sector_size_ = 512;
    } else {
        return fail(Errc::open_failed, path + " is neither a block device nor a regular file");
    }
    if (d.sector_size_ < kMinBlockSize || d.sector_size_ > kMaxBlockSize)
        return fail(Errc::open_failed, path + ": unsupported sector size " + std::to_string(d.sector_size_));
    out = std::move(d);
    return {};
}

Status Device::transfer(bool write, uint64_t offset, uint8_t *buf, std::size_t len)
{
    if (fd_ < 0)
        return fail(Errc::io_error, "device is not open");
    for (;;) {
        ssize_t n = write ? ::pwrite(fd_, buf, len, off_t(offset)) : ::pread(fd_, buf, len, off_t(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && direct_) {
            // O_DIRECT accepted at open but refused for this transfer: fall back to O_SYNC only.
            int fl = ::fcntl(fd_, F_GETFL);
            if (fl >= 0 && ::fcntl(fd_, F_SETFL, fl & ~O_DIRECT) == 0) {
                direct_ = false;
                continue;
            }
        }
        if (n < 0)
            return fail(Errc::io_error, std::string("can't ") + (write ? "write" : "read") + " " + path_ + " at offset " +
                                            std::to_string(offset) + ": " + errno_text(errno));
        if (std::size_t(n) != len)
            return fail(Errc::io_error, std::string("short ") + (write ? "write" : "read") + " on " + path_ +
                                            " at offset " + std::to_string(offset) + " (" + std::to_string(n) + " of " +
                                            std::to_string(len) + " bytes): the block must be transferred whole");
        return {};
    }
}

Status Device::read_block(uint64_t block_no, std::span<uint8_t> into)
{
    AlignedBuffer buf = aligned_buffer(sector_size_);
    if (!buf)
        return fail(Errc::open_failed, "failed to allocate aligned memory");
    if (Status s = transfer(false, block_no * sector_size_, buf.get(), sector_size_); !s.ok())
        return s;
    std::memcpy(into.data(), buf.get(), std::min<std::size_t>(into.size(), sector_size_));
    return {};
}

Status Device::write_block(uint64_t block_no, std::span<const uint8_t> from)
{
    AlignedBuffer buf = aligned_buffer(sector_size_);
    if (!buf)
        return fail(Errc::open_failed, "failed to allocate aligned memory");
    std::memcpy(buf.get(), from.data(), std::min<std::size_t>(from.size(), sector_size_));
    return transfer(true, block_no * sector_size_, buf.get(), sector_size_);
}

Status Device::read_control(ControlData &out)
{
    std::string buf(sector_size_, '\0');
    std::span<uint8_t> block(reinterpret_cast<uint8_t *>(buf.data()), buf.size());
    if (Status s = read_block(0, block); !s.ok())
        return s;
    ControlData c;
    if (Status s = parse_control_block(block, c); !s.ok()) {
        s.message = path_ + ": " + s.message;
        return s;
    }
    if (c.blocksize != sector_size_)
        return fail(Errc::blocksize_mismatch, path_ + ": header blocksize " + std::to_string(c.blocksize) +
                                                  " differs from the device's sector size " +
                                                  std::to_string(sector_size_));
    out = c;
    return {};
}

Status Device::read_lock(const ControlData &c, int index, LockData &out)
{
    if (Status s = check_index(index); !s.ok())
        return s;
    if (index > c.numlocks)
        return fail(Errc::bad_index, path_ + ": index " + std::to_string(index) + " is too large. " +
                                         std::to_string(c.numlocks) + " locks are stored.");
    std::string buf(sector_size_, '\0');
    std::span<uint8_t> block(reinterpret_cast<uint8_t *>(buf.data()), buf.size());
    if (Status s = read_block(uint64_t(index), block); !s.ok())
        return s;
    if (Status s = parse_lock_block(block, index, out); !s.ok()) {
        s.message = path_ + ": " + s.message;
        return s;
    }
    return {};
}

Status Device::write_control(const ControlData &c)
{
    if (c.blocksize != sector_size_)
        return fail(Errc::blocksize_mismatch, path_ + ": blocksize " + std::to_string(c.blocksize) +
                                                  " differs from the device's sector size " +
                                                  std::to_string(sector_size_));
    std::string buf(sector_size_, '\0');
    std::span<uint8_t> block(reinterpret_cast<uint8_t *>(buf.data()), buf.size());
    if (Status s = format_control_block(c, block); !s.ok())
        return s;
    return write_block(0, block);
}

Status Device::write_lock(const ControlData &c, int index, const LockData &l)
{
    if (Status s = check_index(index); !s.ok())
        return s;
    if (index > c.numlocks)
        return fail(Errc::bad_index, path_ + ": index " + std::to_string(index) + " is too large. " +
                                         std::to_string(c.numlocks) + " locks are stored.");
    std::string buf(sector_size_, '\0');
    std::span<uint8_t> block(reinterpret_cast<uint8_t *>(buf.data()), buf.size());
    if (Status s = format_lock_block(l, block); !s.ok())
        return s;
    return write_block(uint64_t(index), block);
}

// ---- Operations -----------------------------------------------------------------------------

Status local_nodename(std::string &out)
{
    struct utsname u {};
    if (::uname(&u) != 0)
        return fail(Errc::open_failed, "uname failed: " + errno_text(errno));
    std::string n = u.nodename;
    if (Status s = check_nodename(n); !s.ok())
        return s;
    out = n;
    return {};
}

Status init(const std::string &device, int numlocks)
{
    if (numlocks < kMinLocks || numlocks > kMaxLocks)
        return fail(Errc::bad_argument, "numlocks " + std::to_string(numlocks) + " is out of range 1..999");
    Device dev;
    if (Status s = Device::open(device, true, dev); !s.ok())
        return s;
    ControlData c;
    c.blocksize = dev.sector_size();
    c.numlocks = numlocks;
    if (Status s = dev.write_control(c); !s.ok())
        return s;
    LockData empty;
    for (int i = 1; i <= numlocks; ++i)
        if (Status s = dev.write_lock(c, i, empty); !s.ok())
            return s;
    return {};
}

Status stat(const std::string &device, int index, ControlData &control, LockData &lock)
{
    if (Status s = check_index(index); !s.ok())
        return s;
    Device dev;
    if (Status s = open_checked(device, false, dev, control); !s.ok())
        return s;
    return dev.read_lock(control, index, lock);
}

// acquire, renew and release start alike: valid index and node name, the device opened for
// writing, and the lock block read.
Status open_lock_for_update(const std::string &device, int index, const std::string &nodename, Device &dev,
                            ControlData &c, LockData &l)
{
    if (Status s = check_index(index); !s.ok())
        return s;
    if (Status s = check_nodename(nodename); !s.ok())
        return s;
    if (Status s = open_checked(device, true, dev, c); !s.ok())
        return s;
    return dev.read_lock(c, index, l);
}

Status acquire(const std::string &device, int index, const std::string &nodename, const Timing &timing,
               LockData *result)
{
    Device dev;
    ControlData c;
    LockData l;
    if (Status s = open_lock_for_update(device, index, nodename, dev, c, l); !s.ok())
        return s;
    if (l.locked() && l.nodename != nodename) {
        // Held by someone else: it is alive only if its count moves within lock_timeout.
        if (!wait_for(timing.lock_timeout, timing.cancelled))
            return fail(Errc::cancelled, "cancelled while waiting lock_timeout");
        LockData again;
        if (Status s = dev.read_lock(c, index, again); !s.ok())
            return s;
        if (again.count != l.count)
            return fail(Errc::held_by_other, "can't acquire lock #" + std::to_string(index) +
                                                 ": the lock's already held by node '" + again.nodename +
                                                 "' (count moved " + std::to_string(l.count) + " -> " +
                                                 std::to_string(again.count) + ")");
        l = again; // stale: take it, counting on from what is on disk now
    }
    LockData mine;
    mine.status = kStatusLocked;
    mine.count = next_count(l.count);
    mine.nodename = nodename;
    if (Status s = dev.write_lock(c, index, mine); !s.ok())
        return s;
    if (!wait_for(timing.collision_timeout, timing.cancelled))
        return fail(Errc::cancelled, "cancelled while waiting collision_timeout");
    LockData check;
    if (Status s = dev.read_lock(c, index, check); !s.ok())
        return s;
    if (check.nodename != nodename)
        return fail(Errc::collision, "can't acquire lock #" + std::to_string(index) +
                                         ": collision detected in the air (node '" + check.nodename +
                                         "' wrote the lock)");
    mine.count = next_count(mine.count); // extend: the collision wait used up time
    if (Status s = dev.write_lock(c, index, mine); !s.ok())
        return s;
    if (result)
        *result = mine;
    return {};
}

Status renew(const std::string &device, int index, const std::string &nodename, LockData *result)
{
    Device dev;
    ControlData c;
    LockData l;
    if (Status s = open_lock_for_update(device, index, nodename, dev, c, l); !s.ok())
        return s;
    if (!l.held_by(nodename))
        return fail(Errc::not_holder, "can't update lock #" + std::to_string(index) + ": it is " +
                                          (l.locked() ? "held by node '" + l.nodename + "'" : std::string("unlocked")));
    l.count = next_count(l.count);
    if (Status s = dev.write_lock(c, index, l); !s.ok())
        return s;
    if (result)
        *result = l;
    return {};
}

Status release(const std::string &device, int index, const std::string &nodename)
{
    Device dev;
    ControlData c;
    LockData l;
    if (Status s = open_lock_for_update(device, index, nodename, dev, c, l); !s.ok())
        return s;
    if (!l.held_by(nodename))
        return fail(Errc::not_holder, "lock #" + std::to_string(index) + " was already released (" +
                                          (l.locked() ? "held by node '" + l.nodename + "'" : std::string("unlocked")) +
                                          ")");
    l.status = kStatusUnlocked; // count and name are kept, as the daemon does
    return dev.write_lock(c, index, l);
}

} // namespace stockade::sfex
