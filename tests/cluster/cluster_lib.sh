# cluster_lib.sh -- a real N-node corosync (knet) + Pacemaker cluster on one machine, for tests and
# the failover benchmark (source it from bash; needs root).
#
# Why: the claim that matters to users is cluster-level -- when a node stops answering, the
# survivors fence it through stockade and its resources move.  Every node is its own network,
# mount, UTS and PID namespace; each has one OpenIPMI ipmi_sim BMC whose power-off SIGKILLs the
# node's PID 1, so the kernel kills every process of that node (nothing can survive or respawn).
# Layout, measured times and pitfalls: /work/shared/notes/multinode-cluster.md (§1-§5).
#
#   netns <P>-hub : bridge br0 with one veth port per node and one for the BMCs
#   netns <P>-nI  : eth0 127.0.10.(10+I)/24 -- corosync, pacemaker, the fence agents
#   netns <P>-bmc : eth0 127.0.10.100/24 + 127.0.10.(100+I) per BMC, ipmi_sim on :623
#                   (+ 127.0.10.(120+I) for a node's second BMC with CL_SECOND_BMC=1)
#
# Cleanup: every process is recorded ("pid starttime" files) and stopped by PID; every namespace
# is named <P>-... with P = stkc<PID of the driving shell>, so two runs never collide.  cl_start
# installs an EXIT trap (cl_teardown), and every cl_start first sweeps runs whose driver is gone
# (a test killed by SIGKILL): it only ever touches namespaces named stkc<dead pid>-*, and only
# processes that live inside those namespaces or are recorded in that run's folder.
#
# API (all functions return non-zero with a message on stderr on failure):
#   cl_start N              build and boot N (2..5) nodes; bounded by CL_START_TIMEOUT (s)
#   cl_wait_ready [timeout] DC + N online + every resource started, seen from a live node
#   cl_on NODE cmd...       run a command inside node NODE (n1..nN) (its mount/net/pid ns)
#   cl_bmc_ipmitool I args  ipmitool against node I's BMC from the BMC namespace
#   cl_power I              "on" / "off" read back from node I's BMC
#   cl_node_procs I         number of processes left in node I's PID namespace
#   cl_cut I / cl_heal I    take node I's link down / up
#   cl_where RSC            node running resource RSC ("" if none), seen from a live node
#   cl_teardown             stop everything, delete the namespaces (also the EXIT trap)
# Variables: CL_DIR (run folder), CL_NS (prefix), CL_N, CL_AGENT (stonith type, default
# fence_stockade_ipmi), CL_TOKEN (totem token ms, "" = corosync's default), CL_TWO_NODE (1 for N=2),
# CL_STOCKADE_BIN (folder holding fence_stockade_ipmi), CL_AGENT_HOST, CL_EXTRA_CIB_RESOURCES,
# CL_EXTRA_CIB_CONSTRAINTS, CL_EXTRA_CIB_OPTIONS (XML inserted into the seeded CIB), CL_EXTRA_AGENTS
# (more fence_stockade_* names to overlay), CL_BEFORE_POWER_ON (a command run once the namespaces
# and BMCs are up, before any node boots).

