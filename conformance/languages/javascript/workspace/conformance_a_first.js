// Sample workspace of the conformance kit: loaded first (sorted by name).
console.log("conformance-loading-marker: a_first");
console.error("conformance-loading-marker: a_first (stderr)");
var CONFORMANCE_LOAD_ORDER = ["a_first"];
// A slow file, so that an executor that reports ready too early is seen doing it.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
