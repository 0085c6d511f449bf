"""``python -m conformance``: the same as the ``executor-conformance`` command."""

import sys

from .cli import main

sys.exit(main())
