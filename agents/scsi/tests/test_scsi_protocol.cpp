// The scsi agent's byte-level parts, which both transports share and which are all the SG_IO
// path has on this machine (no SCSI devices in this kernel): CDBs and parameter lists as SPC-4
// lays them out, PR IN answers, fixed and descriptor sense data, the verdict table, fence_scsi's
// key derivation (expected values computed with Python's hashlib, independently of this code),
// corosync.conf reading, and the SG_IO transport refusing what is not a SCSI device.
#include <catch2/catch.hpp>

#include "node_keys.hpp"
#include "pr_protocol.hpp"
#include "transport.hpp"

using namespace stockade::scsi;

TEST_CASE("scsi keys: parse and print like sg_persist", "[scsi][unit]")
{
    CHECK(parse_key("0x6a080001") == 0x6a080001u);
    CHECK(parse_key("6A080001") == 0x6a080001u);
    CHECK(parse_key("00001") == 1u);
    CHECK(parse_key("ffffffffffffffff") == 0xffffffffffffffffull);
    CHECK_FALSE(parse_key("0"));
    CHECK_FALSE(parse_key("0x"));
    CHECK_FALSE(parse_key(""));
    CHECK_FALSE(parse_key("12345678901234567"));
    CHECK_FALSE(parse_key("6a08zz"));
    CHECK(key_text(0x6a080001) == "6a080001");
    CHECK(key_text(0xdd04) == "dd04");
}

TEST_CASE("scsi CDBs and PR OUT parameters follow SPC-4", "[scsi][unit]")
{
    Cdb in = pr_in_cdb(PrIn::ReadKeys, 0x1234);
    CHECK(in == Cdb{0x5e, 0x00, 0, 0, 0, 0, 0, 0x12, 0x34, 0});
    Cdb out = pr_out_cdb(PrOut::PreemptAndAbort, kTypeWriteExclusiveRegistrantsOnly);
    CHECK(out == Cdb{0x5f, 0x05, 0x05, 0, 0, 0, 0, 0, 24, 0});
    auto p = pr_out_params(0x0102030405060708ull, 0xa1a2, true);
    CHECK(p[0] == 0x01);
    CHECK(p[7] == 0x08);
    CHECK(p[14] == 0xa1);
    CHECK(p[15] == 0xa2);
    CHECK(p[20] == 0x01); // APTPL
    CHECK(std::string(pr_out_name(PrOut::RegisterAndIgnore)) == "REGISTER AND IGNORE EXISTING KEY");
}

TEST_CASE("scsi PR IN answers are parsed and checked", "[scsi][unit]")
{
    const uint8_t keys[] = {0, 0, 0, 7, 0, 0, 0, 16, 0, 0, 0, 0, 0x6a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x04};
    std::string why;
    auto k = parse_read_keys(keys, sizeof keys, &why);
    REQUIRE(k);
    CHECK(k->generation == 7);
    CHECK(k->keys == std::vector<Key>{0x6a080000, 0xdd04});
    CHECK(k->has(0xdd04));
    CHECK_FALSE(parse_read_keys(keys, 20, &why)); // a key cut in half
    CHECK(why.find("arrived") != std::string::npos);
    const uint8_t odd[] = {0, 0, 0, 1, 0, 0, 0, 5};
    CHECK_FALSE(parse_read_keys(odd, sizeof odd, &why));

    const uint8_t none[] = {0, 0, 0, 3, 0, 0, 0, 0};
    auto r0 = parse_read_reservation(none, sizeof none, &why);
    REQUIRE(r0);
    CHECK_FALSE(r0->held);
    uint8_t held[24] = {0, 0, 0, 3, 0, 0, 0, 16, 0, 0, 0, 0, 0x6a, 0x08, 0, 1};
    held[21] = 0x05;
    auto r1 = parse_read_reservation(held, sizeof held, &why);
    REQUIRE(r1);
    CHECK(r1->held);
    CHECK(r1->key == 0x6a080001);
    CHECK(r1->type == 5);

    const uint8_t caps[] = {0, 8, 0, 0x80, 0x20, 0x00, 0, 0}; // TMV, only WR_EX_RO
    auto c = parse_report_capabilities(caps, sizeof caps, &why);
    REQUIRE(c);
    CHECK(c->allows(kTypeWriteExclusiveRegistrantsOnly));
    CHECK_FALSE(c->allows(kTypeExclusiveAccess));
    Capabilities silent;
    CHECK(silent.allows(kTypeWriteExclusiveRegistrantsOnly));
}

