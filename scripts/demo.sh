#!/usr/bin/env bash
# Sets up only what the demo needs (scripts/setup.sh --demo: the core packages; the CLI, the agent
# host and the sim agent), then runs the main job on its embedded default: the demo that fences
# simulated nodes through the real escalation runner and narrates each step.  Setup progress goes
# to stderr as it happens.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: preparing (missing core packages, then the CLI, agent host and sim agent only)" >&2
scripts/setup.sh --demo
exec "${BUILD_DIR:-build}/bin/stockade" demo "$@"
