"""`python3 -m mxctl_hostguard [--once] [--config /etc/mxctl/guard.json]`."""

import sys

from .daemon import main

sys.exit(main())
