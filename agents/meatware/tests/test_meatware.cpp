// Tests for the meatware agent and stockade-meatclient against the real peers: Debian's
// cluster-glue `meatclient` and `stonith -t meatware`, on the real /run/meatware.<host> FIFOs.
// Every test uses its own host names (pid + counter) so parallel runs never meet in /run, and
// every test checks afterwards that no FIFO and no waiting process is left behind.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <future>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "meatware_channel.hpp"
#include "stockade/log.hpp"
#include "stockade/registry.hpp"
#include "stockade/session.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace std::chrono_literals;
namespace mw = stockade::meatware;

namespace {

// A child that exits before reading its input must give this process EPIPE, not kill it.
const bool kSigpipeIgnored = (std::signal(SIGPIPE, SIG_IGN), true);

std::string unique_host(const std::string &tag)
{
    static std::atomic<int> n{0};
    return "mwt-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(++n);
}

bool exists(const std::string &path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

bool wait_until(const std::function<bool()> &pred, std::chrono::milliseconds max = 10s)
{
    auto until = std::chrono::steady_clock::now() + max;
    while (std::chrono::steady_clock::now() < until) {
        if (pred())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

// A FIFO exists at `path` and some process is waiting on it (an fd, or blocked in open()).
bool request_waiting(const std::string &path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode))
        return false;
    for (const auto &h : mw::processes_holding(st.st_dev, st.st_ino, path))
        if (h.reads)
            return true;
    return false;
}

// Every process with a descriptor on `path` (also after it was unlinked).
std::vector<pid_t> processes_with_fd_on(const std::string &path)
{
    std::vector<pid_t> out;
    DIR *d = ::opendir("/proc");
    if (!d)
        return out;
    while (dirent *e = ::readdir(d)) {
        std::string fd_dir = std::string("/proc/") + e->d_name + "/fd";
        DIR *fds = ::opendir(fd_dir.c_str());
        if (!fds)
            continue;
        while (dirent *f = ::readdir(fds)) {
            char buf[4096];
            ssize_t n = ::readlink((fd_dir + "/" + f->d_name).c_str(), buf, sizeof buf - 1);
            if (n <= 0)
                continue;
            std::string target(buf, size_t(n));
            if (target == path || target == path + " (deleted)")
                out.push_back(pid_t(std::atol(e->d_name)));
        }
        ::closedir(fds);
    }
    ::closedir(d);
    return out;
}

// Nothing is left: no FIFO, no descriptor on it, no process mentioning the host.
void check_nothing_left(const std::string &host)
{
    std::string path = mw::fifo_path(mw::ascii_lower(host));
    CHECK_FALSE(exists(path));
    CHECK(processes_with_fd_on(path).empty());
    CHECK(wait_until([&] { return test::processes_exposing(host).empty(); }, 5s));
}

// Writes a raw message into a request FIFO the way a client would (for messages no real client
// produces: other host, prefix of the host).
void write_raw(const std::string &path, const std::string &text)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::array<char, mw::kMessageSize> msg{};
    std::memcpy(msg.data(), text.data(), std::min(text.size(), msg.size()));
    REQUIRE(::write(fd, msg.data(), msg.size()) == ssize_t(msg.size()));
    ::close(fd);
}

const AgentInfo &meatware_agent()
{
    return test::registered_agent("meatware");
}

// One fence through the meatware agent, run in the background like the runner would.
class Fence {
public:
    Fence(const std::string &hostlist, const std::string &timeout_s = "20", bool isolate = true)
    {
        logger_.set_level(STOCKADE_LOG_DEBUG);
        logger_.add_sink([this](int level, std::string_view line) {
            std::lock_guard lock(mu_);
            lines_.emplace_back(level, std::string(line));
        });
        auto params = resolve_params(meatware_agent(), {{"hostlist", hostlist}, {"timeout", timeout_s}},
                                     UnknownParams::Reject);
        REQUIRE(params.ok());
        SessionOptions o;
        o.isolate = isolate;
        o.logger = &logger_;
        o.cancel = &cancel;
        session_ = make_session(meatware_agent(), o);
        auto r = session_->open(*params, 5s);
        REQUIRE(r.ok());
    }
    ~Fence()
    {
        if (fut_.valid())
            fut_.wait();
        session_->close();
    }

