#!/usr/bin/env bash
# Whole-system chaos harness (issue 9). Needs build/bin/pms-agent and build/bin/pms-cloud-sim,
# mosquitto, openssl and /usr/bin/python3 (with python3-cryptography for the PMS simulators).
#
#   tests/chaos/run.sh                    short profile: seed 1, then a random seed (printed)
#   tests/chaos/run.sh --seed N           short profile with one seed (replay a failed run)
#   tests/chaos/run.sh --long             1 hour, 2,000 msg/s, a fault every minute
#   tests/chaos/run.sh --long --minutes 5 the long profile cut to 5 minutes
#
# Other options (see chaos.py --help): --rate R, --keep, --bin-dir DIR. Exit 1 on any FAIL.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[[ -x $py ]] || py=python3

for a in "$@"; do
  case $a in
    --seed|--seed=*|--long|-h|--help) exec "$py" "$here/chaos.py" "$@" ;;
  esac
done
"$py" "$here/chaos.py" --seed 1 "$@"
seed=$("$py" -c 'import random; print(random.SystemRandom().randrange(2, 1 << 31))')
echo "chaos: random seed $seed"
"$py" "$here/chaos.py" --seed "$seed" "$@"
