// host_protocol.hpp -- the pipe protocol between an isolated session and stockade-agent-host.
//
// One JSON object per line.  Requests (parent -> child, on the child's stdin):
//   {"op":"open","params":[[name,value],...],"timeout_ms":N,"label":"dev","search_path":[...]}
//   {"op":"power","action":A,"target":"t","timeout_ms":N}
//   {"op":"status","target":"t","timeout_ms":N}   {"op":"list","timeout_ms":N}
//   {"op":"monitor","timeout_ms":N}               {"op":"close"}
// Replies (child -> parent, on the child's stdout): any number of
//   {"type":"log","level":L,"msg":"..."}
// then exactly one {"type":"result","rc":R,"message":"...","verified":V,"state":S,
//   "targets":[[name,alias],...]} per request.  Secrets only ever travel in "open" over the pipe.
//
// Fork server (stockade-agent-host --serve PATH FD, or the template a front-end forked from
// itself, start_fork_template; PATH may be empty for the former): one SOCK_SEQPACKET datagram per message on
// the control socket FD, "VERB VALUE TEXT", descriptors as SCM_RIGHTS.  Client -> server:
//   "fork 0 PATH" + the session's stdin (read end), stdout and stderr (write ends)
//        -> "pid N" (the session child, in process group N, speaking the protocol above)
//        |  "error 0 why" (e.g. the server has threads: the client falls back to exec)
//   "reap N" (only once N exited and the client killed its group)
//        -> "status S" (the wait status) | "unknown" (the server could not read it)
//   "load 0 PATH": start loading PATH now (a hint from the registry; no reply)
// EOF on the control socket ends the server.
#pragma once

#include <limits>
#include <string_view>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "stockade/log.hpp"
#include "stockade/registry.hpp"
#include "stockade/result.hpp"

#include "stockade/session.hpp"

