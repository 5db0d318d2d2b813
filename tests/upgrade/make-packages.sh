#!/usr/bin/env bash
# The real packages the self-upgrade test rolls out (tests/upgrade/upgrade_e2e.py), built with
# CPack and dpkg-deb from a built tree (default: build, with pms-agent and pms-agent-next):
#   base.deb     this tree's package, version V (what the site runs first)
#   next.deb     the same package with pms-agent-next (version V+1: reports that version)
#   broken.deb   version V+2 whose pms-agent exits at start (a build that cannot come up)
#   foreign.deb  version V+3 built for arm64 (must be refused as bad_package)
# and versions.env (BASE, NEXT, BROKEN, FOREIGN).
#
#   tests/upgrade/make-packages.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -f "$build"/pms-agent_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
cp "$build"/pms-agent_*.deb "$out/base.deb"
base=$(dpkg-deb --field "$out/base.deb" Version)
IFS=. read -r major minor patch <<<"$base"
version() { echo "$major.$minor.$((patch + $1))"; }

# repack NAME VERSION ARCH BINARY: base.deb with another version, architecture and binary.
repack() {
  local dir=$work/$1
  rm -rf "$dir"
  dpkg-deb --raw-extract "$out/base.deb" "$dir"
  install -m 0755 "$4" "$dir/usr/bin/pms-agent"
  sed -i -e "s/^Version: .*/Version: $2/" -e "s/^Architecture: .*/Architecture: $3/" \
    "$dir/DEBIAN/control"
  (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  dpkg-deb --root-owner-group --build "$dir" "$out/$1.deb" >/dev/null
}

strip -o "$work/pms-agent-next" "$build/bin/pms-agent-next"
repack next "$(version 1)" amd64 "$work/pms-agent-next"
printf '#!/bin/sh\necho "pms-agent: a test build that exits at start" >&2\nexit 70\n' \
  >"$work/exits-at-start"
repack broken "$(version 2)" amd64 "$work/exits-at-start"
repack foreign "$(version 3)" arm64 "$work/pms-agent-next"
printf 'BASE=%s\nNEXT=%s\nBROKEN=%s\nFOREIGN=%s\n' "$base" "$(version 1)" "$(version 2)" \
  "$(version 3)" >"$out/versions.env"
ls -l "$out"
