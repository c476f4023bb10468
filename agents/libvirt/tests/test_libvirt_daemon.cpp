// The libvirt agent against libvirtd hosting the test driver (state shared across processes):
// fence through isolated sessions and `stockade fence`, then read the state back with virsh
// from another process.  And the failures a hypervisor can produce mid-operation: a daemon
// stopped with SIGSTOP (operations end at their deadline, keepalive releases the abandoned
// connection, the next operation reconnects), and a daemon killed (unreachable, never fenced).
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

#include "libvirt_test_support.hpp"

using namespace stockade;
using namespace stockade::test;
using namespace std::chrono_literals;

namespace {

#define START_LIBVIRTD(d)                                                                      \
    Libvirtd d;                                                                                \
    if (!d.ok()) {                                                                             \
        WARN("SKIPPED: cannot run libvirtd with the test driver here: " << d.why());           \
        return;                                                                                \
    }

size_t thread_count()
{
    size_t n = 0;
    for ([[maybe_unused]] const auto &e : std::filesystem::directory_iterator("/proc/self/task"))
        ++n;
    return n;
}

CommandResult stockade_cmd(const std::vector<std::string> &args, std::chrono::milliseconds timeout = 60s)
{
    std::vector<std::string> argv{bin_path("stockade")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, "", timeout);
}

} // namespace

TEST_CASE("daemon-hosted test driver: fence in isolated sessions, read back with virsh from another process",
          "[libvirt][daemon]")
{
    START_LIBVIRTD(d);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));
    REQUIRE(d.add_domain("node-b", "bbbbbbbb-0000-0000-0000-000000000002"));
    REQUIRE(d.virsh_domstate("node-a") == "running");

    AgentRegistry reg;
    const RawParams params = {{"hypervisor_uri", d.uri()}, {"hostlist", "pm-a:node-a, pm-b:node-b"}};
    {
        auto s = open_libvirt(reg, params, true);
        auto off = s->power(PowerAction::Off, "pm-a", 10s);
        REQUIRE(off.ok());
        CHECK(off.verified == STOCKADE_VERIFIED_OFF);
        s->close();
    }
    CHECK(d.virsh_domstate("node-a") == "shut off");
    CHECK(d.virsh_domstate("node-b") == "running"); // no collateral damage

    // A new session (a new process) sees the daemon's state.
    auto s = open_libvirt(reg, params, true);
    CHECK(s->status("pm-a", 10s).power_state == STOCKADE_POWER_OFF);
    CHECK(s->status("pm-b", 10s).power_state == STOCKADE_POWER_ON);

    std::string id_before = d.virsh({"domid", "node-b"});
    auto reboot = s->power(PowerAction::Reboot, "pm-b", 10s);
    REQUIRE(reboot.ok());
    CHECK(reboot.verified == (STOCKADE_VERIFIED_OFF | STOCKADE_VERIFIED_ON));
    CHECK(d.virsh_domstate("node-b") == "running");
    CHECK(d.virsh({"domid", "node-b"}) != id_before); // it really went through shut off

    REQUIRE(s->power(PowerAction::On, "pm-a", 10s).ok());
    CHECK(d.virsh_domstate("node-a") == "running");

    auto unknown = s->power(PowerAction::Off, "pm-z", 10s);
    CHECK(unknown.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(unknown.verified == 0);
    s->close();

    auto direct = open_libvirt(reg, {{"hypervisor_uri", d.uri()}}, true);
    auto missing = direct->power(PowerAction::Off, "node-z", 10s);
    CHECK(missing.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK_THAT(missing.message, Catch::Contains("domain 'node-z' (target) not found"));
    auto l = direct->list(10s);
    REQUIRE(l.ok());
    size_t seen = 0;
    for (const auto &t : l.targets)
        seen += (t.name == "node-a" && t.alias == "aaaaaaaa-0000-0000-0000-000000000001") || t.name == "test";
    CHECK(seen == 2);
    CHECK(direct->monitor(10s).ok());
    direct->close();
}

TEST_CASE("a SIGSTOPped daemon: operations end at their deadline, keepalive frees the abandoned call, "
          "the next operation reconnects",
          "[libvirt][daemon][hang]")
{
    START_LIBVIRTD(d);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));
    AgentRegistry reg;
    KeptLog log;
    const RawParams params = {{"hypervisor_uri", d.uri()},
                              {"connect_timeout", "1"},
                              {"keepalive_interval", "1"},
                              {"keepalive_count", "2"}};
    auto s = open_libvirt(reg, params, false, &log.logger);
    REQUIRE(s->status("node-a", 5s).power_state == STOCKADE_POWER_ON); // the connection is up
    std::this_thread::sleep_for(100ms); // the finished operation's thread has exited
    const size_t threads_before = thread_count();

    // Keepalive (1 s x (2 + 1)) can only fire two seconds or more after the last packet, so an
    // operation deadline of 600 ms surely comes first and leaves its call abandoned.
    REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
    auto stopped = std::chrono::steady_clock::now();
    auto off = s->power(PowerAction::Off, "node-a", 600ms);
    int64_t took = ms_since(stopped);
    CHECK(off.rc == STOCKADE_RC_TIMEOUT);
    CHECK(off.verified == 0);
    CHECK_THAT(off.message, Catch::Contains("operation deadline passed") &&
                                Catch::Contains("virDomainLookupByName(node-a)"));
    CHECK(took >= 550);
    CHECK(took < 1000);
    INFO("off against a stopped daemon returned after " << took << " ms: " << off.message);

    // The abandoned call is then freed by keepalive, not left blocked forever.
    CHECK(thread_count() > threads_before);
    while (thread_count() > threads_before && ms_since(stopped) < 8000)
        std::this_thread::sleep_for(50ms);
    CHECK(thread_count() == threads_before);
    INFO("keepalive released the abandoned call " << ms_since(stopped) << " ms after SIGSTOP");
    auto t0 = std::chrono::steady_clock::now();

    // A new connection to a stopped daemon ends at connect_timeout, as unreachable.
    auto s2 = open_libvirt(reg, params, false);
    t0 = std::chrono::steady_clock::now();
    auto st = s2->status("node-a", 5s);
    took = ms_since(t0);
    CHECK(st.rc == STOCKADE_RC_UNREACHABLE);
    CHECK_THAT(st.message, Catch::Contains("did not answer within connect_timeout (1 s) while connecting to"));
    CHECK(took >= 900);
    CHECK(took < 1800);

    // An isolated session against the stopped daemon: a clean failure at the deadline.
    auto iso = open_libvirt(reg, params, true);
    t0 = std::chrono::steady_clock::now();
    auto iso_off = iso->power(PowerAction::Off, "node-a", 2s);
    took = ms_since(t0);
    CHECK(iso_off.rc != STOCKADE_RC_OK);
    CHECK(iso_off.verified == 0);
    CHECK(took < 3000);
    iso->close();

    // The host cancelling an operation stops the wait at once.
    {
        std::atomic<bool> cancel{false};
        SessionOptions o;
        o.isolate = false;
        o.cancel = &cancel;
        auto resolved = resolve_params(libvirt_agent(reg), params, UnknownParams::Reject);
        REQUIRE(resolved.ok());
        auto c = make_session(libvirt_agent(reg), o);
        REQUIRE(c->open(*resolved, 5s).ok());
        std::thread canceller([&cancel] {
            std::this_thread::sleep_for(300ms);
            cancel = true;
        });
        t0 = std::chrono::steady_clock::now();
        auto cancelled = c->power(PowerAction::Off, "node-a", 10s);
        took = ms_since(t0);
        canceller.join();
        CHECK(cancelled.rc == STOCKADE_RC_CANCELLED);
        CHECK(cancelled.verified == 0);
        CHECK(took < 1000);
        c->close();
    }

    REQUIRE(::kill(d.pid(), SIGCONT) == 0);
    // The session recovers with a fresh connection; nothing was done behind our back.
    auto again = s->status("node-a", 5s);
    REQUIRE(again.ok());
    CHECK(again.power_state == STOCKADE_POWER_ON);
    CHECK(d.virsh_domstate("node-a") == "running");
    REQUIRE(s->power(PowerAction::Off, "node-a", 5s).ok());
    CHECK(d.virsh_domstate("node-a") == "shut off");
    t0 = std::chrono::steady_clock::now();
    s->close();
    s2->close();
    CHECK(ms_since(t0) < 2500);
}

