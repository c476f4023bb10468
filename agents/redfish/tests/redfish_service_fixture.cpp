// redfish_service_fixture.cpp -- see redfish_service_fixture.hpp.
#include "redfish_service_fixture.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <netinet/in.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "stockade/process.hpp"

#ifndef REDFISH_SERVICE_PY
#error "REDFISH_SERVICE_PY (path of redfish_service.py) must be defined by the build"
#endif

namespace stockade::test {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string slurp(const fs::path &p)
{
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void put(const fs::path &p, const std::string &text, fs::perms mode = fs::perms(0644))
{
    const fs::path tmp = p.string() + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f)
            throw std::runtime_error("cannot write " + tmp.string());
        f << text;
    }
    fs::permissions(tmp, mode);
    fs::rename(tmp, p);
}

// Absolute path of a program on PATH ("" when absent): the spawn API wants a path.
std::string on_path(const std::string &prog)
{
    const char *path = std::getenv("PATH");
    std::stringstream dirs(path && *path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((dir + "/" + prog).c_str(), X_OK) == 0)
            return dir + "/" + prog;
    return {};
}

std::string run_or_throw(std::vector<std::string> argv)
{
    if (argv[0].find('/') == std::string::npos)
        if (std::string full = on_path(argv[0]); !full.empty())
            argv[0] = full;
    SpawnSpec spec;
    spec.argv = argv;
    auto r = run_command(spec, "", std::chrono::seconds(30));
    if (!r || r->exit_code != 0)
        throw std::runtime_error(argv[0] + " " + argv[1] + " failed: " + (r ? r->err : r.error().message));
    return r->out;
}

int free_tcp_port(const std::string &address)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
        throw std::runtime_error("cannot bind a TCP port on " + address);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// CA + a server certificate for `name` (IP or DNS SAN), EC P-256 (fast to make).
void make_certificates(const fs::path &d, const std::string &address)
{
    if (!fs::exists(d / "ca.pem")) {
        run_or_throw({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", (d / "ca.key").string(), "-out", (d / "ca.pem").string(), "-days", "2", "-subj",
                      "/CN=stockade test CA"});
    }
    auto server = [&](const std::string &stem, const std::string &san) {
        if (fs::exists(d / (stem + ".pem")))
            return;
        run_or_throw({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                      (d / (stem + ".key")).string(), "-out", (d / (stem + ".csr")).string(), "-subj",
                      "/CN=" + stem});
        put(d / (stem + ".ext"), "subjectAltName=" + san + "\n");
        run_or_throw({"openssl", "x509", "-req", "-in", (d / (stem + ".csr")).string(), "-CA", (d / "ca.pem").string(),
                      "-CAkey", (d / "ca.key").string(), "-CAcreateserial", "-out", (d / (stem + ".pem")).string(),
                      "-days", "2", "-extfile", (d / (stem + ".ext")).string()});
    };
    server("server", "IP:" + address);
    server("wrongname", "DNS:bmc.wrong-name.invalid");
}

size_t discard(char *, size_t size, size_t n, void *) { return size * n; }
size_t keep(char *p, size_t size, size_t n, void *out)
{
    static_cast<std::string *>(out)->append(p, size * n);
    return size * n;
}

} // namespace

std::optional<std::string> redfish_service_unavailable_reason()
{
    if (::access("/usr/bin/python3", X_OK) != 0) // Debian's, not whatever python3 PATH finds first
        return std::string("/usr/bin/python3 is not installed (scripts/packages/redfish.txt)");
    for (const char *prog : {"openssl", "setpriv", "perl"})
        if (on_path(prog).empty())
            return std::string(prog) + " is not installed (scripts/packages/redfish.txt)";
    return std::nullopt;
}

std::unique_ptr<RedfishService> RedfishService::start(const fs::path &dir, RedfishServiceOptions options)
{
    std::unique_ptr<RedfishService> s(new RedfishService());
    s->opt_ = std::move(options);
    s->dir_ = dir;
    fs::create_directories(dir);
    s->cert_dir_ = s->opt_.cert_dir.empty() ? dir : fs::path(s->opt_.cert_dir);
    fs::create_directories(s->cert_dir_);
    make_certificates(s->cert_dir_, s->opt_.address);
    s->port_ = free_tcp_port(s->opt_.address);

    const std::string stem = s->opt_.wrong_name_certificate ? "wrongname" : "server";
    json users = json::array();
    for (const auto &u : s->opt_.users)
        users.push_back({{"name", u.name}, {"password", u.password}, {"role", u.role}});
    json cfg = {{"address", s->opt_.address},
                {"port", s->port_},
                {"cert", (s->cert_dir_ / (stem + ".pem")).string()},
                {"key", (s->cert_dir_ / (stem + ".key")).string()},
                {"users", users},
                {"systems", s->opt_.systems},
                {"action_info", s->opt_.action_info}};
    if (!s->opt_.allowable.empty())
        cfg["allowable"] = s->opt_.allowable;
    if (!s->opt_.initially_on.empty())
        cfg["initially_on"] = s->opt_.initially_on;
    if (!s->opt_.systems_collection.empty())
        cfg["systems_collection"] = s->opt_.systems_collection;
    put(dir / "config.json", cfg.dump(2), fs::perms(0600)); // holds the test passwords
    put(dir / "control.json", "{}");
    std::error_code ec;
    fs::remove(dir / "ready", ec);
    fs::remove(dir / "requests.log", ec);

    const std::string netns_exec = s->opt_.netns.empty() ? "" : "ip netns exec '" + s->opt_.netns + "' ";
    SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c",
                 "exec setpriv --pdeathsig KILL " + netns_exec + "/usr/bin/python3 '" + std::string(REDFISH_SERVICE_PY) + "' '" + dir.string() +
                     "' >'" + (dir / "service.out").string() + "' 2>&1"};
    auto p = Subprocess::spawn(spec);
    if (!p)
        throw std::runtime_error("cannot start the Redfish service: " + p.error().message);
    s->proc_ = std::move(p.value());
    for (int i = 0; i < 200; ++i) {
        if (fs::exists(dir / "ready"))
            return s;
        if (::kill(s->proc_->pid(), 0) != 0)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::string out = slurp(dir / "service.out");
    s->stop();
    throw std::runtime_error("the Redfish service did not start: " + out);
}

