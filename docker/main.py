"""`python main.py`: how the original deployment starts an executor container."""

import sys

from reference_executor.__main__ import main

sys.exit(main())
