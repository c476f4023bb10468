#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root) and builds stockade into ./build.
# Idempotent: packages already present are skipped, the build is incremental.
# Package lists live in scripts/packages/*.txt, one file per part of the project.
#
#   scripts/setup.sh           every package list, the whole tree with its tests
#   scripts/setup.sh --demo    only scripts/packages/core.txt and what `stockade demo` runs (the CLI,
#                              the agent host, the sim agent), built lean (-O1, unity): what
#                              scripts/demo.sh needs
# Progress goes to stderr, so a caller may keep stdout for itself.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=0
[[ ${1:-} == --demo ]] && demo=1
say() { printf 'setup: %s\n' "$*" >&2; }

lists=(scripts/packages/*.txt)
((demo)) && lists=(scripts/packages/core.txt)
want=()
for list in "${lists[@]}"; do
  while read -r pkg _; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    want+=("$pkg")
  done < "$list"
done
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # Other apt users on the machine (unattended upgrades, a parallel setup) hold the dpkg lock for a
  # while: wait for it rather than fail.
  apt_opts=(-o DPkg::Lock::Timeout=600)
  # dpkg's fsync per unpacked file dominates a fresh install (libboost1.74-dev's 14,000 headers took
  # 10-57 s of the demo's first minutes, bench/fresh_demo.sh): these are build tools and headers,
  # so unpack them as container images do; a crash mid-install is fixed by installing again.
  install_opts=(-o Dpkg::Options::=--force-unsafe-io)
  say "apt-get update"
  $SUDO apt-get "${apt_opts[@]}" update -qq
  say "installing ${#missing[@]} packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${apt_opts[@]}" "${install_opts[@]}" install -y -q --no-install-recommends \
    "${missing[@]}" | grep --line-buffered -E '^(Setting up|Unpacking) ' | sed -u 's/^/setup:   /' >&2 || true
  for pkg in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      { say "package $pkg did not install"; exit 1; }
  done
fi

BUILD_DIR=${BUILD_DIR:-build}
jobs=$(nproc)
if ((demo)); then
  # The demo's build is the first thing a new user waits for (README: first demo line within 3 min
  # of a fresh machine, apt included): -O1 without debug info and a unity build (each target's
  # sources compiled as one, so the JSON/fmt/CLI11 headers are parsed once per target, not once per
  # file) take about a third of the CPU of -O2 -g (bench/fresh_demo.sh; measured in README.md).
  config=(-DCMAKE_BUILD_TYPE=Demo "-DCMAKE_C_FLAGS_DEMO=-O1 -DNDEBUG" "-DCMAKE_CXX_FLAGS_DEMO=-O1 -DNDEBUG"
          -DCMAKE_UNITY_BUILD=ON -DSTOCKADE_BUILD_TESTS=OFF -DSTOCKADE_BUILD_FRONTENDS=OFF -DSTOCKADE_AGENT_FOLDERS=sim)
  targets=(--target stockade)
else
  config=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD=OFF
          -DSTOCKADE_BUILD_TESTS=ON -DSTOCKADE_BUILD_FRONTENDS=ON -DSTOCKADE_AGENT_FOLDERS=all)
  targets=()
fi
say "configuring $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DSTOCKADE_WERROR="${STOCKADE_WERROR:-ON}" "${config[@]}" >/dev/null
say "building ${targets[*]:-everything} with $jobs jobs"
cmake --build "$BUILD_DIR" -j"$jobs" "${targets[@]}" >&2
