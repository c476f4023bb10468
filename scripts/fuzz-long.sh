#!/usr/bin/env bash
# Long mutation runs of the fuzz targets in tests/fuzz with clang's libFuzzer (g++ has none).
# Manual, not CI: needs clang (apt install clang) and a normal build in ./build first.
#   scripts/fuzz-long.sh [SECONDS_PER_TARGET] [TARGET...]
# Runs one target at a time at nice 19 (the machine is shared), starting from the seed corpus in
# tests/fuzz/corpus/<target> with a scratch copy, and prints per target: executions, coverage
# (libFuzzer's "cov:" edges and "ft:" features) and any crash file.  Crash inputs go to
# build/fuzz-long/<target>/; copy each into tests/fuzz/corpus/<target>/ once fixed, so the
# default suite (fuzz_replay_<target>) keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(fence_options config cluster_conf stonith_conf witness agent_host_protocol)
B=${BUILD_DIR:-build}
CXX=${CLANGXX:-clang++}
out=$B/fuzz-long
mkdir -p "$out"
inc=(-Icore/include -Icore/src -Icore/quorum -Ifrontends/common/include -Ifrontends/fence_node -Itools/stockade
     -I"$B/core/generated" -I/usr/include/libxml2)
libs=("$B/frontends/common/libstockade_frontend.a" "$B/frontends/fence_node/libstockade_clusterconf.a"
      "$B/core/libstockade_quorum.a" "$B/core/libstockade.a" "$B/core/libstockade_sfex.a" "$B/core/libstockade_icmp.a"
      -lfmt -lxml2 -lcrypto -ldl -lpthread)
declare -A parser=(
  [fence_options]=frontends/common/fence_options.cpp
  [config]="core/src/config.cpp core/src/json_schema.cpp"
  [cluster_conf]=frontends/fence_node/cluster_conf.cpp
  [stonith_conf]=tools/stockade/stonith_conf.cpp
  [witness]=core/quorum/witness.cpp
  [agent_host_protocol]="")
for t in "${targets[@]}"; do
  bin=$out/fuzz_$t
  # shellcheck disable=SC2086
  nice -n 19 "$CXX" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "${inc[@]}" tests/fuzz/fuzz_$t.cpp ${parser[$t]} "${libs[@]}" -o "$bin"
  work=$out/$t
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/crashes"
  cp tests/fuzz/corpus/$t/* "$work/corpus/"
  log=$work/run.log
  set +e
  nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$work/crashes/" "$work/corpus" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' || true)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' || true)
  crashes=$(ls "$work/crashes" | wc -l)
  echo "$t: rc=$rc seconds=$secs execs=$execs $cov $ft corpus=$(ls "$work/corpus" | wc -l) crashes=$crashes"
done
