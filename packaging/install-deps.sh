#!/usr/bin/env bash
# Installs the Debian 12 packages the agent needs to build, test and run. Idempotent: only
# missing packages are installed (apt-get update runs only if something is missing).
# Usage: packaging/install-deps.sh [--runtime]   (--runtime: just what `quickstart` runs)
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ ccache pkg-config git
  clang libclang-rt-14-dev                       # ASan/UBSan preset and libFuzzer targets
  libboost-dev libboost-program-options-dev      # Boost 1.74: Asio, Beast, Program_options
  libssl-dev libsqlite3-dev libmosquitto-dev
  libgtest-dev googletest
)
runtime_pkgs=(
  openssl sqlite3 mosquitto mosquitto-clients python3 procps iproute2
)
test_pkgs=(
  python3-hl7          # a real third-party MLLP client (mllp_send) for interop tests
  python3-cryptography # vendor simulators verify JWT client assertions (RS384/ES384)
  lintian dpkg-dev fakeroot file  # package checks
  systemd              # systemd-analyze verify/security on the unit
  prometheus           # promtool check metrics on the agent's /metrics
  chromium             # a real headless browser loads the status page (DOM dump, screenshot)
  ejabberd             # a real clustered MQTT 5 broker (mod_mqtt): two-node failover tests
)

want=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${test_pkgs[@]}")
if [[ ${1:-} == --runtime ]]; then
  want=("${build_pkgs[@]}" "${runtime_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The ejabberd package enables (and on systemd hosts starts) a system instance; the tests run
# their own nodes and need none of its ports.
if [[ " ${missing[*]} " == *" ejabberd "* ]]; then
  $SUDO systemctl disable --now ejabberd >/dev/null 2>&1 || true
fi