    void start(const std::string &target, Millis timeout = 30s, PowerAction a = PowerAction::Off)
    {
        fut_ = std::async(std::launch::async, [=, this] { return session_->power(a, target, timeout); });
    }
    OpResult result()
    {
        REQUIRE(fut_.wait_for(60s) == std::future_status::ready);
        return fut_.get();
    }
    std::vector<std::string> lines_at(int level)
    {
        std::lock_guard lock(mu_);
        std::vector<std::string> out;
        for (auto &[l, s] : lines_)
            if (l == level)
                out.push_back(s);
        return out;
    }
    AgentSession &session() { return *session_; }

    std::atomic<bool> cancel{false};

private:
    Logger logger_;
    std::mutex mu_;
    std::vector<std::pair<int, std::string>> lines_;
    std::unique_ptr<AgentSession> session_;
    std::future<OpResult> fut_;
};

std::string debian_meatclient()
{
    return "/usr/sbin/meatclient";
}
std::string our_meatclient()
{
    return test::bin_path("stockade-meatclient");
}

bool have_cluster_glue()
{
    return ::access(debian_meatclient().c_str(), X_OK) == 0 && test::which("stonith").has_value();
}

} // namespace

TEST_CASE("host names are checked before any path is built; replies match whole names", "[meatware]")
{
    for (const char *bad : {"", "a/b", "..", "a..b", "../etc", "a b", "a\tb", "a\nb", "bell\x07", "del\x7f", ".",
                            "caf\xc3\xa9"})
        CHECK_FALSE(mw::host_name_problem(bad).empty());
    CHECK_FALSE(mw::host_name_problem(std::string(mw::kMaxHostLength + 1, 'a')).empty());
    CHECK(mw::host_name_problem(std::string(mw::kMaxHostLength, 'a')).empty());
    CHECK(mw::host_name_problem("Node-1.example.com").empty());
    CHECK(mw::fifo_path("node1") == "/run/meatware.node1");

    auto msg = mw::build_reply("node1");
    CHECK(msg.size() == 256);
    CHECK(std::string(msg.data()) == "meatware reply node1");
    CHECK(std::all_of(msg.begin() + 20, msg.end(), [](char c) { return c == 0; }));

    using V = mw::ReplyVerdict;
    CHECK(mw::parse_reply(std::string_view(msg.data(), msg.size()), "node1").verdict == V::Confirmed);
    CHECK(mw::parse_reply("meatware reply NODE1", "node1").verdict == V::Confirmed);
    CHECK(mw::parse_reply("meatware reply node1\n", "node1").verdict == V::Confirmed);
    // bytes after the NUL are padding (Debian's meatclient sends stack bytes there)
    CHECK(mw::parse_reply(std::string("meatware reply node1\0garbage node9", 35), "node1").verdict == V::Confirmed);
    CHECK(mw::parse_reply("meatware reply node1", "node10").verdict == V::OtherHost); // prefix
    CHECK(mw::parse_reply("meatware reply node10", "node1").verdict == V::OtherHost);
    CHECK(mw::parse_reply("meatware reply node2", "node1").verdict == V::OtherHost);
    CHECK(mw::parse_reply("meatware reply", "node1").verdict == V::Malformed);
    CHECK(mw::parse_reply("meatware reply node1 extra", "node1").verdict == V::Malformed);
    CHECK(mw::parse_reply("meatwarez replyz node1", "node1").verdict == V::Malformed);
    CHECK(mw::parse_reply("", "node1").verdict == V::Malformed);
}

