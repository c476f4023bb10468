#!/usr/bin/env bash
# test_admin_commands.sh -- every pcs and crm command an admin is told to type (code blocks in
# docs/*.md and the READMEs) runs for real against a CIB file, no cluster needed: pcs -f FILE and
# crmsh with CIB_file=FILE.  Both check each device's attributes against the agent's own metadata
# (pcs refuses unknown and missing required ones, crm unknown ones), so the doc and the agents'
# metadata are tested together.  The blocks are extracted from the Markdown, so the doc cannot
# drift.  The resulting XML is then checked (primitive class/type/attributes, constraints,
# fencing-topology levels) and crm_verify must find the final configuration valid.
#
# Blocks: a fenced code block holding a line that starts with `pcs ` or `crm ` (also inside a
# loop).  Consecutive blocks marked `<!-- cib: NAME -->` on the line before them share one CIB
# (in document order); an unmarked block gets a CIB of its own.  fence_stockade* agent names are
# replaced by wrappers in /usr/sbin (Pacemaker only runs fence agents from there) that run this
# build's programs; they are removed at exit.
# usage: test_admin_commands.sh SOURCE_DIR BUILD_DIR      (exit 77 = skipped)
set -u
src=$1 build=$2
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
[[ $(id -u) -eq 0 ]] || { echo "skipped: not root (Pacemaker reads fence agents only from /usr/sbin)"; exit 77; }
for t in pcs crm crm_verify cibadmin xmllint; do
  command -v $t >/dev/null || { echo "skipped: $t missing (packages pcs, crmsh, pacemaker-cli-utils, libxml2-utils)"; exit 77; }
