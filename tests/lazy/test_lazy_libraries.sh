#!/bin/sh
# test_lazy_libraries.sh STOCKADE -- issue 14's "lazy heavy dependencies": a JSON-config status or
# fence (isolated sim sessions: the CLI, its fork template and the sessions forked from it) maps
# neither libxml2 (cluster.conf) nor OpenSSL's libcrypto (witness HMAC); reading a cluster.conf
# does map libxml2 and writing a witness key does map libcrypto, so the check can fail.  Every
# library a process of the tree loads is named by the dynamic loader's LD_DEBUG=files lines.
set -eu
stockade=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/state"
cat > "$dir/c.json" <<EOF
{"version": 1, "devices": {"s1": {"agent": "sim", "params": {"state_dir": "$dir/state", "hostlist": "node1"}}},
 "nodes": {"node1": {"levels": [["s1"]]}}}
EOF
fail=0
loads() { grep -E "file=[^ ]*$1\.so" "$2" >/dev/null; }

LD_DEBUG=files "$stockade" --config "$dir/c.json" status node1 >"$dir/out" 2>"$dir/status.log" || true
grep -q "^node1: " "$dir/out" || { echo "FAIL: status printed no line for node1:"; cat "$dir/out" "$dir/status.log" | grep -v "file=\|^ *[0-9]*:\s*$" | head; fail=1; }
LD_DEBUG=files "$stockade" --config "$dir/c.json" -q fence node1 --action off >/dev/null 2>"$dir/fence.log" || { echo "FAIL: fence node1 off"; fail=1; }
for log in status fence; do
  grep -q "file=.*sim\.so" "$dir/$log.log" || { echo "FAIL: LD_DEBUG shows no sim.so in the $log run (the check sees nothing)"; fail=1; }
  for lib in libxml2 libcrypto; do
    if loads $lib "$dir/$log.log"; then echo "FAIL: a JSON $log maps $lib:"; grep -E "file=[^ ]*$lib" "$dir/$log.log" | head -2; fail=1; fi
  done
done

printf '<?xml version="1.0"?>\n<cluster name="c" config_version="1"><clusternodes><clusternode name="node1" nodeid="1"/></clusternodes><fencedevices/></cluster>\n' > "$dir/cluster.conf"
LD_DEBUG=files "$stockade" status --cluster-conf "$dir/cluster.conf" >/dev/null 2>"$dir/cc.log" || true
loads libxml2 "$dir/cc.log" || { echo "FAIL: reading a cluster.conf did not load libxml2"; fail=1; }
LD_DEBUG=files "$stockade" witness-keygen "$dir/key" >/dev/null 2>"$dir/key.log" || { echo "FAIL: witness-keygen"; fail=1; }
loads libcrypto "$dir/key.log" || { echo "FAIL: witness-keygen did not load libcrypto"; fail=1; }
[ -s "$dir/key" ] || { echo "FAIL: no key written"; fail=1; }

[ $fail -eq 0 ] && echo "ok: JSON status/fence map neither libxml2 nor libcrypto; cluster.conf and witness-keygen load them"
exit $fail
