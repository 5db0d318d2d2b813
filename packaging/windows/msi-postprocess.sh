#!/usr/bin/env bash
# Adds to an MSI built by wixl 0.101 what its WiX dialect cannot say (see pms-agent.wxs):
#   - the install folder at the end of the system PATH (Environment table, =-*PATH = system,
#     removed on uninstall) and the two standard actions that maintain it;
#   - CONFIG as a secure property, so msiexec passes it from the client to the elevated server.
# Usage: packaging/windows/msi-postprocess.sh FILE.msi
set -euo pipefail
msi=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'Environment\tName\tValue\tComponent_\ns72\tl255\tL255\ts72\nEnvironment\tEnvironment\nPathAgent\t=-*PATH\t[~];[INSTALLDIR]\tcmpAgent\n' \
  >"$tmp/Environment.idt"
(cd "$tmp" && msibuild "$msi" -i Environment.idt)
msibuild "$msi" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)" \
  -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;CONFIG' WHERE \`Property\` = 'SecureCustomProperties'"