CL_RUNS_DIR=${CL_RUNS_DIR:-/tmp/stockade-cluster-runs}
CL_AGENT=${CL_AGENT:-fence_stockade_ipmi}
CL_TOKEN=${CL_TOKEN:-}
CL_START_TIMEOUT=${CL_START_TIMEOUT:-150}
CL_SECOND_BMC=${CL_SECOND_BMC:-0}
CL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Test helpers: a check that counts failures (CL_FAILURES) instead of stopping the run, and a
# bounded poll.  Bounds only rule out failure; the times they print are for the reader.
CL_FAILURES=0
cl_check() { # description command...
  local what=$1; shift
  if "$@"; then cl_log "ok: $what"; else cl_log "NOT OK: $what"; CL_FAILURES=$((CL_FAILURES + 1)); fi
}
cl_wait_for() { # limit-s description command...
  local limit=$1 what=$2 t0; shift 2
  t0=$(date +%s)
  until "$@"; do
    if [ $(($(date +%s) - t0)) -ge "$limit" ]; then
      cl_log "NOT OK: $what (not within ${limit}s)"; CL_FAILURES=$((CL_FAILURES + 1)); return 1
    fi
    sleep 0.5
  done
  cl_log "ok: $what ($(($(date +%s) - t0))s)"
}
# The start of a test script: skip (exit 77) when this machine cannot run a cluster; $1 (or
# $STOCKADE_BIN_DIR) is the folder of fence_stockade_ipmi; corosync's token is 1000 ms unless set.
cl_test_init() {
  local why; why=$(cl_skip_reason)
  if [ -n "$why" ]; then echo "SKIPPED: $why"; exit 77; fi
  CL_STOCKADE_BIN=${1:-${STOCKADE_BIN_DIR:?}}
  CL_AGENT_HOST=${STOCKADE_AGENT_HOST:?}
  CL_TOKEN=${CL_TOKEN:-1000}
}
# The end of a test script: exit status from CL_FAILURES; a failed run keeps its logs.
cl_finish() {
  if [ "$CL_FAILURES" -gt 0 ]; then
    cl_log "$CL_FAILURES check(s) failed (logs kept in $CL_DIR)"
    CL_KEEP=1
    exit 1
  fi
  cl_log "all checks passed"
  exit 0
}

cl_log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
cl_die() { cl_log "FAIL: $*"; return 1; }

# "<pid> <starttime>" of a live process (starttime = field 22 of /proc/PID/stat), or nothing.
cl_pid_id() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  [ "$1" != Z ] || return 1
  echo "${20}"
}
cl_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }
# Whether the process recorded as "pid starttime" in file $1 is still that process.
cl_recorded_alive() {
  local pid st
  [ -s "$1" ] || return 1
  read -r pid st <"$1" || return 1
  [ -n "$pid" ] && [ "$(cl_pid_id "$pid")" = "$st" ]
}
cl_kill_recorded() { # file signal
  local pid st
  cl_recorded_alive "$1" || return 0
  read -r pid st <"$1"
  kill -"${2:-KILL}" "$pid" 2>/dev/null || true
}

# Kill every process inside network namespace $1 (ours by name) by PID.
cl_kill_netns_procs() {
  local p
  for p in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
}

# Stops one run (ours or a stale one): nodes, BMCs, whatever lives in its namespaces, then the
# namespaces.  $1 = namespace prefix, $2 = run folder (may be gone).
cl_destroy_run() {
  local ns=$1 dir=$2 f pid1 n
  if [ -d "$dir" ]; then
    for f in "$dir"/n*/node.pid; do
      [ -e "$f" ] || continue
      if cl_recorded_alive "$f"; then
        read -r n _ <"$f"
        for pid1 in $(ps --ppid "$n" -o pid= 2>/dev/null); do kill -KILL "$pid1" 2>/dev/null || true; done
        kill -KILL "$n" 2>/dev/null || true
      fi
    done
    for f in "$dir"/bmc*/sim.pid; do [ -e "$f" ] && cl_kill_recorded "$f" KILL; done
  fi
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${ns}-" || true); do
    cl_kill_netns_procs "$n"
  done
  sleep 0.2
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${ns}-" || true); do
    cl_kill_netns_procs "$n"
    ip netns del "$n" 2>/dev/null || true
  done
}

# Removes runs whose driving process is gone (a test that was SIGKILLed): only namespaces named
# stkc<PID>-* where PID (with its start time, recorded at cl_start) is no longer that process.
cl_sweep_stale() {
  local ns pid rec dir
  mkdir -p "$CL_RUNS_DIR"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^\(stkc[0-9][0-9]*\)-.*/\1/p' | sort -u); do
    pid=${ns#stkc}
    rec=$CL_RUNS_DIR/$pid
    if [ -e "$rec" ] && cl_recorded_alive "$rec"; then continue; fi
    if [ ! -e "$rec" ] && kill -0 "$pid" 2>/dev/null; then continue; fi # not ours to judge
    dir=$(sed -n 2p "$rec" 2>/dev/null)
    cl_log "sweeping stale run $ns (driver $pid gone) ${dir:+in $dir}"
    cl_destroy_run "$ns" "$dir"
    [ -n "$dir" ] && [ -d "$dir" ] && rm -rf "$dir"
    rm -f "$rec"
  done
  for rec in "$CL_RUNS_DIR"/*; do # records without namespaces left
    [ -e "$rec" ] || continue
    cl_recorded_alive "$rec" && continue
    dir=$(sed -n 2p "$rec" 2>/dev/null)
    cl_destroy_run "stkc${rec##*/}" "$dir"
    [ -n "$dir" ] && [ -d "$dir" ] && rm -rf "$dir"
    rm -f "$rec"
  done
}

