#!/bin/bash
# A real 3-node corosync + Pacemaker cluster fencing through fence_stockade_ipmi, configured with
# exactly fence_ipmilan's attributes (ip ipport username password lanplus cipher pcmk_host_list):
# what an administrator checks before trusting a fencing agent.  One cluster, five scenarios:
#   A  link cut of the node running Dummy: its BMC reads off, its PID namespace is empty, the
#      survivors' fence history says successful, Dummy runs on a survivor; heal, power on over
#      IPMI, the node rejoins.
#   B  stonith-action=reboot: the victim is powered off and back on by the fence itself and
#      rejoins once its link is back (no IPMI command from the test).
#   C  fencing-topology: level 1 a stockade device whose BMC is dead, level 2 a working one; the
#      fence succeeds at level 2.
#   D  the victim's BMC frozen (SIGSTOP), no other level: no false "fenced" (the node runs on,
#      Dummy stays stopped, the history shows the failure); after SIGCONT the next attempt fences.
#   E  a graceful stop of a node (its init stops pacemaker, then corosync) fences nobody.
# Every outcome is read back from the BMC, the process table and Pacemaker, never assumed.
# Exit 0 = pass, 77 = skipped (not root / tools missing), anything else = failure.
set -u
. "$(dirname "$0")/cluster_lib.sh"

cl_test_init "$@"
CL_SECOND_BMC=1

power_is() { [ "$(cl_power "$1")" = "$2" ]; }
procs_are() { [ "$(cl_node_procs "$1")" = "$2" ]; }
# Fence events for $2 seen from $1 that completed at or after epoch $3: "status action" lines.
# (--verbose: without it stonith_admin hides failures; completion times are whole seconds.)
events_since() {
  cl_on "$1" stonith_admin --history "$2" --verbose --output-as=xml 2>/dev/null |
    perl -ne 'next unless /<fence_event (.*)\/>/; my $a = $1; my %f = $a =~ /(\w+)="([^"]*)"/g;
      my $t = $f{completed} ? `date -d "$f{completed}" +%s` : 0; chomp $t;
      print "$f{status} $f{action}\n" if !$f{completed} || $t >= int('"$3"');'
}
history_says() { events_since "$1" "$2" "$t_cut" | grep -q -E "^$3"; } # survivor victim "status action"
dummy_on_survivor() { local w; w=$(cl_where dummy "$1"); [ -n "$w" ] && [ "$w" != "$2" ]; }
rejoined() { local s; s=$(cl_ready_state "$1"); set -- $s; [ "${1:-0}" = 1 ] && [ "${2:-0}" = "$CL_N" ] && [ "$3" = "$4" ]; }
survivor_logs_grep() { grep -h -E "$2" $(for i in $(seq "$CL_N"); do [ "n$i" = "$1" ] || echo "$CL_DIR/n$i/pacemaker.log"; done) 2>/dev/null; }
fail_dump() {
  cl_log "--- crm_mon from $1"; cl_on "$1" crm_mon -1 2>&1 | head -30 >&2
  cl_log "--- fencer lines"; survivor_logs_grep "$2" "pacemaker-fenced.*(Operation|Requesting|returned|failed)" | tail -20 >&2
}

cl_start 3 || exit 1

