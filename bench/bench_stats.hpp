// bench_stats.hpp -- what every benchmark in bench/ reports the same way: a cell of timed runs
// (median, failures, peak RSS), its text ("12.3 ms", "1.20 s (2 failed)") and the ratio of two
// cells.  Header-only; shared by ipmi_bench and redfish_bench so their tables read alike.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace stockade::bench {

using Clock = std::chrono::steady_clock;

inline double since_ms(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Cell {
    std::vector<double> ms; // successful runs only
    long maxrss_kb = 0;
    int failures = 0;
    std::string note;
    double med() const { return median(ms); }
};

inline std::string fmt_ms(const Cell &c)
{
    if (c.ms.empty())
        return "n/a";
    char b[96];
    double m = c.med();
    if (m >= 1000)
        std::snprintf(b, sizeof b, "%.2f s", m / 1000);
    else
        std::snprintf(b, sizeof b, "%.1f ms", m);
    std::string s = b;
    if (c.failures)
        s += " (" + std::to_string(c.failures) + " failed)";
    return s;
}

// num / den of the medians, "n/a" when either is missing.
inline std::string ratio(const Cell &num, const Cell &den)
{
    if (num.ms.empty() || den.ms.empty() || den.med() <= 0)
        return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.2fx", num.med() / den.med());
    return b;
}

} // namespace stockade::bench
