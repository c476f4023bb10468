// cmd_import_stonith.cpp -- `stockade import-stonith-conf FILE`: LifeKeeper's stonith.conf as a
// stockade configuration on stdout.
//
// stonith.conf holds one `<node> <command line>` per line (`#` starts a comment line); a node may
// have several lines, tried in order.  Each line becomes a device of agent "command" and a level
// of its own for that node, in file order, so the site's working commands keep their order.
// Command lines that show a password are warned about on stderr (they are visible in the process
// table while they run); the output itself is the config, ready for `stockade validate`.
#include <memory>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"

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

int run_import(const std::string &file)
{
    const std::vector<std::string> args{file};
    std::stringstream text;
    if (args[0] == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream f(args[0]);
        if (!f)
            return fail_usage(fmt::format("import-stonith-conf: cannot read {}: {}", args[0], std::strerror(errno)));
        text << f.rdbuf();
    }
    const std::regex node_re("^[A-Za-z0-9_.-]{1,253}$");
    nlohmann::ordered_json devices = nlohmann::ordered_json::object();
    nlohmann::ordered_json nodes = nlohmann::ordered_json::object();
    std::map<std::string, size_t> count;
    std::string line;
    size_t lineno = 0, warnings = 0;
    while (std::getline(text, line)) {
        ++lineno;
        std::string t = trim_copy(line);
        if (t.empty() || t[0] == '#')
            continue;
        size_t sp = t.find_first_of(" \t");
        if (sp == std::string::npos)
            return fail_usage(fmt::format("{}:{}: '{}' has no command line (expected '<node> <command line>')", args[0],
                                          lineno, t));
        std::string node = t.substr(0, sp), command = trim_copy(t.substr(sp));
        if (!std::regex_match(node, node_re))
            return fail_usage(fmt::format("{}:{}: '{}' is not a valid node name", args[0], lineno, node));
        for (const auto &p : kSecretPatterns)
            if (std::regex_search(command, std::regex(p.regex, std::regex::icase))) {
                ++warnings;
                fmt::print(stderr,
                           "stockade: warning: {}:{}: the command for {} shows {}; it is visible in the process table "
                           "while it runs (prefer a password file or environment option of the tool)\n",
                           args[0], lineno, node, p.what);
                break;
            }
        std::string dev = device_name(node, ++count[node]);
        devices[dev] = {{"agent", "command"}, {"params", {{"command", command}}}};
        if (!nodes.contains(node))
            nodes[node] = {{"levels", nlohmann::ordered_json::array()}};
        nodes[node]["levels"].push_back(nlohmann::ordered_json::array({dev}));
    }
    if (nodes.empty())
        return fail_usage(fmt::format("{}: no '<node> <command line>' entries", args[0]));
    nlohmann::ordered_json out = {{"version", 1}, {"devices", devices}, {"nodes", nodes}};
    fmt::print("{}\n", out.dump(2));
    if (warnings)
        fmt::print(stderr, "stockade: {} command line(s) show a password; the command agent keeps command lines out of logs and output, but not out of the process table\n",
                   warnings);
    return 0;
}

CommandBody setup_import(CLI::App &app, const GlobalOptions &)
{
    auto file = std::make_shared<std::string>();
    app.add_option("FILE", *file, "LifeKeeper stonith.conf (- for stdin)")->required();
    return [file] { return run_import(*file); };
}

} // namespace

STOCKADE_COMMAND("import-stonith-conf",
                 "print a stockade config for LifeKeeper's stonith.conf (one command-device level per line)",
                 setup_import);

} // namespace stockade::cli
