# Loaded after the broken file; marks the end of loading (READY-4, CODE-4).
import time

CONFORMANCE_LOAD_ORDER.append("d_after_broken")  # noqa: F821 - defined by conformance_a_first.py
CONFORMANCE_LOADED_AT = time.time()
print("conformance-loading-marker: d_after_broken")
