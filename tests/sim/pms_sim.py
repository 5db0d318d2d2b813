#!/usr/bin/python3
"""Entry point: local PMS/EHR interface simulator. See tests/sim/README.md.

    /usr/bin/python3 tests/sim/pms_sim.py --vendor epic --ready-file /tmp/r.json \
        --cert server.pem --key server.key --client-jwks client.jwks --marker ZZMARK
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pmssim.core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
