// fuzz_witness.cpp -- witness messages (core/quorum/witness.cpp): the input as a raw line
// (header, MAC, payload parsing), and, when it is a JSON object, sealed with the right key so the
// fuzzer reaches what is behind the MAC: the envelope and answer checks and the replay guard.
// A peer holding the key must not be able to crash a node either.
#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "stockade/config.hpp"
#include "stockade/witness.hpp"

using namespace stockade;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const std::string key = "0123456789abcdef0123456789abcdef";
    static const Config config = [] {
        auto c = parse_config(R"({"cluster_name": "c1", "local_node": "n1", "devices": {},
                                  "nodes": {"n1": {"levels": []}, "n2": {"levels": []}}})",
                              "fuzz.json");
        return c ? *c : Config{};
    }();
    std::string_view line(reinterpret_cast<const char *>(data), size);
    auto raw = open_message(key, line);
    if (raw)
        (void)check_answer(*raw, config, "n1", "n2", "00112233445566778899aabbccddeeff");

    auto payload = nlohmann::json::parse(line, nullptr, false);
    if (payload.is_discarded() || !payload.is_object())
        return 0;
    std::string sealed = seal_message(key, payload);
    sealed.pop_back(); // the '\n'
    auto opened = open_message(key, sealed);
    if (!opened)
        return 0;
    (void)check_answer(*opened, config, "n1", "n2", "00112233445566778899aabbccddeeff");
    ReplayGuard guard(std::chrono::milliseconds(30000));
    auto it = opened->find("ts");
    auto nonce = opened->find("nonce");
    if (it != opened->end() && it->is_number_integer() && nonce != opened->end() && nonce->is_string())
        (void)guard.admit(nonce->get<std::string>(), it->get<int64_t>(), unix_ms());
    return 0;
}
