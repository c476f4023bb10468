// scsi_targets.hpp -- real iSCSI targets for the scsi agent's tests and benchmark, and an
// independent initiator to check what the agent did.
//
// TgtTarget runs Debian's tgtd (user space, file-backed LUNs) and IstgtTarget istgt (a second,
// independent implementation), each on 127.0.0.1 and a port chosen at run time, stopped by PID.
// PrClient is a deliberately separate reader/writer: it uses libiscsi's own synchronous PR and
// WRITE10 helpers and shares no code with the agent, so a test can see with its own eyes that a
// fenced node's WRITE fails with RESERVATION CONFLICT and that its key is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stockade/process.hpp"
#include "test_support.hpp"

struct iscsi_context;

namespace stockade::scsitest {

class Target {
public:
    virtual ~Target() = default;
    // "" when running, else why it cannot run here (the test then reports SKIPPED).
    virtual std::string start(int luns) = 0;
    virtual void stop() = 0;
    virtual std::string name() const = 0;  // "tgt", "istgt"
    virtual std::string iqn() const = 0;
    virtual int first_lun() const = 0;     // tgt: 1 (LUN 0 is its controller), istgt: 0
    // tgt binds a registration to the iSCSI session (a new login of the same initiator name and
    // ISID is not registered); SPC and istgt bind it to the I_T nexus (initiator name + ISID).
    virtual bool session_bound_registrations() const = 0;
    int port = 0;
    // iscsi://127.0.0.1:port/iqn/lun of the i-th data LUN (0-based)
    std::string url(int i) const;
    std::string urls(int n) const; // the first n, comma separated
};

class TgtTarget final : public Target {
public:
    explicit TgtTarget(const std::string &dir) : dir_(dir) {}
    ~TgtTarget() override { stop(); }
    std::string start(int luns) override;
    void stop() override;
    std::string name() const override { return "tgt"; }
    std::string iqn() const override { return "iqn.2024-01.test.stockade:tgt"; }
    int first_lun() const override { return 1; }
    bool session_bound_registrations() const override { return true; }
    // Adds a LUN of another device type (e.g. "cd": no persistent reservations).
    std::string add_lun(int lun, const std::string &device_type);

private:
    std::string tgtadm(const std::vector<std::string> &args);
    std::string dir_;
    int control_ = 0;
    int luns_ = 0;
    std::unique_ptr<Subprocess> proc_;
};

class IstgtTarget final : public Target {
public:
    explicit IstgtTarget(const std::string &dir) : dir_(dir) {}
    ~IstgtTarget() override { stop(); }
    std::string start(int luns) override;
    void stop() override;
    std::string name() const override { return "istgt"; }
    std::string iqn() const override { return "iqn.2024-01.test.stockade:istgt"; }
    int first_lun() const override { return 0; }
    bool session_bound_registrations() const override { return false; }

private:
    std::string dir_;
    std::unique_ptr<Subprocess> proc_;
};

// One node's data path: an iSCSI session with the node's IQN and the ISID the agent documents
// for its sessions (agents/scsi/README.md), so it is the same I_T nexus the agent registers.
class PrClient {
public:
    PrClient(const Target &t, const std::string &initiator_iqn);
    PrClient(const std::string &portal, const std::string &target_iqn, int first_lun, const std::string &initiator_iqn);
    ~PrClient();
    PrClient(const PrClient &) = delete;
    PrClient &operator=(const PrClient &) = delete;
    std::string error() const { return error_; } // "" when logged in

    // SCSI status of one WRITE(10) of block 0 on the i-th data LUN, after clearing UNIT ATTENTIONs
    // (0 GOOD, 0x18 RESERVATION CONFLICT); -1 on a transport error.
    int write(int i);
    int read(int i);
    std::optional<std::vector<uint64_t>> keys(int i);
    // (key, type) of the reservation; key 0 when none.
    std::optional<std::pair<uint64_t, int>> reservation(int i);
    // PR OUT from this nexus; returns the SCSI status.
    int pr_out(int i, int service_action, int type, uint64_t key, uint64_t sa_key);

private:
    int lun(int i) const { return first_lun_ + i; }
    iscsi_context *ctx_ = nullptr;
    int first_lun_ = 0;
    std::string error_;
};

// A node's data path on the first `luns` LUNs: on a target that binds registrations to sessions
// (tgt) the session registers the node's key itself, as a node's kernel initiator is registered
// by unfencing through SG_IO on its own device; elsewhere it is the nexus the agent registered.
std::unique_ptr<PrClient> data_path(const Target &t, const std::string &iqn, uint64_t key, int luns);

bool has_key(const std::optional<std::vector<uint64_t>> &keys, uint64_t k);

} // namespace stockade::scsitest
