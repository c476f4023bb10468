// transport_iscsi.cpp -- SCSI commands over an iSCSI session opened by libiscsi, so a node can
// fence through a target it has no kernel session to (and tests run without a kernel initiator).
// Every wait is libiscsi's asynchronous API under our own poll(2) loop: the host's deadline and
// cancel flag bound the login and every command, whatever the target does (istgt can stall).
//
// The ISID is fixed per node (a "random"-format ISID with stockade's constant and a qualifier
// from the parameters): a registration belongs to an I_T nexus (initiator name + ISID), so the
// same node must come back as the same nexus on every call.  It is never open-iscsi's OUI format,
// so our login can never reinstate (and drop) the node's kernel session.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <poll.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "transport.hpp"

namespace stockade::scsi {

namespace {

constexpr uint32_t kIsidRandom = 0x53544b; // "STK": stockade's ISID value (random format)
constexpr int64_t kPollSliceMs = 50;        // how often cancellation is checked while waiting

struct Url {
    std::string portal; // host:port as libiscsi takes it
    std::string target;
    int lun = 0;
};

Result<Url> parse_url(const std::string &url)
{
    const std::string scheme = "iscsi://";
    auto bad = [&](const std::string &why) {
        return Error{STOCKADE_RC_BAD_CONFIG, "device '" + url + "': " + why + " (expected iscsi://host[:port]/target-iqn/lun)"};
    };
    if (url.rfind(scheme, 0) != 0)
        return bad("not an iscsi:// URL");
    std::string rest = url.substr(scheme.size());
    if (rest.find('@') != std::string::npos)
        return bad("credentials in the URL are not accepted");
    size_t slash = rest.find('/');
    if (slash == std::string::npos || slash == 0)
        return bad("no host");
    std::string hostport = rest.substr(0, slash);
    size_t last = rest.rfind('/');
    if (last == slash)
        return bad("no LUN");
    Url u;
    u.target = rest.substr(slash + 1, last - slash - 1);
    std::string lun = rest.substr(last + 1);
    if (u.target.empty())
        return bad("no target name");
    if (lun.empty() || lun.size() > 5 || lun.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(lun) > 16383)
        return bad("LUN '" + lun + "' is not a number from 0 to 16383");
    u.lun = std::stoi(lun);
    std::string host = hostport, port = "3260";
    if (hostport[0] == '[') {
        size_t close = hostport.find(']');
        if (close == std::string::npos)
            return bad("unclosed '[' in the host");
        host = hostport.substr(0, close + 1);
        if (close + 1 < hostport.size()) {
            if (hostport[close + 1] != ':')
                return bad("junk after ']'");
            port = hostport.substr(close + 2);
        }
    } else if (size_t colon = hostport.find(':'); colon != std::string::npos) {
        host = hostport.substr(0, colon);
        port = hostport.substr(colon + 1);
    }
    if (host.empty() || host == "[]")
        return bad("no host");
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
        return bad("port '" + port + "' is not a number from 1 to 65535");
    u.portal = host + ":" + port;
    return u;
}

// State one asynchronous libiscsi call reports into.
struct Pending {
    bool done = false;
    int status = 0;
    scsi_task *task = nullptr;
};

void on_done(iscsi_context *, int status, void *command_data, void *private_data)
{
    auto *p = static_cast<Pending *>(private_data);
    p->done = true;
    p->status = status;
    p->task = static_cast<scsi_task *>(command_data);
}

// One login to one target; the LUNs of that target named in `devices` share it.
class IscsiSession {
public:
    IscsiSession(std::string url, Url u, TransportOptions opts) : url_(std::move(url)), u_(std::move(u)), opts_(std::move(opts)) {}
    ~IscsiSession() { drop(); }
    IscsiSession(const IscsiSession &) = delete;
    IscsiSession &operator=(const IscsiSession &) = delete;

