// libvirtd_peer.cpp -- the libvirt agent tests' peers: the agent in a session, our own libvirt
// connection for read-back, and a private libvirtd hosting only the test driver.
#include <catch2/catch.hpp>

#include <libvirt/virterror.h>

#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "libvirt_test_support.hpp"

using namespace std::chrono_literals;

namespace stockade::test {

namespace {
void silence(void *, virErrorPtr) {}
} // namespace

const AgentInfo &libvirt_agent(const AgentRegistry &reg)
{
    auto a = reg.find("libvirt");
    if (!a.ok())
        FAIL("libvirt agent not found: " << a.error().message);
    return **a;
}

std::unique_ptr<AgentSession> open_libvirt(const AgentRegistry &reg, const RawParams &params, bool isolate,
                                           Logger *logger)
{
    return open_session(libvirt_agent(reg), params, isolate, logger);
}

Virt::Virt(const std::string &uri)
{
    conn_ = virConnectOpen(uri.c_str());
    if (!conn_)
        error_ = virGetLastErrorMessage();
    else
        virConnSetErrorFunc(conn_, nullptr, silence);
}

Virt::~Virt()
{
    if (conn_)
        virConnectClose(conn_);
}

int Virt::state(const std::string &domain) const
{
    if (!conn_)
        return -1;
    virDomainPtr d = virDomainLookupByName(conn_, domain.c_str());
    if (!d)
        return -1;
    int st = -1, reason = 0;
    if (virDomainGetState(d, &st, &reason, 0) < 0)
        st = -1;
    virDomainFree(d);
    return st;
}

int Virt::id(const std::string &domain) const
{
    if (!conn_)
        return -2;
    virDomainPtr d = virDomainLookupByName(conn_, domain.c_str());
    if (!d)
        return -2;
    int id = static_cast<int>(virDomainGetID(d));
    virDomainFree(d);
    return id;
}

Libvirtd::Libvirtd()
{
    start();
}

void Libvirtd::restart()
{
    stop();
    std::filesystem::remove(socket());
    why_.clear();
    start();
}

void Libvirtd::start()
{
    auto daemon = which("libvirtd");
    if (!daemon) {
        why_ = "libvirtd is not installed (package libvirt-daemon)";
        return;
    }
    const std::string d = dir_.path().string();
    std::filesystem::create_directories(d + "/sock");
    std::filesystem::create_directories(d + "/nodrivers");
    write_file(d + "/libvirtd.conf", "unix_sock_dir = \"" + d + "/sock\"\n"
                                     "unix_sock_rw_perms = \"0700\"\n"
                                     "auth_unix_rw = \"none\"\n"
                                     "auth_unix_ro = \"none\"\n"
                                     "log_outputs = \"3:file:" + d + "/libvirtd.log\"\n");
    // Everything exec needs is built before fork (the test process has threads).
    std::vector<std::string> args = {*daemon, "-f", d + "/libvirtd.conf", "-p", d + "/libvirtd.pid"};
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs = {"LIBVIRT_DRIVER_DIR=" + d + "/nodrivers", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    std::vector<char *> envp;
    for (auto &e : envs)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string out_path = d + "/libvirtd.out";
    pid_t pid = fork();
    if (pid == 0) {
        int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlives a test process that dies early
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    if (pid < 0) {
        why_ = "fork failed";
        return;
    }
    pid_ = pid;
    for (int i = 0; i < 100 && !std::filesystem::exists(socket()); ++i) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            why_ = "libvirtd exited at start: " + read_file(out_path) + read_file(d + "/libvirtd.log");
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    for (int i = 0; i < 40 && !holder_; ++i) {
        holder_ = virConnectOpen(uri().c_str());
        if (!holder_)
            std::this_thread::sleep_for(50ms);
    }
    if (holder_)
        virConnSetErrorFunc(holder_, nullptr, silence);
    else
        why_ = "cannot connect to the test libvirtd at " + uri() + ": " + virGetLastErrorMessage();
}

Libvirtd::~Libvirtd()
{
    stop();
}

void Libvirtd::stop()
{
    if (holder_ && pid_ > 0 && pid_alive(pid_)) {
        ::kill(pid_, SIGCONT);
        virConnectClose(holder_);
    }
    holder_ = nullptr;
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
    }
}

std::string Libvirtd::uri() const
{
    return "test+unix:///default?socket=" + socket();
}

bool Libvirtd::add_domain(const std::string &name, const std::string &uuid)
{
    std::string xml = "<domain type='test'><name>" + name + "</name><uuid>" + uuid +
                      "</uuid><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
    virDomainPtr d = virDomainDefineXML(holder_, xml.c_str());
    if (!d)
        return false;
    bool ok = virDomainCreate(d) == 0;
    virDomainFree(d);
    return ok;
}

std::string Libvirtd::virsh(const std::vector<std::string> &args) const
{
    auto virsh = which("virsh");
    if (!virsh)
        return "<virsh missing>";
    std::vector<std::string> argv{*virsh, "-c", uri()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, "", 20s);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    if (r.exit_code != 0)
        return "<virsh failed: " + r.err + ">";
    return out;
}

} // namespace stockade::test