cl_teardown() {
  [ -n "${CL_NS:-}" ] || return 0
  local t0=$(date +%s.%N)
  cl_destroy_run "$CL_NS" "$CL_DIR"
  if [ -n "${CL_KEEP:-}" ]; then cl_log "kept $CL_DIR"; else rm -rf "$CL_DIR"; fi
  rm -f "$CL_RUNS_DIR/$$"
  cl_log "teardown of $CL_NS took $(cl_elapsed "$t0" "$(date +%s.%N)") s"
  CL_NS=
}

cl_skip_reason() {
  [ "$(id -u)" = 0 ] || { echo "not root (namespaces, corosync, pacemaker need it)"; return; }
  local t
  for t in ip unshare nsenter corosync pacemakerd crm_mon stonith_admin cibadmin ipmi_sim ipmitool perl iptables; do
    command -v "$t" >/dev/null 2>&1 || { echo "$t not installed"; return; }
  done
  [ -x /usr/lib/ocf/resource.d/pacemaker/Dummy ] || { echo "ocf:pacemaker:Dummy missing (package pacemaker)"; return; }
  grep -qw overlay /proc/filesystems || { echo "no overlayfs in this kernel"; return; }
}

cl_ip() { echo "127.0.10.$((10 + $1))"; }
cl_bmc_ip() { echo "127.0.10.$((100 + $1))"; }
cl_bmc2_ip() { echo "127.0.10.$((120 + $1))"; }

cl_write_chassis() {
  cat >"$CL_DIR/chassis.sh" <<'EOF'
#!/bin/sh
# ipmi_sim's chassis_control for one node: $1 = node folder.  Power = the node's PID namespace.
# dash, and no fork on the "get" path: a BMC answers status in a few ms even on a loaded machine.
N=$1; shift; op=$1; shift
. "${0%/*}/node.env"
pid_id() { local s; read -r s 2>/dev/null <"/proc/$1/stat" || return 1; s=${s##*) }; set -- $s; [ "$1" != Z ] && echo "${20}"; }
alive() { local p st; [ -s "$N/node.pid" ] && read -r p st <"$N/node.pid" && [ "$(pid_id "$p")" = "$st" ]; }
stamp() { echo "$(date +%s.%N) $*" >>"$N/power.log"; }
start_node() {
  alive && return 0
  setsid perl -e 'use POSIX (); POSIX::close($_) for 3..1023; exec @ARGV or die' \
    ip netns exec "$NS_PREFIX-$NAME" unshare -m -u -p -f --mount-proc --propagation private --kill-child=SIGKILL \
    "$CL_DIR/init.sh" "$N" "$NAME" </dev/null >>"$N/console.log" 2>&1 &
  local p=$!
  echo "$p $(pid_id $p)" >"$N/node.pid"
  stamp "power on pid $p"
}
stop_node() {
  alive || return 0
  local p st
  read -r p st <"$N/node.pid"
  # unshare runs with --kill-child=SIGKILL: its death makes the kernel SIGKILL the node's PID 1,
  # and PID 1's death kills every process of the node's PID namespace.
  kill -KILL "$p" 2>/dev/null
  stamp "power off pid $p"
  for _ in $(seq 500); do alive || break; sleep 0.01; done
}
case $op in
  get) for p in "$@"; do case $p in
         power) if alive; then echo power:1; else echo power:0; fi ;;
         boot) echo boot:default ;; *) echo "Invalid parameter: $p"; exit 1 ;; esac; done ;;
  set) while [ $# -ge 2 ]; do p=$1; v=$2; shift 2; case $p in
         power) if [ "$v" = 1 ]; then start_node; else stop_node; fi ;;
         reset) stop_node; start_node ;;
         boot|shutdown|identify) ;; *) echo "Invalid parameter: $p"; exit 1 ;; esac; done ;;
  *) exit 1 ;;
