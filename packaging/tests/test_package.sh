#!/usr/bin/env bash
# test_package.sh -- the .deb packages, built by the `deb` target and checked the way an admin
# meets them: contents and layout (FHS, stripped, no sim/test agents), lintian without errors,
# links that resolve, the out-of-tree example built against the packaged stockade-dev (CMake and
# pkg-config) and loaded by stockade, then a real install: stonith_admin --list-installed and
# stonith -L see the agents, the installed CLI validates the shipped /etc config, the systemd unit
# verifies; the packages are purged again at the end, whatever happened.
# usage: test_package.sh SOURCE_DIR BUILD_DIR INSTALL_PREFIX
# Exit 77 (skipped) for a build not configured for /usr: its packages would put everything under
# /usr/local (an old build folder; fresh ones default to /usr).
set -u  # no pipefail: `producer | grep -q` would fail on the producer's SIGPIPE
src=$1 build=$2 prefix=${3:-/usr}
if [[ $prefix != /usr ]]; then
  echo "skipped: $build is configured with CMAKE_INSTALL_PREFIX=$prefix; packages come from a /usr build"
  exit 77
fi
work=$(mktemp -d /tmp/stockade-pkgtest.XXXXXX)
fails=0
installed_by_us=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
cleanup() {
  if ((installed_by_us)); then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=600 stockade-dev stockade >/dev/null 2>&1 ||
      echo "FAIL: could not purge the test install"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- build -------------------------------------------------------------------------------------
cmake --build "$build" --target deb >"$work/deb.log" 2>&1 || { cat "$work/deb.log"; fail "deb target"; exit 1; }
deb=$(ls "$build"/packages/stockade_*_amd64.deb 2>/dev/null | head -1)
dev=$(ls "$build"/packages/stockade-dev_*.deb 2>/dev/null | head -1)
[[ -f $deb && -f $dev ]] || { fail "packages not built: $(ls "$build/packages")"; exit 1; }
ok "built $(basename "$deb") $(basename "$dev")"

# ---- contents ----------------------------------------------------------------------------------
root=$work/root
dpkg-deb -x "$deb" "$root" && dpkg-deb -x "$dev" "$root" || { fail "dpkg-deb -x"; exit 1; }
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for f in usr/sbin/stockade usr/sbin/fence_stockade usr/sbin/stockade-meatclient usr/sbin/stockade-fence-node \
         usr/libexec/stockade/stockade-agent-host usr/libexec/stockade/stockade-glue-external \
         "usr/lib/$multiarch/stockade/agents/ipmi.so" "usr/lib/$multiarch/stockade/agents/libvirt.so" \
         usr/sbin/fence_stockade_ipmi usr/sbin/fence_stockade_sfex_wrapper usr/sbin/fence_stockade_stonith_helper \
         usr/lib/stonith/plugins/external/stockade usr/lib/stonith/plugins/external/stockade-ipmi \
         lib/systemd/system/stockade-witness.service etc/stockade/stockade.json \
         usr/share/man/man8/stockade.8.gz usr/share/man/man5/stockade.json.5.gz \
         usr/share/man/man8/stockade-meatclient.8.gz usr/share/man/man8/fence_stockade_ipmi.8.gz \
         usr/share/man/man8/fence_stockade_libvirt.8.gz usr/share/doc/stockade/copyright \
         usr/include/stockade/agent.h "usr/lib/$multiarch/cmake/stockade/stockadeConfig.cmake" \
         "usr/lib/$multiarch/pkgconfig/stockade.pc"; do
  [[ -e $root/$f ]] || fail "missing /$f"
done
# Never installed: the sim agent (kills local processes, accepts any node), test agents, bin/.
for bad in "usr/lib/$multiarch/stockade/agents/sim.so" usr/sbin/fence_stockade_sim usr/bin \
           "usr/lib/$multiarch/stockade/agents/testagent.so" usr/lib/stonith/plugins/external/stockade-sim \
           usr/lib/stonith/plugins/external/stockade-glue usr/lib/stonith/plugins/external/stockade-foreign_fence; do
  [[ -e $root/$bad || -L $root/$bad ]] && fail "/$bad must not be installed"
done
if find "$root" -name '*-*' -path '*fence_stockade_*' | grep -q .; then fail "fence_stockade_* with a hyphen"; fi
# Every man page of an installed fence_stockade_* name.
for l in "$root"/usr/sbin/fence_stockade_*; do
  n=$(basename "$l")
  [[ -f $root/usr/share/man/man8/$n.8.gz ]] || fail "no man page for $n"
done
# Links resolve inside the unpacked tree (relative links: they work under any root / DESTDIR).
while IFS= read -r l; do
  t=$(readlink "$l")
  [[ $t == /* ]] && fail "absolute link $l -> $t"
  [[ -e $l ]] || fail "dangling link ${l#"$root"} -> $t"
done < <(find "$root" -type l)
# Stripped: no .symtab in any ELF file.
while IFS= read -r f; do
  if file -b "$f" | grep -q ELF && readelf -S "$f" | grep -q '\.symtab'; then fail "not stripped: ${f#"$root"}"; fi
done < <(find "$root" -type f)
ok "contents and layout checked"

# ---- license: LICENSE, the package's copyright file and CPack agree on GPL-2.0-or-later ----------
cmp -s "$src/LICENSE" /usr/share/common-licenses/GPL-2 || fail "LICENSE is not the GPL version 2 text"
copyright=$root/usr/share/doc/stockade/copyright
grep -qx 'License: GPL-2+' "$copyright" && ! grep -q '^License: ' <(grep -v '^License: GPL-2+$' "$copyright") ||
  fail "copyright: every License field must be GPL-2+"
grep -q 'either version 2 of the License, or' "$copyright" || fail "copyright: no 'or later' grant"
grep -q "CPACK_RESOURCE_FILE_LICENSE \"$src/LICENSE\"" "$build/CPackConfig.cmake" ||
  fail "CPack's license file is not $src/LICENSE"
cmp -s "$copyright" "$root/usr/share/doc/stockade-dev/copyright" || fail "stockade-dev's copyright differs"
ok "license: GPL-2+ in LICENSE, copyright and CPack"

# ---- lintian -----------------------------------------------------------------------------------
lintian --tag-display-limit 0 "$deb" "$dev" >"$work/lintian.txt" 2>&1
if grep -q '^E: ' "$work/lintian.txt"; then grep '^E: ' "$work/lintian.txt"; fail "lintian reports errors"; else ok "lintian: no errors"; fi

# ---- out-of-tree agent against the unpacked stockade-dev --------------------------------------------
stockade=$build/bin/stockade
oot=$work/oot
cmake -S "$src/examples/out-of-tree-agent" -B "$oot" -DCMAKE_PREFIX_PATH="$root/usr" \
  -DCMAKE_INSTALL_PREFIX="$work/oot-prefix" >"$work/oot.log" 2>&1 &&
  cmake --build "$oot" >>"$work/oot.log" 2>&1 || { cat "$work/oot.log"; fail "out-of-tree CMake build"; }
exports=$(nm -D --defined-only "$oot/flagfile.so" 2>/dev/null | awk '{print $3}' | tr '\n' ' ')
[[ $exports == "stockade_agent_entry " ]] || fail "flagfile.so exports '$exports' (only stockade_agent_entry allowed)"
mkdir -p "$work/flags"
cat >"$work/flagfile.json" <<EOF
{"devices": {"flags": {"agent": "flagfile", "params": {"dir": "$work/flags"}}},
 "nodes": {"n1": {"levels": [["flags"]]}}}
EOF
out=$(STOCKADE_AGENT_PATH=$oot "$stockade" --config "$work/flagfile.json" fence n1 -o off 2>&1)
[[ $? -eq 0 && -e $work/flags/n1.off ]] || fail "fence through the out-of-tree agent: $out"
STOCKADE_AGENT_PATH=$oot "$stockade" --config "$work/flagfile.json" status n1 >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "status through the out-of-tree agent is not off (2)"
# pkg-config, no CMake.
mkdir -p "$work/pc"
PKG_CONFIG_PATH=$root/usr/lib/$multiarch/pkgconfig
cflags=$(PKG_CONFIG_PATH=$PKG_CONFIG_PATH pkg-config --cflags stockade) &&
  ldflags=$(PKG_CONFIG_PATH=$PKG_CONFIG_PATH pkg-config --variable=agent_ldflags stockade) &&
  cc -shared -fPIC $cflags "$src/examples/out-of-tree-agent/flagfile_agent.c" -o "$work/pc/flagfile.so" $ldflags ||
  fail "pkg-config build"
STOCKADE_AGENT_PATH=$work/pc "$stockade" metadata flagfile 2>&1 | grep -q "Fences a target by creating" ||
  fail "stockade does not load the pkg-config-built agent"
ok "out-of-tree agent built with CMake and with pkg-config, loaded and fenced"

# ---- a real install ------------------------------------------------------------------------------
# One real install on this machine at a time, whichever worktree or ctest run asks (flock on fd 9).
exec 9>/tmp/stockade-package-install.lock
flock -w 600 9 || { fail "waited 600 s for another package test's install"; exit 1; }
if dpkg-query -W -f='${Status}' stockade 2>/dev/null | grep -q installed; then
  echo "skip: a stockade package is already installed on this machine; not touching it"
else
  installed_by_us=1
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
      "$deb" "$dev" >"$work/install.log" 2>&1; then
    cat "$work/install.log"; fail "apt-get install of the packages"
  else
    ok "installed"
    stonith_admin --list-installed 2>/dev/null | grep -qx fence_stockade_ipmi || fail "stonith_admin --list-installed lacks fence_stockade_ipmi"
    stonith_admin --list-installed 2>/dev/null | grep -q fence_stockade_sim && fail "stonith_admin lists fence_stockade_sim"
    stonith_admin --metadata --agent fence_stockade_ipmi 2>/dev/null | grep -q '<parameter name="ip"' ||
      fail "stonith_admin --metadata fence_stockade_ipmi"
    stonith -L 2>/dev/null | grep -qx external/stockade-ipmi || fail "stonith -L lacks external/stockade-ipmi"
    stonith -t external/stockade-ipmi -n 2>/dev/null | grep -qw ip || fail "stonith -t external/stockade-ipmi -n"
    /usr/sbin/stockade agents 2>/dev/null | grep -q '^ *ipmi' || fail "installed stockade does not find the ipmi agent"
    /usr/sbin/stockade agents 2>/dev/null | grep -q '^ *sim' && fail "installed stockade finds a sim agent"
    demo_err=$(/usr/sbin/stockade demo 2>&1 >/dev/null); demo_rc=$?
    [[ $demo_rc -eq 2 && $demo_err == *"sim agent is not here"* ]] || fail "installed stockade demo: rc $demo_rc: $demo_err"
    /usr/sbin/stockade validate /etc/stockade/stockade.json >/dev/null 2>&1 || fail "the shipped /etc/stockade/stockade.json does not validate"
    /usr/sbin/fence_stockade_ipmi -o metadata 2>/dev/null | grep -q 'resource-agent name="fence_stockade_ipmi"' ||
      fail "installed fence_stockade_ipmi -o metadata"
    systemd-analyze verify --man=no /lib/systemd/system/stockade-witness.service >"$work/unit.txt" 2>&1 ||
      { cat "$work/unit.txt"; fail "systemd-analyze verify stockade-witness.service"; }
    grep -qx 'ProtectSystem=strict' /lib/systemd/system/stockade-witness.service || fail "unit lacks ProtectSystem=strict"
    # The out-of-tree example against the installed package, no hints.
    cmake -S "$src/examples/out-of-tree-agent" -B "$work/oot2" >"$work/oot2.log" 2>&1 &&
      cmake --build "$work/oot2" >>"$work/oot2.log" 2>&1 || { cat "$work/oot2.log"; fail "out-of-tree build against the installed stockade-dev"; }
    STOCKADE_AGENT_PATH=$work/oot2 /usr/sbin/stockade metadata flagfile >/dev/null 2>&1 || fail "installed stockade loads the out-of-tree agent"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=600 stockade-dev stockade >/dev/null 2>&1 ||
    fail "purge"
  installed_by_us=0
  for gone in /usr/sbin/fence_stockade /usr/sbin/fence_stockade_ipmi /usr/lib/stonith/plugins/external/stockade-ipmi \
              /etc/stockade/stockade.json "/usr/lib/$multiarch/stockade"; do
    [[ -e $gone || -L $gone ]] && fail "$gone left behind after purge"
  done
  ok "purged; nothing left behind"
fi

((fails == 0)) && echo "package tests passed" || echo "$fails package check(s) failed"
exit $((fails > 0))
