// paths.hpp -- where the running binary lives and where its agents and agent host are.
#pragma once

#include <optional>
#include <string>

#include "stockade_paths.h" // generated: kRelBinToAgents, kRelBinToLibexec, kInstall*

namespace stockade {

// Directory of /proc/self/exe, if readable.
std::optional<std::string> exe_dir();

} // namespace stockade
