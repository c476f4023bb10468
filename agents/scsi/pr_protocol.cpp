// pr_protocol.cpp -- see pr_protocol.hpp.  Byte offsets follow SPC-4 (PERSISTENT RESERVE IN/OUT,
// sense data formats); nothing here touches a device.
#include "pr_protocol.hpp"

#include <algorithm>
#include <cstdio>

namespace stockade::scsi {

namespace {

uint32_t be32(const uint8_t *p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

Key be64(const uint8_t *p)
{
    return Key(be32(p)) << 32 | be32(p + 4);
}

void put_be64(uint8_t *p, Key v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        p[i] = uint8_t(v & 0xff);
}

constexpr std::array<std::pair<PrIn, const char *>, 3> kPrInNames{{
    {PrIn::ReadKeys, "READ KEYS"},
    {PrIn::ReadReservation, "READ RESERVATION"},
    {PrIn::ReportCapabilities, "REPORT CAPABILITIES"},
}};

// Type-mask bit (byte 4 << 8 | byte 5 of REPORT CAPABILITIES) of each reservation type.
constexpr std::array<std::pair<uint8_t, uint16_t>, 6> kTypeMaskBits{{
    {kTypeWriteExclusive, 0x0200},
    {kTypeExclusiveAccess, 0x0800},
    {kTypeWriteExclusiveRegistrantsOnly, 0x2000},
    {kTypeExclusiveAccessRegistrantsOnly, 0x4000},
    {kTypeWriteExclusiveAllRegistrants, 0x8000},
    {kTypeExclusiveAccessAllRegistrants, 0x0001},
}};

// Additional sense codes the messages name (asc << 8 | ascq).
constexpr std::array<std::pair<uint16_t, const char *>, 12> kAscNames{{
    {0x0400, "logical unit not ready"},
    {0x0401, "logical unit becoming ready"},
    {0x2000, "invalid command operation code"},
    {0x2400, "invalid field in CDB"},
    {0x2500, "logical unit not supported"},
    {0x2600, "invalid field in parameter list"},
    {0x2900, "power on, reset or bus device reset"},
    {0x2a03, "reservations preempted"},
    {0x2a04, "reservations released"},
    {0x2a05, "registrations preempted"},
    {0x3f0e, "reported LUNs data has changed"},
    {0x5500, "system resource failure"},
}};

constexpr std::array<std::pair<uint8_t, const char *>, 9> kSenseKeyNames{{
    {0x0, "NO SENSE"},
    {0x1, "RECOVERED ERROR"},
    {0x2, "NOT READY"},
    {0x3, "MEDIUM ERROR"},
    {0x4, "HARDWARE ERROR"},
    {0x5, "ILLEGAL REQUEST"},
    {0x6, "UNIT ATTENTION"},
    {0x7, "DATA PROTECT"},
    {0xb, "ABORTED COMMAND"},
}};

constexpr std::array<std::pair<uint8_t, const char *>, 6> kStatusNames{{
    {kStatusGood, "GOOD"},
    {kStatusCheckCondition, "CHECK CONDITION"},
    {kStatusBusy, "BUSY"},
    {kStatusReservationConflict, "RESERVATION CONFLICT"},
    {kStatusTaskSetFull, "TASK SET FULL"},
    {0x40, "TASK ABORTED"},
}};

template <class Table, class K>
const char *lookup(const Table &t, K k, const char *otherwise)
{
    for (const auto &[key, name] : t)
        if (key == k)
            return name;
    return otherwise;
}

} // namespace

std::optional<Key> parse_key(std::string_view text)
{
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text.remove_prefix(2);
    while (text.size() > 1 && text[0] == '0')
        text.remove_prefix(1);
    if (text.empty() || text.size() > 16)
        return std::nullopt;
    Key k = 0;
    for (char c : text) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return std::nullopt;
        k = k << 4 | Key(d);
    }
    if (k == 0)
        return std::nullopt;
    return k;
}

std::string key_text(Key k)
{
    char buf[24];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(k));
    return buf;
}

const char *pr_out_name(PrOut sa)
{
    for (const auto &n : kPrOutNames)
        if (n.sa == sa)
            return n.name;
    return "PR OUT";
}

const char *pr_in_name(PrIn sa)
{
    return lookup(kPrInNames, sa, "PR IN");
}

Cdb pr_in_cdb(PrIn sa, uint16_t allocation)
{
    Cdb c{};
    c[0] = kOpPrIn;
    c[1] = uint8_t(sa) & 0x1f;
    c[7] = uint8_t(allocation >> 8);
    c[8] = uint8_t(allocation & 0xff);
    return c;
}

Cdb pr_out_cdb(PrOut sa, uint8_t type)
{
    Cdb c{};
    c[0] = kOpPrOut;
    c[1] = uint8_t(sa) & 0x1f;
    c[2] = type & 0x0f; // scope 0: LU_SCOPE
    c[8] = 24;          // parameter list length (bytes 5..8)
    return c;
}

