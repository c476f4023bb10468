// test_support.cpp -- see test_support.hpp.
#include "test_support.hpp"

#include <thread>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace stockade::test {

TempDir::TempDir()
{
    const char *base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/stockade-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back(0);
    if (!::mkdtemp(buf.data()))
        throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string env_or_fail(const char *name)
{
    const char *v = std::getenv(name);
    if (!v || !*v)
        throw std::runtime_error(std::string("environment variable ") + name + " is not set (run through ctest)");
    return v;
}

std::string bin_path(const std::string &tool) { return env_or_fail("STOCKADE_BIN_DIR") + "/" + tool; }
std::string source_path(const std::string &rel) { return env_or_fail("STOCKADE_SOURCE_DIR") + "/" + rel; }

static int free_port(int type)
{
    int fd = ::socket(AF_INET, type, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
        throw std::runtime_error("cannot bind a loopback port");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

int free_udp_port() { return free_port(SOCK_DGRAM); }
int free_tcp_port() { return free_port(SOCK_STREAM); }

void write_file(const std::string &path, const std::string &content, mode_t mode)
{
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << content;
    }
    ::chmod(path.c_str(), mode);
}

std::string read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool pid_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s))
        return false;
    auto rp = s.rfind(')');
    return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] != 'Z' && s[rp + 2] != 'X';
}

const AgentInfo &registered_agent(const std::string &name)
{
    static AgentRegistry reg;
    auto a = reg.find(name);
    if (!a)
        throw std::runtime_error(a.error().message);
    return **a;
}

bool pid_gone_within(pid_t pid, std::chrono::milliseconds within)
{
    const auto end = std::chrono::steady_clock::now() + within;
    while (pid_alive(pid)) {
        if (std::chrono::steady_clock::now() >= end)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

std::vector<pid_t> processes_exposing(const std::string &needle)
{
    std::vector<pid_t> out;
    DIR *d = ::opendir("/proc");
    if (!d)
        return out;
    while (dirent *e = ::readdir(d)) {
        char *end = nullptr;
        long p = std::strtol(e->d_name, &end, 10);
        if (!end || *end || p <= 0)
            continue;
        for (const char *f : {"cmdline", "environ"}) {
            std::string content = read_file("/proc/" + std::string(e->d_name) + "/" + f);
            if (content.find(needle) != std::string::npos) {
                out.push_back(pid_t(p));
                break;
            }
        }
    }
    ::closedir(d);
    return out;
}

CommandResult run(const std::vector<std::string> &argv, const std::string &input, std::chrono::milliseconds timeout,
                  const std::vector<std::pair<std::string, std::string>> &env)
{
    SpawnSpec spec;
    spec.argv = argv;
    spec.env_set = env;
    auto r = run_command(spec, input, timeout);
    if (!r)
        throw std::runtime_error(r.error().message);
    return r.value();
}

void in_netns(const std::string &ns, const std::function<void()> &fn)
{
    std::exception_ptr err;
    std::thread t([&] {
        try {
            int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
                if (fd >= 0)
                    ::close(fd);
                throw std::runtime_error("cannot join network namespace " + ns);
            }
            ::close(fd);
            fn();
        } catch (...) {
            err = std::current_exception();
        }
    });
    t.join();
    if (err)
        std::rethrow_exception(err);
}

std::optional<std::string> which(const std::string &program)
{
    const char *path = std::getenv("PATH");
    std::string p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
    p += ":/usr/sbin:/sbin";
    std::stringstream ss(p);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        std::string cand = dir + "/" + program;
        if (::access(cand.c_str(), X_OK) == 0)
            return cand;
    }
    return std::nullopt;
}

SilentListener::SilentListener()
{
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
        throw std::runtime_error(std::string("silent listener on 127.0.0.1: ") + std::strerror(errno));
    port_ = ntohs(a.sin_port);
}

SilentListener::~SilentListener()
{
    if (fd_ >= 0)
        ::close(fd_);
}

std::vector<PrepareReport> prepare_reports(const std::string &journal)
{
    std::vector<PrepareReport> out;
    std::istringstream in(read_file(journal));
    for (std::string line; std::getline(in, line);) {
        PrepareReport r;
        char label[64];
        if (std::sscanf(line.c_str(), "%63s prepared count=%d,by=%ld,in=%ld", label, &r.count, &r.by, &r.in) == 4)
            out.push_back(r);
    }
    return out;
}

long ms_since(std::chrono::steady_clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

RawParams with_params(RawParams base, const RawParams &extra)
{
    for (const auto &kv : extra) {
        auto it = std::find_if(base.begin(), base.end(), [&](const auto &q) { return q.first == kv.first; });
        if (kv.second == "<unset>") {
            if (it != base.end())
                base.erase(it);
        } else if (it != base.end()) {
            it->second = kv.second;
        } else {
            base.push_back(kv);
        }
    }
    return base;
}

std::unique_ptr<AgentSession> open_session(const AgentInfo &agent, const RawParams &raw, bool isolate, Logger *logger,
                                           OpResult *open_result)
{
    auto params = resolve_params(agent, raw, UnknownParams::Reject);
    if (!params)
        throw std::runtime_error("parameters refused: " + params.error().message);
    SessionOptions options;
    options.isolate = isolate;
    options.logger = logger;
    options.label = agent.name;
    auto s = make_session(agent, std::move(options));
    OpResult r = s->open(*params, std::chrono::seconds(10));
    if (open_result)
        *open_result = r;
    else if (!r.ok())
        throw std::runtime_error("open failed: " + r.message);
    return s;
}

KeptLog::KeptLog()
{
    logger.set_level(STOCKADE_LOG_DEBUG);
    logger.add_sink([shared = shared_](int, std::string_view line) {
        std::lock_guard<std::mutex> g(shared->mu);
        shared->lines.emplace_back(line);
    });
}

std::vector<std::string> KeptLog::lines() const
{
    std::lock_guard<std::mutex> g(shared_->mu);
    return shared_->lines;
}

std::string KeptLog::all() const
{
    std::string out;
    for (const auto &l : lines())
        out += l + "\n";
    return out;
}

bool KeptLog::contains(const std::string &needle) const
{
    for (const auto &l : lines())
        if (l.find(needle) != std::string::npos)
            return true;
    return false;
}

} // namespace stockade::test
