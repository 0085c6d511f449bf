// Loaded after the broken file; marks the end of loading (READY-4, CODE-4).
CONFORMANCE_LOAD_ORDER.push("d_after_broken");
var CONFORMANCE_LOADED_AT = Date.now() / 1000;
console.log("conformance-loading-marker: d_after_broken");