namespace stockade::host_protocol {

inline nlohmann::json result_to_json(const OpResult &r)
{
    nlohmann::json t = nlohmann::json::array();
    for (const auto &x : r.targets)
        t.push_back({x.name, x.alias});
    return {{"type", "result"}, {"rc", r.rc},         {"message", r.message},     {"verified", r.verified},
            {"state", r.power_state}, {"targets", t}, {"elapsed_ms", r.elapsed_ms}};
}

// Typed reads that never throw: nlohmann's value() throws when a field has another type, and an
// exception here would end a fencing operation with a crash (tests/fuzz/fuzz_agent_host_protocol).
inline std::string str_field(const nlohmann::json &j, const char *key)
{
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <class Int>
Int int_field(const nlohmann::json &j, const char *key, Int fallback)
{
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer())
        return fallback;
    if (it->is_number_unsigned()) {
        auto v = it->get<uint64_t>();
        return v <= uint64_t(std::numeric_limits<Int>::max()) ? Int(v) : fallback;
    }
    auto v = it->get<int64_t>();
    return v >= int64_t(std::numeric_limits<Int>::min()) && (v < 0 || uint64_t(v) <= uint64_t(std::numeric_limits<Int>::max()))
               ? Int(v)
               : fallback;
}

inline OpResult result_from_json(const nlohmann::json &j)
{
    OpResult r;
    r.rc = int_field<uint32_t>(j, "rc", STOCKADE_RC_INTERNAL);
    r.message = str_field(j, "message");
    r.verified = int_field<uint32_t>(j, "verified", 0u);
    r.power_state = int_field<uint32_t>(j, "state", STOCKADE_POWER_UNKNOWN);
    r.elapsed_ms = int_field<int64_t>(j, "elapsed_ms", 0);
    if (auto it = j.find("targets"); it != j.end() && it->is_array())
        for (const auto &t : *it)
            if (t.is_array() && t.size() == 2 && t[0].is_string() && t[1].is_string())
                r.targets.push_back({t[0].get<std::string>(), t[1].get<std::string>()});
    if (r.rc >= STOCKADE_RC_COUNT)
        r.rc = STOCKADE_RC_INTERNAL;
    return r;
}

// One request line as the agent host reads it.
struct Request {
    std::string op;
    int64_t timeout_ms = 0;
    uint32_t action = 0;
    std::string target;
    ParamList params;
    bool nested = false;
    std::vector<std::string> search_path;
    int log_level = STOCKADE_LOG_DEBUG; // open: the least important log line the client keeps
};

inline Result<Request> parse_request(std::string_view line)
{
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Error{STOCKADE_RC_INTERNAL, "agent host: malformed request"};
    Request r;
    r.op = str_field(j, "op");
    r.timeout_ms = int_field<int64_t>(j, "timeout_ms", 0);
    r.action = int_field<uint32_t>(j, "action", 0u);
    r.target = str_field(j, "target");
    r.log_level = int_field<int>(j, "log_level", int(STOCKADE_LOG_DEBUG));
    if (auto it = j.find("nested"); it != j.end() && it->is_boolean())
        r.nested = it->get<bool>();
    if (auto it = j.find("search_path"); it != j.end() && it->is_array())
        for (const auto &d : *it)
            if (d.is_string())
                r.search_path.push_back(d.get<std::string>());
    if (auto it = j.find("params"); it != j.end() && it->is_array())
        for (const auto &p : *it)
            if (p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string())
                r.params.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    return r;
}

// One line from the agent host as the parent reads it: a log line or the result.  An error means
// "not ours" (stray output), which the parent skips.
struct Reply {
    bool is_result = false;
    int log_level = STOCKADE_LOG_INFO;
    std::string log_msg;
    OpResult result;
};

inline Result<Reply> parse_reply(std::string_view line)
{
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Error{STOCKADE_RC_INTERNAL, "not a reply"};
    Reply r;
    const std::string type = str_field(j, "type");
    if (type == "result") {
        r.is_result = true;
        r.result = result_from_json(j);
    } else if (type == "log") {
        r.log_level = int_field<int>(j, "level", STOCKADE_LOG_INFO);
        r.log_msg = str_field(j, "msg");
    } else {
        return Error{STOCKADE_RC_INTERNAL, "not a reply"};
    }
    return r;
}

struct ControlMessage {
    std::string verb;
    int64_t value = 0;
    std::string text;
    std::vector<int> fds; // received descriptors are the receiver's to close
};

inline bool send(int sock, const ControlMessage &m)
{
    std::string body = m.verb + " " + std::to_string(m.value) + " " + m.text;
    iovec iov{body.data(), body.size()};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)] = {};
    if (!m.fds.empty() && m.fds.size() <= 4) {
        h.msg_control = cbuf;
        h.msg_controllen = CMSG_SPACE(sizeof(int) * m.fds.size());
        cmsghdr *c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * m.fds.size());
        std::memcpy(CMSG_DATA(c), m.fds.data(), sizeof(int) * m.fds.size());
    }
    ssize_t n;
    while ((n = ::sendmsg(sock, &h, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n == ssize_t(body.size());
}

inline bool receive(int sock, ControlMessage &m)
{
    char buf[4096];
    iovec iov{buf, sizeof buf - 1};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)] = {};
    h.msg_control = cbuf;
    h.msg_controllen = sizeof cbuf;
    ssize_t n;
    while ((n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    if (n <= 0)
        return false;
    m = {};
    for (cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            m.fds.resize(k);
            std::memcpy(m.fds.data(), CMSG_DATA(c), k * sizeof(int));
        }
    std::string body(buf, size_t(n));
    size_t a = body.find(' '), b = a == std::string::npos ? a : body.find(' ', a + 1);
    m.verb = body.substr(0, a);
    if (a != std::string::npos)
        m.value = std::strtoll(body.c_str() + a + 1, nullptr, 10);
    if (b != std::string::npos)
        m.text = body.substr(b + 1);
    return true;
}

} // namespace stockade::host_protocol
