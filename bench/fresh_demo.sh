#!/usr/bin/env bash
# fresh_demo.sh -- how long `bash scripts/demo.sh` takes on a fresh Debian 12 until its first demo
# line, apt included (the README's 3-minute target).  A fresh machine is approximated by a
# `debootstrap --variant=minbase bookworm` chroot: no build tools, no ccache, empty apt lists.  The
# repository (this checkout's HEAD, committed state only) is cloned into it and demo.sh runs there
# as root, at normal priority; every output line is timestamped, the load average is sampled, and
# the chroot is removed at the end (also on error or Ctrl-C).  Needs root and network access to
# the Debian mirror.  Not a test: the time depends on the mirror and the machine's load.
#
#   bench/fresh_demo.sh [WORKDIR]      (default: a new folder under ${TMPDIR:-/tmp})
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "fresh_demo: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh_demo: debootstrap missing (scripts/packages/bench.txt)" >&2; exit 2; }
work=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/fresh-demo.XXXXXX")
root=$work/root
mounts=()
sampler=
cleanup() {
  [[ -n $sampler ]] && kill "$sampler" 2>/dev/null
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}"; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
say() { printf 'fresh_demo: %s\n' "$*" >&2; }

say "debootstrap --variant=minbase bookworm into $root"
t0=$(now)
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
say "debootstrap took $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s (not part of the measurement)"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
mount --bind /dev/pts "$root/dev/pts" && mounts+=("$root/dev/pts")   # apt/dpkg want a pty for their log
git clone -q --no-hardlinks "$repo" "$root/root/stockade"
commit=$(git -C "$root/root/stockade" rev-parse --short HEAD)

log=$work/demo.log
( while sleep 5; do printf '%s load %s\n' "$(now)" "$(cut -d' ' -f1-3 /proc/loadavg)"; done ) >"$work/load.log" &
sampler=$!
say "commit $commit, $(nproc) cores, load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(now)
# Each line gets its arrival time; "o" = stdout (the demo), "e" = stderr (progress).
stamp() { while IFS= read -r line; do printf '%s %s %s\n' "$(now)" "$1" "$line"; done; }
set +e
TIMEFORMAT='cpu: %U s user + %S s system, %R s wall'
{ time chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 \
    bash -c 'cd /root/stockade && exec bash scripts/demo.sh' 2> >(stamp e >>"$log") | stamp o >>"$log" ; } 2>"$work/cpu.txt"
rc=$?
set -e
sleep 0.2
kill "$sampler" 2>/dev/null; sampler=

rel() { awk -v a="$start" -v b="$1" 'BEGIN{printf "%.1f", b-a}'; }
first_line() { awk -v t="$1" -v p="$2" '$2==t && index($0,p) {print $1; exit}' "$log"; }
t_update=$(first_line e "setup: apt-get update")
t_install=$(first_line e "setup: installing")
t_config=$(first_line e "setup: configuring")
t_demo=$(awk '$2=="o" {print $1; exit}' "$log")
echo "fresh Debian 12 (debootstrap minbase), commit $commit, $(nproc) cores, demo.sh exit $rc"
[[ -n $t_update ]] && echo "  apt-get update from         $(rel "$t_update") s"
[[ -n $t_install ]] && echo "  apt-get install from        $(rel "$t_install") s  ($(sed -n 's/.*setup: installing \([0-9]*\) packages.*/\1/p' "$log" | head -1) packages asked for)"
[[ -n $t_config ]] && echo "  cmake configure+build from  $(rel "$t_config") s"
if [[ -n $t_demo ]]; then echo "  first demo line at          $(rel "$t_demo") s"; else echo "  first demo line: never"; fi
echo "  $(cat "$work/cpu.txt" | tail -1)"
echo "  load average (1/5/15 min) during the run: $(awk '{print $3}' "$work/load.log" | sort -n | sed -n '1p;$p' | paste -sd- ) (1-min, min-max)"
echo "  apt: $(grep -c 'setup:   Setting up' "$log") packages set up"
[[ -n ${KEEP_LOG:-} ]] && cp "$log" "$KEEP_LOG"
exit "$rc"
