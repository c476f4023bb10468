// pr_protocol.hpp -- SCSI-3 Persistent Reservations as bytes (SPC-4 6.15/6.16): the CDBs and
// parameter lists the agent sends, the PR IN answers it parses, and the sense data it judges.
// Pure functions with no I/O, shared by both transports (SG_IO and libiscsi) and unit-tested on
// their own, so the part of the agent that cannot run on this machine (SG_IO) is still checked
// down to the ioctl.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stockade::scsi {

using Key = uint64_t; // a reservation key; 0 means "none"

// ---- Keys as text --------------------------------------------------------------------------
// "0x1a2b", "1A2B": 1..16 hex digits, not zero.  Returns nothing on anything else.
std::optional<Key> parse_key(std::string_view text);
// Lower-case hex without leading zeros and without "0x", as fence_scsi and sg_persist print keys.
std::string key_text(Key k);

// ---- Commands ------------------------------------------------------------------------------
constexpr uint8_t kOpPrIn = 0x5e;
constexpr uint8_t kOpPrOut = 0x5f;

enum class PrIn : uint8_t { ReadKeys = 0, ReadReservation = 1, ReportCapabilities = 2 };
enum class PrOut : uint8_t {
    Register = 0,
    Reserve = 1,
    Release = 2,
    Clear = 3,
    Preempt = 4,
    PreemptAndAbort = 5,
    RegisterAndIgnore = 6,
};

// Reservation types (PR type field).
constexpr uint8_t kTypeWriteExclusive = 1;
constexpr uint8_t kTypeExclusiveAccess = 3;
constexpr uint8_t kTypeWriteExclusiveRegistrantsOnly = 5; // what fence_scsi and stockade take
constexpr uint8_t kTypeExclusiveAccessRegistrantsOnly = 6;
constexpr uint8_t kTypeWriteExclusiveAllRegistrants = 7;
constexpr uint8_t kTypeExclusiveAccessAllRegistrants = 8;

struct PrOutNames {
    PrOut sa;
    const char *name;
};
inline constexpr std::array<PrOutNames, 7> kPrOutNames{{
    {PrOut::Register, "REGISTER"},
    {PrOut::Reserve, "RESERVE"},
    {PrOut::Release, "RELEASE"},
    {PrOut::Clear, "CLEAR"},
    {PrOut::Preempt, "PREEMPT"},
    {PrOut::PreemptAndAbort, "PREEMPT AND ABORT"},
    {PrOut::RegisterAndIgnore, "REGISTER AND IGNORE EXISTING KEY"},
}};
const char *pr_out_name(PrOut sa);
const char *pr_in_name(PrIn sa);

using Cdb = std::array<uint8_t, 10>;
constexpr uint16_t kPrInAllocation = 8192; // room for 1022 keys

Cdb pr_in_cdb(PrIn sa, uint16_t allocation = kPrInAllocation);
Cdb pr_out_cdb(PrOut sa, uint8_t type);
// The 24-byte PR OUT parameter list (basic format).
std::array<uint8_t, 24> pr_out_params(Key reservation_key, Key service_action_key, bool aptpl);

// ---- Answers -------------------------------------------------------------------------------
struct Keys {
    uint32_t generation = 0;
    std::vector<Key> keys; // one entry per registered I_T nexus (a key may repeat)
    bool has(Key k) const;
};
struct Reservation {
    uint32_t generation = 0;
    bool held = false;
    Key key = 0;
    uint8_t type = 0;
};
struct Capabilities {
    bool type_mask_valid = false;
    uint16_t type_mask = 0; // bit per type as in SPC-4 table 177, see allows()
    bool allows(uint8_t type) const;
};
// Each returns nothing when the answer is too short or inconsistent (why goes to *why).
std::optional<Keys> parse_read_keys(const uint8_t *data, size_t len, std::string *why);
std::optional<Reservation> parse_read_reservation(const uint8_t *data, size_t len, std::string *why);
std::optional<Capabilities> parse_report_capabilities(const uint8_t *data, size_t len, std::string *why);

// ---- Status and sense ----------------------------------------------------------------------
constexpr uint8_t kStatusGood = 0x00;
constexpr uint8_t kStatusCheckCondition = 0x02;
constexpr uint8_t kStatusBusy = 0x08;
constexpr uint8_t kStatusReservationConflict = 0x18;
constexpr uint8_t kStatusTaskSetFull = 0x28;

constexpr uint8_t kSenseNotReady = 0x2;
constexpr uint8_t kSenseIllegalRequest = 0x5;
constexpr uint8_t kSenseUnitAttention = 0x6;

struct Sense {
    uint8_t key = 0;
    uint8_t asc = 0;
    uint8_t ascq = 0;
};
// Fixed (0x70/0x71) and descriptor (0x72/0x73) formats; nothing when not sense data.
std::optional<Sense> parse_sense(const uint8_t *data, size_t len);

// What the agent does with one command's outcome: one table, used by both transports.
enum class Verdict {
    Good,
    Retry,               // UNIT ATTENTION, BUSY, TASK SET FULL, NOT READY becoming ready: send again
    ReservationConflict, // the I_T nexus is not registered (PR OUT) or is fenced (data commands)
    NotImplemented,      // ILLEGAL REQUEST: invalid opcode / field in CDB (no PR, or no PREEMPT AND ABORT)
    Failed,              // anything else
};
Verdict judge(uint8_t status, const std::optional<Sense> &sense);
// "CHECK CONDITION, ILLEGAL REQUEST 24/00 (invalid field in CDB)"
std::string describe(uint8_t status, const std::optional<Sense> &sense);

} // namespace stockade::scsi