TEST_CASE("scsi sense data: fixed and descriptor formats, and what the agent does with each", "[scsi][unit]")
{
    const uint8_t fixed[18] = {0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x03};
    auto s = parse_sense(fixed, sizeof fixed);
    REQUIRE(s);
    CHECK(s->key == kSenseUnitAttention);
    CHECK(s->asc == 0x2a);
    CHECK(s->ascq == 0x03);
    const uint8_t desc[8] = {0x72, 0x05, 0x24, 0x00};
    auto d = parse_sense(desc, sizeof desc);
    REQUIRE(d);
    CHECK(d->key == kSenseIllegalRequest);
    CHECK(d->asc == 0x24);
    CHECK_FALSE(parse_sense(desc, 1));
    const uint8_t junk[4] = {0x12, 0, 0, 0};
    CHECK_FALSE(parse_sense(junk, sizeof junk));

    CHECK(judge(kStatusGood, std::nullopt) == Verdict::Good);
    CHECK(judge(kStatusReservationConflict, std::nullopt) == Verdict::ReservationConflict);
    CHECK(judge(kStatusBusy, std::nullopt) == Verdict::Retry);
    CHECK(judge(kStatusCheckCondition, s) == Verdict::Retry);
    CHECK(judge(kStatusCheckCondition, d) == Verdict::NotImplemented);
    CHECK(judge(kStatusCheckCondition, Sense{kSenseIllegalRequest, 0x20, 0}) == Verdict::NotImplemented);
    CHECK(judge(kStatusCheckCondition, Sense{0x3, 0x11, 0}) == Verdict::Failed);
    CHECK(judge(kStatusCheckCondition, std::nullopt) == Verdict::Failed);
    CHECK(describe(kStatusCheckCondition, d) == "CHECK CONDITION, ILLEGAL REQUEST 24/00 (invalid field in CDB)");
    CHECK(describe(kStatusReservationConflict, std::nullopt) == "RESERVATION CONFLICT");
}

TEST_CASE("scsi keys derived as fence_scsi derives them", "[scsi][unit]")
{
    // python3: hashlib.md5(b"stockadetest").hexdigest()[:4] == "6a08";
    // md5(b"node-a")[:4] == "6cec", md5(b"node-b")[:4] == "26f7".
    auto conf = parse_corosync_conf("totem {\n  cluster_name: stockadetest # the name\n  interface {\n  }\n}\n"
                                    "nodelist {\n  node {\n    ring0_addr: 10.0.0.1\n    name: node-a\n  }\n"
                                    "  node {\n    ring0_addr: 10.0.0.2\n    name: node-b\n  }\n}\n");
    REQUIRE(conf);
    CHECK(conf->cluster_name == "stockadetest");
    REQUIRE(conf->nodes.size() == 2);
    NodeKeys k;
    k.cluster_name = conf->cluster_name;
    k.nodes = conf->nodes;
    CHECK(k.key_for("node-a").value() == 0x6a080000u); // "6a08" + "%.4d" % 0
    CHECK(k.key_for("NODE-B").value() == 0x6a080001u);
    CHECK(k.key_for("10.0.0.2").value() == 0x6a080001u); // fence_scsi also matches ring0_addr
    CHECK(k.key_for("node-z").error().rc == STOCKADE_RC_UNKNOWN_TARGET);
    k.method = KeyMethod::Hash;
    CHECK(k.key_for("node-a").value() == 0x6a086cecu);
    CHECK(k.key_for("node-b").value() == 0x6a0826f7u);
    CHECK(k.key_for("node-z")); // hash needs no nodelist
    CHECK(k.node_of(0x6a0826f7) == "node-b");
    CHECK(k.collision().empty());

    NodeKeys none;
    CHECK(none.key_for("node-a").error().message.find("cluster_name") != std::string::npos);

    CHECK_FALSE(parse_corosync_conf("totem {\n"));
    CHECK_FALSE(parse_corosync_conf("}\n"));
}