esac
exit 0
EOF
  chmod 0755 "$CL_DIR/chassis.sh"
  # The node folder is the first argument; its name and the namespace prefix come from here.
  printf 'NS_PREFIX=%s\nCL_DIR=%s\nNAME=${N##*/}\n' "$CL_NS" "$CL_DIR" >"$CL_DIR/node.env"
}

cl_write_init() {
  cat >"$CL_DIR/init.sh" <<'EOF'
#!/bin/bash
# PID 1 of one node's PID namespace ("the node's kernel"): private /run, /dev/shm and state
# folders, the fence agents under test overlaid on /usr/sbin, then corosync and pacemakerd.
N=$1; NAME=$2
. "$(dirname "$0")/cluster.env"
hostname "$NAME"
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/crm /run/resource-agents /run/fence-agents /run/lock /run/user
chown hacluster:haclient /run/crm; chmod 0750 /run/crm
chmod 1755 /run/resource-agents /run/fence-agents; chmod 1777 /run/lock; ln -s /dev/shm /run/shm
mount -t tmpfs -o mode=1777,size=256m tmpfs /dev/shm
for d in /var/lib/pacemaker /var/lib/corosync /var/log/pacemaker; do mount --bind "$N/disk$d" "$d"; done
mount -t overlay overlay -o "lowerdir=$CL_DIR/sbin:/usr/sbin" /usr/sbin
echo "$(date +%s.%N) boot" >>"$N/boot.log"
corosync -f -c "$N/corosync.conf" &
cs=$!
for _ in $(seq 300); do
  v=$(corosync-quorumtool -s 2>/dev/null | awk '/Total votes:/ {print $3}')
  [ "${v:-0}" -ge "$WANT_VOTES" ] && break
  sleep 0.1
done
PCMK_logfile="$N/pacemaker.log" PCMK_logfacility=none PCMK_debug=no pacemakerd &
pm=$!
exec perl -e '
  use POSIX ":sys_wait_h";
  my ($pm, $cs) = @ARGV; my $stop = 0;
  $SIG{TERM} = sub { $stop = 1 };
  sub gone { my ($p, $s) = @_; for (1 .. $s * 10) { waitpid(-1, WNOHANG); return 1 unless kill 0, $p; select(undef, undef, undef, 0.1) } 0 }
  while (1) {
    if ($stop) { kill "TERM", $pm; gone($pm, 30); kill "TERM", $cs; gone($cs, 30); exit 0 }
    my $k = waitpid(-1, WNOHANG);
    select(undef, undef, undef, 0.2) if $k <= 0;
  }' "$pm" "$cs"
EOF
  chmod 0755 "$CL_DIR/init.sh"
}

cl_write_corosync() { # I
  local i=$1 j nodes="" quorum="" token=""
  for j in $(seq "$CL_N"); do
    nodes+="  node {
    ring0_addr: $(cl_ip "$j")
    name: n$j
    nodeid: $j
  }
"
  done
  [ "$CL_N" = 2 ] && quorum="  two_node: 1"
  [ -n "$CL_TOKEN" ] && token="  token: $CL_TOKEN"
  cat >"$CL_DIR/n$i/corosync.conf" <<EOF
totem {
  version: 2
  cluster_name: stkc
  transport: knet
  crypto_cipher: none
  crypto_hash: none
$token
}
nodelist {
$nodes}
quorum {
  provider: corosync_votequorum
$quorum
}
logging {
  to_logfile: yes
  logfile: $CL_DIR/n$i/corosync.log
  to_syslog: no
  to_stderr: no
  timestamp: hires
}
EOF
}

