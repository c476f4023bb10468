// scsi_targets.cpp -- see scsi_targets.hpp.
#include "scsi_targets.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <random>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

namespace stockade::scsitest {

using namespace std::chrono_literals;

namespace {

// The ISID of the agent's sessions, as agents/scsi/README.md documents it ("random" format value
// 0x53544b, qualifier 0x5343).  Written here as the documented numbers, not taken from the agent.
constexpr uint32_t kAgentIsidValue = 0x53544b;
constexpr uint32_t kAgentIsidQualifier = 0x5343;

bool port_accepts(int port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

void stop_process(std::unique_ptr<Subprocess> &p, int sig)
{
    if (!p)
        return;
    ::kill(p->pid(), sig);
    if (!p->wait(monotonic_ms() + 5000))
        p->kill_tree();
    p.reset();
}

std::string make_lun_file(const std::string &path)
{
    test::write_file(path, "");
    if (::truncate(path.c_str(), 8 << 20) != 0)
        return "cannot size " + path;
    return "";
}

} // namespace

std::string Target::url(int i) const
{
    return fmt::format("iscsi://127.0.0.1:{}/{}/{}", port, iqn(), first_lun() + i);
}

std::string Target::urls(int n) const
{
    std::string out;
    for (int i = 0; i < n; ++i)
        out += (i ? "," : "") + url(i);
    return out;
}

// ---- tgt ---------------------------------------------------------------------------------------

std::string TgtTarget::tgtadm(const std::vector<std::string> &args)
{
    std::vector<std::string> argv{"/usr/sbin/tgtadm", "-C", std::to_string(control_)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run(argv, "", 10s);
    if (r.exit_code != 0)
        return "tgtadm " + fmt::format("{}", fmt::join(args, " ")) + ": " + r.err + r.out;
    return "";
}

std::string TgtTarget::start(int luns)
{
    if (::access("/usr/sbin/tgtd", X_OK) != 0 || ::access("/usr/sbin/tgtadm", X_OK) != 0)
        return "tgtd/tgtadm not installed (package tgt)";
    if (::geteuid() != 0)
        return "tgtd needs root (its control socket lives in /var/run/tgtd)";
    std::random_device rd;
    for (int attempt = 0; attempt < 5 && !proc_; ++attempt) {
        control_ = 1000 + int((unsigned(::getpid()) * 7 + rd()) % 30000); // tgtadm -C takes up to 32767
        if (::access(fmt::format("/var/run/tgtd/socket.{}", control_).c_str(), F_OK) == 0)
            continue;
        port = test::free_tcp_port();
        SpawnSpec spec;
        spec.argv = {"/usr/sbin/tgtd", "-f", "-C", std::to_string(control_), "--iscsi",
                     fmt::format("portal=127.0.0.1:{}", port)};
        auto p = Subprocess::spawn(spec);
        if (!p)
            return "cannot start tgtd: " + p.error().message;
        proc_ = std::move(*p);
        bool up = false;
        for (int i = 0; i < 100 && !up; ++i) {
            std::this_thread::sleep_for(50ms);
            up = tgtadm({"--op", "show", "--mode", "sys"}).empty() && port_accepts(port);
            if (!test::pid_alive(proc_->pid()))
                break;
        }
        if (!up)
            stop_process(proc_, SIGKILL);
    }
    if (!proc_)
        return "tgtd did not come up on 127.0.0.1";
    if (auto e = tgtadm({"--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "1", "-T", iqn()}); !e.empty())
        return e;
    for (int i = 0; i < luns; ++i) {
        std::string file = fmt::format("{}/tgt-lun{}.img", dir_, i + 1);
        if (auto e = make_lun_file(file); !e.empty())
            return e;
        if (auto e = tgtadm({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun",
                             std::to_string(i + 1), "-b", file});
            !e.empty())
            return e;
    }
    luns_ = luns;
    return tgtadm({"--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"});
}

std::string TgtTarget::add_lun(int lun, const std::string &device_type)
{
    std::string file = fmt::format("{}/tgt-extra{}.img", dir_, lun);
    if (auto e = make_lun_file(file); !e.empty())
        return e;
    return tgtadm({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun",
                   std::to_string(lun), "--device-type", device_type, "-b", file});
}

void TgtTarget::stop()
{
    if (!proc_)
        return;
    // tgtd ignores SIGTERM; the documented stop is deleting its targets, then the system.
    (void)tgtadm({"--lld", "iscsi", "--op", "delete", "--force", "--mode", "target", "--tid", "1"});
    (void)tgtadm({"--op", "delete", "--mode", "system"});
    if (!proc_->wait(monotonic_ms() + 3000))
        proc_->kill_tree();
    proc_.reset();
}

// ---- istgt ------------------------------------------------------------------------------------

std::string IstgtTarget::start(int luns)
{
    if (::access("/usr/sbin/istgt", X_OK) != 0)
        return "istgt not installed (package istgt)";
    port = test::free_tcp_port();
    std::string conf = dir_ + "/istgt.conf";
    std::string lus;
    for (int i = 0; i < luns; ++i) {
        std::string file = fmt::format("{}/istgt-lun{}.img", dir_, i);
        if (auto e = make_lun_file(file); !e.empty())
            return e;
        lus += fmt::format("  LUN{} Storage {} 8MB\n", i, file);
    }
    test::write_file(dir_ + "/istgt-auth.conf", "\n");
    test::write_file(conf, fmt::format(R"([Global]
  NodeBase "iqn.2024-01.test.stockade"
  PidFile {0}/istgt.pid
  AuthFile {0}/istgt-auth.conf
  MediaDirectory {0}
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 32
  MaxConnections 4
[UnitControl]
  AuthMethod None
[PortalGroup1]
  Portal DA1 127.0.0.1:{1}
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.1/32
[LogicalUnit1]
  TargetName istgt
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest Auto
  UnitType Disk
{2})",
                                       dir_, port, lus));
    SpawnSpec spec;
    spec.argv = {"/usr/sbin/istgt", "-D", "-q", "-c", conf};
    auto p = Subprocess::spawn(spec);
    if (!p)
        return "cannot start istgt: " + p.error().message;
    proc_ = std::move(*p);
    for (int i = 0; i < 100; ++i) {
        if (port_accepts(port))
            return "";
        if (!test::pid_alive(proc_->pid()))
            break;
        std::this_thread::sleep_for(50ms);
    }
    stop();
    return "istgt did not listen on 127.0.0.1";
}

void IstgtTarget::stop()
{
    stop_process(proc_, SIGTERM);
}

// ---- the independent client --------------------------------------------------------------------

PrClient::PrClient(const Target &t, const std::string &initiator_iqn)
    : PrClient(fmt::format("127.0.0.1:{}", t.port), t.iqn(), t.first_lun(), initiator_iqn)
{
}

PrClient::PrClient(const std::string &portal, const std::string &target_iqn, int first_lun,
                   const std::string &initiator_iqn)
    : first_lun_(first_lun)
{
    ctx_ = iscsi_create_context(initiator_iqn.c_str());
    if (!ctx_) {
        error_ = "iscsi_create_context failed";
        return;
    }
    iscsi_set_targetname(ctx_, target_iqn.c_str());
    iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx_, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_isid_random(ctx_, kAgentIsidValue, kAgentIsidQualifier);
    iscsi_set_timeout(ctx_, 10);
    if (iscsi_full_connect_sync(ctx_, portal.c_str(), first_lun_) != 0)
        error_ = std::string("login failed: ") + iscsi_get_error(ctx_);
}

PrClient::~PrClient()
{
    if (ctx_)
        iscsi_destroy_context(ctx_);
}

namespace {

// Runs `send` until the answer is not a UNIT ATTENTION (one is queued per PR change on tgt).
template <class Send>
scsi_task *without_unit_attention(Send &&send)
{
    for (int i = 0; i < 5; ++i) {
        scsi_task *t = send();
        if (!t)
            return nullptr;
        if (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
            scsi_free_scsi_task(t);
            continue;
        }
        return t;
    }
    return nullptr;
}

} // namespace

int PrClient::write(int i)
{
    if (!ctx_ || !error_.empty())
        return -1;
    std::vector<unsigned char> block(512, 0x5a);
    scsi_task *t = without_unit_attention(
        [&] { return iscsi_write10_sync(ctx_, lun(i), 0, block.data(), 512, 512, 0, 0, 0, 0, 0); });
    if (!t)
        return -1;
    int s = t->status;
    scsi_free_scsi_task(t);
    return s;
}

int PrClient::read(int i)
{
    if (!ctx_ || !error_.empty())
        return -1;
    scsi_task *t = without_unit_attention([&] { return iscsi_read10_sync(ctx_, lun(i), 0, 512, 512, 0, 0, 0, 0, 0); });
    if (!t)
        return -1;
    int s = t->status;
    scsi_free_scsi_task(t);
    return s;
}

std::optional<std::vector<uint64_t>> PrClient::keys(int i)
{
    if (!ctx_ || !error_.empty())
        return std::nullopt;
    scsi_task *t = without_unit_attention(
        [&] { return iscsi_persistent_reserve_in_sync(ctx_, lun(i), SCSI_PERSISTENT_RESERVE_READ_KEYS, 4096); });
    if (!t)
        return std::nullopt;
    std::optional<std::vector<uint64_t>> out;
    if (t->status == SCSI_STATUS_GOOD) {
        auto *rk = static_cast<scsi_persistent_reserve_in_read_keys *>(scsi_datain_unmarshall(t));
        if (rk)
            out = std::vector<uint64_t>(rk->keys, rk->keys + rk->num_keys);
    }
    scsi_free_scsi_task(t);
    return out;
}

std::optional<std::pair<uint64_t, int>> PrClient::reservation(int i)
{
    if (!ctx_ || !error_.empty())
        return std::nullopt;
    scsi_task *t = without_unit_attention(
        [&] { return iscsi_persistent_reserve_in_sync(ctx_, lun(i), SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 4096); });
    if (!t)
        return std::nullopt;
    std::optional<std::pair<uint64_t, int>> out;
    if (t->status == SCSI_STATUS_GOOD) {
        auto *rr = static_cast<scsi_persistent_reserve_in_read_reservation *>(scsi_datain_unmarshall(t));
        if (rr)
            out = std::make_pair(rr->reserved ? rr->reservation_key : 0, rr->reserved ? int(rr->pr_type) : 0);
    }
    scsi_free_scsi_task(t);
    return out;
}

int PrClient::pr_out(int i, int service_action, int type, uint64_t key, uint64_t sa_key)
{
    if (!ctx_ || !error_.empty())
        return -1;
    scsi_persistent_reserve_out_basic params{};
    params.reservation_key = key;
    params.service_action_reservation_key = sa_key;
    scsi_task *t = without_unit_attention([&] {
        return iscsi_persistent_reserve_out_sync(ctx_, lun(i), service_action, SCSI_PERSISTENT_RESERVE_SCOPE_LU, type,
                                                 &params);
    });
    if (!t)
        return -1;
    int s = t->status;
    scsi_free_scsi_task(t);
    return s;
}

std::unique_ptr<PrClient> data_path(const Target &t, const std::string &iqn, uint64_t key, int luns)
{
    auto c = std::make_unique<PrClient>(t, iqn);
    if (t.session_bound_registrations())
        for (int i = 0; i < luns; ++i)
            c->pr_out(i, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, key);
    return c;
}

bool has_key(const std::optional<std::vector<uint64_t>> &keys, uint64_t k)
{
    return keys && std::find(keys->begin(), keys->end(), k) != keys->end();
}

} // namespace stockade::scsitest
