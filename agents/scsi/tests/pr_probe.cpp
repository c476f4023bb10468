// pr_probe.cpp -- the tests' independent look at a LUN from shell scripts (the Pacemaker cluster
// test): READ KEYS, READ RESERVATION, or one WRITE as a given initiator.  Uses PrClient (libiscsi's
// own synchronous calls), no agent code.
//   stockade-pr-probe PORTAL TARGET-IQN LUN INITIATOR-IQN keys|reservation|write|register KEY
// keys: one hex key per line; reservation: "KEY TYPE" or "none"; write: the SCSI status in hex
// (0 GOOD, 18 RESERVATION CONFLICT); register KEY: REGISTER AND IGNORE EXISTING KEY from this
// session, then a WRITE (status printed), for targets that bind registrations to sessions.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <iscsi/scsi-lowlevel.h>

#include "scsi_targets.hpp"

int main(int argc, char **argv)
{
    using stockade::scsitest::PrClient;
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s PORTAL TARGET-IQN LUN INITIATOR-IQN keys|reservation|write|register KEY\n", argv[0]);
        return 2;
    }
    PrClient c(argv[1], argv[2], std::atoi(argv[3]), argv[4]);
    if (!c.error().empty()) {
        std::fprintf(stderr, "%s\n", c.error().c_str());
        return 1;
    }
    std::string what = argv[5];
    if (what == "keys") {
        auto k = c.keys(0);
        if (!k)
            return 1;
        for (auto key : *k)
            std::printf("%llx\n", static_cast<unsigned long long>(key));
        return 0;
    }
    if (what == "reservation") {
        auto r = c.reservation(0);
        if (!r)
            return 1;
        if (r->first)
            std::printf("%llx %d\n", static_cast<unsigned long long>(r->first), r->second);
        else
            std::printf("none\n");
        return 0;
    }
    if (what == "write") {
        std::printf("%x\n", c.write(0));
        return 0;
    }
    if (what == "register" && argc > 6) {
        c.pr_out(0, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, std::strtoull(argv[6], nullptr, 16));
        std::printf("%x\n", c.write(0));
        return 0;
    }
    std::fprintf(stderr, "unknown request '%s'\n", what.c_str());
    return 2;
}
