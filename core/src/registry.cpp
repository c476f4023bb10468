// registry.cpp -- agent discovery, loading, descriptor checks and parameter resolution.
//
// Everything an agent declares is checked here once, at load: a host that accepted a broken
// descriptor would only find out in the middle of a fence, which is the worst possible moment.
#include "stockade/registry.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <dirent.h>
#include <dlfcn.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_host.hpp"
#include "paths.hpp"
#include "stockade/agent_v1_0.h"
#include "stockade/code_tables.hpp"
#include "strings.hpp"

namespace stockade {

namespace {

bool valid_agent_name(std::string_view n)
{
    if (n.empty() || n.size() > 64)
        return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
               c == '_' || c == '-';
    });
}

bool valid_param_name(std::string_view n)
{
    if (n.empty() || n.size() > 64)
        return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
               c == '_';
    });
}

const char *str_or(const char *s, const char *dflt) { return s ? s : dflt; }

Status check_file_safety(const std::string &path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent file {}: {}", path, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return make_error(STOCKADE_RC_BAD_CONFIG, "refusing agent {}: not a regular file", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return make_error(STOCKADE_RC_BAD_CONFIG, "refusing agent {}: writable by group or others", path);
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return make_error(STOCKADE_RC_BAD_CONFIG, "refusing agent {}: owned by uid {}, not root or uid {}", path,
                          st.st_uid, ::geteuid());
    return {};
}

// Validates a value against a parameter's type; returns the normalised value.
Result<std::string> normalise_value(const ParamInfo &p, const std::string &v)
{
    switch (p.type) {
    case STOCKADE_PARAM_INTEGER:
        if (!parse_int64(v))
            return param_field_error(STOCKADE_RC_BAD_CONFIG, p.name, fmt::format("'{}' is not an integer",
                              p.secret() ? "***" : v));
        return v;
    case STOCKADE_PARAM_SECONDS: {
        auto n = parse_int64(v);
        if (!n || *n < 0)
            return param_field_error(STOCKADE_RC_BAD_CONFIG, p.name, fmt::format("'{}' is not a number of seconds", v));
        return v;
    }
    case STOCKADE_PARAM_BOOLEAN: {
        auto b = parse_bool(v);
        if (!b)
            return param_field_error(STOCKADE_RC_BAD_CONFIG, p.name, fmt::format("'{}' is not a boolean (1|0|yes|no|on|off|true|false)", v));
        return std::string(*b ? "1" : "0");
    }
    case STOCKADE_PARAM_SELECT: {
        std::string low = text::ascii_lower(v);
        if (std::find(p.choices.begin(), p.choices.end(), low) == p.choices.end())
            return param_field_error(STOCKADE_RC_BAD_CONFIG, p.name, fmt::format("'{}' is not one of {}", v,
                              join(p.choices, "|")));
        return low;
    }
    default:
        return v;
    }
}

} // namespace

const ParamInfo *AgentInfo::find_param(std::string_view wanted) const
{
    std::string key = normalise_key(wanted);
    for (const auto &p : params) {
        if (normalise_key(p.name) == key)
            return &p;
        for (const auto &a : p.aliases)
            if (normalise_key(a) == key)
                return &p;
    }
    return nullptr;
}

bool is_secret_param(const AgentInfo &agent, std::string_view name)
{
    const ParamInfo *p = agent.find_param(name);
    if (p)
        return p->secret();
    std::string n = text::ascii_lower(name);
    return agent.can(STOCKADE_CAP_EXTRA_PARAMS) &&
           (n.find("pass") != std::string::npos || n.find("secret") != std::string::npos || n == "k_g");
}

Result<ParamList> resolve_params(const AgentInfo &agent, const RawParams &raw, UnknownParams unknown,
                                 std::vector<std::string> *ignored)
{
    std::map<std::string, std::string> values; // canonical -> value; last one wins
    ParamList extra;                           // passed through unchanged (CAP_EXTRA_PARAMS)
    for (const auto &[k, v] : raw) {
        const ParamInfo *p = agent.find_param(k);
        if (!p && agent.can(STOCKADE_CAP_EXTRA_PARAMS)) {
            extra.emplace_back(k, v);
            continue;
        }
        if (!p) {
            if (unknown == UnknownParams::Reject)
                return param_field_error(STOCKADE_RC_BAD_CONFIG, k, fmt::format("agent '{}' has no such parameter",
                                  agent.name));
            if (ignored)
                ignored->push_back(k);
            continue;
        }
        auto nv = normalise_value(*p, v);
        if (!nv)
            return nv.error();
        values[p->name] = std::move(nv.value());
    }
    ParamList out;
    for (const auto &p : agent.params) {
        auto it = values.find(p.name);
        if (it != values.end()) {
            out.emplace_back(p.name, it->second);
        } else if (p.default_value) {
            out.emplace_back(p.name, *p.default_value);
        } else if (p.required() && !p.host_supplied()) {
            return param_field_error(STOCKADE_RC_BAD_CONFIG, p.name, fmt::format("required by agent '{}' but not set",
                              agent.name));
        }
    }
    for (auto &e : extra) {
        auto same = [&](const auto &x) { return x.first == e.first; };
        out.erase(std::remove_if(out.begin(), out.end(), same), out.end()); // last one wins
        out.push_back(std::move(e));
    }
    return out;
}

