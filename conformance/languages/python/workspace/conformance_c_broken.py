# Raises on purpose: the executor should log it, skip it and load the rest (CODE-4).
print("conformance-loading-marker: c_broken")
raise RuntimeError("deliberately broken workspace file of the conformance kit")
