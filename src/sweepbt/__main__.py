"""``python -m sweepbt``: the same as the ``sweepbt`` command."""

import os
import sys

try:
    from sweepbt.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command loads: one line, no traceback
    if __name__ != "__main__":
        raise
    sys.stderr.write("sweepbt: interrupted\n")
    sys.stderr.flush()
    os._exit(130)

if __name__ == "__main__":
    sys.exit(main())
