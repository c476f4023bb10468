// transport_sgio.cpp -- SCSI commands to a local block or sg device (/dev/sdX, /dev/mapper/mpathX,
// /dev/disk/by-id/..., /dev/sgN) through the SG_IO ioctl, the path sg_persist uses.  This machine's
// kernel has no SCSI devices, so only the checks before the ioctl run in the tests; what the
// ioctl returns is judged by the same code as the iSCSI transport (pr_protocol.cpp).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport.hpp"

namespace stockade::scsi {

namespace {

constexpr int64_t kMaxCommandMs = 30000; // one command never waits longer, whatever the deadline

class SgioTransport final : public Transport {
public:
    explicit SgioTransport(std::string path) : path_(std::move(path)) {}
    ~SgioTransport() override
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    SgioTransport(const SgioTransport &) = delete;
    SgioTransport &operator=(const SgioTransport &) = delete;

    const std::string &name() const override { return path_; }

    Result<void> connect(const stockade_ctx *) override
    {
        if (fd_ >= 0)
            return {};
        struct stat st {};
        if (::stat(path_.c_str(), &st) != 0)
            return Error{STOCKADE_RC_UNREACHABLE, path_ + ": " + std::strerror(errno)};
        if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
            return Error{STOCKADE_RC_BAD_CONFIG, path_ + " is not a block or sg device"};
        int fd = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return Error{errno == EACCES || errno == EPERM ? STOCKADE_RC_ACCESS_DENIED : STOCKADE_RC_UNREACHABLE,
                         "cannot open " + path_ + ": " + std::strerror(errno)};
        int version = 0;
        if (::ioctl(fd, SG_GET_VERSION_NUM, &version) != 0) {
            int e = errno;
            ::close(fd);
            return Error{STOCKADE_RC_BAD_CONFIG,
                         path_ + " does not take SCSI commands (SG_IO: " + std::strerror(e) + "); it is not a SCSI disk"};
        }
        fd_ = fd;
        return {};
    }

    Result<Reply> execute(const stockade_ctx *ctx, const Command &cmd) override
    {
        if (auto c = connect(ctx); !c)
            return c.error();
        int64_t left = stockade_remaining_ms(ctx);
        if (left <= 0)
            return Error{STOCKADE_RC_TIMEOUT, path_ + ": deadline passed before the command was sent"};
        Reply r;
        r.data.resize(cmd.in_len);
        uint8_t cdb[sizeof cmd.cdb];
        std::memcpy(cdb, cmd.cdb.data(), sizeof cdb);
        uint8_t sense[64] = {};
        sg_io_hdr_t h{};
        h.interface_id = 'S';
        h.cmd_len = sizeof cdb;
        h.cmdp = cdb;
        h.mx_sb_len = sizeof sense;
        h.sbp = sense;
        h.timeout = unsigned(std::min(left, kMaxCommandMs));
        if (cmd.dir == Direction::In) {
            h.dxfer_direction = SG_DXFER_FROM_DEV;
            h.dxfer_len = unsigned(cmd.in_len);
            h.dxferp = r.data.data();
        } else if (cmd.dir == Direction::Out) {
            h.dxfer_direction = SG_DXFER_TO_DEV;
            h.dxfer_len = unsigned(cmd.out_len);
            h.dxferp = const_cast<uint8_t *>(cmd.out); // SG_IO only reads it
        } else {
            h.dxfer_direction = SG_DXFER_NONE;
        }
        if (::ioctl(fd_, SG_IO, &h) != 0)
            return Error{STOCKADE_RC_UNREACHABLE, path_ + ": SG_IO failed: " + std::strerror(errno)};
        // DRIVER_SENSE (0x08) only says sense data is there; DID_TIME_OUT (3) / DRIVER_TIMEOUT (6) are timeouts.
        uint8_t driver = uint8_t(h.driver_status & 0x0f);
        if (h.host_status || (driver && driver != 0x08))
            return Error{h.host_status == 3 || driver == 6 ? STOCKADE_RC_TIMEOUT : STOCKADE_RC_UNREACHABLE,
                         path_ + ": transport error (host status " + std::to_string(h.host_status) +
                             ", driver status " + std::to_string(h.driver_status) + ")"};
        r.status = h.status;
        if (h.sb_len_wr > 0)
            r.sense = parse_sense(sense, h.sb_len_wr);
        if (cmd.dir == Direction::In)
            r.data.resize(cmd.in_len - std::min<size_t>(cmd.in_len, size_t(std::max(h.resid, 0))));
        return r;
    }

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace

Result<std::unique_ptr<Transport>> make_sgio_transport(const std::string &path)
{
    if (path.empty() || path[0] != '/')
        return Error{STOCKADE_RC_BAD_CONFIG, "device '" + path + "' must be an absolute path or an iscsi:// URL"};
    return std::unique_ptr<Transport>(std::make_unique<SgioTransport>(path));
}

} // namespace stockade::scsi
