#!/bin/bash
# Two-node clusters and the fence race.  With `two_node: 1` both halves of a split keep quorum, and
# when only corosync's traffic is lost (UDP 5405 dropped with iptables inside both node
# namespaces) both nodes can still reach both BMCs: each asks to fence the other.  A delay on one
# side decides the race; this test proves that exactly one node survives, and which one:
#   1  priority-fencing-delay=5s + Dummy priority=10: fencing the node that runs Dummy is delayed,
#      so that node survives and Dummy never moves.
#   2  pcmk_delay_base=5s on the device that fences the other node (no priority delay): that node
#      survives, so the Dummy node is fenced and Dummy moves to the survivor.
# Read back: exactly one BMC reads off, that node's PID namespace is empty, the survivor's fence
# history has the success, the survivor is still on well after the delay has passed.
# Random delays (pcmk_delay_max) only make a double fence unlikely; docs/cluster-testing.md has
# the measured counts (bench/cluster_failover.sh --race).
# Exit 0 = pass, 77 = skipped, anything else = failure.
set -u
. "$(dirname "$0")/cluster_lib.sh"

cl_test_init "$@"
CL_EXTRA_CIB_OPTIONS='        <nvpair id="opt-priority-fencing-delay" name="priority-fencing-delay" value="5s"/>'
CL_DUMMY_META='        <meta_attributes id="dummy-meta"><nvpair id="dummy-priority" name="priority" value="10"/></meta_attributes>'

# Drop (or stop dropping) corosync's UDP traffic inside node I's namespace: BMCs stay reachable.
corosync_block() { # I -A|-D
  local r
  for r in "INPUT -p udp --dport 5405" "OUTPUT -p udp --dport 5405"; do
    ip netns exec "$CL_NS-n$1" iptables -w "$2" $r -j DROP
  done
}
off_count() { local i c=0; for i in 1 2; do [ "$(cl_power "$i")" = off ] && c=$((c + 1)); done; echo "$c"; }
one_off() { [ "$(off_count)" -ge 1 ]; }
survivor_is_on_alone() { [ "$(cl_power "${1#n}")" = on ] && [ "$(off_count)" = 1 ]; }

race() { # expected-survivor description
  local keep=$1 what=$2 other i t_cut
  other=n$((3 - ${keep#n}))
  cl_log "=== $what: expecting $keep to survive and $other to be fenced"
  t_cut=$(date +%s)
  corosync_block 1 -A
  corosync_block 2 -A
  cl_wait_for 90 "one BMC reads off" one_off
  sleep 10 # well past the 5 s delay: a second (late) fence would have happened by now
  cl_check "exactly one node is off" test "$(off_count)" = 1
  cl_check "$keep survived (BMC reads on)" test "$(cl_power "${keep#n}")" = on
  cl_check "$other was fenced (BMC reads off)" test "$(cl_power "${other#n}")" = off
  cl_wait_for 10 "$other PID namespace has 0 processes" test_procs0 "${other#n}"
  cl_check "$keep's fence history has the off of $other" history_has "$keep" "$other" "$t_cut"
  # Informational: whether $other got as far as asking (it may need a DC election first, and die
  # before it asks); the outcome above is what must hold either way.
  if cl_first_after "$other/pacemaker.log" "Requesting fencing \([a-z]+\) of node $keep" "$t_cut" >/dev/null; then
    cl_log "$other had asked to fence $keep too: a real race, decided by the delay"
  else
    cl_log "$other was fenced before it asked to fence $keep"
  fi
  cl_wait_for 60 "Dummy runs on $keep" dummy_on "$keep"
  # Back to two nodes: unblock both, power the fenced one on over IPMI.
  corosync_block 1 -D
  corosync_block 2 -D
  cl_bmc_ipmitool "${other#n}" chassis power on >/dev/null
  cl_wait_for 120 "$other rejoined, both online, every resource started" cl_wait_ready_quiet
}
test_procs0() { [ "$(cl_node_procs "$1")" = 0 ]; }
history_has() { # node target since
  cl_on "$1" stonith_admin --history "$2" --verbose --output-as=xml 2>/dev/null |
    perl -ne 'next unless /<fence_event (.*)\/>/; my %f = $1 =~ /(\w+)="([^"]*)"/g;
      my $t = `date -d "$f{completed}" +%s`; chomp $t;
      $ok = 1 if $f{status} eq "success" && $f{action} eq "off" && $t >= '"$3"'; END { exit !$ok }'
}
dummy_on() { [ "$(cl_where dummy "$1")" = "$1" ]; }
cl_wait_ready_quiet() { cl_wait_ready 1 2>/dev/null; }

cl_start 2 || exit 1
holder=$(cl_where dummy)
[ -n "$holder" ] || { cl_die "Dummy runs nowhere"; exit 1; }
race "$holder" "1: priority-fencing-delay=5s, Dummy priority 10 on $holder"

holder=$(cl_where dummy)
other=n$((3 - ${holder#n}))
asker=$(cl_live_node)
cl_on "$asker" crm_attribute --type crm_config --name priority-fencing-delay --update 0
cl_on "$asker" crm_resource --resource "st-$other" --set-parameter pcmk_delay_base --parameter-value 5s
cl_wait_ready 60 || exit 1
race "$other" "2: pcmk_delay_base=5s on st-$other (the device that fences $other), no priority delay"

cl_finish
