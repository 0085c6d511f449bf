// Deliberately broken Node.js executors: examples/node_executor with one fault each.
//
// Each fault changes one method of the example's session or sandbox; tests/kit/broken.py's
// NODE_FAULTS names the requirement IDs the kit must fail for each (with --language javascript),
// beyond what the unbroken executor already fails. Run one with
// `node tests/kit/broken_node.js FAULT` (the same environment as any executor).
"use strict";

const path = require("path");
const executor = require(path.join(__dirname, "..", "..", "examples", "node_executor", "server.js"));

const { Sandbox, Session } = executor;

const FAULTS = {
  // stderr comes back named stdout (EXEC-2).
  stderr_as_stdout() {
    const execute = Session.prototype.execute;
    Session.prototype.execute = async function (code, timeout) {
      const answer = await execute.call(this, code, timeout);
      for (const item of answer.outputs) if (item.type === "stream") item.name = "stdout";
      return answer;
    };
  },
  // Empty code gives status error (EXEC-7).
  empty_code_is_an_error() {
    const execute = Session.prototype.execute;
    Session.prototype.execute = async function (code, timeout) {
      const answer = await execute.call(this, code, timeout);
      if (code.trim() === "") {
        answer.status = "error";
        answer.outputs = [{ type: "error", ename: "Error", evalue: "no code", traceback: [], text: "Error: no code" }];
      }
      return answer;
    };
  },
  // Code that does not stop when interrupted is left running (TIMEOUT-5).
  no_escalation() {
    Session.prototype.escalate = async function () {
      return false;
    };
  },
  // A restart kills the worker but not the processes it started (ISO-1).
  detached_processes_survive() {
    Sandbox.prototype.killAll = function () {};
  },
};

const name = process.argv[2] || process.env.BROKEN_FAULT;
if (!(name in FAULTS)) {
  console.error(`no such fault ${JSON.stringify(name)}; faults: ${Object.keys(FAULTS).join(", ")}`);
  process.exit(2);
}
FAULTS[name]();
executor.serve();