TEST_CASE("meatware parameters, list, status and unsupported actions", "[meatware]")
{
    const AgentInfo &a = meatware_agent();
    CHECK(a.can(STOCKADE_CAP_OFF | STOCKADE_CAP_REBOOT | STOCKADE_CAP_STATUS | STOCKADE_CAP_LIST));
    CHECK_FALSE(a.can(STOCKADE_CAP_ON));
    CHECK(a.find_param("pcmk_host_list")->name == "hostlist");

    auto s = make_session(a, SessionOptions{});
    auto bad = resolve_params(a, {{"hostlist", "ok1 ../etc/passwd"}}, UnknownParams::Reject);
    REQUIRE(bad.ok());
    auto r = s->open(*bad, 5s);
    CHECK(r.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(r.message, Catch::Contains("hostlist") && Catch::Contains("'..'"));
    s->close();

    s = make_session(a, SessionOptions{});
    auto zero = resolve_params(a, {{"hostlist", "a"}, {"timeout", "0"}}, UnknownParams::Reject);
    REQUIRE(zero.ok());
    CHECK(s->open(*zero, 5s).rc == STOCKADE_RC_BAD_CONFIG);
    s->close();

    std::string h = unique_host("params");
    s = make_session(a, SessionOptions{});
    auto ok = resolve_params(a, {{"hostlist", "Alpha, beta," + h}}, UnknownParams::Reject);
    REQUIRE(ok.ok());
    REQUIRE(s->open(*ok, 5s).ok());
    auto l = s->list(5s);
    REQUIRE(l.ok());
    REQUIRE(l.targets.size() == 3);
    CHECK(l.targets[0].name == "alpha");
    CHECK(l.targets[2].name == h);
    auto st = s->status("ALPHA", 5s);
    CHECK(st.ok());
    CHECK(st.power_state == STOCKADE_POWER_ON);
    CHECK(s->status("gamma", 5s).rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(s->power(PowerAction::On, "alpha", 5s).rc == STOCKADE_RC_UNSUPPORTED);
    CHECK(s->monitor(5s).ok());
    auto unknown = s->power(PowerAction::Off, "gamma", 5s);
    CHECK(unknown.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK_FALSE(exists("/run/meatware.gamma"));
    for (const std::string &target : std::vector<std::string>{"../" + h, h + "/x", h + " x", h + "\x01", "..", h + ".."}) {
        auto refused = s->power(PowerAction::Off, target, 5s);
        CHECK(refused.rc == STOCKADE_RC_BAD_CONFIG);
        CHECK_THAT(refused.message, Catch::Contains("refusing target name"));
    }
    CHECK_FALSE(exists("/run/meatware.." + h));
    CHECK_FALSE(exists(mw::fifo_path(h)));
    s->close();
}

TEST_CASE("Debian's meatclient confirms a stockade meatware fence", "[meatware][peer]")
{
    if (!have_cluster_glue()) {
        WARN("SKIPPED: cluster-glue (meatclient, stonith) is not installed");
        return;
    }
    std::string host = unique_host("debian");
    std::string target = "MWT" + host.substr(3); // upper-case in the request: cluster-glue lower-cases
    std::string path = mw::fifo_path(host);
    Fence f("other " + target, "20");
    auto t0 = std::chrono::steady_clock::now();
    f.start(target);
    REQUIRE(wait_until([&] { return request_waiting(path); }));
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == 0);
    // log lines travel from the agent host through the session's reader thread: wait for them
    REQUIRE(wait_until([&] { return !f.lines_at(STOCKADE_LOG_CRIT).empty(); }));
    auto crit = f.lines_at(STOCKADE_LOG_CRIT);
    REQUIRE(crit.size() == 1);
    CHECK_THAT(crit[0], Catch::Contains("OPERATOR INTERVENTION REQUIRED") &&
                            Catch::Contains("meatclient -c " + host));

    auto client = test::run({debian_meatclient(), "-c", host}, "y\n", 20s);
    CHECK(client.exit_code == 0);
    CHECK_THAT(client.out, Catch::Contains("PROCEED? [yN]") && Catch::Contains("reset confirmed"));
    auto r = f.result();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.ok());
    CHECK(r.verified == STOCKADE_VERIFIED_OFF);
    CHECK(f.lines_at(STOCKADE_LOG_CRIT).size() == 1); // logged once
    INFO("fence to confirmation: " << ms << " ms");
    CHECK(ms < 10000);
    check_nothing_left(host);
}

TEST_CASE("an operator answering 'n' in Debian's meatclient leaves the node unfenced", "[meatware][peer]")
{
    if (!have_cluster_glue()) {
        WARN("SKIPPED: cluster-glue (meatclient, stonith) is not installed");
        return;
    }
    std::string host = unique_host("declined");
    Fence f(host, "20");
    f.start(host);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }));
    auto client = test::run({debian_meatclient(), "-c", host}, "n\n", 20s);
    CHECK(client.exit_code == 3);
    CHECK_THAT(client.out, Catch::Contains("canceled"));
    auto r = f.result();
    CHECK(r.rc == STOCKADE_RC_FAILED);
    CHECK(r.verified == 0);
    CHECK_THAT(r.message, Catch::Contains("declined") && Catch::Contains("not fenced"));
    check_nothing_left(host);
}

