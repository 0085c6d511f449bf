# Loaded second; imports a sibling file, which needs the folder on sys.path (CODE-2).
import conformance_helper

CONFORMANCE_LOAD_ORDER.append("b_second")  # noqa: F821 - defined by conformance_a_first.py
CONFORMANCE_HELPER_VALUE = conformance_helper.VALUE
print("conformance-loading-marker: b_second")
