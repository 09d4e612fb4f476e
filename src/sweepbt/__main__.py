"""``python -m sweepbt``: the same as the ``sweepbt`` command."""

import sys

from sweepbt.cli import main

if __name__ == "__main__":
    sys.exit(main())