TEST_CASE("cluster-glue's stonith -t meatware is confirmed by stockade-meatclient", "[meatware][peer]")
{
    if (!have_cluster_glue()) {
        WARN("SKIPPED: cluster-glue (meatclient, stonith) is not installed");
        return;
    }
    std::string host = unique_host("glue");
    std::string path = mw::fifo_path(host);
    auto stonith = std::async(std::launch::async, [&] {
        return test::run({*test::which("stonith"), "-t", "meatware", "hostlist=" + host, "-T", "reset", host}, "", 30s);
    });
    REQUIRE(wait_until([&] { return request_waiting(path); }));

    auto list = test::run({our_meatclient(), "-l"}, "", 10s);
    CHECK(list.exit_code == 0);
    CHECK_THAT(list.out, Catch::Contains(host) && Catch::Contains("stonith"));

    auto client = test::run({our_meatclient(), "-c", host}, "Y\n", 10s); // upper-case Y accepted
    CHECK(client.exit_code == 0);
    CHECK_THAT(client.out, Catch::Contains("WARNING!") && Catch::Contains("PROCEED? [yN]") &&
                               Catch::Contains("confirmed"));
    REQUIRE(stonith.wait_for(30s) == std::future_status::ready);
    auto s = stonith.get();
    CHECK(s.exit_code == 0);
    check_nothing_left(host);
    auto after = test::run({our_meatclient(), "-l"}, "", 10s);
    CHECK_THAT(after.out, !Catch::Contains(host));
}

TEST_CASE("stockade-meatclient -w waits for the request to appear", "[meatware][peer]")
{
    std::string host = unique_host("wait");
    auto client = std::async(std::launch::async, [&] { return test::run({our_meatclient(), "-w", "-c", host}, "yes\n", 30s); });
    std::this_thread::sleep_for(1500ms); // the client is polling for the FIFO meanwhile
    Fence f(host, "20");
    f.start(host);
    REQUIRE(client.wait_for(30s) == std::future_status::ready);
    auto c = client.get();
    CHECK(c.exit_code == 0);
    CHECK_THAT(c.out, Catch::StartsWith("."));
    auto r = f.result();
    CHECK(r.ok());
    CHECK(r.verified == STOCKADE_VERIFIED_OFF);
    check_nothing_left(host);
}

TEST_CASE("a reply for another host or for a prefix of the host does not fence", "[meatware]")
{
    // Section names must be the same on every pass, so no counter here.
    std::string base = "mwt-" + std::to_string(::getpid()) + "-prefix";
    struct Case {
        std::string target, reply_host;
    } cases[] = {{base + "0", base}, {base, base + "0"}, {base + "a", "other-" + base}};
    for (const auto &c : cases) {
        DYNAMIC_SECTION("waiting for " << c.target << ", reply names " << c.reply_host)
        {
            Fence f(c.target, "20");
            f.start(c.target);
            std::string path = mw::fifo_path(c.target);
            REQUIRE(wait_until([&] { return request_waiting(path); }));
            write_raw(path, "meatware reply " + c.reply_host);
            auto r = f.result();
            CHECK(r.rc == STOCKADE_RC_FAILED);
            CHECK(r.verified == 0);
            CHECK_THAT(r.message, Catch::Contains("rejected") && Catch::Contains("'" + c.reply_host + "'"));
            check_nothing_left(c.target);
        }
    }
}

TEST_CASE("non-root clients cannot confirm; the request then times out cleanly", "[meatware][peer]")
{
    auto setpriv = test::which("setpriv");
    if (!setpriv || ::geteuid() != 0) {
        WARN("SKIPPED: needs root and setpriv to run a client as nobody");
        return;
    }
    std::string host = unique_host("nobody");
    Fence f(host, "3");
    auto t0 = std::chrono::steady_clock::now();
    f.start(host);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }));
    std::vector<std::string> as_nobody = {*setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"};

    auto ours = as_nobody;
    ours.insert(ours.end(), {our_meatclient(), "--yes", "-c", host});
    auto c1 = test::run(ours, "", 10s);
    CHECK(c1.exit_code == 2);
    CHECK_THAT(c1.err, Catch::Contains("must be run as root"));

    if (have_cluster_glue()) {
        auto debian = as_nobody;
        debian.insert(debian.end(), {debian_meatclient(), "-c", host});
        auto c2 = test::run(debian, "", 10s); // it fails in open() before reading any answer
        CHECK(c2.exit_code == 4);
        CHECK_THAT(c2.err, Catch::Contains("Permission denied"));
    }
    auto r = f.result();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK(r.verified == 0);
    CHECK_THAT(r.message, Catch::Contains("no operator confirmation") && Catch::Contains("not fenced"));
    CHECK(ms >= 2900);
    CHECK(ms < 6000);
    check_nothing_left(host);
}

