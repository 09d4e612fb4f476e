"""``python -m sweepbt``: the same as the ``sweepbt`` command."""

import sys

from sweepbt._interrupt import start_up_interrupted

try:
    from sweepbt.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command loads: one line, no traceback
    start_up_interrupted(__name__ == "__main__")
    raise

if __name__ == "__main__":
    sys.exit(main())