TEST_CASE("a daemon killed mid-operation: unreachable at once, never fenced", "[libvirt][daemon]")
{
    START_LIBVIRTD(d);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));
    AgentRegistry reg;
    auto s = open_libvirt(reg, {{"hypervisor_uri", d.uri()}}, false);
    REQUIRE(s->status("node-a", 5s).ok());

    // Stop it so the operation is surely in flight, then kill it under the waiting call.
    REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
    pid_t pid = d.pid();
    std::thread killer([pid] {
        std::this_thread::sleep_for(300ms);
        ::kill(pid, SIGKILL);
    });
    auto t0 = std::chrono::steady_clock::now();
    auto off = s->power(PowerAction::Off, "node-a", 10s);
    int64_t took = ms_since(t0);
    killer.join();
    CHECK(off.rc == STOCKADE_RC_UNREACHABLE);
    CHECK(off.verified == 0);
    CHECK_THAT(off.message, Catch::Contains(d.uri()));
    CHECK(took < 3000);
    INFO("off while the daemon died: " << off.message << " after " << took << " ms");

    auto after = s->status("node-a", 5s);
    CHECK(after.rc == STOCKADE_RC_UNREACHABLE);
    CHECK_THAT(after.message, Catch::Contains("cannot connect to " + d.uri()));
    CHECK(s->monitor(5s).rc == STOCKADE_RC_UNREACHABLE);
    s->close();
}

