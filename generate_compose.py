"""`python generate_compose.py ...`: the original deployment's command, kept working as written.

The same as `executor-pool compose ...` (executor_pool/generate.py), which takes the
original flags and writes the compose file, container_config.json and the manager service.
"""

import sys

from executor_pool.generate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
