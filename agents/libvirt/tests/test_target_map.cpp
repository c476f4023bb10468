// The libvirt agent's pure rules: cluster-glue hostlist syntax, how a target becomes a domain,
// UUID detection, and the URI rewrites.  No hypervisor needed.
#include <catch2/catch.hpp>

#include "stockade/agent.h"
#include "target_map.hpp"

using namespace stockade::libvirt_agent;

TEST_CASE("hostlist takes node[:domain] separated by spaces or commas", "[libvirt][hostlist]")
{
    HostList h;
    REQUIRE(parse_hostlist("pm1:vm-pm1, pm2 ,PM3:guest3\tpm4", h).ok());
    REQUIRE(h.entries.size() == 4);
    CHECK(h.entries[0].node == "pm1");
    CHECK(h.entries[0].domain == "vm-pm1");
    CHECK(h.entries[1].domain == "pm2");
    REQUIRE(h.find("pm3") != nullptr);
    CHECK(h.find("pm3")->domain == "guest3");
    CHECK(h.find("Pm1")->domain == "vm-pm1");
    CHECK(h.find("pm9") == nullptr);

    REQUIRE(parse_hostlist("", h).ok());
    CHECK(h.entries.empty());
    REQUIRE(parse_hostlist("a:b a:b", h).ok());
    CHECK(h.entries.size() == 1);
}

TEST_CASE("bad hostlist entries are named", "[libvirt][hostlist]")
{
    HostList h;
    Status s = parse_hostlist("pm1 :vm2", h);
    CHECK(s.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(s.message == "hostlist entry ':vm2' has no node name");
    s = parse_hostlist("pm1:", h);
    CHECK(s.message == "hostlist entry 'pm1:' has an empty domain");
    s = parse_hostlist("pm1:a PM1:b", h);
    CHECK(s.rc == STOCKADE_RC_BAD_CONFIG);
    CHECK_THAT(s.message, Catch::Contains("twice"));
}

TEST_CASE("targets resolve through hostlist, then plug, then as the domain itself", "[libvirt][target]")
{
    HostList h;
    REQUIRE(parse_hostlist("node1:vm1 node2", h).ok());
    ResolvedTarget rt;
    REQUIRE(resolve_target(h, "", "NODE1", rt).ok());
    CHECK(rt.domain == "vm1");
    CHECK(rt.source == TargetSource::HostList);

    Status s = resolve_target(h, "", "node3", rt);
    CHECK(s.rc == STOCKADE_RC_UNKNOWN_TARGET);
    CHECK(s.message == "node 'node3' is not in hostlist (node1 node2)");

    REQUIRE(resolve_target(h, "vm7", "node3", rt).ok());
    CHECK(rt.domain == "vm7");
    CHECK(rt.source == TargetSource::Plug);

    HostList none;
    REQUIRE(resolve_target(none, "", "guest", rt).ok());
    CHECK(rt.domain == "guest");
    CHECK(rt.source == TargetSource::Direct);
    CHECK(resolve_target(none, "", "", rt).rc == STOCKADE_RC_BAD_CONFIG);
}

TEST_CASE("UUIDs are recognised in both textual forms", "[libvirt][target]")
{
    CHECK(looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f"));
    CHECK(looks_like_uuid("6695EB01F6A4830479AA97F2502E193F"));
    CHECK_FALSE(looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193"));
    CHECK_FALSE(looks_like_uuid("6695eb01xf6a4-8304-79aa-97f2502e193f"));
    CHECK_FALSE(looks_like_uuid("node1"));
}

TEST_CASE("ssh URIs never prompt; other URIs are left alone", "[libvirt][uri]")
{
    CHECK(effective_uri("qemu+ssh://root@kvm1/system") == "qemu+ssh://root@kvm1/system?no_tty=1");
    CHECK(effective_uri("qemu+ssh://kvm1/system?keyfile=/k") == "qemu+ssh://kvm1/system?keyfile=/k&no_tty=1");
    CHECK(effective_uri("qemu+ssh://kvm1/system?no_tty=0") == "qemu+ssh://kvm1/system?no_tty=0");
    CHECK(effective_uri("qemu+libssh://kvm1/system") == "qemu+libssh://kvm1/system");
    CHECK(effective_uri("qemu:///system") == "qemu:///system");
    CHECK(effective_uri("test:///default") == "test:///default");
}

TEST_CASE("test driver files are found in test:/// URIs only", "[libvirt][uri]")
{
    CHECK(test_driver_file("test:///default") == std::nullopt);
    CHECK(test_driver_file("test:///tmp/x/nodes.xml") == std::optional<std::string>("/tmp/x/nodes.xml"));
    CHECK(test_driver_file("test+unix:///tmp/x.xml?socket=/s") == std::nullopt);
    CHECK(test_driver_file("qemu:///system") == std::nullopt);
}

TEST_CASE("a password in the URI user part is masked for display", "[libvirt][uri]")
{
    CHECK(uri_for_display("qemu+tcp://admin:s3cret@kvm1/system") == "qemu+tcp://admin:***@kvm1/system");
    CHECK(uri_for_display("qemu+ssh://root@kvm1/system") == "qemu+ssh://root@kvm1/system");
    CHECK(uri_for_display("test:///default") == "test:///default");
}
