#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds, and runs the main job on its embedded default: the demo that
# fences simulated nodes through the real escalation runner and narrates each step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
exec "${BUILD_DIR:-build}/bin/stockade" demo "$@"