    Result<void> connect(const stockade_ctx *ctx)
    {
        if (iscsi_)
            return {};
        if (opts_.initiator_iqn.empty())
            return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'initiator': no iSCSI initiator name for " + url_ +
                                                     " (set it, or have /etc/iscsi/initiatorname.iscsi)"};
        iscsi_ = iscsi_create_context(opts_.initiator_iqn.c_str());
        if (!iscsi_)
            return Error{STOCKADE_RC_INTERNAL, "cannot create an iSCSI context for " + url_};
        if (iscsi_set_targetname(iscsi_, u_.target.c_str()) != 0 ||
            iscsi_set_session_type(iscsi_, ISCSI_SESSION_NORMAL) != 0 ||
            iscsi_set_header_digest(iscsi_, ISCSI_HEADER_DIGEST_NONE_CRC32C) != 0 ||
            iscsi_set_isid_random(iscsi_, kIsidRandom, opts_.isid_qualifier) != 0) {
            std::string why = iscsi_get_error(iscsi_);
            drop();
            return Error{STOCKADE_RC_BAD_CONFIG, url_ + ": " + why};
        }
        iscsi_set_noautoreconnect(iscsi_, 1); // a lost session is an error we report, not hide
        Pending p;
        if (iscsi_full_connect_async(iscsi_, u_.portal.c_str(), u_.lun, on_done, &p) != 0) {
            std::string why = iscsi_get_error(iscsi_);
            drop();
            return Error{STOCKADE_RC_UNREACHABLE, "cannot connect to " + url_ + ": " + why};
        }
        if (auto w = wait(ctx, p, "login"); !w) {
            drop();
            return w.error();
        }
        if (p.status != SCSI_STATUS_GOOD) {
            std::string why = iscsi_get_error(iscsi_);
            drop();
            return Error{STOCKADE_RC_UNREACHABLE, "login to " + url_ + " as " + opts_.initiator_iqn + " failed: " + why};
        }
        return {};
    }

    Result<Reply> execute(const stockade_ctx *ctx, int lun, const std::string &url, const Command &cmd)
    {
        if (auto c = connect(ctx); !c)
            return c.error();
        uint8_t cdb[sizeof cmd.cdb];
        std::memcpy(cdb, cmd.cdb.data(), sizeof cdb);
        int dir = cmd.dir == Direction::In ? SCSI_XFER_READ : cmd.dir == Direction::Out ? SCSI_XFER_WRITE : SCSI_XFER_NONE;
        int len = int(cmd.dir == Direction::In ? cmd.in_len : cmd.dir == Direction::Out ? cmd.out_len : 0);
        scsi_task *task = scsi_create_task(int(sizeof cdb), cdb, dir, len);
        if (!task)
            return Error{STOCKADE_RC_INTERNAL, url + ": out of memory for a SCSI task"};
        iscsi_data out{cmd.out_len, const_cast<unsigned char *>(cmd.out)}; // libiscsi only reads it
        Pending p;
        if (iscsi_scsi_command_async(iscsi_, lun, task, on_done, cmd.dir == Direction::Out ? &out : nullptr, &p) != 0) {
            std::string why = iscsi_get_error(iscsi_);
            scsi_free_scsi_task(task);
            drop();
            return Error{STOCKADE_RC_UNREACHABLE, url + ": cannot send the command: " + why};
        }
        auto w = wait(ctx, p, "the command");
        if (!w) {
            drop(); // cancels the task through its callback; only then may it be freed
            scsi_free_scsi_task(task);
            return w.error();
        }
        Result<Reply> r = Reply{};
        if (p.status == SCSI_STATUS_ERROR || p.status == SCSI_STATUS_CANCELLED || p.status == SCSI_STATUS_TIMEOUT) {
            r = Error{p.status == SCSI_STATUS_TIMEOUT ? STOCKADE_RC_TIMEOUT : STOCKADE_RC_UNREACHABLE,
                      url + ": " + iscsi_get_error(iscsi_)};
            drop();
        } else {
            r->status = uint8_t(p.status);
            if (p.status == SCSI_STATUS_CHECK_CONDITION)
                r->sense = Sense{uint8_t(task->sense.key), uint8_t((task->sense.ascq >> 8) & 0xff),
                                 uint8_t(task->sense.ascq & 0xff)};
            if (task->datain.size > 0 && task->datain.data)
                r->data.assign(task->datain.data, task->datain.data + task->datain.size);
        }
        scsi_free_scsi_task(task);
        return r;
    }

private:
    // Services the session until `p` completes, the host's deadline passes or it cancels.
    Result<void> wait(const stockade_ctx *ctx, Pending &p, const char *what)
    {
        while (!p.done) {
            if (stockade::agent::cancelled(ctx))
                return Error{STOCKADE_RC_CANCELLED, url_ + ": cancelled while waiting for " + what};
            int64_t left = stockade_remaining_ms(ctx);
            if (left <= 0)
                return Error{STOCKADE_RC_TIMEOUT, url_ + ": no answer to " + what + " before the deadline"};
            pollfd pfd{iscsi_get_fd(iscsi_), short(iscsi_which_events(iscsi_)), 0};
            int n = ::poll(&pfd, 1, int(std::min(left, kPollSliceMs)));
            if (n < 0 && errno != EINTR)
                return Error{STOCKADE_RC_INTERNAL, url_ + ": poll failed: " + std::strerror(errno)};
            if (iscsi_service(iscsi_, n > 0 ? pfd.revents : 0) < 0 && !p.done)
                return Error{STOCKADE_RC_UNREACHABLE, url_ + ": " + iscsi_get_error(iscsi_)};
        }
        return {};
    }

