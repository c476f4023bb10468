// ipmi_console.hpp -- optional post-mortem evidence: record the victim's Serial-over-LAN output
// for a few seconds before it is powered off (libipmiconsole).  Best effort by design: every
// failure is returned as a reason to log, never as a reason not to fence, and the capture never
// runs longer than the budget the caller grants it.
#pragma once

#include <cstdint>
#include <string>

#include "ipmi_config.hpp"
#include "stockade/result.hpp"
#include "stockade/agent.h"

namespace stockade::ipmi {

// Appends up to budget_ms of SOL output (after a header line) to cfg.capture_console.  Returns
// the number of console bytes recorded, or why nothing could be.
Result<size_t> capture_console(const IpmiConfig &cfg, const stockade_ctx *ctx, const std::string &target,
                                 int64_t budget_ms);

} // namespace stockade::ipmi
