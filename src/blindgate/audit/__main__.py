"""``python -m blindgate.audit <directory> <population.csv>``: kept for old scripts; the command
is ``blindgate audit privacy`` (`blindgate.audit.commands`)."""

from __future__ import annotations

import sys

from blindgate.audit.commands import privacy

if __name__ == "__main__":
    sys.exit(privacy(sys.argv[1:]))
