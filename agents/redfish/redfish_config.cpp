// redfish_config.cpp -- see redfish_config.hpp.  The parameter table accepts every fence_redfish
// parameter name (the host folds '-' into '_', so "redfish-uri" finds redfish_uri); the ones that
// mean nothing for this client (gnutlscli_path, shell_timeout) are accepted and documented.
#include "redfish_config.hpp"

#include <charconv>
#include <cstring>
#include <string_view>

#include "stockade/agent_support.hpp"


namespace stockade::redfish {

namespace {

constexpr uint32_t kAbi = STOCKADE_ABI_MAJOR;
constexpr uint32_t kPSize = sizeof(stockade_param_desc);

constexpr stockade_param_desc kParams[] = {
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ip", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = nullptr, .choices = nullptr, .aliases = "ipaddr",
     .description = "BMC address or host name (host:port accepted, as fence_redfish); required unless port_as_ip=1"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ipport", .type = STOCKADE_PARAM_INTEGER, .flags = 0,
     .default_value = "443", .choices = nullptr, .aliases = "", .description = "BMC HTTPS port"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "username", .type = STOCKADE_PARAM_STRING,
     .flags = STOCKADE_PARAM_REQUIRED, .default_value = nullptr, .choices = nullptr, .aliases = "login",
     .description = "Redfish user name"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "password", .type = STOCKADE_PARAM_STRING,
     .flags = STOCKADE_PARAM_SECRET, .default_value = nullptr, .choices = nullptr, .aliases = "passwd",
     .description = "Redfish password (sent as HTTP Basic credentials or once in the session login, never in a URL)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "auth_type", .type = STOCKADE_PARAM_SELECT, .flags = 0,
     .default_value = "basic", .choices = "basic|session", .aliases = "",
     .description = "basic: HTTP Basic on every request (as fence_redfish); session: one Redfish session "
                    "(X-Auth-Token), deleted when the device is closed"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "redfish_uri", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = "/redfish/v1", .choices = nullptr, .aliases = "",
     .description = "Service root URI"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "systems_uri", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = nullptr, .choices = nullptr, .aliases = "",
     .description = "ComputerSystem URI, e.g. /redfish/v1/Systems/System.Embedded.1 (skips discovery; without it "
                    "the Systems collection is read and the target picks the member when there are several)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ssl", .type = STOCKADE_PARAM_BOOLEAN, .flags = 0,
     .default_value = "1", .choices = nullptr, .aliases = "",
     .description = "Accepted for fence_redfish compatibility: the agent always speaks HTTPS"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ssl_secure", .type = STOCKADE_PARAM_BOOLEAN, .flags = 0,
     .default_value = "0", .choices = nullptr, .aliases = "",
     .description = "Verify the BMC's certificate (the default anyway)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ssl_insecure", .type = STOCKADE_PARAM_BOOLEAN, .flags = 0,
     .default_value = "0", .choices = nullptr, .aliases = "",
     .description = "Do not verify the BMC's certificate (logged as a warning on every connection)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ssl_ca_file", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = nullptr, .choices = nullptr, .aliases = "ca_file",
     .description = "PEM file of the CA(s) that signed the BMC's certificate (instead of the system store)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "ssl_fingerprint", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = nullptr, .choices = nullptr, .aliases = "",
     .description = "SHA-256 fingerprint of the BMC's certificate (openssl x509 -fingerprint -sha256); only that "
                    "certificate is accepted, checked before any request is sent"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "port_as_ip", .type = STOCKADE_PARAM_BOOLEAN, .flags = 0,
     .default_value = "0", .choices = nullptr, .aliases = "",
     .description = "The target (plug) is the BMC's address (fence-agents port_as_ip)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "method", .type = STOCKADE_PARAM_SELECT, .flags = 0,
     .default_value = "onoff", .choices = "onoff|cycle", .aliases = "",
     .description = "Reboot as ForceOff + confirmed Off + On (onoff), or one ForceRestart that counts only if the "
                    "system is seen Off (cycle)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "power_timeout", .type = STOCKADE_PARAM_SECONDS, .flags = 0,
     .default_value = "20", .choices = nullptr, .aliases = "",
     .description = "Seconds to wait, after power_wait, for PowerState to report the new state (a 202 task is "
                    "followed within the same window); expiry is a failure"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "power_wait", .type = STOCKADE_PARAM_SECONDS, .flags = 0,
     .default_value = "0", .choices = nullptr, .aliases = "",
     .description = "Seconds to sleep after a reset is accepted before reading PowerState (0 = read at once); "
                    "power_timeout counts after it"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "stonith_status_sleep", .type = STOCKADE_PARAM_SECONDS,
     .flags = 0, .default_value = "1", .choices = nullptr, .aliases = "",
     .description = "Longest pause between two PowerState reads (reads at once, 1 and 2 ms later, then 5 ms apart doubling up to this, at most 200 ms)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "login_timeout", .type = STOCKADE_PARAM_SECONDS, .flags = 0,
     .default_value = "5", .choices = nullptr, .aliases = "",
     .description = "Seconds for the TCP connection and TLS handshake"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "request_timeout", .type = STOCKADE_PARAM_SECONDS,
     .flags = 0, .default_value = "10", .choices = nullptr, .aliases = "",
     .description = "Seconds for one HTTP request and its answer (always cut to the operation's deadline)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "shell_timeout", .type = STOCKADE_PARAM_SECONDS, .flags = 0,
     .default_value = "3", .choices = nullptr, .aliases = "",
     .description = "Accepted for fence_redfish compatibility (no shell here; request_timeout bounds a request)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "retries", .type = STOCKADE_PARAM_INTEGER, .flags = 0,
     .default_value = "2", .choices = nullptr, .aliases = "",
     .description = "Extra attempts of a request that got no answer or a 5xx (never for 401/403/404)"},
    {.abi_major = kAbi, .struct_size = kPSize, .name = "gnutlscli_path", .type = STOCKADE_PARAM_STRING, .flags = 0,
     .default_value = nullptr, .choices = nullptr, .aliases = "",
     .description = "Accepted for fence_redfish compatibility; unused (TLS is OpenSSL's, its defaults)"},
};

Error bad(const std::string &param, const std::string &what)
{
    return Error{STOCKADE_RC_BAD_CONFIG, "redfish: parameter '" + param + "': " + what};
}

bool parse_uint(std::string_view s, unsigned long long hi, unsigned &out)
{
    unsigned long long v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v > hi)
        return false;
    out = unsigned(v);
    return true;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// "AB:CD:...", "ab cd ...", "abcd..." and openssl's "sha256 Fingerprint=AB:..." all give 32 bytes.
bool parse_fingerprint(std::string_view text, std::array<unsigned char, 32> &out)
{
    if (auto eq = text.find('='); eq != std::string_view::npos)
        text.remove_prefix(eq + 1);
    std::string hex;
    for (char c : text) {
        if (c == ':' || c == ' ' || c == '\t')
            continue;
        if (hex_digit(c) < 0)
            return false;
        hex += c;
    }
    if (hex.size() != 64)
        return false;
    for (size_t i = 0; i < 32; ++i)
        out[i] = static_cast<unsigned char>(hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1]));
    return true;
}