TEST_CASE("a session outlives a daemon restart: the dead connection is replaced within the operation",
          "[libvirt][daemon]")
{
    START_LIBVIRTD(d);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));
    AgentRegistry reg;
    KeptLog log;
    auto s = open_libvirt(reg, {{"hypervisor_uri", d.uri()}}, false, &log.logger);
    REQUIRE(s->status("node-a", 5s).power_state == STOCKADE_POWER_ON);

    pid_t old_pid = d.pid();
    d.restart();
    REQUIRE(d.ok());
    REQUIRE(d.pid() != old_pid);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));

    auto off = s->power(PowerAction::Off, "node-a", 10s);
    REQUIRE(off.ok());
    CHECK(off.verified == STOCKADE_VERIFIED_OFF);
    CHECK(d.virsh_domstate("node-a") == "shut off");
    CHECK((log.contains("reconnecting") || log.contains("was lost")));
    s->close();
}

TEST_CASE("stockade fence escalates from a failing device to libvirt; virsh confirms", "[libvirt][daemon][cli]")
{
    START_LIBVIRTD(d);
    REQUIRE(d.add_domain("node-a", "aaaaaaaa-0000-0000-0000-000000000001"));
    REQUIRE(d.add_domain("node-b", "bbbbbbbb-0000-0000-0000-000000000002"));
    TempDir t;
    std::string cfg = t.file("stockade.json");
    write_file(cfg, R"({
      "escalation": {"max_loops": 1, "retry_delay": 0.1},
      "devices": {
        "broken-bmc": {"agent": "testagent", "params": {"mode": "fail", "status_mode": "fail"}},
        "hypervisor": {"agent": "libvirt", "timeout": 4,
                       "params": {"hypervisor_uri": ")" + d.uri() + R"(",
                                  "hostlist": "pm-a:node-a pm-b:node-b", "connect_timeout": 2}}
      },
      "nodes": {
        "pm-a": {"levels": [["broken-bmc"], ["hypervisor"]], "action": "off"},
        "pm-b": {"levels": [["broken-bmc"], ["hypervisor"]]},
        "pm-c": {"levels": [["hypervisor"]], "action": "off"}
      }
    })");
    auto v = stockade_cmd({"-c", cfg, "validate"});
    CHECK(v.exit_code == 0);

    auto fenced = stockade_cmd({"-c", cfg, "fence", "pm-a"});
    INFO("stdout: " << fenced.out << "\nstderr: " << fenced.err);
    CHECK(fenced.exit_code == 0);
    CHECK_THAT(fenced.out, Catch::Contains("fence pm-a success: off confirmed at level 2 (hypervisor)"));
    CHECK(d.virsh_domstate("node-a") == "shut off");
    CHECK(d.virsh_domstate("node-b") == "running");

    std::string id_before = d.virsh({"domid", "node-b"});
    auto rebooted = stockade_cmd({"-c", cfg, "fence", "pm-b"}); // default action: reboot
    INFO("stdout: " << rebooted.out << "\nstderr: " << rebooted.err);
    CHECK(rebooted.exit_code == 0);
    CHECK_THAT(rebooted.out, Catch::Contains("fence pm-b success") && Catch::Contains("level 2 (hypervisor)"));
    CHECK(d.virsh_domstate("node-b") == "running");
    CHECK(d.virsh({"domid", "node-b"}) != id_before);

    auto status = stockade_cmd({"-c", cfg, "status", "pm-a"});
    CHECK(status.exit_code == 2); // off, read through the libvirt agent
    // A node whose domain does not exist is never reported fenced.
    auto ghost = stockade_cmd({"-c", cfg, "fence", "pm-c"});
    CHECK(ghost.exit_code == 1);

    // A hung hypervisor: the fence fails at the device timeout instead of freezing.
    REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
    auto t0 = std::chrono::steady_clock::now();
    auto hung = stockade_cmd({"-c", cfg, "fence", "pm-b", "--action", "off"}, 40s);
    int64_t took = ms_since(t0);
    ::kill(d.pid(), SIGCONT);
    INFO("stdout: " << hung.out << "\nstderr: " << hung.err);
    CHECK(hung.exit_code == 1);
    CHECK(took < 8000);
    CHECK_THAT(hung.out, Catch::Contains("fence pm-b failed"));
    CHECK(d.virsh_domstate("node-b") == "running");
}

TEST_CASE("examples/libvirt-test-driver.json validates and fences its node", "[libvirt][cli]")
{
    std::string example = source_path("examples/libvirt-test-driver.json");
    auto v = stockade_cmd({"validate", example});
    CHECK(v.exit_code == 0);
    CHECK_THAT(v.out, Catch::Contains("ok (1 device, 1 node, 1 level)"));
    auto f = stockade_cmd({"-c", example, "fence", "vm-node"});
    INFO("stdout: " << f.out << "\nstderr: " << f.err);
    CHECK(f.exit_code == 0);
    CHECK_THAT(f.out, Catch::Contains("fence vm-node success: off confirmed at level 1 (hypervisor)"));
    CHECK_THAT(f.err, Catch::Contains("domain 'test' running -> shut off") &&
                          Catch::Contains("domain 'test' shut off -> running"));
}
