// stonith_conf.cpp -- LifeKeeper's stonith.conf read into a stockade configuration; see
// stonith_conf.hpp.  Separate from the command so the fuzz target (tests/fuzz) can call it.
#include "stonith_conf.hpp"

#include <cctype>
#include <map>
#include <regex>
#include <vector>
#include <sstream>

#include <fmt/format.h>

#include "stockade/text.hpp"

namespace stockade::cli {

namespace {

// Password-looking words: why each one is a secret.
struct SecretPattern {
    const char *regex;
    const char *what;
};
constexpr SecretPattern kSecretPatterns[] = {
    {R"((^|\s)-P\s*\S)", "-P (ipmitool's password option)"},
    {R"((^|\s)--pass(word)?[=\s]\s*\S)", "--password"},
    {R"((^|\s)fence_\S+\s(.*\s)?-p\s*\S)", "-p (a fence agent's password option)"},
    {R"((pass(word|wd)?|secret|community)\s*[=:]\s*\S)", "a password=value"},
    {R"(://[^/\s:@]+:[^/\s@]+@)", "a password in a URL"},
};

std::string trim_copy(const std::string &s)
{
    size_t a = s.find_first_not_of(" \t\r\n");
    if (a == std::string::npos)
        return {};
    size_t b = s.find_last_not_of(" \t\r\n");
    return s.substr(a, b - a + 1);
}

std::string device_name(const std::string &node, size_t n)
{
    std::string base = "stonith-";
    for (char c : node)
        base += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') ? c : '_';
    std::string suffix = "-" + std::to_string(n);
    if (base.size() + suffix.size() > 64)
        base.resize(64 - suffix.size());
    return base + suffix;
}

} // namespace

Result<StonithConfImport> import_stonith_conf(std::string_view text_in, const std::string &source)
{
    std::istringstream text{std::string(text_in)};
    StonithConfImport result;
    const std::regex node_re("^[A-Za-z0-9_.-]{1,253}$");
    std::vector<std::regex> secret_res; // compiled once, not once per line (the fuzzer's slow spot)
    for (const auto &p : kSecretPatterns)
        secret_res.emplace_back(p.regex, std::regex::icase);
    nlohmann::ordered_json devices = nlohmann::ordered_json::object();
    nlohmann::ordered_json nodes = nlohmann::ordered_json::object();
    std::map<std::string, size_t> count;
    std::string line;
    size_t lineno = 0;
    while (std::getline(text, line)) {
        ++lineno;
        std::string t = trim_copy(line);
        if (t.empty() || t[0] == '#')
            continue;
        size_t sp = t.find_first_of(" \t");
        if (sp == std::string::npos)
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: '{}' has no command line (expected '<node> <command line>')",
                              source, lineno, t);
        std::string node = t.substr(0, sp), command = trim_copy(t.substr(sp));
        if (!std::regex_match(node, node_re))
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: '{}' is not a valid node name", source, lineno, node);
        for (size_t i = 0; i < secret_res.size(); ++i)
            if (const auto &p = kSecretPatterns[i]; std::regex_search(command, secret_res[i])) {
                result.warnings.push_back(fmt::format(
                    "{}:{}: the command for {} shows {}; it is visible in the process table while it runs (prefer a "
                    "password file or environment option of the tool)",
                    source, lineno, node, p.what));
                break;
            }
        if (stockade::text::has_nul(command)) // the config loader refuses it (found by tests/fuzz/fuzz_stonith_conf)
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: the command for {} contains a NUL byte", source, lineno,
                              node);
        try {
            (void)nlohmann::json(command).dump(); // JSON text must be UTF-8 (found by tests/fuzz/fuzz_stonith_conf)
        } catch (const nlohmann::json::exception &) {
            return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: the command for {} is not valid UTF-8", source, lineno, node);
        }
        std::string dev = device_name(node, ++count[node]);
        devices[dev] = {{"agent", "command"}, {"params", {{"command", command}}}};
        if (!nodes.contains(node))
            nodes[node] = {{"levels", nlohmann::ordered_json::array()}};
        nodes[node]["levels"].push_back(nlohmann::ordered_json::array({dev}));
    }
    if (nodes.empty())
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: no '<node> <command line>' entries", source);
    result.config = {{"version", 1}, {"devices", devices}, {"nodes", nodes}};
    return result;
}

} // namespace stockade::cli