bool absolute_path(const std::string &s) { return !s.empty() && s[0] == '/' && s.find_first_of(" \t\r\n?#") == std::string::npos; }

} // namespace

ParamTable param_table() { return {kParams, sizeof(kParams) / sizeof(kParams[0])}; }

std::string fingerprint_text(const std::array<unsigned char, 32> &fp)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < fp.size(); ++i) {
        if (i)
            out += ':';
        out += kHex[fp[i] >> 4];
        out += kHex[fp[i] & 15];
    }
    return out;
}

int64_t RedfishConfig::request_with_retries_ms() const
{
    int64_t ms = request_ms() * (1 + int64_t(retries));
    for (unsigned k = 1; k <= retries; ++k)
        ms += kRetryPauseMs * k;
    return ms;
}

int64_t time_needed_ms(const RedfishConfig &c, uint32_t action)
{
    const int64_t connect = int64_t(c.login_timeout_s) * 1000;
    const int64_t hiccup = c.request_with_retries_ms(); // the one request that runs out its limits
    const int64_t window = c.confirm_window_ms() + c.request_ms();
    switch (action) {
    case STOCKADE_ACTION_OFF:
    case STOCKADE_ACTION_ON:
        return connect + hiccup + window;
    case STOCKADE_ACTION_REBOOT:
        if (c.method == RebootMethod::Cycle)
            return connect + hiccup + window + int64_t(c.power_timeout_s) * 1000 + c.request_ms();
        return connect + hiccup + 2 * window;
    case STOCKADE_ACTION_DIAG:
        return connect + hiccup + int64_t(c.power_timeout_s) * 1000 + c.request_ms();
    default:
        return 0;
    }
}

std::string RedfishConfig::base_url(const std::string &for_host) const
{
    const bool v6 = for_host.find(':') != std::string::npos;
    return "https://" + (v6 ? "[" + for_host + "]" : for_host) + ":" + std::to_string(port);
}

