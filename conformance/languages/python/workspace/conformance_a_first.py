# Sample workspace of the conformance kit: loaded first (sorted by name).
import sys
import time

print("conformance-loading-marker: a_first")
print("conformance-loading-marker: a_first (stderr)", file=sys.stderr)
CONFORMANCE_LOAD_ORDER = ["a_first"]
time.sleep(0.3)  # a slow file, so that an executor that reports ready too early is seen doing it
