// transport.hpp -- how one SCSI command reaches one logical unit.  The agent's reservation logic
// (pr_device.cpp) is written once against this interface; a transport only moves a CDB, its data
// and the status/sense back: SG_IO on a local block or sg device, or an iSCSI session through
// libiscsi (no kernel initiator needed).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pr_protocol.hpp"
#include "stockade/agent.h"
#include "stockade/agent_support.hpp"
#include "stockade/result.hpp"

namespace stockade::scsi {

// One command's outcome as the device reported it.  Transport-level failures (connection lost,
// deadline) are an Error of the Result instead.
struct Reply {
    uint8_t status = 0;
    std::optional<Sense> sense;
    std::vector<uint8_t> data; // data-in actually received
};

enum class Direction { None, In, Out };

struct Command {
    Cdb cdb{};
    Direction dir = Direction::None;
    const uint8_t *out = nullptr; // data-out
    size_t out_len = 0;
    size_t in_len = 0; // data-in allocation
};

class Transport {
public:
    virtual ~Transport() = default;
    // Connects (iSCSI login) if not yet connected.  Bounded by the host's deadline.
    virtual Result<void> connect(const stockade_ctx *ctx) = 0;
    // Sends one command and waits for its status, bounded by the host's deadline.
    virtual Result<Reply> execute(const stockade_ctx *ctx, const Command &cmd) = 0;
    // How the device is named in messages ("iscsi://127.0.0.1:3260/iqn.../1", "/dev/sdc").
    virtual const std::string &name() const = 0;
};

// Connection settings that are not part of a device's own name.
struct TransportOptions {
    std::string initiator_iqn;   // iSCSI: this node's initiator name
    uint32_t isid_qualifier = 0; // iSCSI: the fixed ISID qualifier this node's sessions use
};

// One transport per device text, in order: "iscsi://host[:port]/target-iqn/lun" (LUNs of one target
// share one login) or a local path (SG_IO).  Connects nothing yet.  Errors name the device text.
Result<std::vector<std::unique_ptr<Transport>>> make_transports(const std::vector<std::string> &devices,
                                                                const TransportOptions &opts);
bool is_iscsi_url(const std::string &device);
Result<std::unique_ptr<Transport>> make_sgio_transport(const std::string &path); // transport_sgio.cpp

} // namespace stockade::scsi
