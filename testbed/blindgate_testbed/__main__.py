"""``python -m blindgate_testbed``: the `blindgate-testbed` command."""

import sys

from blindgate_testbed.cli import main

sys.exit(main())
