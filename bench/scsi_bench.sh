#!/bin/sh
# scsi_bench.sh -- build stockade's scsi agent and measure a storage fence (preempt + confirm) of
# one victim across 1 and 8 LUNs, login included and excluded, next to fence_scsi's
# one-process-per-step cost, against real user-space iSCSI targets on 127.0.0.1 (tgt; istgt too
# with --istgt).  See the top of bench/scsi_bench.cpp for what is measured.
#   bench/scsi_bench.sh [--runs N] [--istgt]
# Needs the packages in scripts/packages/scsi.txt and root (tgtd's control socket).  Prints Markdown.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${STOCKADE_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j2 --target scsi_bench >/dev/null
export STOCKADE_AGENT_PATH="$build/lib/stockade/agents"
export STOCKADE_AGENT_HOST="$build/libexec/stockade/stockade-agent-host"
echo "## scsi agent benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "versions: tgt $(dpkg-query -W -f='${Version}' tgt 2>/dev/null); istgt $(dpkg-query -W -f='${Version}' istgt 2>/dev/null); libiscsi $(dpkg-query -W -f='${Version}' libiscsi7 2>/dev/null)"
exec "$build/bench/scsi_bench" --bindir "$build/bin" "$@"
