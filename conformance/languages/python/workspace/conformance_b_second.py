# Loaded second; imports a sibling file, which needs the folder on sys.path (CODE-2).
import time

import conformance_helper
from conformance_helper import workspace_folder  # noqa: F401 - read back by the kit (CODE-1)

CONFORMANCE_LOAD_ORDER.append("b_second")  # noqa: F821 - defined by conformance_a_first.py
CONFORMANCE_HELPER_VALUE = conformance_helper.VALUE
# When loading ended, so far: the file after the broken one moves it on (READY-4). Defined before
# the broken file, so that an executor that stops there fails CODE-4 alone, not READY-4 or CODE-1.
CONFORMANCE_LOADED_AT = time.time()
print("conformance-loading-marker: b_second")
