// ipmi_config.cpp -- see ipmi_config.hpp.  Also home of the password_script runner: the script
// runs (stockade/process.hpp) as /bin/sh -c SCRIPT in its own process group with an empty stdin
// and stdout on a pipe; nothing secret is ever on its argv or in its environment, and its whole
// tree is SIGKILLed if it outlives the caller's deadline.
#include "ipmi_config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include <freeipmi/freeipmi.h>

#include "stockade/agent_support.hpp"
#include "stockade/process.hpp"
#include "stockade/text.hpp"

namespace stockade::ipmi {

namespace {

using text::ascii_lower;

struct NamedValue {
    std::string_view name;
    unsigned value;
};

// FreeIPMI's workaround names (ipmipower -W), per protocol.
constexpr std::array<NamedValue, 7> kWorkarounds20{{
    {"authcap", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_AUTHENTICATION_CAPABILITIES},
    {"intel20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_INTEL_2_0_SESSION},
    {"supermicro20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUPERMICRO_2_0_SESSION},
    {"sun20", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUN_2_0_SESSION},
    {"opensesspriv", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE},
    {"integritycheckvalue", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_NON_EMPTY_INTEGRITY_CHECK_VALUE},
    {"nochecksumcheck", IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_NO_CHECKSUM_CHECK},
}};
constexpr std::array<NamedValue, 7> kWorkarounds15{{
    {"authcap", IPMI_WORKAROUND_FLAGS_OUTOFBAND_AUTHENTICATION_CAPABILITIES},
    {"idzero", IPMI_WORKAROUND_FLAGS_OUTOFBAND_ACCEPT_SESSION_ID_ZERO},
    {"forcepermsg", IPMI_WORKAROUND_FLAGS_OUTOFBAND_FORCE_PERMSG_AUTHENTICATION},
    {"unexpectedauth", IPMI_WORKAROUND_FLAGS_OUTOFBAND_CHECK_UNEXPECTED_AUTHCODE},
    {"endianseq", IPMI_WORKAROUND_FLAGS_OUTOFBAND_BIG_ENDIAN_SEQUENCE_NUMBER},
    {"noauthcodecheck", IPMI_WORKAROUND_FLAGS_OUTOFBAND_NO_AUTH_CODE_CHECK},
    {"nochecksumcheck", IPMI_WORKAROUND_FLAGS_OUTOFBAND_NO_CHECKSUM_CHECK},
}};

constexpr std::array<NamedValue, 3> kPrivileges{{
    {"user", IPMI_PRIVILEGE_LEVEL_USER},
    {"operator", IPMI_PRIVILEGE_LEVEL_OPERATOR},
    {"administrator", IPMI_PRIVILEGE_LEVEL_ADMIN},
}};

constexpr std::array<NamedValue, 4> kAuthTypes{{
    {"none", IPMI_AUTHENTICATION_TYPE_NONE},
    {"md2", IPMI_AUTHENTICATION_TYPE_MD2},
    {"md5", IPMI_AUTHENTICATION_TYPE_MD5},
    {"password", IPMI_AUTHENTICATION_TYPE_STRAIGHT_PASSWORD_KEY},
}};

// Cipher suites FreeIPMI accepts (ipmi_ctx_open_outofband_2_0).
constexpr std::array<int, 12> kCipherSuites{0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17};

template <size_t N>
const NamedValue *lookup(const std::array<NamedValue, N> &table, std::string_view name)
{
    for (const auto &e : table)
        if (e.name == name)
            return &e;
    return nullptr;
}

bool parse_uint(const std::string &s, long long lo, long long hi, long long &out)
{
    const char *b = s.data(), *e = s.data() + s.size();
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e && out >= lo && out <= hi;
}

Error bad(const std::string &param, const std::string &what)
{
    return Error{STOCKADE_RC_BAD_CONFIG, "parameter '" + param + "': " + what};
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = char(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// k_g is raw text of at most 20 bytes, or hex (a 0x prefix, or longer than 20 characters, as
// fence_ipmilan's hexadecimal_kg).  The value itself never appears in a message.
Result<SecretString> parse_kg(const std::string &v)
{
    std::string_view s = v;
    bool hex = false;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s.remove_prefix(2);
        hex = true;
    } else if (s.size() > IPMI_MAX_K_G_LENGTH) {
        hex = true;
    }
    if (!hex)
        return SecretString(v);
    if (s.size() % 2 || s.size() / 2 > IPMI_MAX_K_G_LENGTH)
        return bad("k_g", "hexadecimal key must have an even number of digits, at most 40");
    std::string bytes;
    for (size_t i = 0; i < s.size(); i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            ::explicit_bzero(bytes.data(), bytes.size());
            return bad("k_g", "not a hexadecimal key (and longer than the 20 bytes of a plain key)");
        }
        bytes += char(hi * 16 + lo);
    }
    return SecretString(std::move(bytes));
}

// Strips one trailing newline (and CR) the way `read` would.
void chomp(std::string &s)
{
    auto nl = s.find('\n');
    if (nl != std::string::npos) {
        ::explicit_bzero(s.data() + nl, s.size() - nl);
        s.resize(nl);
    }
    if (!s.empty() && s.back() == '\r')
        s.pop_back();
}

} // namespace

Result<unsigned> parse_workarounds(const std::string &list, bool lanplus)
{
    unsigned flags = 0;
    for (const std::string &w : text::split_list(ascii_lower(list))) {
        if (w == "none")
            continue;
        const NamedValue *e = lanplus ? lookup(kWorkarounds20, w) : lookup(kWorkarounds15, w);
        if (!e) {
            std::string known;
            if (lanplus)
                for (const auto &k : kWorkarounds20)
                    known += (known.empty() ? "" : ",") + std::string(k.name);
            else
                for (const auto &k : kWorkarounds15)
                    known += (known.empty() ? "" : ",") + std::string(k.name);
            return bad("workarounds", "unknown " + std::string(lanplus ? "IPMI 2.0" : "IPMI 1.5") + " workaround '" + w +
                                          "' (known: " + known + ")");
        }
        flags |= e->value;
    }
    return flags;
}

bool IpmiConfig::accepts_target(const std::string &target) const
{
    if (hostlist.empty())
        return true; // one BMC, one node: Pacemaker's pcmk_host_list decides which
    const std::string t = ascii_lower(target);
    return std::any_of(hostlist.begin(), hostlist.end(), [&](const std::string &h) { return ascii_lower(h) == t; });
}

// Runs password_script and returns the first line of its stdout.
static Result<SecretString> run_password_script(const std::string &script, const stockade_ctx *ctx)
{
    constexpr int64_t kDefaultLimitMs = 10000;
    const int64_t start = stockade_monotonic_ms();
    const int64_t deadline = start + std::min<int64_t>(stockade_remaining_ms(ctx), kDefaultLimitMs);
    stockade::SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env_unset = {"IPMI_PASSWORD", "IPMITOOL_PASSWORD"};
    spec.stderr_to = stockade::ChildStream::Null;
    spec.output_cap = 4096;
    auto run = stockade::run_command_until(spec, "", deadline, [ctx] { return ctx->is_cancelled && ctx->is_cancelled(ctx); });
    if (!run)
        return Error{STOCKADE_RC_INTERNAL, "password_script: " + run.error().message};
    SecretString out_secret(std::move(run->out));
    if (run->end == stockade::ChildEnd::Cancelled)
        return Error{STOCKADE_RC_CANCELLED, "password_script: cancelled"};
    if (run->end == stockade::ChildEnd::TimedOut)
        return Error{STOCKADE_RC_TIMEOUT,
                     "password_script: no result within " + std::to_string(deadline - start) + " ms; killed"};
    if (!run->success()) {
        std::string how = run->exit_code ? "exited with status " + std::to_string(*run->exit_code)
                          : run->signal  ? "was killed by signal " + std::to_string(*run->signal)
                                         : run->describe();
        return Error{STOCKADE_RC_BAD_CONFIG, "password_script " + how};
    }
    std::string pw = out_secret.str();
    chomp(pw);
    if (pw.empty()) {
        return Error{STOCKADE_RC_BAD_CONFIG, "password_script printed no password"};
    }
    return SecretString(std::move(pw));
}

static Result<SecretString> read_password_file(const std::string &path, const stockade_ctx *ctx)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return bad("password_file", "cannot read '" + path + "': " + std::strerror(errno));
    if ((st.st_mode & 0077) && ctx->log)
        ctx->log(ctx, STOCKADE_LOG_WARNING,
                 ("password file '" + path + "' is readable by group or others; chmod 600 it").c_str());
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return bad("password_file", "cannot open '" + path + "'");
    std::string line;
    std::getline(f, line);
    chomp(line);
    return SecretString(std::move(line));
}

Result<IpmiConfig> parse_config(const stockade_param *params, size_t n, const stockade_ctx *ctx)
{
    IpmiConfig c;
    std::string workarounds, passwd_method = "param", password_script, password_file, hostlist;
    bool have_password = false, allow_cipher_zero = false;
    long long cipher = 3, num = 0;
    std::string auth = "md5";
    bool have_kg = false, have_retrans = false;
    std::string ipmitool_timeout;
    auto warn = [&](const std::string &msg) {
        if (ctx && ctx->log)
            ctx->log(ctx, STOCKADE_LOG_WARNING, msg.c_str());
    };

    for (const auto &[k, v] : agent::named_values(params, n)) {
        if (k == "ip") {
            c.host = v;
        } else if (k == "ipport") {
            if (!parse_uint(v, 1, 65535, num))
                return bad(k, "'" + v + "' is not a UDP port (1-65535)");
            c.port = int(num);
        } else if (k == "username") {
            if (v.size() > IPMI_MAX_USER_NAME_LENGTH)
                return bad(k, "longer than the 16 bytes IPMI allows");
            c.username = v;
        } else if (k == "password") {
            c.password = SecretString(v);
            have_password = true;
        } else if (k == "password_script") {
            password_script = v;
        } else if (k == "password_file") {
            password_file = v;
        } else if (k == "passwd_method") {
            passwd_method = ascii_lower(v);
        } else if (k == "lanplus") {
            c.lanplus = v == "1";
        } else if (k == "cipher") {
            if (!parse_uint(v, 0, 255, cipher) ||
                std::find(kCipherSuites.begin(), kCipherSuites.end(), int(cipher)) == kCipherSuites.end())
                return bad(k, "'" + v + "' is not a cipher suite FreeIPMI supports (0-3, 6-8, 11, 12, 15-17)");
        } else if (k == "allow_cipher_zero") {
            allow_cipher_zero = v == "1";
        } else if (k == "auth") {
            auth = ascii_lower(v);
        } else if (k == "privlvl") {
            const NamedValue *p = lookup(kPrivileges, ascii_lower(v));
            if (!p)
                return bad(k, "'" + v + "' is not one of administrator|operator|user");
            c.privilege = uint8_t(p->value);
            c.privilege_name = ascii_lower(v);
        } else if (k == "k_g" || k == "hexadecimal_kg") {
            if (have_kg)
                return bad(k, "set either k_g or hexadecimal_kg, not both");
            have_kg = true;
            // hexadecimal_kg is always hexadecimal (fence_ipmilan's meaning), with or without 0x.
            const bool force_hex = k == "hexadecimal_kg" && !(v.size() > 2 && v[0] == '0' && (v[1] | 0x20) == 'x');
            auto kg = parse_kg(force_hex ? "0x" + v : v);
            if (!kg)
                return kg.error();
            c.k_g = std::move(kg.value());
        } else if (k == "target") {
            // ipmitool -t: an IPMB slave address, decimal or 0x-hex; even (7-bit address << 1).
            long long addr = 0;
            const bool hex = v.size() > 2 && v[0] == '0' && (v[1] | 0x20) == 'x';
            const char *b = v.data() + (hex ? 2 : 0), *e = v.data() + v.size();
            auto r = std::from_chars(b, e, addr, hex ? 16 : 10);
            if (v.empty() || r.ec != std::errc() || r.ptr != e || addr < 0 || addr > 0xff || (addr & 1))
                return bad(k, "'" + v + "' is not an IPMB slave address (an even number 0x00-0xfe, as ipmitool -t)");
            c.bridge_target = uint8_t(addr);
        } else if (k == "ipmitool_timeout") {
            ipmitool_timeout = v;
        } else if (k == "stonith_status_sleep") {
            if (!parse_uint(v, 0, 600, num))
                return bad(k, "'" + v + "' is not a number of seconds between 0 and 600");
            c.status_sleep_ms = unsigned(num) * 1000;
        } else if (k == "ipmitool_path" || k == "sudo_path") {
            if (!v.empty())
                warn("parameter '" + k + "' is fence_ipmilan's and is ignored: stockade speaks IPMI itself, no "
                     "ipmitool runs");
        } else if (k == "use_sudo") {
            if (v == "1")
                warn("parameter 'use_sudo' is fence_ipmilan's and is ignored: no ipmitool runs, nothing needs sudo");
        } else if (k == "port_as_ip") {
            if (v == "1")
                warn("parameter 'port_as_ip' is not supported and is ignored: the BMC address is 'ip'");
        } else if (k == "workarounds") {
            workarounds = v;
        } else if (k == "session_timeout") {
            if (!parse_uint(v, 100, 600000, num))
                return bad(k, "'" + v + "' is not a number of milliseconds between 100 and 600000");
            c.session_timeout_ms = unsigned(num);
        } else if (k == "retransmission_timeout") {
            if (!parse_uint(v, 10, 600000, num))
                return bad(k, "'" + v + "' is not a number of milliseconds between 10 and 600000");
            c.retransmission_timeout_ms = unsigned(num);
            have_retrans = true;
        } else if (k == "method") {
            if (ascii_lower(v) == "onoff")
                c.method = RebootMethod::OnOff;
            else if (ascii_lower(v) == "cycle")
                c.method = RebootMethod::Cycle;
            else
                return bad(k, "'" + v + "' is not one of onoff|cycle");
        } else if (k == "power_timeout") {
            if (!parse_uint(v, 1, 3600, num))
                return bad(k, "'" + v + "' is not a number of seconds between 1 and 3600");
            c.power_timeout_s = unsigned(num);
        } else if (k == "power_wait") {
            if (!parse_uint(v, 0, 600, num))
                return bad(k, "'" + v + "' is not a number of seconds between 0 and 600");
            c.power_wait_s = unsigned(num);
        } else if (k == "nmi_before_off") {
            if (!parse_uint(v, 0, 600, num))
                return bad(k, "'" + v + "' is not a number of seconds between 0 and 600");
            c.nmi_wait_s = unsigned(num);
        } else if (k == "hostlist") {
            hostlist = v;
        } else if (k == "capture_console") {
            c.capture_console = v;
        } else if (k == "capture_seconds") {
            if (!parse_uint(v, 1, 300, num))
                return bad(k, "'" + v + "' is not a number of seconds between 1 and 300");
            c.capture_seconds = unsigned(num);
        } else {
            return Error{STOCKADE_RC_BAD_CONFIG, "parameter '" + k + "': the ipmi agent has no such parameter"};
        }
    }

    if (c.host.empty())
        return bad("ip", "the BMC address is required");
    c.hostlist = text::split_list(hostlist);
    if (!ipmitool_timeout.empty()) {
        // ipmitool -N: seconds before an unanswered packet is resent.  retransmission_timeout,
        // when also given, is the more precise of the two and wins.
        if (!parse_uint(ipmitool_timeout, 1, 600, num))
            return bad("ipmitool_timeout", "'" + ipmitool_timeout + "' is not a number of seconds between 1 and 600");
        if (!have_retrans)
            c.retransmission_timeout_ms = unsigned(num) * 1000;
    }
    if (c.lanplus) {
        if (cipher == 0 && !allow_cipher_zero)
            return bad("cipher", "cipher suite 0 means no authentication at all; refused unless allow_cipher_zero=1");
        c.cipher = uint8_t(cipher);
    } else {
        const NamedValue *a = lookup(kAuthTypes, auth);
        if (!a)
            return bad("auth", "'" + auth + "' is not one of md5|md2|password|none");
        if (a->value == IPMI_AUTHENTICATION_TYPE_NONE && !allow_cipher_zero)
            return bad("auth", "authentication type none means no authentication at all; refused unless "
                               "allow_cipher_zero=1");
        c.auth_type = uint8_t(a->value);
        if (!c.k_g.empty())
            return bad("k_g", "only used with lanplus (IPMI 2.0)");
    }
    auto w = parse_workarounds(workarounds, c.lanplus);
    if (!w)
        return w.error();
    c.workaround_flags = w.value();

    // Where the password comes from.
    int sources = int(have_password) + int(!password_script.empty());
    if (sources > 1)
        return bad("password_script", "set either password or password_script, not both");
    if (passwd_method == "file") {
        if (password_file.empty())
            return bad("password_file", "required with passwd_method=file");
        if (sources)
            return bad("passwd_method", "file: the password comes from password_file; do not also set password");
        auto pw = read_password_file(password_file, ctx);
        if (!pw)
            return pw.error();
        c.password = std::move(pw.value());
    } else if (passwd_method == "env") {
        // cluster-glue's meaning: the password never goes on a command line.  Ours never does, so a
        // configured password is simply used; without one it comes from this process's environment.
        if (!sources) {
            const char *e = std::getenv("IPMI_PASSWORD");
            if (!e)
                e = std::getenv("IPMITOOL_PASSWORD");
            if (!e)
                return bad("passwd_method", "env: neither password nor IPMI_PASSWORD/IPMITOOL_PASSWORD is set");
            c.password = SecretString(e);
        }
    } else if (passwd_method != "param") {
        return bad("passwd_method", "'" + passwd_method + "' is not one of param|env|file");
    }
    if (!password_script.empty()) {
        auto pw = run_password_script(password_script, ctx);
        if (!pw)
            return pw.error();
        c.password = std::move(pw.value());
    }
    size_t max_pw = c.lanplus ? IPMI_2_0_MAX_PASSWORD_LENGTH : IPMI_1_5_MAX_PASSWORD_LENGTH;
    if (c.password.str().size() > max_pw)
        return bad("password", "longer than the " + std::to_string(max_pw) + " bytes IPMI " +
                                   (c.lanplus ? "2.0" : "1.5") + " allows");
    return c;
}

} // namespace stockade::ipmi
