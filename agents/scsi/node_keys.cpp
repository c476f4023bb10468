// node_keys.cpp -- see node_keys.hpp.  md5 comes from OpenSSL's libcrypto (as fence_scsi uses
// Python's hashlib md5: a name hash, not a security measure).
#include "node_keys.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <openssl/evp.h>

#include "stockade/text.hpp"

namespace stockade::scsi {

namespace {

std::string trim(const std::string &s)
{
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos)
        return {};
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

} // namespace

Result<CorosyncConf> parse_corosync_conf(const std::string &text)
{
    CorosyncConf c;
    std::vector<std::string> path; // open sections
    size_t line_no = 0, pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
        ++line_no;
        if (size_t hash = line.find('#'); hash != std::string::npos)
            line.resize(hash);
        line = trim(line);
        if (line.empty())
            continue;
        if (line == "}") {
            if (path.empty())
                return Error{STOCKADE_RC_BAD_CONFIG, "corosync.conf line " + std::to_string(line_no) + ": '}' without a section"};
            path.pop_back();
            continue;
        }
        if (line.back() == '{') {
            std::string name = trim(line.substr(0, line.size() - 1));
            path.push_back(name);
            if (path.size() == 2 && path[0] == "nodelist" && name == "node")
                c.nodes.emplace_back();
            continue;
        }
        size_t colon = line.find(':');
        if (colon == std::string::npos)
            continue; // not something we read
        std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        if (path.size() == 1 && path[0] == "totem" && key == "cluster_name")
            c.cluster_name = value;
        if (path.size() == 2 && path[0] == "nodelist" && path[1] == "node" && !c.nodes.empty()) {
            if (key == "name")
                c.nodes.back().first = value;
            else if (key == "ring0_addr")
                c.nodes.back().second = value;
        }
    }
    if (!path.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, "corosync.conf: section '" + path.back() + "' is not closed"};
    return c;
}

std::string md5_hex8(const std::string &text)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(text.data(), text.size(), d, &n, EVP_md5(), nullptr) != 1 || n < 4)
        return {};
    char hex[9];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
    return hex;
}

Result<Key> NodeKeys::key_for(const std::string &node) const
{
    for (const auto &[n, k] : given)
        if (text::iequals(n, node))
            return k;
    if (cluster_name.empty())
        return Error{STOCKADE_RC_BAD_CONFIG, "no key for node '" + node +
                                                 "': give it in 'keys', or set 'cluster_name' (or 'corosync_conf') to derive it"};
    std::string cluster = md5_hex8(cluster_name).substr(0, 4);
    std::string node_part;
    if (method == KeyMethod::Hash) {
        node_part = md5_hex8(node).substr(0, 4);
    } else {
        for (size_t i = 0; i < nodes.size() && node_part.empty(); ++i)
            if (text::iequals(nodes[i].first, node) || text::iequals(nodes[i].second, node)) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.4zu", i); // fence_scsi: "%.4d" of the nodelist index
                node_part = buf;
            }
        if (node_part.empty())
            return Error{STOCKADE_RC_UNKNOWN_TARGET, "node '" + node + "' is not in the corosync nodelist, so key_value=id "
                                                     "gives it no key (use key_value=hash or 'keys')"};
    }
    auto k = parse_key(cluster + node_part);
    if (!k)
        return Error{STOCKADE_RC_BAD_CONFIG, "the key derived for node '" + node + "' is 0"};
    return *k;
}

std::vector<std::pair<std::string, Key>> NodeKeys::known() const
{
    std::vector<std::pair<std::string, Key>> out = given;
    auto listed = [&](const std::string &n) {
        for (const auto &[m, k] : out)
            if (text::iequals(m, n))
                return true;
        return false;
    };
    for (const auto &[name, addr] : nodes) {
        const std::string &n = name.empty() ? addr : name;
        if (n.empty() || listed(n))
            continue;
        if (auto k = key_for(n))
            out.emplace_back(n, *k);
    }
    return out;
}

std::string NodeKeys::node_of(Key k) const
{
    for (const auto &[n, key] : known())
        if (key == k)
            return n;
    return {};
}

std::string NodeKeys::collision() const
{
    auto all = known();
    for (size_t i = 0; i < all.size(); ++i)
        for (size_t j = i + 1; j < all.size(); ++j)
            if (all[i].second == all[j].second)
                return "nodes '" + all[i].first + "' and '" + all[j].first + "' both have key " + key_text(all[i].second);
    return {};
}

Result<std::vector<std::pair<std::string, Key>>> parse_key_map(const std::string &map)
{
    std::vector<std::pair<std::string, Key>> out;
    for (const auto &tok : text::split_list(map)) {
        size_t eq = tok.find('=');
        if (eq == std::string::npos || eq == 0)
            return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'keys': '" + tok + "' is not node=key"};
        auto k = parse_key(tok.substr(eq + 1));
        if (!k)
            return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'keys': '" + tok.substr(eq + 1) +
                                                     "' is not a key (1 to 16 hex digits, not zero)"};
        for (const auto &[n, key] : out)
            if (text::iequals(n, tok.substr(0, eq)))
                return Error{STOCKADE_RC_BAD_CONFIG, "parameter 'keys': node '" + n + "' is listed twice"};
        out.emplace_back(tok.substr(0, eq), *k);
    }
    return out;
}

Result<std::string> read_config_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return Error{STOCKADE_RC_BAD_CONFIG, "cannot read " + path + ": " + std::strerror(errno)};
    std::ostringstream ss;
    ss << f.rdbuf();
    if (ss.str().size() > 1024 * 1024)
        return Error{STOCKADE_RC_BAD_CONFIG, path + " is larger than 1 MiB; not a configuration file"};
    return ss.str();
}

std::string initiator_name_of(const std::string &text)
{
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.rfind("InitiatorName=", 0) == 0)
            return trim(line.substr(14));
    }
    return {};
}

} // namespace stockade::scsi
