#!/bin/sh
# redfish_bench.sh -- build stockade's redfish agent and benchmark it against fence-agents'
# fence_redfish on the Redfish test service (HTTPS on 127.0.0.1), both measured in this run.
#   bench/redfish_bench.sh [--runs N] [--bmcs N] [--transition-ms MS]
# Needs the packages in scripts/packages/redfish.txt.  Prints one Markdown report on stdout.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${STOCKADE_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j2 --target redfish_bench stockade fence_stockade stockade_agent_redfish stockade-agent-host >/dev/null
export STOCKADE_AGENT_PATH="$build/lib/stockade/agents"
export STOCKADE_AGENT_HOST="$build/libexec/stockade/stockade-agent-host"
echo "## redfish agent benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "versions: fence-agents $(dpkg-query -W -f='${Version}' fence-agents 2>/dev/null), libssl3 $(dpkg-query -W -f='${Version}' libssl3 2>/dev/null), boost $(dpkg-query -W -f='${Version}' libboost1.74-dev 2>/dev/null), python3 $(dpkg-query -W -f='${Version}' python3 2>/dev/null)"
echo
exec "$build/bench/redfish_bench" --stockade-bin "$build/bin" "$@"
