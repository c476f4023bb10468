#!/bin/bash
# The scsi agent under real Pacemaker (3-node corosync + Pacemaker cluster from
# tests/cluster/cluster_lib.sh): a tgtd iSCSI target in the BMC namespace (127.0.10.100), one
# cluster-wide stonith device fence_stockade_scsi (provides=unfencing, each node's initiator
# "iqn...:{node}"), and a fencing topology per node: level 1 its IPMI BMC, level 2 the storage.
#   1  unfencing on join: once the cluster is up, every node's key is registered (Pacemaker ran
#      the agent's automatic, on_target "on" on each node as it joined) and a reservation is held.
#   2  escalation: a node whose BMC is dead loses its link; the survivors' level 1 fails, level 2
#      removes its key (every registration of it: on tgt one per session), the survivors still
#      write, and the fence history says success.
# The topology is in the CIB from the start: with devices but no topology, Pacemaker unfences a
# node with any one capable device (measured: a node's IPMI device powering it "on"); with the
# topology it runs every level's "on", st-scsi's on the node itself (on_target).
# Every claim is read with stockade-pr-probe (libiscsi, no agent code) or from Pacemaker.
# Usage: test_scsi_cluster.sh BIN_DIR PROBE.  Exit 0 pass, 77 skipped, else failure.
set -u
. "$(dirname "$0")/../../../tests/cluster/cluster_lib.sh"

cl_test_init "$1"
PROBE=$2
[ -x /usr/sbin/tgtd ] || { echo "SKIPPED: tgtd not installed (package tgt)"; exit 77; }
CL_EXTRA_AGENTS=fence_stockade_scsi
TIQN=iqn.2024-01.test.stockade:cluster
PORTAL=127.0.10.100:3260
DEV=iscsi://$PORTAL/$TIQN/1
KEYS="n1=5c01 n2=5c02 n3=5c03"
ini() { echo "iqn.2024-01.test.stockade:$1"; }
TGT_CTL=$((1000 + $$ % 30000)) # tgtadm takes -C up to 32767

CL_EXTRA_CIB_RESOURCES="      <primitive id=\"st-scsi\" class=\"stonith\" type=\"fence_stockade_scsi\">
        <instance_attributes id=\"st-scsi-ia\">
          <nvpair id=\"st-scsi-devices\" name=\"devices\" value=\"$DEV\"/>
          <nvpair id=\"st-scsi-keys\" name=\"keys\" value=\"$KEYS\"/>
          <nvpair id=\"st-scsi-initiator\" name=\"initiator\" value=\"iqn.2024-01.test.stockade:{node}\"/>
          <nvpair id=\"st-scsi-hosts\" name=\"pcmk_host_list\" value=\"n1 n2 n3\"/>
        </instance_attributes>
        <meta_attributes id=\"st-scsi-meta\">
          <nvpair id=\"st-scsi-provides\" name=\"provides\" value=\"unfencing\"/>
        </meta_attributes>
        <operations>
          <op id=\"st-scsi-monitor\" name=\"monitor\" interval=\"60s\"/>
        </operations>
      </primitive>"

tgtadm_() { tgtadm -C "$TGT_CTL" "$@"; }
start_target() {
  truncate -s 8M "$CL_DIR/lun1.img" || return 1
  (setsid ip netns exec "$CL_NS-bmc" tgtd -f -C "$TGT_CTL" --iscsi "portal=$PORTAL" </dev/null >"$CL_DIR/tgtd.log" 2>&1 &)
  for _ in $(seq 100); do tgtadm_ --op show --mode sys >/dev/null 2>&1 && break; sleep 0.05; done
  tgtadm_ --lld iscsi --op new --mode target --tid 1 -T "$TIQN" &&
    tgtadm_ --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$CL_DIR/lun1.img" &&
    tgtadm_ --lld iscsi --op bind --mode target --tid 1 -I ALL
}
stop_target() {
  tgtadm_ --lld iscsi --op delete --force --mode target --tid 1 >/dev/null 2>&1
  tgtadm_ --op delete --mode system >/dev/null 2>&1
}
# The topology goes into every node's seeded CIB before boot, so unfencing at join sees it too.
TOPOLOGY="    <fencing-topology>"
for i in 1 2 3; do
  TOPOLOGY+="<fencing-level id=\"fl-n$i-1\" target=\"n$i\" index=\"1\" devices=\"st-n$i\"/>"
  TOPOLOGY+="<fencing-level id=\"fl-n$i-2\" target=\"n$i\" index=\"2\" devices=\"st-scsi\"/>"
