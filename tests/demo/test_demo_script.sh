#!/usr/bin/env bash
# test_demo_script.sh -- the README's first command, `bash scripts/demo.sh`, as a new user runs it
# (the packages are installed here, so setup.sh skips apt): it configures and builds only the demo's
# targets in the lean demo configuration (-O1, unity build: a unity build breaks on clashing
# file-local names that a normal build accepts, so only this test would see it), the first line on
# stdout is the demo's, and the demo ends with every outcome matched against the process table.
# usage: test_demo_script.sh SOURCE_DIR
set -u
src=$1
work=$(mktemp -d /tmp/stockade-demotest.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
BUILD_DIR=$work/build bash "$src/scripts/demo.sh" --state-dir "$work/state" >"$work/out" 2>"$work/err"
rc=$?
[[ $rc -eq 0 ]] || { fail "demo.sh exit $rc"; tail -30 "$work/err"; }
head -1 "$work/out" | grep -q '^stockade demo' || fail "first stdout line is not the demo's: $(head -1 "$work/out")"
grep -q 'demo finished: every outcome matched the process table' "$work/out" || fail "the demo did not finish truthfully"
grep -q '^setup: building --target stockade' "$work/err" || fail "setup.sh did not build the stockade target only"
grep -qE '^CMAKE_UNITY_BUILD:[A-Z]+=ON$' "$work/build/CMakeCache.txt" || fail "not a unity build"
grep -qE '^CMAKE_BUILD_TYPE:[A-Z]+=Demo$' "$work/build/CMakeCache.txt" || fail "not the Demo build type"
for not_built in fence_stockade stockade-meatclient; do
  [[ -e $work/build/bin/$not_built ]] && fail "the demo built $not_built, which it does not need"
done
echo "$fails failure(s)"
((fails == 0))
