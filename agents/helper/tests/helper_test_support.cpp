// helper_test_support.cpp -- loop devices and network namespaces for the helper tests.
#include "helper_test_support.hpp"

#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>

namespace stockade::test {

CommandResult sh(const std::vector<std::string> &argv, std::chrono::milliseconds timeout)
{
    std::vector<std::string> a = argv;
    if (!a.empty() && a[0].find('/') == std::string::npos) {
        auto p = which(a[0]);
        if (!p) {
            CommandResult r;
            r.err = a[0] + ": not found";
            return r;
        }
        a[0] = *p;
    }
    try {
        return run(a, "", timeout);
    } catch (const std::exception &e) {
        CommandResult r;
        r.err = e.what();
        return r;
    }
}

static bool ok(const CommandResult &r) { return r.exit_code && *r.exit_code == 0; }

static std::string trim(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

std::optional<LoopDevice> LoopDevice::create(const std::string &dir, size_t bytes, unsigned sector_size,
                                             std::string &why_not)
{
    std::string image = dir + "/sfex-" + std::to_string(sector_size) + ".img";
    write_file(image, std::string(bytes, '\0'));
    auto r = sh({"losetup", "-f", "--show", "--sector-size", std::to_string(sector_size), image});
    if (!ok(r)) {
        why_not = "losetup -f --show failed (no loop devices here?): " + trim(r.err);
        return std::nullopt;
    }
    return LoopDevice(trim(r.out), image);
}

LoopDevice::~LoopDevice()
{
    if (!dev_.empty())
        sh({"losetup", "-d", dev_});
}

void write_raw(const std::string &path, size_t offset, const std::string &bytes, size_t block)
{
    // Read-modify-write whole aligned blocks, as the device demands.
    size_t first = offset / block * block;
    size_t len = (offset + bytes.size() + block - 1) / block * block - first;
    void *mem = nullptr;
    if (::posix_memalign(&mem, 4096, len) != 0)
        throw std::runtime_error("posix_memalign");
    std::unique_ptr<void, decltype(&std::free)> guard(mem, &std::free);
    int fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_SYNC);
    if (fd < 0)
        fd = ::open(path.c_str(), O_RDWR | O_SYNC);
    if (fd < 0)
        throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    if (::pread(fd, mem, len, off_t(first)) != ssize_t(len))
        std::memset(mem, 0, len);
    std::memcpy(static_cast<char *>(mem) + (offset - first), bytes.data(), bytes.size());
    ssize_t n = ::pwrite(fd, mem, len, off_t(first));
    ::close(fd);
    if (n != ssize_t(len))
        throw std::runtime_error("write " + path + " failed");
}

std::optional<NetLab> NetLab::create(int hosts, std::string &why_not)
{
    NetLab lab;
    std::string tag = std::to_string(::getpid());
    lab.client_ = "stk-hc-" + tag;
    auto must = [&](const std::vector<std::string> &argv) {
        auto r = sh(argv);
        if (!ok(r) && why_not.empty())
            why_not = "'" + argv[0] + " " + (argv.size() > 1 ? argv[1] + " " + argv[2] : "") + "...' failed: " + trim(r.err);
        return ok(r);
    };
    if (!must({"ip", "netns", "add", lab.client_})) {
        lab.client_.clear();
        return std::nullopt;
    }
    auto in = [&](const std::string &ns, std::vector<std::string> argv) {
        argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
        return must(argv);
    };
    if (!in(lab.client_, {"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"}))
        return std::nullopt;
    for (int i = 0; i < hosts; ++i) {
        std::string ns = "stk-hh" + std::to_string(i) + "-" + tag;
        if (!must({"ip", "netns", "add", ns}))
            return std::nullopt;
        lab.hosts_.push_back(ns);
        std::string cif = "vc" + std::to_string(i);
        std::string hif = host_if(i);
        // Create the pair directly inside the namespaces so nothing ever appears in the root one.
        if (!must({"ip", "link", "add", cif, "netns", lab.client_, "type", "veth", "peer", "name", hif, "netns", ns}))
            return std::nullopt;
        if (!in(ns, {"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"}) ||
            !in(ns, {"sysctl", "-qw", "net.ipv4.conf." + hif + ".route_localnet=1"}) ||
            !in(lab.client_, {"sysctl", "-qw", "net.ipv4.conf." + cif + ".route_localnet=1"}) ||
            !in(ns, {"ip", "addr", "add", host_ip(i) + "/30", "dev", hif}) ||
            !in(lab.client_, {"ip", "addr", "add", client_ip(i) + "/30", "dev", cif}) ||
            !in(ns, {"ip", "link", "set", hif, "up"}) || !in(lab.client_, {"ip", "link", "set", cif, "up"}))
            return std::nullopt;
    }
    return lab;
}

NetLab::~NetLab()
{
    for (auto &ns : hosts_)
        if (!ns.empty())
            sh({"ip", "netns", "del", ns});
    if (!client_.empty())
        sh({"ip", "netns", "del", client_});
}

bool NetLab::set_host_link(int i, bool up)
{
    return ok(sh({"ip", "netns", "exec", hosts_.at(size_t(i)), "ip", "link", "set", host_if(i), up ? "up" : "down"}));
}

bool NetLab::delete_host(int i)
{
    bool r = ok(sh({"ip", "netns", "del", hosts_.at(size_t(i))}));
    if (!r)
        return false;
    hosts_[size_t(i)].clear();
    // The kernel tears a namespace down asynchronously: until our end of the veth pair is gone,
    // the host may still answer.  Wait for it (a few ms usually).
    for (int tries = 0; tries < 250; ++tries) {
        if (!ok(in_client({"ip", "link", "show", "vc" + std::to_string(i)}, std::chrono::seconds(5))))
            return true;
        ::usleep(20000);
    }
    return false;
}

CommandResult NetLab::in_client(const std::vector<std::string> &argv, std::chrono::milliseconds timeout) const
{
    std::vector<std::string> a = {"ip", "netns", "exec", client_};
    a.insert(a.end(), argv.begin(), argv.end());
    return sh(a, timeout);
}

DriverResult parse_driver_output(const CommandResult &r)
{
    DriverResult d;
    d.raw_out = r.out;
    d.raw_err = r.err;
    auto pos = r.out.rfind("rc=");
    if (pos == std::string::npos)
        return d;
    std::string line = r.out.substr(pos);
    unsigned rc = 0, v = 0, st = 0;
    long long el = 0;
    int consumed = 0;
    if (std::sscanf(line.c_str(), "rc=%u verified=%u state=%u elapsed_ms=%lld message=%n", &rc, &v, &st, &el,
                    &consumed) >= 4) {
        d.ran = true;
        d.rc = rc;
        d.verified = v;
        d.state = st;
        d.elapsed_ms = el;
        d.message = consumed > 0 ? trim(line.substr(size_t(consumed))) : "";
    }
    return d;
}

} // namespace stockade::test