std::array<uint8_t, 24> pr_out_params(Key reservation_key, Key service_action_key, bool aptpl)
{
    std::array<uint8_t, 24> p{};
    put_be64(p.data(), reservation_key);
    put_be64(p.data() + 8, service_action_key);
    if (aptpl)
        p[20] = 0x01;
    return p;
}

bool Keys::has(Key k) const
{
    for (Key x : keys)
        if (x == k)
            return true;
    return false;
}

bool Capabilities::allows(uint8_t type) const
{
    if (!type_mask_valid)
        return true; // the device does not say; SPC-3 devices support all six
    for (const auto &[t, bit] : kTypeMaskBits)
        if (t == type)
            return (type_mask & bit) != 0;
    return false;
}

std::optional<Keys> parse_read_keys(const uint8_t *data, size_t len, std::string *why)
{
    if (len < 8) {
        if (why)
            *why = "READ KEYS answer is " + std::to_string(len) + " bytes, shorter than its 8-byte header";
        return std::nullopt;
    }
    Keys k;
    k.generation = be32(data);
    uint32_t additional = be32(data + 4);
    if (additional % 8) {
        if (why)
            *why = "READ KEYS additional length " + std::to_string(additional) + " is not a multiple of 8";
        return std::nullopt;
    }
    // A list longer than our allocation is truncated by the device; read what arrived, whole keys only.
    size_t have = std::min<size_t>(additional, len - 8) / 8;
    if (have < additional / 8) {
        if (why)
            *why = "READ KEYS lists " + std::to_string(additional / 8) + " keys but only " + std::to_string(have) +
                   " arrived";
        return std::nullopt;
    }
    for (size_t i = 0; i < have; ++i)
        k.keys.push_back(be64(data + 8 + 8 * i));
    return k;
}

std::optional<Reservation> parse_read_reservation(const uint8_t *data, size_t len, std::string *why)
{
    if (len < 8) {
        if (why)
            *why = "READ RESERVATION answer is " + std::to_string(len) + " bytes, shorter than its 8-byte header";
        return std::nullopt;
    }
    Reservation r;
    r.generation = be32(data);
    uint32_t additional = be32(data + 4);
    if (additional == 0)
        return r;
    if (additional < 16 || len < 24) {
        if (why)
            *why = "READ RESERVATION additional length " + std::to_string(additional) + " with " +
                   std::to_string(len) + " bytes received";
        return std::nullopt;
    }
    r.held = true;
    r.key = be64(data + 8);
    r.type = data[21] & 0x0f;
    return r;
}

std::optional<Capabilities> parse_report_capabilities(const uint8_t *data, size_t len, std::string *why)
{
    if (len < 6) {
        if (why)
            *why = "REPORT CAPABILITIES answer is " + std::to_string(len) + " bytes, shorter than 6";
        return std::nullopt;
    }
    Capabilities c;
    c.type_mask_valid = (data[3] & 0x80) != 0;
    c.type_mask = uint16_t(data[4] << 8 | data[5]);
    return c;
}

std::optional<Sense> parse_sense(const uint8_t *data, size_t len)
{
    if (!data || len < 2)
        return std::nullopt;
    uint8_t code = data[0] & 0x7f;
    Sense s;
    if (code == 0x70 || code == 0x71) {
        if (len < 3)
            return std::nullopt;
        s.key = data[2] & 0x0f;
        if (len >= 14) {
            s.asc = data[12];
            s.ascq = data[13];
        }
        return s;
    }
    if (code == 0x72 || code == 0x73) {
        s.key = data[1] & 0x0f;
        if (len >= 4) {
            s.asc = data[2];
            s.ascq = data[3];
        }
        return s;
    }
    return std::nullopt;
}

Verdict judge(uint8_t status, const std::optional<Sense> &sense)
{
    switch (status) {
    case kStatusGood:
        return Verdict::Good;
    case kStatusReservationConflict:
        return Verdict::ReservationConflict;
    case kStatusBusy:
    case kStatusTaskSetFull:
        return Verdict::Retry;
    case kStatusCheckCondition:
        if (!sense)
            return Verdict::Failed;
        if (sense->key == kSenseUnitAttention)
            return Verdict::Retry;
        if (sense->key == kSenseNotReady && sense->asc == 0x04 && sense->ascq == 0x01)
            return Verdict::Retry;
        if (sense->key == kSenseIllegalRequest && (sense->asc == 0x20 || sense->asc == 0x24))
            return Verdict::NotImplemented;
        return Verdict::Failed;
    default:
        return Verdict::Failed;
    }
}

std::string describe(uint8_t status, const std::optional<Sense> &sense)
{
    char buf[160];
    const char *st = lookup(kStatusNames, status, nullptr);
    std::string out = st ? st : "status 0x" + key_text(status);
    if (status == kStatusCheckCondition && sense) {
        std::snprintf(buf, sizeof buf, ", %s %02X/%02X", lookup(kSenseKeyNames, sense->key, "sense key"), sense->asc,
                      sense->ascq);
        out += buf;
        if (const char *what = lookup(kAscNames, uint16_t(sense->asc << 8 | sense->ascq), nullptr))
            out += std::string(" (") + what + ")";
    }
    return out;
}

} // namespace stockade::scsi