# The stonith primitive for node I, with exactly fence_ipmilan's attributes.
cl_stonith_primitive() { # id node-index bmc-ip [monitor-interval]
  local id=$1 i=$2 ip=$3 mon=${4:-60s}
  cat <<EOF
      <primitive id="$id" class="stonith" type="$CL_AGENT">
        <instance_attributes id="$id-ia">
          <nvpair id="$id-ip" name="ip" value="$ip"/>
          <nvpair id="$id-ipport" name="ipport" value="623"/>
          <nvpair id="$id-username" name="username" value="admin"/>
          <nvpair id="$id-password" name="password" value="secret"/>
          <nvpair id="$id-lanplus" name="lanplus" value="1"/>
          <nvpair id="$id-cipher" name="cipher" value="3"/>
          <nvpair id="$id-hosts" name="pcmk_host_list" value="n$i"/>
        </instance_attributes>
        <operations>
          <op id="$id-monitor" name="monitor" interval="$mon"/>
        </operations>
      </primitive>
EOF
}

cl_write_cib() {
  local i res="" cons=""
  for i in $(seq "$CL_N"); do
    res+=$(cl_stonith_primitive "st-n$i" "$i" "$(cl_bmc_ip "$i")")$'\n'
    cons+="      <rsc_location id=\"l-st-n$i\" rsc=\"st-n$i\" node=\"n$i\" score=\"-INFINITY\"/>"$'\n'
    if [ "$CL_SECOND_BMC" = 1 ]; then
      res+=$(cl_stonith_primitive "st2-n$i" "$i" "$(cl_bmc2_ip "$i")" 3600s)$'\n'
      cons+="      <rsc_location id=\"l-st2-n$i\" rsc=\"st2-n$i\" node=\"n$i\" score=\"-INFINITY\"/>"$'\n'
    fi
  done
  # The feature set this pacemaker supports (a newer one makes every node update fail, -93).
  local fs; fs=$(pacemakerd --features 2>/dev/null | sed -n 's/.*Supporting v\([0-9.]*\).*/\1/p')
  cat >"$CL_DIR/cib.xml" <<EOF
<cib crm_feature_set="${fs:-3.0.0}" validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="true"/>
        <nvpair id="opt-stonith-action" name="stonith-action" value="off"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="5s"/>
${CL_EXTRA_CIB_OPTIONS:-}
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
$res      <primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy">
        <operations>
          <op id="dummy-monitor" name="monitor" interval="5s"/>
        </operations>
${CL_DUMMY_META:-}
      </primitive>
${CL_EXTRA_CIB_RESOURCES:-}
    </resources>
    <constraints>
$cons${CL_EXTRA_CIB_CONSTRAINTS:-}
    </constraints>
    <rsc_defaults>
      <meta_attributes id="rsc-defaults">
        <nvpair id="rsc-defaults-stickiness" name="resource-stickiness" value="100"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
EOF
}

cl_start_bmc() { # folder ip node-folder
  local b=$1 ip=$2 node=$3
  mkdir -p "$b/state"
  cat >"$b/lan.conf" <<EOF
name "$(basename "$b")"
set_working_mc 0x20
  startlan 1
    addr $ip 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$CL_DIR/chassis.sh $node"
  user 2 true "admin" "secret" admin 10 none md2 md5 straight
EOF
  cat >"$b/bmc.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
sel_enable 0x20 50 0x0a
mc_enable 0x20
EOF
  (cd "$b" && exec setsid ip netns exec "$CL_NS-bmc" ipmi_sim -n -c lan.conf -f bmc.emu -s state \
      </dev/null >"$b/sim.log" 2>&1) &
  local p=$!
  disown "$p" 2>/dev/null || true
  echo "$p $(cl_pid_id $p)" >"$b/sim.pid"
}