namespace {

// The parts of a 1.0 and a 1.1+ descriptor are at the same offsets (agent_v1_0.h): the checks
// below read both through stockade_agent and look only at whether the pointers are NULL; calls
// go through the type of the agent's own minor (AgentInfo::desc or desc_v1_0).
constexpr size_t kDescriptorMinSize = offsetof(stockade_agent, monitor) + sizeof(stockade_agent::monitor);
// The smallest parameter row any minor ever had (1.0 ends at `description`).
constexpr size_t kParamDescMinSize = offsetof(stockade_param_desc, description) + sizeof(const char *);

} // namespace

Status check_descriptor(const stockade_agent *d, const std::string &path)
{
    if (!d)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: {}() returned NULL", path, STOCKADE_AGENT_ENTRY_SYMBOL);
    if (d->abi_major != STOCKADE_ABI_MAJOR)
        return make_error(STOCKADE_RC_BAD_CONFIG,
                          "agent {} was built for stockade ABI {}, this host implements ABI {}; rebuild it",
                          path, d->abi_major, STOCKADE_ABI_MAJOR);
    if (d->struct_size < kDescriptorMinSize)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: descriptor too small ({} bytes)", path, d->struct_size);
    if (!d->name || !valid_agent_name(d->name))
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: missing or invalid name (want [a-z0-9_-]+)", path);
    if (!d->summary || !*d->summary)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: missing summary", path);
    if (!d->open || !d->close || !d->power)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: open, close and power are mandatory", path);
    if (!(d->capabilities & STOCKADE_CAP_OFF))
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: must support off", path);
    const struct {
        uint32_t cap;
        bool present;
        const char *what;
    } pairs[] = {{STOCKADE_CAP_STATUS, d->status != nullptr, "status"},
                 {STOCKADE_CAP_LIST, d->list != nullptr, "list"},
                 {STOCKADE_CAP_MONITOR, d->monitor != nullptr, "monitor"}};
    for (const auto &pr : pairs)
        if (bool(d->capabilities & pr.cap) != pr.present)
            return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: capability '{}' does not match its operation", path,
                              pr.what);
    // Any stride from the smallest row ever defined up: a larger one comes from a newer minor
    // (fields this host does not know), a smaller one from an older minor (fields read only when
    // each row's struct_size says they are there).
    if (d->n_params && (!d->params || d->param_struct_size < kParamDescMinSize))
        return make_error(STOCKADE_RC_BAD_CONFIG,
                          "agent {}: bad parameter table (param_struct_size {} is below the {} bytes of ABI 1.0)",
                          path, d->param_struct_size, kParamDescMinSize);
    return {};
}

