// Loaded second; requires a sibling file, which needs the folder to be where require looks (CODE-2).
CONFORMANCE_LOAD_ORDER.push("b_second");
var CONFORMANCE_HELPER_VALUE = require("./conformance_helper.js").VALUE;
console.log("conformance-loading-marker: b_second");
