// fuzz_cluster_conf.cpp -- cman's cluster.conf reader (frontends/fence_node/cluster_conf.cpp, on
// libxml2): any bytes give a ClusterConf or one error, never a crash.
#include <cstdint>
#include <string>

#include "cluster_conf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view text(reinterpret_cast<const char *>(data), size);
    (void)stockade::parse_cluster_conf(text, "fuzz.conf");
    return 0;
}