done
TOPOLOGY+="</fencing-topology>"
before_boot() {
  local f
  for f in "$CL_DIR"/n*/disk/var/lib/pacemaker/cib/cib.xml; do
    perl -0pi -e 's#(\s*</constraints>)#$1\n'"$TOPOLOGY"'#' "$f" || return 1
  done
  start_target
}
CL_BEFORE_POWER_ON=before_boot
probe() { ip netns exec "$CL_NS-bmc" "$PROBE" "$PORTAL" "$TIQN" 1 "$@"; }
keys_listed() { probe "$(ini observer)" keys | sort -u | tr '\n' ' '; }
has_keys() { [ "$(keys_listed)" = "$1" ]; }
reserved() { probe "$(ini observer)" reservation | grep -q ' 5$'; }
write_as() { [ "$(probe "$(ini "$1")" register "$2")" = "$3" ]; } # node key expected-status (tgt: the session registers itself)
history_success() { cl_on "$1" stonith_admin --history "$2" --verbose 2>/dev/null | grep -q -E "(successful|success).*off|off.*(successful|success)"; }

cl_start 3 || { stop_target; exit 1; }

# ---- 1: unfencing on join ----------------------------------------------------------------------
cl_log "=== 1: unfencing on join"
cl_wait_for 60 "every node's key registered by its own unfencing (5c01 5c02 5c03)" has_keys "5c01 5c02 5c03 "
cl_check "a WRITE EXCLUSIVE - REGISTRANTS ONLY reservation is held" reserved
cl_check "metadata: on is automatic and on_target" bash -c "cl_on() { :; }; $1/fence_stockade_scsi -o metadata | grep -q '<action name=\"on\" on_target=\"1\" automatic=\"1\"/>'"
unfenced_itself() { grep -q -E "Operation 'on' \[[0-9]+\] targeting $1 using st-scsi returned 0" "$CL_DIR/$1/pacemaker.log"; }
for n in n1 n2 n3; do cl_check "$n ran st-scsi's 'on' on itself" unfenced_itself "$n"; done

# ---- 2: dead BMC, level 2 storage fencing over the topology -----------------------------------
cl_log "=== 2: level 1 IPMI (dead BMC) -> level 2 scsi"
live=$(cl_live_node)
cl_check "topology in the CIB (6 levels)" bash -c "[ \$(echo '$(cl_on "$live" cibadmin -Q -o fencing-topology 2>/dev/null)' | grep -o '<fencing-level ' | wc -l) = 6 ]"
victim=n2
for n in n1 n2 n3; do
  k=5c0${n#n}
  cl_check "$n's data path writes before the fence" write_as "$n" "$k" 0
done
cl_kill_recorded "$CL_DIR/bmc2/sim.pid" KILL
t_cut=$(date +%s)
cl_cut "$victim"
cl_wait_for 120 "n2's key removed from the LUN (5c01 5c03 left)" has_keys "5c01 5c03 "
cl_check "n1's WRITE still succeeds" write_as n1 5c01 0
cl_check "n3's WRITE still succeeds" write_as n3 5c03 0
cl_wait_for 60 "fence history on n1: off of n2 successful" history_success n1 n2
cl_check "the fencer tried the dead BMC first (level 1), then st-scsi" bash -c \
  "grep -h -E 'st-n2|st-scsi' $CL_DIR/n1/pacemaker.log $CL_DIR/n3/pacemaker.log | grep -q st-scsi"
stop_target
cl_finish
