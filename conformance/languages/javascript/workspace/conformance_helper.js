// A sibling module that other workspace files require; loaded into the session too.
var VALUE = 42;

/** The folder this file was loaded from. */
function workspace_folder() {
  return __dirname;
}

if (typeof module !== "undefined") module.exports = { VALUE, workspace_folder };
