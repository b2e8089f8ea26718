"""``python -m blindgate``: the same as the `blindgate` command."""

import sys

from blindgate.cli import main

sys.exit(main())
