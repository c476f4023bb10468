// The real consumer: Pacemaker's fencer (the shared FencerFixture: pacemaker-fenced in a network
// namespace of its own) runs fence_stockade_redfish through a wrapper it finds in /usr/sbin, driven
// by stonith_admin: register, monitor, fence, unfence, reboot against the Redfish test service
// (started in the fencer's namespace, the only 127.0.0.1 the fencer reaches), every claim checked
// against the node process and the service's PowerState; a device with a wrong password fails its
// monitor and its fence and leaves the node running.
#include <catch2/catch.hpp>

#include "fencer_fixture.hpp"
#include "redfish_test_util.hpp"
#include "test_support.hpp"

using namespace stockade;
using namespace stockade::test;

TEST_CASE("pacemaker-fenced drives fence_stockade_redfish through stonith_admin", "[redfish][pacemaker]")
{
    REDFISH_SKIP_IF_NO_SERVICE();
    FencerFixture f;
    f.keep_log_as = "redfish-fenced.log";
    if (std::string skip = f.start("fence_stockade_redfish"); !skip.empty()) {
        WARN("SKIPPED: " << skip);
        return;
    }
    INFO("fencer log: " << f.log);
    RedfishServiceOptions o;
    o.netns = f.netns();
    auto svc = RedfishService::start(f.dir.path() / "svc", o);
    auto power_state = [&] { // read back from inside the namespace the service listens in
        std::string state;
        in_netns(f.netns(), [&] { state = svc->read_power_state("1"); });
        return state;
    };
    const std::string W = f.wrapper_name;
    auto dev = [&](const std::string &name, const std::string &password) {
        return f.admin({"-R", name, "-a", W, "-o", "ip=" + svc->address(), "-o", "ipport=" + std::to_string(svc->port()),
                        "-o", "username=admin", "-o", "password=" + password, "-o", "ssl_ca_file=" + svc->ca_file(),
                        "-o", "pcmk_host_list=node1"});
    };

    auto meta = f.admin({"--metadata", "-a", W});
    REQUIRE(meta.exit_code == 0);
    CHECK_THAT(meta.out, Catch::Contains("<parameter name=\"systems_uri\""));
    CHECK_THAT(meta.out, Catch::Contains("<parameter name=\"ssl_insecure\""));

    REQUIRE(dev("st-rf", "secret").exit_code == 0);
    CHECK(f.admin({"-Q", "st-rf", "-t", "20"}).exit_code == 0);
    pid_t node = svc->node_pid();
    REQUIRE(node > 0);
    REQUIRE(power_state() == "On");
    auto off = f.admin({"-F", "node1", "-t", "30"});
    INFO(off.out << off.err);
    CHECK(off.exit_code == 0);
    CHECK_FALSE(pid_alive(node));
    CHECK(power_state() == "Off");
    CHECK(f.admin({"-U", "node1", "-t", "30"}).exit_code == 0);
    pid_t up = svc->node_pid();
    CHECK(up > 0);
    CHECK(f.admin({"-B", "node1", "-t", "30"}).exit_code == 0);
    CHECK_FALSE(pid_alive(up));
    CHECK(svc->node_pid() > 0);
    CHECK(svc->node_pid() != up);

    // A device with the wrong password: monitor and fence fail, the node keeps running.
    REQUIRE(f.admin({"-D", "st-rf"}).exit_code == 0);
    REQUIRE(dev("st-bad", "wrong").exit_code == 0);
    CHECK(f.admin({"-Q", "st-bad", "-t", "20"}).exit_code != 0);
    pid_t still = svc->node_pid();
    CHECK(f.admin({"-F", "node1", "-t", "20"}).exit_code != 0);
    CHECK(pid_alive(still));
    CHECK_THAT(read_file(f.log), Catch::Contains("401"));
}