TEST_CASE("scsi explicit key maps, and collisions", "[scsi][unit]")
{
    auto m = parse_key_map("node-a=aa01, node-b=0xbb02");
    REQUIRE(m);
    NodeKeys k;
    k.given = *m;
    CHECK(k.key_for("NODE-A").value() == 0xaa01u);
    CHECK(k.collision().empty());
    CHECK(parse_key_map("node-a").error().message.find("not node=key") != std::string::npos);
    CHECK(parse_key_map("node-a=0").error().message.find("not a key") != std::string::npos);
    CHECK(parse_key_map("a=1 A=2").error().message.find("listed twice") != std::string::npos);
    auto dup = parse_key_map("a=1 b=1");
    REQUIRE(dup);
    k.given = *dup;
    CHECK(k.collision().find("both have key 1") != std::string::npos);
    CHECK(initiator_name_of("## comment\nInitiatorName=iqn.1993-08.org.debian:01:abc\n") ==
          "iqn.1993-08.org.debian:01:abc");
}

TEST_CASE("scsi transports: device texts are checked, SG_IO refuses what is not a SCSI device", "[scsi][unit]")
{
    TransportOptions o;
    CHECK(make_transports({"relative/path"}, o).error().rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(make_transports({"iscsi://host/iqn.x/abc"}, o).error().message.find("LUN 'abc'") != std::string::npos);
    CHECK(make_transports({"iscsi://host:99999/iqn.x/1"}, o).error().message.find("port") != std::string::npos);
    CHECK(make_transports({"iscsi://user%pw@host/iqn.x/1"}, o).error().message.find("credentials") != std::string::npos);
    CHECK(make_transports({"iscsi://host/1"}, o).error().rc == STOCKADE_RC_BAD_CONFIG);
    CHECK(make_transports({"/dev/null", "/dev/null"}, o).error().message.find("twice") != std::string::npos);
    auto ok = make_transports({"iscsi://127.0.0.1:3260/iqn.x:t/1", "iscsi://[::1]/iqn.x:t/2", "/dev/sdz"}, o);
    REQUIRE(ok);
    CHECK(ok->size() == 3);

    stockade_ctx ctx{};
    ctx.abi_major = STOCKADE_ABI_MAJOR;
    ctx.struct_size = sizeof ctx;
    auto t = make_transports({"/dev/null", "/etc/hostname", "/dev/sd-not-there"}, o);
    REQUIRE(t);
    auto c0 = (*t)[0]->connect(&ctx);
    REQUIRE_FALSE(c0);
    CHECK(c0.error().message.find("not a SCSI disk") != std::string::npos);
    auto c1 = (*t)[1]->connect(&ctx);
    REQUIRE_FALSE(c1);
    CHECK(c1.error().message.find("not a block or sg device") != std::string::npos);
    auto c2 = (*t)[2]->connect(&ctx);
    REQUIRE_FALSE(c2);
    CHECK(c2.error().rc == STOCKADE_RC_UNREACHABLE);
    // iSCSI with no initiator name: the parameter is named.
    auto c3 = (*ok)[0]->connect(&ctx);
    REQUIRE_FALSE(c3);
    CHECK(c3.error().message.find("parameter 'initiator'") != std::string::npos);
}
