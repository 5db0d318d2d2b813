#!/usr/bin/env bash
# Cross-builds the Windows x64 agent and its MSI on Debian 12, from a clean checkout:
#   build-windows/bin/pms-agent.exe (static: needs no DLL beside Windows' own), the unit test
#   programs, pms-agent-setup.dll (the MSI's custom action) and
#   build-windows/pms-agent-<version>-x64.msi.
# Installs what it needs with apt-get (sudo when not root); the dependencies are cross-built
# once from Debian's source packages into a cache outside the checkout (deps.sh).
#
#   packaging/windows/build.sh                     build everything, then the MSI
#   packaging/windows/build.sh --msi-version 0.1.1 also: package the same binaries as 0.1.1
#                                                  (the upgrade test installs it over 0.1.0)
#   packaging/windows/build.sh --msi-only          package what build-windows/bin holds
#
# Environment: PSA_JOBS (default 2). Signing (not done here): see README, "Windows".
set -euo pipefail
cd "$(dirname "$0")/../.."

msi_version=""
msi_only=0
while (($#)); do
  case $1 in
    --msi-version) msi_version=$2; shift ;;
    --msi-only) msi_only=1 ;;
    *) echo "usage: packaging/windows/build.sh [--msi-version X.Y.Z] [--msi-only]" >&2; exit 2 ;;
  esac
  shift
done

need=(wixl msitools cmake ninja-build ccache)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "windows build: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

version=$(sed -n 's/^project(pms_agent VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if ((!msi_only)); then
  PSA_WIN_DEPS=$(packaging/windows/deps.sh)
  export PSA_WIN_DEPS
  cmake --preset windows >/dev/null
  cmake --build --preset windows -j"${PSA_JOBS:-2}"
fi

# wixl 0.101 opens only relative source paths: run it inside build-windows.
package() {
  local v=$1 out="pms-agent-$1-x64.msi"
  (cd build-windows &&
    wixl -a x64 -D Version="$v" -D AgentExe=bin/pms-agent.exe -D SetupDll=bin/pms-agent-setup.dll \
      -o "$out" ../packaging/windows/pms-agent.wxs &&
    ../packaging/windows/msi-postprocess.sh "$out")
  echo "build-windows/$out"
}
package "$version"
if [[ -n $msi_version ]]; then
  package "$msi_version"
fi
