// helper_test_support.hpp -- real peers for the helper/SFEX tests: loop devices over image files
// (the resource-agents SFEX tools need a block device) and network namespaces joined by veth
// pairs carrying 127.0.10.x (the ICMP death check needs hosts that can die).  Everything made
// here is removed in the destructor; nothing is left behind when a test fails.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace stockade::test {

// Runs a program found on PATH (or an absolute path) and returns its result; never throws.
CommandResult sh(const std::vector<std::string> &argv, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `losetup -f --show` over an image file; detached by PID-free `losetup -d` in the destructor.
class LoopDevice {
public:
    // Creates an image of `bytes` in `dir` and attaches it.  nullopt + reason when impossible.
    static std::optional<LoopDevice> create(const std::string &dir, size_t bytes, unsigned sector_size,
                                            std::string &why_not);
    LoopDevice(LoopDevice &&o) noexcept : dev_(std::move(o.dev_)), image_(std::move(o.image_)) { o.dev_.clear(); }
    LoopDevice &operator=(LoopDevice &&) = delete;
    ~LoopDevice();
    const std::string &path() const { return dev_; }
    const std::string &image() const { return image_; }

private:
    LoopDevice(std::string dev, std::string image) : dev_(std::move(dev)), image_(std::move(image)) {}
    std::string dev_, image_;
};

// Writes raw bytes at `offset` of a device or file (O_DIRECT where possible), to corrupt images.
void write_raw(const std::string &path, size_t offset, const std::string &bytes, size_t block = 512);

// A set of network namespaces: one "client" namespace and N "host" namespaces, host i joined to
// the client by its own veth pair on 127.0.10.(4i+1)/30 (client side) and 127.0.10.(4i+2)/30
// (host side), route_localnet on.  Names carry the test's PID so parallel runs do not collide.
class NetLab {
public:
    static std::optional<NetLab> create(int hosts, std::string &why_not);
    NetLab(NetLab &&o) noexcept : client_(std::move(o.client_)), hosts_(std::move(o.hosts_)) { o.client_.clear(); o.hosts_.clear(); }
    NetLab &operator=(NetLab &&) = delete;
    ~NetLab();

    const std::string &client() const { return client_; }
    std::string host_ns(int i) const { return hosts_.at(size_t(i)); }
    static std::string host_ip(int i) { return "127.0.10." + std::to_string(4 * i + 6); }
    static std::string client_ip(int i) { return "127.0.10." + std::to_string(4 * i + 5); }
    static std::string host_if(int i) { return "vh" + std::to_string(i); }

    // ip link set <host if> down / up inside the host's namespace.
    bool set_host_link(int i, bool up);
    // Deletes host i's namespace (its veth pair goes with it).
    bool delete_host(int i);
    // Runs argv inside the client namespace.
    CommandResult in_client(const std::vector<std::string> &argv,
                            std::chrono::milliseconds timeout = std::chrono::seconds(90)) const;

private:
    NetLab() = default;
    std::string client_;
    std::vector<std::string> hosts_; // "" once deleted
};

// Parsed output line of helper_agent_driver.
struct DriverResult {
    bool ran = false;
    unsigned rc = 99, verified = 0, state = 0;
    long long elapsed_ms = -1;
    std::string message, raw_out, raw_err;
};
DriverResult parse_driver_output(const CommandResult &r);

} // namespace stockade::test