RedfishService::~RedfishService() { stop(); }

pid_t RedfishService::pid() const { return proc_ ? proc_->pid() : -1; }

std::string RedfishService::ca_file() const { return (cert_dir_ / "ca.pem").string(); }

std::string RedfishService::fingerprint() const
{
    const std::string stem = opt_.wrong_name_certificate ? "wrongname" : "server";
    std::string out = run_or_throw(
        {"openssl", "x509", "-in", (cert_dir_ / (stem + ".pem")).string(), "-noout", "-fingerprint", "-sha256"});
    auto eq = out.find('=');
    out = eq == std::string::npos ? out : out.substr(eq + 1);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
        out.pop_back();
    return out;
}

pid_t RedfishService::node_pid(const std::string &system) const
{
    long pid = 0;
    std::ifstream f(dir_ / (system + ".node.pid"));
    f >> pid;
    if (pid <= 0 || ::kill(pid_t(pid), 0) != 0)
        return 0;
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z')
        return 0;
    return pid_t(pid);
}

std::vector<std::string> RedfishService::resets(const std::string &system) const
{
    std::vector<std::string> out;
    std::ifstream f(dir_ / (system + ".resets"));
    for (std::string line; std::getline(f, line);)
        out.push_back(line);
    return out;
}

std::vector<std::string> RedfishService::requests() const
{
    std::vector<std::string> out;
    std::ifstream f(dir_ / "requests.log");
    for (std::string line; std::getline(f, line);)
        out.push_back(line);
    return out;
}

size_t RedfishService::requests_matching(const std::string &needle) const
{
    size_t n = 0;
    for (const auto &l : requests())
        if (l.find(needle) != std::string::npos)
            ++n;
    return n;
}

size_t RedfishService::connections() const { return requests_matching(" CONNECT"); }

size_t RedfishService::open_sessions() const
{
    auto j = json::parse(slurp(dir_ / "sessions.json"), nullptr, false);
    return j.is_object() ? j.size() : 0;
}

void RedfishService::clear_log() const
{
    std::ofstream f(dir_ / "requests.log", std::ios::trunc);
}

void RedfishService::control(const std::string &text) const { put(dir_ / "control.json", text); }

long RedfishService::reset(const std::string &system, const std::string &reset_type) const
{
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    const std::string url = "https://" + endpoint() + "/redfish/v1/Systems/" + system + "/Actions/ComputerSystem.Reset";
    const std::string body = json{{"ResetType", reset_type}}.dump();
    const std::string ca = ca_file();
    curl_slist *hdr = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CAINFO, ca.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, opt_.users.front().name.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, opt_.users.front().password.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (opt_.wrong_name_certificate)
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

std::string RedfishService::read_power_state(const std::string &system) const
{
    CURL *h = curl_easy_init();
    if (!h)
        return {};
    const std::string url = "https://" + endpoint() + "/redfish/v1/Systems/" + system;
    const std::string ca = ca_file();
    std::string body;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CAINFO, ca.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, opt_.users.front().name.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, opt_.users.front().password.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (opt_.wrong_name_certificate)
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    const CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return {};
    auto j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("PowerState") && j["PowerState"].is_string() ? j["PowerState"].get<std::string>()
                                                                                    : "";
}

void RedfishService::set_power(const std::string &system, bool on) const
{
    if (node_alive(system) == on)
        return;
    (void)reset(system, on ? "On" : "ForceOff");
    for (int i = 0; i < 200 && node_alive(system) != on; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void RedfishService::stop()
{
    if (!proc_)
        return;
    std::vector<std::string> systems = opt_.systems;
    ::kill(proc_->pid(), SIGTERM);
    (void)proc_->wait(monotonic_ms() + 3000);
    proc_.reset(); // kills whatever is left of the tree
    for (const auto &s : systems)
        if (pid_t p = node_pid(s))
            ::kill(p, SIGKILL);
}

} // namespace stockade::test