# Builds the namespaces, the BMCs and N nodes, and powers every node on through its BMC.
cl_start() {
  CL_N=$1
  [ "$CL_N" -ge 2 ] && [ "$CL_N" -le 5 ] || { cl_die "cl_start: N must be 2..5"; return 1; }
  local why; why=$(cl_skip_reason)
  [ -z "$why" ] || { cl_die "cannot run: $why"; return 1; }
  [ -x "${CL_STOCKADE_BIN:-}/fence_stockade_ipmi" ] || [ "$CL_AGENT" != fence_stockade_ipmi ] ||
    { cl_die "CL_STOCKADE_BIN must hold fence_stockade_ipmi"; return 1; }
  cl_sweep_stale
  CL_NS=stkc$$
  CL_DIR=$(mktemp -d /tmp/stkc.XXXXXX)
  chmod 0755 "$CL_DIR"
  mkdir -p "$CL_RUNS_DIR"
  printf '%s\n%s\n' "$$ $(cl_pid_id $$)" "$CL_DIR" >"$CL_RUNS_DIR/$$"
  trap 'cl_teardown' EXIT
  trap 'exit 130' INT TERM
  CL_T0=$(date +%s.%N)

  # Network: a hub bridge, one veth port per node and one for the BMCs.
  local x i
  ip netns add "$CL_NS-hub" || return 1
  ip -n "$CL_NS-hub" link set lo up
  ip -n "$CL_NS-hub" link add br0 type bridge forward_delay 0
  ip -n "$CL_NS-hub" link set br0 up
  for x in bmc $(seq -f 'n%g' "$CL_N"); do
    ip netns add "$CL_NS-$x" || return 1
    ip link add "h-$x" netns "$CL_NS-hub" type veth peer name eth0 netns "$CL_NS-$x" || return 1
    ip -n "$CL_NS-hub" link set "h-$x" master br0 up
    ip netns exec "$CL_NS-$x" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1
    ip -n "$CL_NS-$x" link set lo up
    ip -n "$CL_NS-$x" addr del 127.0.0.1/8 dev lo 2>/dev/null
    ip -n "$CL_NS-$x" addr add 127.0.0.1/32 dev lo
    ip -n "$CL_NS-$x" link set eth0 up
  done
  ip -n "$CL_NS-bmc" addr add 127.0.10.100/24 dev eth0
  for i in $(seq "$CL_N"); do
    ip -n "$CL_NS-n$i" addr add "$(cl_ip "$i")/24" dev eth0
    ip -n "$CL_NS-bmc" addr add "$(cl_bmc_ip "$i")/24" dev eth0
    [ "$CL_SECOND_BMC" = 1 ] && ip -n "$CL_NS-bmc" addr add "$(cl_bmc2_ip "$i")/24" dev eth0
  done

  # The agents under test, overlaid on each node's /usr/sbin (the host's is never written).
  mkdir -p "$CL_DIR/sbin"
  if [ -n "${CL_STOCKADE_BIN:-}" ]; then
    printf '#!/bin/sh\n# stockade build under test (cluster fixture)\nSTOCKADE_AGENT_HOST=%s\nexport STOCKADE_AGENT_HOST\nexec %s/fence_stockade_ipmi "$@"\n' \
      "$CL_AGENT_HOST" "$CL_STOCKADE_BIN" >"$CL_DIR/sbin/fence_stockade_ipmi"
    chmod 0755 "$CL_DIR/sbin/fence_stockade_ipmi"
    local extra
    for extra in ${CL_EXTRA_AGENTS:-}; do # further fence_stockade_* of the same build (e.g. scsi)
      printf '#!/bin/sh\n# stockade build under test (cluster fixture)\nSTOCKADE_AGENT_HOST=%s\nexport STOCKADE_AGENT_HOST\nexec %s/%s "$@"\n' \
        "$CL_AGENT_HOST" "$CL_STOCKADE_BIN" "$extra" >"$CL_DIR/sbin/$extra"
      chmod 0755 "$CL_DIR/sbin/$extra"
    done
  fi

  printf 'CL_DIR=%s\nWANT_VOTES=%s\n' "$CL_DIR" "$CL_N" >"$CL_DIR/cluster.env"
  cl_write_chassis
  cl_write_init
  cl_write_cib
  for i in $(seq "$CL_N"); do
    local N=$CL_DIR/n$i d
    mkdir -p "$N"
    chmod 0755 "$N"
    for d in /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores \
      /var/lib/corosync /var/log/pacemaker; do
      mkdir -p "$N/disk$d"
    done
    chown -R hacluster:haclient "$N/disk/var/lib/pacemaker" "$N/disk/var/log/pacemaker"
    chmod 0750 "$N/disk/var/lib/pacemaker/cib" "$N/disk/var/lib/pacemaker/pengine"
    install -o hacluster -g haclient -m 0600 "$CL_DIR/cib.xml" "$N/disk/var/lib/pacemaker/cib/cib.xml"
    install -o hacluster -g haclient -m 0660 /dev/null "$N/pacemaker.log"
    cl_write_corosync "$i"
    cl_start_bmc "$CL_DIR/bmc$i" "$(cl_bmc_ip "$i")" "$N"
    [ "$CL_SECOND_BMC" = 1 ] && cl_start_bmc "$CL_DIR/bmc2-$i" "$(cl_bmc2_ip "$i")" "$N"
  done
  # Every BMC answers before any node is powered on (through the BMC, as an admin would).
  for i in $(seq "$CL_N"); do
    local ok=
    for _ in $(seq 100); do
      if cl_bmc_ipmitool "$i" chassis power status >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { cl_die "BMC of n$i does not answer: $(cat "$CL_DIR/bmc$i/sim.log")"; return 1; }
  done
  if [ -n "${CL_BEFORE_POWER_ON:-}" ]; then "$CL_BEFORE_POWER_ON" || return 1; fi # e.g. a storage target
  for i in $(seq "$CL_N"); do cl_bmc_ipmitool "$i" chassis power on >/dev/null || return 1; done
  cl_wait_ready "$CL_START_TIMEOUT" || return 1
  cl_log "$CL_N nodes up in $(cl_elapsed "$CL_T0" "$(date +%s.%N)") s ($CL_NS, $CL_DIR, agent $CL_AGENT)"
}