Result<AgentInfo> load_agent_file(const std::string &path)
{
    if (auto s = check_file_safety(path); !s)
        return s.error();
    void *h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return make_error(STOCKADE_RC_BAD_CONFIG, "cannot load agent {}: {}", path, str_or(::dlerror(), "?"));
    // Never dlclose: unloading code that threads may still reference is unsafe.
    auto entry = reinterpret_cast<stockade_agent_entry_fn>(::dlsym(h, STOCKADE_AGENT_ENTRY_SYMBOL));
    if (!entry)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: no {} symbol", path, STOCKADE_AGENT_ENTRY_SYMBOL);
    const stockade_agent *d = entry();
    if (auto s = check_descriptor(d, path); !s)
        return s.error();

    AgentInfo info;
    info.name = d->name;
    info.path = path;
    info.version = str_or(d->version, "");
    info.summary = d->summary;
    info.description = str_or(d->description, "");
    info.abi_major = d->abi_major;
    info.abi_minor = d->abi_minor;
    info.capabilities = d->capabilities;
    if (d->abi_minor == 0)
        info.desc_v1_0 = reinterpret_cast<const stockade_v1_0_agent *>(d);
    else
        info.desc = d;
    if (info.desc && STOCKADE_HAS_FIELD(d, stockade_agent, time_needed))
        info.time_needed = d->time_needed;
    if (info.desc && STOCKADE_HAS_FIELD(d, stockade_agent, prepare))
        info.prepare = d->prepare;
    const auto *base = reinterpret_cast<const unsigned char *>(d->params);
    for (size_t i = 0; i < d->n_params; ++i) {
        const auto *pd = reinterpret_cast<const stockade_param_desc *>(base + i * d->param_struct_size);
        if (pd->abi_major != STOCKADE_ABI_MAJOR || pd->struct_size < kParamDescMinSize ||
            pd->struct_size > d->param_struct_size)
            return make_error(STOCKADE_RC_BAD_CONFIG,
                              "agent {}: parameter #{} has abi_major {} and struct_size {} (want {} and {}..{})", path,
                              i, pd->abi_major, pd->struct_size, STOCKADE_ABI_MAJOR, kParamDescMinSize,
                              d->param_struct_size);
        if (!pd->name || !valid_param_name(pd->name))
            return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: parameter #{} has an invalid name", path, i);
        ParamInfo p;
        p.name = pd->name;
        p.type = pd->type;
        p.flags = pd->flags;
        if (!param_type_info(p.type))
            return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: parameter '{}' has unknown type {}", path, p.name,
                              p.type);
        if (pd->default_value)
            p.default_value = pd->default_value;
        if (pd->choices)
            p.choices = text::split_list(text::ascii_lower(pd->choices), "|");
        if (p.type == STOCKADE_PARAM_SELECT && p.choices.empty())
            return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: select parameter '{}' has no choices", path, p.name);
        if (pd->aliases)
            p.aliases = text::split_list(pd->aliases, " ");
        p.description = str_or(pd->description, "");
        if (p.default_value) {
            auto nv = normalise_value(p, *p.default_value);
            if (!nv)
                return make_error(STOCKADE_RC_BAD_CONFIG, "agent {}: default of {}", path, nv.error().message);
            p.default_value = nv.value();
        }
        info.params.push_back(std::move(p));
    }
    return info;
}

AgentRegistry::AgentRegistry(std::vector<std::string> search_path) : path_(std::move(search_path)) {}

std::vector<std::string> AgentRegistry::default_search_path()
{
    std::vector<std::string> out;
    if (const char *env = std::getenv("STOCKADE_AGENT_PATH"))
        for (auto &d : text::split_list(env, ":"))
            out.push_back(d);
    if (auto exe = exe_dir())
        out.push_back(*exe + "/" + kRelBinToAgents);
    out.push_back(kInstallAgentDir);
    return out;
}

Result<std::string> AgentRegistry::locate(std::string_view name) const
{
    if (name.find('/') != std::string_view::npos)
        return std::string(name);
    if (!valid_agent_name(name))
        return make_error(STOCKADE_RC_BAD_CONFIG, "invalid agent name '{}'", name);
    for (const auto &dir : path_) {
        std::string cand = dir + "/" + std::string(name) + ".so";
        if (::access(cand.c_str(), F_OK) == 0)
            return cand;
    }
    return make_error(STOCKADE_RC_BAD_CONFIG, "agent '{}' not found in {}", name, join(path_, ":"));
}

Result<const AgentInfo *> AgentRegistry::find(std::string_view name) const
{
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(name); it != cache_.end())
        return it->second.get();
    auto located = locate(name);
    if (!located)
        return located.error();
    const std::string &path = *located;
    agent_host::preload_in_template(path); // its dlopen overlaps ours
    auto info = load_agent_file(path);
    if (!info)
        return info.error();
    if (name.find('/') == std::string_view::npos && info->name != name)
        return make_error(STOCKADE_RC_BAD_CONFIG, "agent file {} calls itself '{}', expected '{}'", path, info->name,
                          name);
    auto [it, _] = cache_.emplace(std::string(name), std::make_unique<AgentInfo>(std::move(info.value())));
    return it->second.get();
}

std::vector<std::pair<std::string, Result<const AgentInfo *>>> AgentRegistry::scan() const
{
    std::vector<std::string> names;
    for (const auto &dir : path_) {
        std::error_code ec;
        for (const auto &e : std::filesystem::directory_iterator(dir, ec)) {
            auto fn = e.path().filename().string();
            if (fn.size() > 3 && fn.ends_with(".so")) {
                std::string n = fn.substr(0, fn.size() - 3);
                if (std::find(names.begin(), names.end(), n) == names.end())
                    names.push_back(n);
            }
        }
    }
    std::sort(names.begin(), names.end());
    std::vector<std::pair<std::string, Result<const AgentInfo *>>> out;
    for (const auto &n : names)
        out.emplace_back(n, find(n));
    return out;
}

} // namespace stockade
