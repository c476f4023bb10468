#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root) and builds stockade into ./build.
# Idempotent: packages already present are skipped, the build is incremental.
# Package lists live in scripts/packages/*.txt, one file per part of the project.
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
for list in scripts/packages/*.txt; do
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
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTOCKADE_WERROR="${STOCKADE_WERROR:-ON}" \
  -DSTOCKADE_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
