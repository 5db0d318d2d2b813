#!/usr/bin/env bash
# The README's "Install on a Linux server", done as a technician does it, on this machine:
# build the .deb, `apt-get install ./pms-agent_<version>_amd64.deb`, check the files, the system
# user, the data key, the enabled unit and that `pms-agent check` runs; then `apt-get remove`
# (the queue, its key and the config stay) and `apt-get purge` (everything of ours goes).
#
#   tests/install/run.sh [BUILD_DIR]   default: build (the default preset's tree, already built)
#
# Needs root. Touches nothing when this machine already has a pms-agent package or its
# directories (it then says so and exits 0 without testing). Exit 1 on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}

say() { echo "install-test: $*"; }
fail() { echo "install-test: FAIL $*" >&2; exit 1; }
expect_owner() {  # path user group mode
  local got
  got=$(stat -c '%U %G %a' "$1" 2>/dev/null) || fail "$1 does not exist"
  [[ $got == "$2 $3 $4" ]] || fail "$1 is '$got', expected '$2 $3 $4'"
}

if [[ $(id -u) -ne 0 ]]; then
  say "skipped: installing a package needs root"
  exit 0
fi
if dpkg-query -W -f='${Status}' pms-agent 2>/dev/null | grep -q installed; then
  say "skipped: a pms-agent package is installed on this machine; not touching it"
  exit 0
fi
if [[ -e /var/lib/pms-agent || -e /etc/pms-agent ]]; then
  say "skipped: /var/lib/pms-agent or /etc/pms-agent exists without the package; not touching it"
  exit 0
fi

deb=$(packaging/build-deb.sh "$build" | tail -1)
[[ -f $deb ]] || fail "packaging/build-deb.sh made no package"
say "package $deb"
cleanup() { apt-get purge -y -qq pms-agent >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Install the way the README says (apt resolves the libraries the package depends on).
out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" 2>&1) ||
  fail "apt-get install: $out"
grep -q "OK    keys init     /var/lib/pms-agent/queue.key created (mode 0600)" <<<"$out" ||
  fail "postinst did not create the data key: $out"

# The system user and group.
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd pms-agent) || fail "no pms-agent user"
((uid < 1000)) || fail "pms-agent is not a system user (uid $uid)"
[[ $home == /var/lib/pms-agent && $shell == /usr/sbin/nologin ]] ||
  fail "pms-agent user: home $home, shell $shell"
getent group pms-agent >/dev/null || fail "no pms-agent group"

# Files, owners and modes.
expect_owner /usr/bin/pms-agent root root 755
expect_owner /lib/systemd/system/pms-agent.service root root 644
expect_owner /lib/systemd/system/pms-agent-upgrade.service root root 644
expect_owner /lib/systemd/system/pms-agent-upgrade.path root root 644
expect_owner /usr/lib/pms-agent/upgrade-helper root root 755
expect_owner /etc/pms-agent root pms-agent 750
expect_owner /etc/pms-agent/agent.json root pms-agent 640
expect_owner /var/lib/pms-agent pms-agent pms-agent 750
expect_owner /var/lib/pms-agent/queue.key pms-agent pms-agent 600
expect_owner /var/log/pms-agent pms-agent pms-agent 750
[[ -f /usr/share/man/man1/pms-agent.1.gz ]] || fail "no man page"
ls /usr/share/doc/pms-agent/examples/*.json >/dev/null || fail "no example configs"
[[ -L /etc/systemd/system/multi-user.target.wants/pms-agent.service ]] ||
  fail "the unit is not enabled"
[[ -L /etc/systemd/system/multi-user.target.wants/pms-agent-upgrade.path ]] ||
  fail "the upgrade trigger (pms-agent-upgrade.path) is not enabled"

# `pms-agent check` runs with the installed config (no cloud section yet: it reports, it runs).
set +e
check=$(/usr/bin/pms-agent check 2>&1)
rc=$?
set -e
((rc == 0 || rc == 1)) || fail "pms-agent check exited $rc: $check"
grep -q "OK    config        /etc/pms-agent/agent.json valid" <<<"$check" ||
  fail "check did not validate the installed config: $check"
grep -q "OK    key file      /var/lib/pms-agent/queue.key 0600 pms-agent" <<<"$check" ||
  fail "check did not find the key: $check"
key=$(sha256sum /var/lib/pms-agent/queue.key)

# Upgrade in place (the same package again): the key is kept.
DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall "$deb" >/dev/null 2>&1 ||
  fail "reinstall failed"
[[ $(sha256sum /var/lib/pms-agent/queue.key) == "$key" ]] || fail "reinstall changed the key"

# Remove: the program goes; the queue, its key and the config stay.
apt-get remove -y -qq pms-agent >/dev/null 2>&1 || fail "apt-get remove failed"
[[ ! -e /usr/bin/pms-agent && ! -e /lib/systemd/system/pms-agent.service ]] ||
  fail "remove left the program or the unit"
[[ $(sha256sum /var/lib/pms-agent/queue.key) == "$key" ]] || fail "remove touched the key"
[[ -f /etc/pms-agent/agent.json ]] || fail "remove deleted the config"

# Purge: everything of ours goes.
apt-get purge -y -qq pms-agent >/dev/null 2>&1 || fail "apt-get purge failed"
for p in /var/lib/pms-agent /var/log/pms-agent /etc/pms-agent \
  /etc/systemd/system/multi-user.target.wants/pms-agent.service; do
  [[ ! -e $p ]] || fail "purge left $p"
done
! dpkg-query -W -f='${Status}' pms-agent 2>/dev/null | grep -q "ok installed" ||
  fail "the package is still installed"
trap - EXIT
say "OK: apt-get install, files, user, key, enabled unit, check, reinstall, remove, purge"