TEST_CASE("the runner's deadline ends the wait before the agent's own timeout", "[meatware]")
{
    std::string host = unique_host("deadline");
    Fence f(host, "600");
    auto t0 = std::chrono::steady_clock::now();
    f.start(host, 1500ms);
    auto r = f.result();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.rc == STOCKADE_RC_TIMEOUT);
    CHECK_THAT(r.message, Catch::Contains("no operator confirmation")); // the agent's clean answer, not a kill
    CHECK(ms < 2500);
    check_nothing_left(host);
    // the session is still usable after a clean timeout
    CHECK(f.session().status(host, 5s).ok());
}

TEST_CASE("cancelling the wait removes the request", "[meatware]")
{
    std::string host = unique_host("cancel");
    Fence f(host, "60", /*isolate=*/false);
    f.start(host);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }));
    f.cancel = true;
    auto r = f.result();
    CHECK(r.rc == STOCKADE_RC_CANCELLED);
    CHECK(r.verified == 0);
    check_nothing_left(host);
}

TEST_CASE("reboot is confirmed as a power-cycle", "[meatware]")
{
    std::string host = unique_host("reboot");
    Fence f(host, "20");
    f.start(host, 30s, PowerAction::Reboot);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }));
    REQUIRE(wait_until([&] { return !f.lines_at(STOCKADE_LOG_CRIT).empty(); }));
    CHECK_THAT(f.lines_at(STOCKADE_LOG_CRIT).at(0), Catch::Contains("power-cycle node"));
    auto c = test::run({our_meatclient(), "--yes", "-c", host}, "", 10s);
    CHECK(c.exit_code == 0);
    auto r = f.result();
    CHECK(r.ok());
    CHECK(r.verified == STOCKADE_VERIFIED_OFF); // back on cannot be verified
    check_nothing_left(host);
}

TEST_CASE("stale FIFOs are replaced; live waiters and foreign files are not touched", "[meatware][peer]")
{
    SECTION("a stale FIFO nobody reads is replaced by a fresh 0600 one")
    {
        std::string host = unique_host("stale");
        std::string path = mw::fifo_path(host);
        REQUIRE(::mkfifo(path.c_str(), 0644) == 0);
        ::chmod(path.c_str(), 0666);
        Fence f(host, "20");
        f.start(host);
        REQUIRE(wait_until([&] { return request_waiting(path); }));
        struct stat fresh {};
        REQUIRE(::lstat(path.c_str(), &fresh) == 0);
        CHECK((fresh.st_mode & 07777) == 0600); // (ext4 may hand out the same inode number again)
        REQUIRE(wait_until([&] { return !f.lines_at(STOCKADE_LOG_CRIT).empty(); }));
        auto notices = f.lines_at(STOCKADE_LOG_NOTICE); // logged before the CRIT line
        REQUIRE(notices.size() == 1);
        CHECK_THAT(notices[0], Catch::Contains("replaced stale " + path));
        CHECK(test::run({our_meatclient(), "--yes", "-c", host}, "", 10s).exit_code == 0);
        CHECK(f.result().ok());
        check_nothing_left(host);
    }
    SECTION("a regular file in the way is refused and left alone")
    {
        std::string host = unique_host("file");
        std::string path = mw::fifo_path(host);
        test::write_file(path, "not a fifo\n", 0600);
        Fence f(host, "20");
        f.start(host);
        auto r = f.result();
        CHECK(r.rc == STOCKADE_RC_FAILED);
        CHECK_THAT(r.message, Catch::Contains("is not a FIFO"));
        CHECK(test::read_file(path) == "not a fifo\n");
        ::unlink(path.c_str());
    }
    SECTION("a request cluster-glue is waiting on is not stolen")
    {
        if (!have_cluster_glue()) {
            WARN("SKIPPED: cluster-glue (meatclient, stonith) is not installed");
            return;
        }
        std::string host = unique_host("busy");
        std::string path = mw::fifo_path(host);
        auto stonith = std::async(std::launch::async, [&] {
            return test::run({*test::which("stonith"), "-t", "meatware", "hostlist=" + host, "-T", "reset", host}, "",
                             30s);
        });
        REQUIRE(wait_until([&] { return request_waiting(path); }));
        {
            Fence f(host, "20");
            f.start(host);
            auto r = f.result();
            CHECK(r.rc == STOCKADE_RC_FAILED);
            CHECK_THAT(r.message, Catch::Contains("already waiting") && Catch::Contains("stonith"));
        }
        // cluster-glue's request still works
        CHECK(test::run({debian_meatclient(), "-c", host}, "y\n", 10s).exit_code == 0);
        REQUIRE(stonith.wait_for(30s) == std::future_status::ready);
        CHECK(stonith.get().exit_code == 0);
        check_nothing_left(host);
    }
}