# ipmitool against node I's BMC (or its second one: cl_bmc_ipmitool 2:2 ...), from the BMC netns.
cl_bmc_ipmitool() {
  local i=$1 ip; shift
  case $i in *:2) ip=$(cl_bmc2_ip "${i%:2}") ;; *) ip=$(cl_bmc_ip "$i") ;; esac
  local pw; pw=$(mktemp "$CL_DIR/.pw.XXXXXX"); printf 'secret' >"$pw"
  timeout 20 ip netns exec "$CL_NS-bmc" ipmitool -I lanplus -C 3 -H "$ip" -p 623 -U admin -f "$pw" -N 1 -R 2 "$@"
  local rc=$?
  rm -f "$pw"
  return $rc
}
cl_power() {
  local out; out=$(cl_bmc_ipmitool "$1" chassis power status 2>&1)
  case $out in *"is on"*) echo on ;; *"is off"*) echo off ;; *) echo "error: $out" ;; esac
}

# PID 1 of node I (the child of the recorded unshare), or nothing when it is off.
cl_pid1() {
  local f=$CL_DIR/n$1/node.pid p
  cl_recorded_alive "$f" || return 1
  read -r p _ <"$f"
  ps --ppid "$p" -o pid= | tr -d ' ' | head -1
}
# Processes in node I's PID namespace (0 when the node is off).  A namespace's inode number can be
# reused by a new namespace once the old one is gone, so after power-off only processes that
# started before the node was first seen off count.
cl_node_procs() {
  local d=$CL_DIR/n$1 p ns off q st c=0
  if cl_recorded_alive "$d/node.pid"; then
    p=$(cl_pid1 "$1") || { echo 0; return; }
    ns=$(readlink "/proc/$p/ns/pid" | tr -dc 0-9)
    echo "$ns" >"$d/pidns"
    rm -f "$d/pidns.off"
    ps -e -o pidns= | awk -v ns="$ns" '$1 == ns' | wc -l
    return
  fi
  ns=$(cat "$d/pidns" 2>/dev/null)
  [ -n "$ns" ] || { echo 0; return; }
  [ -s "$d/pidns.off" ] || awk '{ printf "%d\n", $1 * 100 + 1 }' /proc/uptime >"$d/pidns.off"
  off=$(cat "$d/pidns.off")
  for q in $(ps -e -o pid=,pidns= | awk -v ns="$ns" '$2 == ns { print $1 }'); do
    st=$(cl_pid_id "$q") || continue
    [ "$st" -le "$off" ] && c=$((c + 1))
  done
  echo "$c"
}

