#!/bin/sh
# ipmi_bench.sh -- build stockade's ipmi agent and benchmark it against fence_ipmilan, ipmitool
# and ipmipower on simulated BMCs (OpenIPMI ipmi_sim on 127.0.0.1), all measured in this run.
#   bench/ipmi_bench.sh [--runs N] [--reboot-runs N] [--counts 1,16,64,256]
# Needs the packages in scripts/packages/ipmi.txt.  Prints one Markdown report on stdout.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${STOCKADE_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j2 --target ipmi_bench bare_ipmi bare_ipmi_cxx stockade stockade_agent_ipmi stockade_agent_sim stockade-agent-host >/dev/null
export STOCKADE_AGENT_PATH="$(ls -d "$build"/lib/stockade/agents "$build"/lib/*/stockade/agents 2>/dev/null | head -1)"
export STOCKADE_AGENT_HOST="$build/libexec/stockade/stockade-agent-host"
echo "## ipmi agent benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "versions: openipmi $(dpkg-query -W -f='${Version}' openipmi 2>/dev/null); $(ipmitool -V); $(ipmipower --version | head -1); fence-agents $(dpkg-query -W -f='${Version}' fence-agents 2>/dev/null)"
echo
exec "$build/bench/ipmi_bench" --stockade "$build/bin/stockade" "$@"