TEST_CASE("a FIFO whose mode changes while waiting is distrusted", "[meatware]")
{
    std::string host = unique_host("chmod");
    std::string path = mw::fifo_path(host);
    Fence f(host, "20");
    f.start(host);
    REQUIRE(wait_until([&] { return request_waiting(path); }));
    REQUIRE(::chmod(path.c_str(), 0666) == 0);
    auto r = f.result();
    CHECK(r.rc == STOCKADE_RC_FAILED);
    CHECK_THAT(r.message, Catch::Contains("mode 0666") && Catch::Contains("not fenced"));
    check_nothing_left(host);
}

TEST_CASE("stockade-meatclient: usage, answers and unsafe FIFOs", "[meatware]")
{
    auto none = test::run({our_meatclient()}, "", 10s);
    CHECK(none.exit_code == 3);
    CHECK_THAT(none.err, Catch::Contains("usage:"));
    CHECK(test::run({our_meatclient(), "-c", "a", "extra"}, "", 10s).exit_code == 3);
    CHECK(test::run({our_meatclient(), "-l", "-c", "a"}, "", 10s).exit_code == 3);
    auto bad = test::run({our_meatclient(), "-c", "../x"}, "", 10s);
    CHECK(bad.exit_code == 3);
    CHECK_THAT(bad.err, Catch::Contains("'..'"));

    std::string absent = unique_host("absent");
    auto missing = test::run({our_meatclient(), "-c", absent}, "", 10s);
    CHECK(missing.exit_code == 4);
    CHECK_THAT(missing.err, Catch::Contains("Meatware_IPC failed") && Catch::Contains("no fence request"));

    const std::vector<std::string> answers{"", "n\n", "no\n", "yy\n", std::string(100000, 'y') + "\n", " x y\n"};
    for (size_t i = 0; i < answers.size(); ++i) {
        const std::string &answer = answers[i];
        DYNAMIC_SECTION("refused answer #" << i << " (" << answer.size() << " bytes)")
        {
            std::string host = unique_host("answer");
            Fence f(host, "20");
            f.start(host);
            REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }));
            auto c = test::run({our_meatclient(), "-c", host}, answer, 10s);
            CHECK(c.exit_code == 3);
            CHECK_THAT(c.out, Catch::Contains("cancelled; nothing was confirmed"));
            auto r = f.result();
            CHECK(r.rc == STOCKADE_RC_FAILED);
            CHECK_THAT(r.message, Catch::Contains("declined"));
            check_nothing_left(host);
        }
    }

    SECTION("a FIFO with a foreign owner or open mode gets no confirmation")
    {
        for (int variant = 0; variant < 2; ++variant) {
            std::string host = unique_host("unsafe");
            std::string path = mw::fifo_path(host);
            REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
            if (variant == 0)
                REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
            else
                REQUIRE(::chmod(path.c_str(), 0666) == 0);
            int rd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            REQUIRE(rd >= 0);
            auto c = test::run({our_meatclient(), "--yes", "-c", host}, "", 10s);
            CHECK(c.exit_code == 4);
            CHECK_THAT(c.err, Catch::Contains("refusing"));
            char buf[16];
            CHECK(::read(rd, buf, sizeof buf) <= 0); // nothing was written
            ::close(rd);
            ::unlink(path.c_str());
        }
    }
}

// ---- Through the escalation runner: `stockade fence` with a configuration ----------------------

