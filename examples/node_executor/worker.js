// The session: one Node.js process that runs JavaScript in one persistent vm context.
//
// Started by server.js (as a throwaway user id when the server runs as root), with the workspace
// folder as its argument. It loads the workspace's .js files in sorted name order into the
// context (a file that throws is logged and skipped), says {"ready": true}, then runs each
// {"code", "max_output"} message it is sent and answers {"status", "outputs", "execution_count",
// "truncated"}. Messages go over the IPC channel Node opens for a forked process; what user code
// writes is captured, never sent to the server's own stdout.
"use strict";

const fs = require("fs");
const path = require("path");
const util = require("util");
const vm = require("vm");
const { createRequire } = require("module");

const workspace = process.argv[2] || "/code";

// CRASH-3: under memory pressure the OOM killer takes this worker (user code), never the server,
// which shares its container and memory limit. Raising one's own score needs no privilege; first,
// before the workspace loads. Where /proc is not Linux's, nothing to do.
try {
  fs.writeFileSync("/proc/self/oom_score_adj", "1000");
} catch {
  // not Linux, or /proc read-only: the limit still holds, the choice is the kernel's
}

// -- output, captured per execution ---------------------------------------------------------------

let capture = null; // {outputs, bytes, max, truncated} while an execution runs

function wellFormed(text) {
  return String(text).toWellFormed(); // a lone surrogate becomes U+FFFD (EXEC-8)
}

function emit(name, text) {
  if (capture === null) {
    process.stderr.write(text); // loading or background output: the log, never a response (CODE-3, ISO-4)
    return;
  }
  if (capture.truncated) return;
  let chunk = wellFormed(text);
  const room = capture.max - capture.bytes;
  if (Buffer.byteLength(chunk) > room) {
    chunk = Buffer.from(chunk).subarray(0, Math.max(room, 0)).toString().replace(/\uFFFD$/, "");
    capture.truncated = true;
  }
  capture.bytes += Buffer.byteLength(chunk);
  const last = capture.outputs[capture.outputs.length - 1];
  if (last && last.type === "stream" && last.name === name) last.text += chunk;
  else if (chunk) capture.outputs.push({ type: "stream", name, text: chunk });
  if (capture.truncated) {
    const marker = `\n[output truncated at MAX_OUTPUT_BYTES = ${capture.max} bytes]\n`;
    capture.outputs.push({ type: "stream", name: "stderr", text: marker });
  }
}

const originalStderrWrite = process.stderr.write.bind(process.stderr);
process.stdout.write = (chunk, ...rest) => {
  emit("stdout", typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
  const callback = rest.find((arg) => typeof arg === "function");
  if (callback) callback();
  return true;
};
process.stderr.write = (chunk, ...rest) => {
  const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
  if (capture === null) originalStderrWrite(text);
  else emit("stderr", text);
  const callback = rest.find((arg) => typeof arg === "function");
  if (callback) callback();
  return true;
};

function plain(value) {
  return util.inspect(value, { depth: 4, breakLength: 100 });
}

// -- the context ---------------------------------------------------------------------------------

const context = vm.createContext({
  console: new console.Console({ stdout: process.stdout, stderr: process.stderr }),
  process,
  Buffer,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  setImmediate,
  clearImmediate,
  URL,
  TextEncoder,
  TextDecoder,
  structuredClone,
  // Rich output: display({"text/html": ..., "image/png": <base64>, "text/plain": ...}) (EXEC-4).
  display(bundle) {
    if (capture === null || bundle === null || typeof bundle !== "object") return;
    const data = Object.fromEntries(Object.entries(bundle).map(([mime, value]) => [mime, wellFormed(value)]));
    capture.outputs.push({ type: "display_data", data, text: data["text/plain"] ?? "" });
  },
});

function run(source, filename) {
  return new vm.Script(source, { filename }).runInContext(context, { breakOnSigint: true, displayErrors: false });
}

// Frames of this worker and of Node's internals, which a traceback of user code leaves out.
function internalFrame(line) {
  return /^\s+at /.test(line) && (line.includes(__filename) || /\bnode:/.test(line));
}

function errorItem(error) {
  const isError = error instanceof Error || (error && typeof error === "object" && "stack" in error);
  const ename = isError ? String(error.name || "Error") : "Error";
  const evalue = wellFormed(isError ? error.message : plain(error));
  const full = wellFormed(isError && error.stack ? error.stack : `${ename}: ${evalue}`);
  const stack = full
    .split("\n")
    .filter((line) => !internalFrame(line))
    .join("\n");
  return { type: "error", ename, evalue, traceback: stack.split("\n"), text: stack };
}

// -- loading the workspace (CODE-1 to CODE-5) ----------------------------------------------------

function loadWorkspace() {
  let files = [];
  try {
    files = fs.readdirSync(workspace).filter((name) => name.endsWith(".js")).sort();
  } catch (error) {
    process.stderr.write(`no workspace at ${workspace}: ${error.code}\n`);
  }
  for (const name of files) {
    const file = path.join(workspace, name);
    // Each file may require its siblings, and knows its own place.
    Object.assign(context, { require: createRequire(file), __filename: file, __dirname: workspace });
    try {
      run(fs.readFileSync(file, "utf8"), file);
    } catch (error) {
      process.stderr.write(`workspace file ${name} failed and was skipped: ${error && error.stack}\n`);
    }
  }
  context.require = createRequire(path.join(process.cwd(), "[session]"));
}

// -- executions ----------------------------------------------------------------------------------

let executionCount = 0;

function execute(message) {
  executionCount += 1;
  capture = { outputs: [], bytes: 0, max: message.max_output, truncated: false };
  let status = "ok";
  try {
    const value = run(message.code, "<cell>");
    if (value !== undefined) {
      const text = wellFormed(plain(value));
      capture.outputs.push({
        type: "execute_result",
        data: { "text/plain": text },
        text,
        execution_count: executionCount,
      });
    }
  } catch (error) {
    status = "error";
    capture.outputs.push(errorItem(error));
  }
  const answer = { status, outputs: capture.outputs, execution_count: executionCount, truncated: capture.truncated };
  capture = null;
  return answer;
}

// An interrupt between executions ends nothing here (breakOnSigint: during one). One that came as
// the code finished can still be pending in Node's watchdog and stop the next script it runs: the
// server sends fences (empty code) after every interrupt until one runs to its end.
process.on("SIGINT", () => {});

function fence() {
  try {
    run("undefined", "<fence>");
    return { fence: "clean" };
  } catch {
    return { fence: "interrupted" };
  }
}
process.on("disconnect", () => process.exit(0)); // the server is gone
process.on("message", (message) => process.send(message && message.fence ? fence() : execute(message)));

loadWorkspace();
process.send({ ready: true, pid: process.pid }); // the server interrupts this process itself, not tini