# Victim = the node running Dummy; survivor = another live node to ask.
pick() {
  cl_wait_ready 60 || exit 1
  victim=$(cl_where dummy)
  [ -n "$victim" ] || { cl_die "Dummy runs nowhere"; exit 1; }
  survivor=$(cl_live_node "$victim")
  v=${victim#n}
  cl_log "victim $victim, asking $survivor"
}

heal_power_on_rejoin() {
  cl_heal "$victim"
  cl_bmc_ipmitool "$v" chassis power on >/dev/null
  cl_check "$victim BMC reads on after IPMI power on" power_is "$v" on
  cl_wait_for 120 "all 3 nodes online again, every resource started" rejoined "$survivor"
}

# ---- A: link cut, stonith-action=off ---------------------------------------------------------
cl_log "=== A: link cut, stonith-action=off"
pick
t_cut=$(date +%s)
cl_cut "$victim"
cl_wait_for 90 "$victim BMC reads off" power_is "$v" off || fail_dump "$survivor" "$victim"
cl_wait_for 10 "$victim PID namespace has 0 processes" procs_are "$v" 0
cl_wait_for 60 "stonith_admin --history on $survivor: off of $victim successful" history_says "$survivor" "$victim" "success off"
cl_wait_for 60 "Dummy started on a survivor" dummy_on_survivor "$survivor" "$victim"
heal_power_on_rejoin

# ---- B: stonith-action=reboot ----------------------------------------------------------------
cl_log "=== B: stonith-action=reboot"
cl_on "$(cl_live_node)" crm_attribute --type crm_config --name stonith-action --update reboot
pick
old_pid1=$(cl_pid1 "$v")
t_cut=$(date +%s)
cl_cut "$victim"
powered_off_and_on() {
  awk -v t="$t_cut" '$1 >= t && /power off/ { off = 1 } $1 >= t && /power on/ && off { on = 1 } END { exit !on }' \
    "$CL_DIR/$victim/power.log"
}
cl_wait_for 90 "$victim powered off and on again by the fence (power.log)" powered_off_and_on || fail_dump "$survivor" "$victim"
cl_check "$victim BMC reads on (came back by itself)" power_is "$v" on
cl_check "$victim runs a new PID 1" test "$(cl_pid1 "$v")" != "$old_pid1"
cl_wait_for 60 "history on $survivor: reboot of $victim successful" history_says "$survivor" "$victim" "success reboot"
cl_wait_for 60 "Dummy started on a survivor" dummy_on_survivor "$survivor" "$victim"
cl_heal "$victim"
cl_wait_for 120 "$victim rejoined without any IPMI command" rejoined "$survivor"
cl_on "$survivor" crm_attribute --type crm_config --name stonith-action --update off

# ---- C: two-level topology, level 1 has a dead BMC ------------------------------------------------
cl_log "=== C: fencing-topology, level 1 dead"
levels=""
for i in 1 2 3; do
  levels+="<fencing-level id=\"fl-n$i-1\" target=\"n$i\" index=\"1\" devices=\"st2-n$i\"/>"
  levels+="<fencing-level id=\"fl-n$i-2\" target=\"n$i\" index=\"2\" devices=\"st-n$i\"/>"
done
cl_on "$(cl_live_node)" cibadmin --create -o configuration --xml-text "<fencing-topology>$levels</fencing-topology>"
pick
cl_kill_recorded "$CL_DIR/bmc2-$v/sim.pid" KILL
bmc2_dead() { ! cl_recorded_alive "$CL_DIR/bmc2-$v/sim.pid"; }
cl_wait_for 10 "$victim second BMC is dead" bmc2_dead
t_cut=$(date +%s)
cl_cut "$victim"
cl_wait_for 120 "$victim BMC reads off" power_is "$v" off || fail_dump "$survivor" "$victim"
cl_wait_for 10 "$victim PID namespace has 0 processes" procs_are "$v" 0
cl_wait_for 60 "history on $survivor: off of $victim successful" history_says "$survivor" "$victim" "success off"
logs_have() { grep -q -h -E "$1" "$CL_DIR"/n*/pacemaker.log; }
cl_check "level 1 (st2-$victim, dead BMC) was tried and failed" logs_have "using st2-$victim returned [^0]"
cl_check "level 2 (st-$victim) fenced" logs_have "using st-$victim returned 0"
cl_wait_for 60 "Dummy started on a survivor" dummy_on_survivor "$survivor" "$victim"
cl_on "$survivor" cibadmin --delete -o configuration --xml-text "<fencing-topology/>"
cl_start_bmc "$CL_DIR/bmc2-$v" "$(cl_bmc2_ip "$v")" "$CL_DIR/$victim"
heal_power_on_rejoin

# ---- D: frozen BMC: no false fenced, then SIGCONT fences --------------------------------------
cl_log "=== D: victim's BMC frozen (SIGSTOP), no other level"
pick
# Level 1 must not exist for this victim now; the second device is out of the way too.
cl_on "$survivor" crm_resource --resource "st2-$victim" --set-parameter target-role --meta --parameter-value Stopped
st2_stopped() { [ -z "$(cl_where "st2-$victim" "$survivor")" ]; }
cl_wait_for 60 "st2-$victim stopped" st2_stopped
cl_kill_recorded "$CL_DIR/bmc$v/sim.pid" STOP
t_cut=$(date +%s)
cl_cut "$victim"
cl_wait_for 90 "history on $survivor shows a failed fencing of $victim" history_says "$survivor" "$victim" "failed" ||
  fail_dump "$survivor" "$victim"
if history_says "$survivor" "$victim" "success"; then
  cl_log "NOT OK: history claims $victim was fenced while its BMC is frozen"; CL_FAILURES=$((CL_FAILURES + 1))
fi
cl_check "$victim still runs (processes in its PID namespace)" test "$(cl_node_procs "$v")" -gt 0
w=$(cl_where dummy "$survivor")
cl_check "Dummy not started on a survivor while $victim is unfenced (crm_mon: '${w}')" test -z "$w" -o "$w" = "$victim"
cl_kill_recorded "$CL_DIR/bmc$v/sim.pid" CONT
cl_wait_for 120 "after SIGCONT: $victim BMC reads off" power_is "$v" off || fail_dump "$survivor" "$victim"
cl_wait_for 10 "$victim PID namespace has 0 processes" procs_are "$v" 0
cl_wait_for 60 "history on $survivor: off of $victim successful" history_says "$survivor" "$victim" "success off"
cl_wait_for 60 "Dummy started on a survivor" dummy_on_survivor "$survivor" "$victim"
# The device whose BMC was frozen failed its starts meanwhile: what an admin does once it is back.
cl_on "$survivor" crm_resource --cleanup >/dev/null
cl_on "$survivor" crm_resource --resource "st2-$victim" --meta --delete-parameter target-role >/dev/null
heal_power_on_rejoin

# ---- E: a clean shutdown is not a failure: no fencing -----------------------------------------
cl_log "=== E: graceful stop of a node (SIGTERM to its init: pacemakerd, then corosync)"
pick
t_cut=$(date +%s)
kill -TERM "$(cl_pid1 "$v")"
cl_wait_for 90 "$victim stopped by itself (BMC reads off)" power_is "$v" off
sleep 3 # a wrong fence request would come within the token + consensus time
no_fence_since() { ! events_since "$survivor" "$victim" "$t_cut" | grep -q .; }
cl_check "no fencing of $victim was attempted (history since the stop is empty)" no_fence_since
cl_wait_for 60 "Dummy started on a survivor" dummy_on_survivor "$survivor" "$victim"
cl_bmc_ipmitool "$v" chassis power on >/dev/null
cl_wait_for 120 "$victim back after IPMI power on" rejoined "$survivor"

cl_log "fence history seen from $survivor:"
cl_on "$survivor" stonith_admin --history '*' --verbose >&2 2>/dev/null
cl_finish
