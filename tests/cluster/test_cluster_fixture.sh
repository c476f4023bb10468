#!/bin/bash
# The cluster fixture itself: a 5-node cluster (the top of the 2..5 range) starts, then its
# driving shell is SIGKILLed so no EXIT trap can run (a crashed test).  The next run's sweeper must
# remove everything that run left -- its namespaces, its BMCs, every process of its nodes, its
# folder -- and nothing else: a live run's namespace (this script's own decoy) stays.
# Exit 0 = pass, 77 = skipped, anything else = failure.
set -u
. "$(dirname "$0")/cluster_lib.sh"
cl_test_init "$@"

# Bad sizes are refused before anything is built.
cl_check "cl_start 1 is refused" bash -c ". '$CL_LIB_DIR/cluster_lib.sh'; ! cl_start 1 2>/dev/null"
cl_check "cl_start 6 is refused" bash -c ". '$CL_LIB_DIR/cluster_lib.sh'; ! cl_start 6 2>/dev/null"

marker=$(mktemp /tmp/stkc-fixture.XXXXXX)
rm -f "$marker"
# The doomed run, in its own session so that killing it touches nothing of ours.
setsid bash -c ". '$CL_LIB_DIR/cluster_lib.sh'
  CL_STOCKADE_BIN='$CL_STOCKADE_BIN' CL_AGENT_HOST='$CL_AGENT_HOST' CL_TOKEN='$CL_TOKEN'
  cl_start 5 || exit 1
  echo \"\$\$ \$CL_DIR\" >'$marker'
  exec sleep 600" </dev/null >"$marker.log" 2>&1 &
doomed=$!
started() { [ -s "$marker" ] || ! kill -0 "$doomed" 2>/dev/null; }
cl_wait_for 240 "a 5-node cluster started (all online, every resource started)" started
read -r run dir <"$marker" 2>/dev/null
if [ -z "${dir:-}" ]; then
  cl_log "the 5-node run failed:"; tail -30 "$marker.log" >&2
  kill -KILL "$doomed" 2>/dev/null
  rm -f "$marker" "$marker.log"
  exit 1
fi
cl_log "$(grep 'nodes up' "$marker.log")"
doomed=$run # the driving shell's PID names its namespaces

# What the run owns, read before the crash.
ns_of_run() { ip netns list | awk '{print $1}' | grep -E "^stkc$doomed-" || true; }
nsl=$(ns_of_run)
cl_check "7 namespaces (hub, bmc, n1..n5)" test "$(echo "$nsl" | grep -c .)" = 7
# Every process of the run as "pid starttime" (PIDs and namespace inodes get reused by others).
owned=$(for f in "$dir"/bmc*/sim.pid "$dir"/n*/node.pid; do cat "$f"; done)
for i in 1 2 3 4 5; do
  read -r u _ <"$dir/n$i/node.pid"
  p1=$(ps --ppid "$u" -o pid= | tr -d ' ' | head -1)
  ns=$(readlink "/proc/$p1/ns/pid" | tr -dc 0-9)
  for q in $(ps -e -o pid=,pidns= | awk -v ns="$ns" '$2 == ns { print $1 }'); do
    st=$(cl_pid_id "$q") && owned+=$'\n'"$q $st"
  done
done
still_alive() { # the owned processes that are still the same processes
  local q st
  while read -r q st; do [ -n "$q" ] && [ "$(cl_pid_id "$q")" = "$st" ] && echo "$q"; done <<<"$owned"
}
cl_check "the run owns $(echo "$owned" | grep -c .) processes (BMCs, unshares, node processes)" \
  test "$(echo "$owned" | grep -c .)" -gt 45

# A live run's namespace that the sweeper must leave alone.
decoy=stkc$$-decoy
ip netns add "$decoy"
printf '%s\n%s\n' "$$ $(cl_pid_id $$)" "/nonexistent" >"$CL_RUNS_DIR/$$"

# The crash: SIGKILL the driving shell (now `sleep`, exec'd from it).  No trap runs.
kill -KILL "$doomed"
sleep 1
cl_check "after the crash the run's namespaces are still there" test -n "$(ns_of_run)"

t0=$(date +%s.%N)
cl_sweep_stale
cl_log "sweep took $(cl_elapsed "$t0" "$(date +%s.%N)") s"
cl_check "no namespace of the crashed run is left" test -z "$(ns_of_run)"
gone() { [ -z "$(still_alive)" ]; }
cl_wait_for 10 "no process of the crashed run is left (BMCs, nodes, every process in their PID namespaces)" gone
cl_check "its folder is removed" test ! -e "$dir"
cl_check "its run record is removed" test ! -e "$CL_RUNS_DIR/$doomed"
cl_check "the live run's namespace is untouched" bash -c "ip netns list | grep -q '^$decoy'"

ip netns del "$decoy"
rm -f "$CL_RUNS_DIR/$$" "$marker" "$marker.log"
cl_finish