cl_on() {
  local n=${1#n} p; shift
  p=$(cl_pid1 "$n") || { cl_die "n$n is off"; return 1; }
  nsenter -t "$p" -m -u -n -p --wd=/ -- "$@"
}

cl_cut() { ip -n "$CL_NS-n${1#n}" link set eth0 down; }
cl_heal() { ip -n "$CL_NS-n${1#n}" link set eth0 up; }

# A node that is powered on and whose link is up, to ask (optionally not $1).
cl_live_node() {
  local i
  for i in $(seq "$CL_N"); do
    [ "n$i" = "${1:-}" ] && continue
    [ -n "$(ip -n "$CL_NS-n$i" link show eth0 up 2>/dev/null)" ] || continue
    cl_pid1 "$i" >/dev/null 2>&1 && { echo "n$i"; return 0; }
  done
  return 1
}

cl_mon_xml() { # [node]
  local n=${1:-$(cl_live_node)} || return 1
  cl_on "$n" crm_mon -1 --output-as=xml 2>/dev/null
}

# Node running resource RSC (seen from node $2 or any live node).
cl_where() {
  cl_mon_xml "${2:-}" | perl -0ne 'if (/<resource id="'"$1"'"[^>]*role="Started"[^>]*>\s*<node name="([^"]+)"/) { print "$1\n" }'
}

# DC present, N nodes online, every resource started (or: the given counts).
cl_ready_state() { # prints "dc online started total"
  cl_mon_xml "${1:-}" | perl -0ne '
    my $dc = /<current_dc present="true"/ ? 1 : 0;
    my $on = () = /<node name="[^"]+"[^>]*online="true"/g;
    my ($tot, $st) = (0, 0);
    while (/<resource (id="[^"]+" resource_agent=[^>]*)>/g) {
      my $a = $1; $tot++;
      $st++ if $a =~ /role="Started"/ && $a =~ /active="true"/ && $a =~ /failed="false"/;
    }
    print "$dc $on $st $tot\n";'
}

cl_wait_ready() { # [timeout-s] [expected-online]
  local limit=${1:-120} want=${2:-$CL_N} t0 s
  t0=$(date +%s)
  while :; do
    s=$(cl_ready_state 2>/dev/null)
    set -- $s
    if [ "${1:-0}" = 1 ] && [ "${2:-0}" = "$want" ] && [ "${4:-0}" -gt 0 ] && [ "$3" = "$4" ]; then return 0; fi
    if [ $(($(date +%s) - t0)) -ge "$limit" ]; then
      cl_die "not ready within ${limit}s (dc online started total: ${s:-none})"
      cl_mon_xml >&2 2>/dev/null | head -60
      return 1
    fi
    sleep 1
  done
}

# Seconds since the epoch of a pacemaker/corosync log line ("Nov 25 10:00:56.015 ...").
cl_log_time() { date -d "$(echo "$1" | awk '{print $1, $2, $3}')" +%s.%N 2>/dev/null; }

# First line matching ERE $2 in node logs ($1 = file glob under CL_DIR) written after epoch time $3.
cl_first_after() { # glob regex t0 -> "epoch line"
  local f line t best="" bestline=""
  for f in $CL_DIR/$1; do
    [ -e "$f" ] || continue
    while IFS= read -r line; do
      t=$(cl_log_time "$line") || continue
      [ -n "$t" ] || continue
      if awk -v t="$t" -v t0="$3" 'BEGIN { exit !(t >= t0) }'; then
        if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; bestline=$line; fi
        break
      fi
    done < <(grep -E "$2" "$f")
  done
  [ -n "$best" ] && echo "$best $bestline"
}