done
work=$(mktemp -d /tmp/stockade-doccmd.XXXXXX)
tag=dt$$
wrappers=()
cleanup() {
  local w
  for w in "${wrappers[@]}"; do rm -f "$w"; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the blocks ---------------------------------------------------------------------------------
# One file per block: work/blocks/NNN.sh, with work/blocks/NNN.where (file:line) and NNN.cib.
mkdir -p "$work/blocks"
cd "$src" || exit 1
docs=(docs/*.md README.md agents/*/README.md frontends/*/README.md)
awk -v out="$work/blocks" '
  FNR == 1 { mark = ""; prev = "" }
  /^```/ {
    if (!inblock) { inblock = 1; body = ""; start = FNR; cib = mark; mark = ""; next }
    inblock = 0
    if (body ~ /(^|\n)[ \t]*(pcs|crm) /) {
      n++; f = sprintf("%s/%03d", out, n)
      printf "%s", body > (f ".sh"); close(f ".sh")
      print FILENAME ":" start > (f ".where"); close(f ".where")
      print (cib == "" ? "own" n : cib) > (f ".cib"); close(f ".cib")
    }
    next
  }
  inblock { body = body $0 "\n"; next }
  /^<!-- cib: [A-Za-z0-9_-]+ -->$/ { mark = $3; next }
  NF { mark = "" }
' "${docs[@]}"
nblocks=$(ls "$work"/blocks/*.sh 2>/dev/null | wc -l)
# pacemaker.md: 2 nodes (pcs, crm), 3 nodes (pcs, crm), levels (pcs, crm), priority-fencing-delay;
# deadlines.md: the OSC2013 levels; fence_stockade's README: config=.
((nblocks >= 9)) || fail "only $nblocks pcs/crm blocks found in ${docs[*]}"
ok "$nblocks pcs/crm blocks"

# ---- wrappers for every fence_stockade* name the blocks use ---------------------------------------
declare -A wrapper_of
for name in $(grep -ohE '\bfence_stockade(_[a-z_]+)?\b' "$work"/blocks/*.sh | sort -u); do
  real=$build/bin/$name
  [[ -x $real ]] || { fail "the docs name $name, which this build does not have"; continue; }
  w=/usr/sbin/fence_${tag}${name#fence}   # fence_dt123_stockade_ipmi: unique per run
  printf '#!/bin/sh\n# stockade test wrapper (tests/docs/test_admin_commands.sh); removed by the test\nSTOCKADE_AGENT_PATH=%q\nSTOCKADE_AGENT_HOST=%q\nexport STOCKADE_AGENT_PATH STOCKADE_AGENT_HOST\nexec %q "$@"\n' \
    "${STOCKADE_AGENT_PATH:-}" "${STOCKADE_AGENT_HOST:-}" "$real" >"$w"
  chmod 755 "$w"
  wrappers+=("$w")
  wrapper_of[$name]=$(basename "$w")
done

# ---- a CIB as a running cluster has it: these nodes online, quorate ----------------------------
base=$work/base.xml
{
  echo '<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">'
  echo '  <configuration><crm_config/><nodes>'
  i=0; for n in node1 node2 node3 pm1 pm2 n1 n2; do i=$((i + 1)); echo "    <node id=\"$i\" uname=\"$n\"/>"; done
  echo '  </nodes><resources/><constraints/></configuration><status>'
  i=0; for n in node1 node2 node3 pm1 pm2 n1 n2; do
    i=$((i + 1)); echo "    <node_state id=\"$i\" uname=\"$n\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"/>"
  done
  echo '  </status></cib>'
} >"$base"
echo '{"devices": {"d": {"agent": "sim"}}, "nodes": {"n1": {"levels": [["d"]]}}}' >"$work/stockade.json"

# ---- run them -----------------------------------------------------------------------------------
declare -A cib_of
for b in "$work"/blocks/*.sh; do
  id=${b%.sh}
  where=$(cat "$id.where") name=$(cat "$id.cib")
  cib=$work/cib-$name.xml
  [[ -f $cib ]] || cp "$base" "$cib"
  cib_of[$name]=$cib
  script=$work/run-$(basename "$id").sh
  {
    echo 'set -e'
    echo "pcs() { command pcs -f $(printf %q "$cib") \"\$@\"; }"
    echo "crm() { CIB_file=$(printf %q "$cib") command crm \"\$@\"; }"
    # The agent names -> this run's wrappers; the README's config file -> a real one.
    sed_args=()
    for agent in "${!wrapper_of[@]}"; do sed_args+=(-e "s/\\b$agent\\b/${wrapper_of[$agent]}/g"); done
    sed -E "${sed_args[@]}" -e "s#/etc/stockade/stockade.json#$work/stockade.json#g" "$b"
  } >"$script"
  if out=$(bash "$script" 2>&1); then
    ok "$where ($name)"
  else
    fail "$where ($name): $(printf '%s' "$out" | tr '\n' ' ')"
  fi
done

# ---- what they made -----------------------------------------------------------------------------
W_ipmi=${wrapper_of[fence_stockade_ipmi]:-none}
x() { xmllint --xpath "$2" "$1" 2>/dev/null; }
# attr CIB RESOURCE NAME VALUE: the primitive carries that instance attribute with that value.
attr() {
  local v
  v=$(x "$1" "string(//primitive[@id='$2']/instance_attributes/nvpair[@name='$3']/@value)")
  [[ $v == "$4" ]] || fail "$(basename "$1"): $2 $3='$v', want '$4'"
}
# An IPMI device as section 2/3 of docs/pacemaker.md makes it.
ipmi_device() { # CIB N
  local c=$1 n=$2
  [[ $(x "$c" "string(//primitive[@id='fence-node$n']/@class)") == stonith ]] || fail "$(basename "$c"): fence-node$n is not class stonith"
  [[ $(x "$c" "string(//primitive[@id='fence-node$n']/@type)") == "$W_ipmi" ]] || fail "$(basename "$c"): fence-node$n type is not fence_stockade_ipmi"
  attr "$c" fence-node$n ip 10.0.0.1$n
  attr "$c" fence-node$n username fence
  attr "$c" fence-node$n passwd_method file
  attr "$c" fence-node$n password_file /etc/stockade/ipmi-node$n.pass
  attr "$c" fence-node$n lanplus 1
  attr "$c" fence-node$n cipher 3
  attr "$c" fence-node$n pcmk_host_list node$n
  [[ $(x "$c" "string(//primitive[@id='fence-node$n']/operations/op[@name='monitor']/@interval)") == 60s ]] ||
    fail "$(basename "$c"): fence-node$n has no 60s monitor"
  # "avoids node$n" / "-inf: node$n": never runs on the node it fences.
  [[ $(x "$c" "string(//rsc_location[@rsc='fence-node$n' and @node='node$n']/@score)") == -INFINITY ]] ||
    fail "$(basename "$c"): no -INFINITY location of fence-node$n on node$n"
}
levels_of_node1() { # CIB: the three levels of section 4
  local c=$1 want=(fence-node1 pdu-a-node1,pdu-b-node1 human) i
  for i in 1 2 3; do
    got=$(x "$c" "string(//fencing-topology/fencing-level[@target='node1' and @index='$i']/@devices)")
    [[ $got == "${want[$((i - 1))]}" ]] || fail "$(basename "$c"): level $i of node1 is '$got', want '${want[$((i - 1))]}'"
  done
  [[ $(x "$c" "count(//fencing-level)") == 3 ]] || fail "$(basename "$c"): not exactly 3 fencing levels"
  [[ $(x "$c" "string(//primitive[@id='pdu-a-node1']/@type)") == fence_apc_snmp ]] || fail "$(basename "$c"): no pdu-a-node1"
  [[ $(x "$c" "string(//primitive[@id='human']/@type)") == "${wrapper_of[fence_stockade_meatware]:-none}" ]] ||
    fail "$(basename "$c"): human is not fence_stockade_meatware"
  attr "$c" human hostlist "node1 node2"
  attr "$c" human pcmk_off_timeout 620   # its operator wait (600 s) fits: validate-all says 610 s
  attr "$c" pdu-a-node1 plug 7
}
property() { # CIB NAME VALUE
  [[ $(x "$1" "string(//crm_config//nvpair[@name='$2']/@value)") == "$3" ]] || fail "$(basename "$1"): property $2 is not $3"
}
expect_cib() { [[ -n ${cib_of[$1]:-} ]] || { fail "no block is marked <!-- cib: $1 -->"; return 1; }; }

for tool in pcs crm; do
  if expect_cib $tool-2node; then
    c=${cib_of[$tool-2node]}
    ipmi_device "$c" 1; ipmi_device "$c" 2
    attr "$c" fence-node1 pcmk_delay_max 10s   # the race delay on one device only
    [[ -z $(x "$c" "string(//primitive[@id='fence-node2']/instance_attributes/nvpair[@name='pcmk_delay_max']/@value)") ]] ||
      fail "$tool-2node: pcmk_delay_max on both devices"
    property "$c" stonith-enabled true
    property "$c" priority-fencing-delay 15s
    levels_of_node1 "$c"
  fi
  if expect_cib $tool-3node; then
    for n in 1 2 3; do ipmi_device "${cib_of[$tool-3node]}" $n; done
  fi
done
if expect_cib osc2013; then
  c=${cib_of[osc2013]}
  attr "$c" helper standby_check_command 'crm_resource -W -r sfex | grep -q $(uname -n)'   # run on the fencing node, not expanded by the admin's shell
  attr "$c" operator pcmk_off_timeout 620
  for i in 1 2 3; do
    got=$(x "$c" "string(//fencing-level[@target='pm1' and @index='$i']/@devices)")
    want=$(echo helper hypervisor operator | cut -d' ' -f$i)
    [[ $got == "$want" ]] || fail "osc2013: level $i of pm1 is '$got', want '$want'"
  done
fi
if expect_cib config-file; then
  attr "${cib_of[config-file]}" st-stockade config "$work/stockade.json"
fi

# crm_verify: every configuration the docs lead to is valid as Pacemaker reads it.
for name in "${!cib_of[@]}"; do
  out=$(crm_verify -x "${cib_of[$name]}" 2>&1) && ok "crm_verify $name" || fail "crm_verify $name: $out"
done

echo "$fails failure(s)"
((fails == 0))
