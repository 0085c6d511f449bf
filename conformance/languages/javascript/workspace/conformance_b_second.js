// Loaded second; requires a sibling file, which needs the folder to be where require looks (CODE-2).
CONFORMANCE_LOAD_ORDER.push("b_second");
var conformance_helper = require("./conformance_helper.js");
var CONFORMANCE_HELPER_VALUE = conformance_helper.VALUE;
var workspace_folder = conformance_helper.workspace_folder; // read back by the kit (CODE-1)
// When loading ended, so far: the file after the broken one moves it on (READY-4). Defined before
// the broken file, so that an executor that stops there fails CODE-4 alone, not READY-4 or CODE-1.
var CONFORMANCE_LOADED_AT = Date.now() / 1000;
console.log("conformance-loading-marker: b_second");