Result<RedfishConfig> parse_config(const stockade_param *params, size_t n)
{
    RedfishConfig c;
    bool secure = false, insecure = false;
    std::string fingerprint;
    for (const auto &[k, v] : agent::named_values(params, n)) {
        if (k == "ip") {
            c.host = v;
        } else if (k == "ipport") {
            unsigned p = 0;
            if (!parse_uint(v, 65535, p) || p == 0)
                return bad(k, "'" + v + "' is not a TCP port (1-65535)");
            c.port = int(p);
        } else if (k == "username") {
            c.username = v;
        } else if (k == "password") {
            c.password = SecretString(v);
        } else if (k == "auth_type") {
            c.auth = v == "session" ? AuthType::Session : AuthType::Basic;
        } else if (k == "redfish_uri") {
            if (!absolute_path(v))
                return bad(k, "'" + v + "' is not an absolute URI path such as /redfish/v1");
            c.redfish_uri = v;
        } else if (k == "systems_uri") {
            if (!v.empty() && !absolute_path(v))
                return bad(k, "'" + v + "' is not an absolute URI path such as /redfish/v1/Systems/1");
            c.systems_uri = v;
        } else if (k == "ssl_secure") {
            secure = v == "1";
        } else if (k == "ssl_insecure") {
            insecure = v == "1";
        } else if (k == "ssl_ca_file") {
            c.ca_file = v;
        } else if (k == "ssl_fingerprint") {
            fingerprint = v;
        } else if (k == "port_as_ip") {
            c.port_as_ip = v == "1";
        } else if (k == "method") {
            c.method = v == "cycle" ? RebootMethod::Cycle : RebootMethod::OnOff;
        } else if (k == "power_timeout" || k == "power_wait" || k == "login_timeout" || k == "request_timeout" ||
                   k == "stonith_status_sleep" || k == "retries") {
            unsigned u = 0;
            if (!parse_uint(v, 3600, u))
                return bad(k, "'" + v + "' is not a number of 0..3600");
            (k == "power_timeout"     ? c.power_timeout_s
             : k == "power_wait"      ? c.power_wait_s
             : k == "login_timeout"   ? c.login_timeout_s
             : k == "request_timeout" ? c.request_timeout_s
             : k == "retries"         ? c.retries
                                      : c.status_sleep_s) = u;
        }
        // ssl, shell_timeout, gnutlscli_path: accepted, nothing to do (see the table).
    }
    // fence_redfish's "host:port" in ip (one colon only: more is an IPv6 address).
    if (auto colon = c.host.find(':'); colon != std::string::npos && c.host.find(':', colon + 1) == std::string::npos) {
        unsigned p = 0;
        if (!parse_uint(std::string_view(c.host).substr(colon + 1), 65535, p) || p == 0)
            return bad("ip", "'" + c.host + "': the part after ':' is not a TCP port");
        c.port = int(p);
        c.host.resize(colon);
    }
    if (c.host.size() > 2 && c.host.front() == '[' && c.host.back() == ']')
        c.host = c.host.substr(1, c.host.size() - 2);
    if (c.host.empty() && !c.port_as_ip)
        return bad("ip", "required (the BMC's address), unless port_as_ip=1");
    if (c.username.empty())
        return bad("username", "required");
    if (c.power_timeout_s == 0)
        return bad("power_timeout", "must be at least 1 s");
    if (c.login_timeout_s == 0 || c.request_timeout_s == 0)
        return bad(c.login_timeout_s == 0 ? "login_timeout" : "request_timeout", "must be at least 1 s");
    if (c.status_sleep_s == 0)
        c.status_sleep_s = 1;

    const int trusts = int(!c.ca_file.empty()) + int(!fingerprint.empty()) + int(insecure);
    if (trusts > 1)
        return bad(insecure ? "ssl_insecure" : "ssl_fingerprint",
                   "choose one of ssl_ca_file, ssl_fingerprint and ssl_insecure");
    if (insecure && secure)
        return bad("ssl_insecure", "contradicts ssl_secure=1");
    if (!fingerprint.empty()) {
        if (!parse_fingerprint(fingerprint, c.fingerprint))
            return bad("ssl_fingerprint", "not a SHA-256 fingerprint (64 hex digits, colons allowed)");
        c.trust = TlsTrust::Fingerprint;
    } else if (!c.ca_file.empty()) {
        c.trust = TlsTrust::CaFile;
    } else if (insecure) {
        c.trust = TlsTrust::Insecure;
    }
    return c;
}

} // namespace stockade::redfish