namespace {

std::string write_runner_config(const test::TempDir &d, const std::string &host, const std::string &meatware_timeout,
                                const std::string &device_timeout)
{
    std::string cfg = R"({
      "version": 1,
      "escalation": {"max_loops": 1, "retry_delay": 0},
      "devices": {
        "broken-bmc": {"agent": "testagent", "timeout": 5, "params": {"mode": "fail", "status_mode": "fail"}},
        "operator": {"agent": "meatware", "timeout": @DEVTIMEOUT@,
                     "params": {"hostlist": "@HOST@", "timeout": @MWTIMEOUT@}}
      },
      "nodes": {"@HOST@": {"levels": [["broken-bmc"], ["operator"]], "action": "off"}}
    })";
    auto put = [&](const std::string &key, const std::string &value) {
        for (size_t p; (p = cfg.find(key)) != std::string::npos;)
            cfg.replace(p, key.size(), value);
    };
    put("@HOST@", host);
    put("@MWTIMEOUT@", meatware_timeout);
    put("@DEVTIMEOUT@", device_timeout);
    std::string path = d.file("stockade.json");
    test::write_file(path, cfg, 0600);
    return path;
}

std::future<CommandResult> stockade_fence_async(const std::string &cfg, const std::string &host)
{
    return std::async(std::launch::async, [=] {
        return test::run({test::bin_path("stockade"), "-c", cfg, "fence", host}, "", 60s);
    });
}

} // namespace

TEST_CASE("stockade fence: level 1 fails, level 2 meatware is confirmed by Debian's meatclient", "[meatware][runner]")
{
    if (!have_cluster_glue()) {
        WARN("SKIPPED: cluster-glue (meatclient, stonith) is not installed");
        return;
    }
    test::TempDir d;
    std::string host = unique_host("runner");
    std::string cfg = write_runner_config(d, host, "30", "40");
    auto v = test::run({test::bin_path("stockade"), "validate", cfg}, "", 20s);
    REQUIRE(v.exit_code == 0);

    auto fence = stockade_fence_async(cfg, host);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }, 20s));
    auto client = test::run({debian_meatclient(), "-c", host}, "y\n", 20s);
    CHECK(client.exit_code == 0);
    REQUIRE(fence.wait_for(30s) == std::future_status::ready);
    auto r = fence.get();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("fence " + host + " success: off confirmed at level 2 (operator)"));
    CHECK_THAT(r.err, Catch::Contains("'broken-bmc' (testagent) off " + host + ": failed"));
    CHECK_THAT(r.err, Catch::Contains("OPERATOR INTERVENTION REQUIRED"));
    check_nothing_left(host);
}

TEST_CASE("stockade fence: meatware's own timeout ends an unanswered level; nothing is left; a device timeout "
          "that would cut the operator's wait is refused up front", "[meatware][runner]")
{
    test::TempDir d;
    std::string host = unique_host("runner-timeout");
    // A device timeout shorter than the operator's wait used to cut it silently at fence time
    // (issue 18); it is now refused by validation, naming both numbers.
    std::string cut = write_runner_config(d, host, "600", "2");
    auto v = test::run({test::bin_path("stockade"), "validate", cut}, "", 20s);
    CHECK(v.exit_code != 0);
    CHECK_THAT(v.err + v.out, Catch::Contains("/devices/operator/timeout") &&
                                  Catch::Contains("agent 'meatware' needs 602.1 s for off") &&
                                  Catch::Contains("timeout allows only 2 s"));
    std::string cfg = write_runner_config(d, host, "2", "10");
    auto t0 = std::chrono::steady_clock::now();
    auto fence = stockade_fence_async(cfg, host);
    REQUIRE(wait_until([&] { return request_waiting(mw::fifo_path(host)); }, 20s));
    REQUIRE(fence.wait_for(30s) == std::future_status::ready);
    auto r = fence.get();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("fence " + host + " failed"));
    CHECK_THAT(r.err, Catch::Contains("no operator confirmation")); // the agent's clean timeout, before the kill
    CHECK(ms < 10000);
    check_nothing_left(host);
}

TEST_CASE("the meatware example configuration validates", "[meatware][runner]")
{
    auto v = test::run({test::bin_path("stockade"), "validate", test::source_path("examples/meatware-last-resort.json")},
                       "", 20s);
    INFO(v.out << v.err);
    CHECK(v.exit_code == 0);
    CHECK_THAT(v.out, Catch::Contains("ok (2 devices, 1 node"));
}