    void drop()
    {
        if (iscsi_)
            iscsi_destroy_context(iscsi_);
        iscsi_ = nullptr;
    }

    std::string url_; // iscsi://portal/target, for messages about the login
    Url u_;
    TransportOptions opts_;
    iscsi_context *iscsi_ = nullptr;
};

class IscsiTransport final : public Transport {
public:
    IscsiTransport(std::string url, std::shared_ptr<IscsiSession> session, int lun)
        : url_(std::move(url)), session_(std::move(session)), lun_(lun)
    {
    }
    const std::string &name() const override { return url_; }
    Result<void> connect(const stockade_ctx *ctx) override { return session_->connect(ctx); }
    Result<Reply> execute(const stockade_ctx *ctx, const Command &cmd) override
    {
        return session_->execute(ctx, lun_, url_, cmd);
    }

private:
    std::string url_;
    std::shared_ptr<IscsiSession> session_;
    int lun_;
};

} // namespace

bool is_iscsi_url(const std::string &device)
{
    return device.rfind("iscsi://", 0) == 0;
}

Result<std::vector<std::unique_ptr<Transport>>> make_transports(const std::vector<std::string> &devices,
                                                                const TransportOptions &opts)
{
    std::vector<std::unique_ptr<Transport>> out;
    std::map<std::string, std::shared_ptr<IscsiSession>> sessions; // portal + target -> session
    for (const auto &d : devices) {
        for (const auto &t : out)
            if (t->name() == d)
                return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'devices': '" + d + "' is listed twice"};
        if (!is_iscsi_url(d)) {
            auto t = make_sgio_transport(d);
            if (!t)
                return t.error();
            out.push_back(std::move(*t));
            continue;
        }
        auto u = parse_url(d);
        if (!u)
            return u.error();
        auto &s = sessions[u->portal + " " + u->target];
        if (!s)
            s = std::make_shared<IscsiSession>("iscsi://" + u->portal + "/" + u->target, *u, opts);
        out.push_back(std::make_unique<IscsiTransport>(d, s, u->lun));
    }
    return out;
}

} // namespace stockade::scsi
