// A third executor: Node.js only, for JavaScript sessions. No Python, no framework, no code
// shared with the other two. It proves both halves of the contract's promise: the server may be
// any runtime, and the session any language (the kit certifies it with --language javascript).
//
// The server is Node's http module; the session is worker.js, a forked Node process with one vm
// context, run as a throwaway user id (when the server runs as root) and swept with everything
// it started between two sessions (ISO-1 to ISO-6). Its choices among those the contract allows:
// /ready answers 503 while not ready; /restart finishes before it answers; a second execute
// while one runs gets 429 (CONC-2); it serves /info and /restart-status.
//
// Run it with `node examples/node_executor/server.js`; it reads PORT, HOST, WORKSPACE_FOLDER,
// EXECUTION_TIMEOUT, MAX_OUTPUT_BYTES, MAX_REQUEST_BYTES, MAX_EXECUTION_TIMEOUT, SESSION_ENV
// and SUBMISSION_DIR.
"use strict";

const childProcess = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const net = require("net");
const path = require("path");

const WORKER = path.join(__dirname, "worker.js");
const VERSION = "1.0.0";
const CONTRACT_VERSION = "1.6";
// After SIGINT, how long interrupted code has to stop before the worker is replaced.
const INTERRUPT_GRACE_MS = 1000;
// The shortest deadline kept: a SIGINT that reaches the worker as its code finishes can stay
// pending in Node's SIGINT watchdog and stop the next script instead (seen with timeouts far
// below a round trip); the fences after an interrupt (drainInterrupt) catch most, not all.
const MIN_TIMEOUT_MS = 50;
// How long a new worker has to load the workspace and say it is ready.
const START_TIMEOUT_MS = 60000;
// A client has this long to send a whole request (INPUT-6).
const REQUEST_READ_TIMEOUT_MS = 5000;
// The user ids a worker may run as (WORKER_UIDS, "FIRST-LAST"): a range of its own, apart from the
// other executors', claimed from a random one on: containers of one image cannot see each other's
// claims, yet a user id's process count (RLIMIT_NPROC) is the host's; a wide range keeps them apart.
const WORKER_UIDS = (() => {
  const parts = (process.env.WORKER_UIDS || "3000000-3999999").split("-").map(Number);
  const [first, last] = parts;
  if (!(parts.length === 2 && Number.isInteger(first) && Number.isInteger(last) && 0 < first && first <= last && last < 2 ** 31)) {
    throw new Error(`WORKER_UIDS=${process.env.WORKER_UIDS}: not a range of user ids such as 3000000-3999999`);
  }
  return [first, last + 1];
})();
// /dev/mqueue: POSIX message queues, where the mqueue file system is mounted (in a container).
const TEMP_FOLDERS = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue"];
// SysV IPC objects: each table of /proc/sysvipc, ipcrm's flag, and the owner's and creator's uid columns.
const SYSV_TABLES = [["shm", "-m", 7, 9], ["msg", "-q", 7, 9], ["sem", "-s", 4, 6]];
// What every worker gets of the server's environment, besides what SESSION_ENV names (ISO-6).
const BASE_VARIABLES = ["PATH", "LANG", "LANGUAGE", "TZ", "TERM"];
const KILL_DEADLINE_MS = 5000;
const REMOVE_DEADLINE_MS = 60000;  // removing a session's folders (rm, as its user id)
const READ_ONLY_LEVELS = 3;  // how deep the sweep looks into others' read-only folders
// Processes and threads a worker's user id may have (RLIMIT_NPROC): a fork bomb stops there, well
// before a container's pids limit, where the server could no longer start a helper (ISO-10).
const MAX_PROCESSES = 512;
// The tools a sandboxed worker is started through, where installed (Node.js can do none of this
// itself): tini, run as root, as a subreaper that user code cannot signal, reaps at once what
// user code leaves as zombies (ISO-11); util-linux's prlimit sets RLIMIT_NPROC, and its setpriv
// then becomes the worker's user id.
const installed = (name) => ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map((d) => path.join(d, name)).find(fs.existsSync);
const TOOLS = { tini: installed("tini"), prlimit: installed("prlimit"), setpriv: installed("setpriv") };
const UNDER_TINI = Boolean(TOOLS.tini && TOOLS.prlimit && TOOLS.setpriv);

// -- settings ------------------------------------------------------------------------------------

function number(name, fallback, { integer = false } = {}) {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    console.error(`${name}=${text}: not a positive ${integer ? "integer" : "number"}`);
    process.exit(2);
  }
  return value;
}

const settings = {
  host: process.env.HOST || "0.0.0.0",
  port: number("PORT", 8432, { integer: true }),
  workspace: process.env.WORKSPACE_FOLDER || "/code",
  executionTimeout: number("EXECUTION_TIMEOUT", 3),
  maxOutputBytes: number("MAX_OUTPUT_BYTES", 1048576, { integer: true }),
  maxRequestBytes: number("MAX_REQUEST_BYTES", 1048576, { integer: true }),
  maxExecutionTimeout: number("MAX_EXECUTION_TIMEOUT", 3600),
  sessionEnv: (process.env.SESSION_ENV || "").split(",").map((name) => name.trim()).filter(Boolean),
  submissionDir: process.env.SUBMISSION_DIR || null,
  // SEC-4: the bearer token every call but /health and /ready must carry (null: none needed).
  executorToken: process.env.EXECUTOR_TOKEN || null,
};
// What an orchestrator probes: open whatever EXECUTOR_TOKEN says (SEC-4).
const OPEN_ROUTES = new Set(["/health", "/ready"]);

function authorised(request) {
  if (!settings.executorToken || OPEN_ROUTES.has((request.url || "/").split("?")[0])) return true;
  const given = Buffer.from(request.headers.authorization || "");
  const expected = Buffer.from(`Bearer ${settings.executorToken}`);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

// -- the sandbox: one throwaway user id, swept between workers -----------------------------------

// One user id per server: held by listening on an abstract unix socket named for it, which no
// other process can bind while this one lives and which the kernel releases when it dies (no
// lock file to go stale, no window between creating a lock and writing its owner).
async function claimUid() {
  if (process.geteuid() !== 0) {
    console.error("not root: the worker runs as the server's user; sessions are not isolated");
    return null;
  }
  const [first, end] = WORKER_UIDS;
  const start = crypto.randomInt(first, end);
  const users = new Set();  // ids with a passwd entry: someone's, never a throwaway one
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) users.add(Number(line.split(":")[2]));
  } catch {
    // no passwd file: no such ids
  }
  for (let n = 0; n < end - first; n++) {
    const uid = first + ((start - first + n) % (end - first));
    if (users.has(uid)) continue;
    const held = await new Promise((resolve) => {
      const lock = net.createServer();
      lock.once("error", () => resolve(false));
      lock.listen({ path: `\0node-executor-uid-${uid}` }, () => resolve(true));
    });
    if (held) return uid;
  }
  throw new Error(`every worker user id in ${WORKER_UIDS[0]}-${WORKER_UIDS[1] - 1} is taken`);
}

// Folders any user may write to, three levels below / at most (not under /proc or /sys).
function worldWritableFolders() {
  const found = [];
  const pending = [["/", 0]];
  while (pending.length) {
    const [folder, depth] = pending.pop();
    let entries = [];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (full === "/proc" || full === "/sys" || !entry.isDirectory()) continue;
      try {
        const mode = fs.lstatSync(full).mode;
        if (mode & 0o002) found.push(full);
        else if (mode & 0o001 && depth + 1 < 3) pending.push([full, depth + 1]);
      } catch {
        // gone meanwhile
      }
    }
  }
  return found;
}

// Run a helper without blocking the event loop; killed past `timeoutMs`. Resolves to its exit
// status, or to the error or signal that ended it.
function runBounded(command, args, options, timeoutMs) {
  return new Promise((resolve) => {
    let child;
    try {
      child = childProcess.spawn(command, args, { ...options, stdio: "ignore", timeout: timeoutMs });
    } catch (error) {
      resolve(error.message);
      return;
    }
    child.once("error", (error) => resolve(error.message));
    child.once("exit", (code, signal) => resolve(code ?? signal));
  });
}

// The one child of `pid` (tini's: the worker), or null.
function childOf(pid) {
  try {
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
    return children.length === 1 && children[0] ? Number(children[0]) : null;
  } catch {
    return null;
  }
}

// Send `signals` to each of `processes(false)` until it is empty, then wait until `processes(true)`
// is too: orphans are reaped by whoever reaps them (tini, or the host's PID 1 when the executor
// runs there), and the session is over once they are gone from the process table. Bounded by
// `deadline`.
async function killUntilGone(processes, signals, deadline) {
  for (let left = processes(false); left.length && Date.now() < deadline; left = processes(false)) {
    for (const signal of signals) {
      for (const pid of left) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  while (processes(true).length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

// The processes of `uid`; with `zombies`, those that have ended but not been reaped too: they
// still count against its process limit, and the next session could start none (ISO-10).
function processesOf(uid, zombies = false) {
  const found = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = fs.readFileSync(`/proc/${name}/status`, "utf8");
      const uids = (status.match(/^Uid:\s+(.*)$/m) || ["", ""])[1].split(/\s+/).slice(0, 3).map(Number);
      const state = (status.match(/^State:\s+(\S)/m) || ["", ""])[1];
      if (uids.includes(uid) && (zombies || state !== "Z")) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

class Sandbox {
  constructor(uid) {
    this.uid = uid;
    this.home = null;
    this.keep = [settings.workspace, settings.submissionDir].filter(Boolean).map((k) => k.replace(/\/$/, ""));
    // Where the user id's files are looked for: the temporary folders and any other folder every
    // user may write to (an image's /submission, say), found once.
    // None at or below a kept folder (a declared persistent one is world-writable too): find tests
    // what is below a starting folder, never the folder itself.
    const kept = (folder) => this.keep.some((k) => folder === k || folder.startsWith(k + "/"));
    this.folders = [...new Set([...TEMP_FOLDERS, ...worldWritableFolders()])].filter((folder) => !kept(folder));
  }

  // The worker's command and spawn options: under tini, prlimit and setpriv where all are
  // installed (see TOOLS); else run as the user id by Node.js itself, with neither reaper nor limit.
  launch(command) {
    this.home = fs.mkdtempSync("/tmp/worker-home-");
    fs.chownSync(this.home, this.uid, this.uid);
    const { tini, prlimit, setpriv } = TOOLS;
    if (!UNDER_TINI) return { command, options: { uid: this.uid, gid: this.uid, cwd: this.home } };
    const wrapped = [
      tini, "-s", "--",
      prlimit, `--nproc=${MAX_PROCESSES}:${MAX_PROCESSES}`, "--",
      setpriv, `--reuid=${this.uid}`, `--regid=${this.uid}`, "--clear-groups", "--",
      ...command,
    ];
    return { command: wrapped, options: { cwd: this.home } };
  }

  // Kill every process of the user id, then remove the files it owns in the temporary folders.
  // Every helper runs asynchronously: /health keeps answering while a large tree goes (HEALTH-2).
  async clean(reaper = null) {
    await this.killAll(reaper);
    this.home = null;
    await this.removeIpc();
    await this.removeFiles();
  }

  // A helper run as the user id, which can then reach nothing that is not its own.
  runAsUser(command, args, timeoutMs) {
    return runBounded(command, args, { uid: this.uid, gid: this.uid, cwd: "/", env: {} }, timeoutMs);
  }

  // Every file and folder the user id owns below the temporary and world-writable folders (its
  // home among them), however deep: findutils' find lists them as root, which reaches folders
  // the user id may write to but not read, and coreutils' rm removes them as the user id, which
  // can then remove nothing that is not its own. Both run beside the event loop: a host's /tmp may
  // hold checkouts of many thousand files, whose walk would stop /health (HEALTH-2).
  // Others' read-only folders are looked into READ_ONLY_LEVELS deep, for a world-writable one: a
  // checkout in /tmp, with its virtualenvs, would otherwise be walked whole at every restart.
  removeFiles() {
    const kept = this.keep.flatMap((folder) => ["-path", folder, "-o"]);
    // Read-only folders 1 to READ_ONLY_LEVELS below a starting folder are looked into (counted from
    // it, not from a world-writable folder below it, as the reference counts).
    const deep = this.folders.flatMap((folder) => ["-path", folder + "/*".repeat(READ_ONLY_LEVELS + 1), "-o"]);
    const listing = [...this.folders, "-xdev", "-mindepth", "1", "(", ...kept, "-false", ")", "-prune", "-o",
      "-user", String(this.uid), "-prune", "-print0", "-o",
      "(", ...deep, "-false", ")", "-type", "d", "!", "-perm", "-0002", "-prune"];
    return new Promise((resolve) => {
      const options = { stdio: ["ignore", "pipe", "ignore"], timeout: REMOVE_DEADLINE_MS };
      let find, rm;
      try {
        find = childProcess.spawn("find", listing, options);
        rm = childProcess.spawn("xargs", ["-0", "-r", "rm", "-rf", "--one-file-system", "--"], {
          uid: this.uid, gid: this.uid, cwd: "/", env: {}, stdio: [find.stdout, "ignore", "ignore"],
          timeout: REMOVE_DEADLINE_MS,
        });
      } catch (error) {
        if (find) find.kill("SIGKILL");
        resolve(error.message);
        return;
      }
      find.stdout.destroy(); // xargs has its own copy: this one would leak, one per restart
      find.once("error", (error) => console.error(`find: ${error.message}`));
      rm.once("error", (error) => resolve(error.message));
      rm.once("exit", (code, signal) => resolve(code ?? signal));
    });
  }

  // SysV shared memory, message queues and semaphores the user id owns or created outlive its
  // processes (ISO-8): removed with util-linux's ipcrm.
  async removeIpc() {
    const args = [];
    for (const [table, flag, owner, creator] of SYSV_TABLES) {
      let lines = [];
      try {
        lines = fs.readFileSync(`/proc/sysvipc/${table}`, "utf8").split("\n").slice(1);
      } catch {
        continue;
      }
      for (const fields of lines.map((line) => line.trim().split(/\s+/)).filter((f) => f.length > creator)) {
        if (Number(fields[owner]) === this.uid || Number(fields[creator]) === this.uid) args.push(flag, fields[1]);
      }
    }
    if (!args.length) return;
    // As the user id: root without CAP_SYS_ADMIN (in a container) may not remove another user's.
    const result = await this.runAsUser("ipcrm", args, KILL_DEADLINE_MS);
    if (result !== 0) console.error(`ipcrm ${args.join(" ")} failed: ${result}`);
  }

  // `reaper`: the tini the worker runs under, or null. The session's processes but the worker go
  // first, stopped then killed, until none is left (a stopped process cannot fork): tini, alive as
  // long as the worker is, reaps each at once. Were the worker killed first, tini would end with
  // it and their orphans would go to the host's PID 1, which may reap them late; meanwhile they
  // count against the user id's process limit, and the next session could start none (ISO-10).
  // Then SIGKILL to -1, sent as the user id, reaches whatever is left; then any left, one by one.
  async killAll(reaper) {
    const deadline = Date.now() + KILL_DEADLINE_MS;
    const worker = reaper === null ? null : childOf(reaper);
    if (worker !== null) {
      const others = (zombies) => processesOf(this.uid, zombies).filter((pid) => pid !== worker);
      await killUntilGone(others, ["SIGSTOP", "SIGKILL"], deadline);
    }
    const script = 'for (let i = 0; i < 3; i++) { try { process.kill(-1, "SIGKILL") } catch { break } }';
    await this.runAsUser(process.execPath, ["-e", script], KILL_DEADLINE_MS);
    await killUntilGone((zombies) => processesOf(this.uid, zombies), ["SIGKILL"], deadline);
  }
}

function workerEnvironment() {
  const names = new Set([...settings.sessionEnv, ...BASE_VARIABLES]);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => names.has(name) || name.startsWith("LC_")),
  );
  return env;
}

// -- the session ---------------------------------------------------------------------------------

class Busy extends Error {}

class Session {
  // `uid`: the worker's user id (claimUid), or null to run it as the server's own user.
  constructor(uid) {
    this.sandbox = uid === null ? null : new Sandbox(uid);
    this.worker = null;
    this.ready = false;
    this.reason = "starting";
    this.restarting = false;
    this.running = false;
    this.pending = null; // {resolve} of the execution waiting for the worker's answer
    this.pendingFence = null; // resolves with a fence's outcome (see drainInterrupt)
    this.replacing = Promise.resolve(); // the last replacement of the worker, done or under way
  }

  // Replace the worker, and wait until it has loaded the workspace. Replacements run one after
  // another: the teardown awaits its helpers, and two at once would end each other's worker.
  startWorker(reason) {
    this.ready = false;
    this.reason = reason;
    const replacement = this.replacing.catch(() => {}).then(() => this.replaceWorker(reason));
    this.replacing = replacement;
    return replacement;
  }

  async replaceWorker(reason) {
    this.ready = false;
    this.reason = reason;
    for (let attempt = 1; attempt <= 3; attempt++) {
      await this.stopWorker();
      // The worker's stdout and stderr are pipes: what it writes while it loads the workspace goes
      // to the log; once it is ready, whatever user code writes there is read and dropped, never
      // the server's log (ISO-9).
      let command = [process.execPath, WORKER, settings.workspace];
      const options = { env: workerEnvironment(), stdio: ["ignore", "pipe", "pipe", "ipc"] };
      if (this.sandbox) {
        const launch = this.sandbox.launch(command);
        command = launch.command;
        Object.assign(options, launch.options);
        options.env.HOME = this.sandbox.home;
      }
      const worker = childProcess.spawn(command[0], command.slice(1), options);
      let loading = true;
      for (const stream of [worker.stdout, worker.stderr]) {
        stream.on("data", (chunk) => {
          if (loading) process.stderr.write(chunk);
        });
      }
      // A message to a worker that has just died fails with an 'error' event; unheard, it would
      // end the server. Its 'exit' tells the session what happened.
      worker.on("error", (error) => console.error(`worker: ${error.message}`));
      this.worker = worker;
      const started = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
        worker.once("message", (message) => {
          clearTimeout(timer);
          // The worker's own process: under tini, the spawned process is tini, which would pass a
          // signal on later, when the code may have ended and the next already begun (TIMEOUT-3).
          this.workerPid = message && Number.isInteger(message.pid) ? message.pid : worker.pid;
          resolve(Boolean(message && message.ready));
        });
        worker.once("exit", () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      loading = false;
      if (started && this.worker === worker) {
        worker.on("message", (message) => {
          if (isPlainObject(message) && "fence" in message) {
            this.fenced(message.fence);
            return;
          }
          const answer = checkedAnswer(message, settings.maxOutputBytes);
          if (answer) this.answer(answer);
          else console.error("dropped a message of the wrong shape from the worker");
        });
        worker.on("exit", () => this.answer(null));
        this.ready = true;
        this.reason = null;
        return;
      }
      console.error(`worker start ${attempt}/3 failed`);
    }
    throw new Error("the worker did not start");
  }

  // The sandbox is cleaned while the worker's tini still lives, to reap (see Sandbox.killAll).
  async stopWorker() {
    const worker = this.worker;
    this.worker = null;
    if (worker) {
      worker.removeAllListeners("message");
      worker.removeAllListeners("exit");
    }
    if (this.sandbox) await this.sandbox.clean(worker && UNDER_TINI ? worker.pid : null);
    if (worker) {
      try {
        worker.kill("SIGKILL");
      } catch {
        // gone already
      }
    }
  }

  answer(message) {
    if (this.pending) {
      const { resolve } = this.pending;
      this.pending = null;
      resolve(message);
    }
  }

  fenced(outcome) {
    if (this.pendingFence) {
      const resolve = this.pendingFence;
      this.pendingFence = null;
      resolve(outcome);
    }
  }

  // After an interrupt, empty code is run until one run is not interrupted (at most 3 fences,
  // each within the grace): an interrupt that came as the code finished is spent there, never in
  // the next execution (TIMEOUT-3).
  async drainInterrupt(worker) {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const outcome = new Promise((resolve) => {
        const timer = setTimeout(() => {
          this.pendingFence = null;
          resolve("none");
        }, INTERRUPT_GRACE_MS);
        this.pendingFence = (value) => {
          clearTimeout(timer);
          resolve(value);
        };
      });
      worker.send({ fence: true });
      if ((await outcome) !== "interrupted") return;
    }
  }

  waitForAnswer(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending = null;
        resolve(undefined);
      }, ms);
      this.pending = {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
    });
  }

  async restart() {
    this.restarting = true;
    this.answer(null); // a running execution ends as crashed
    try {
      await this.startWorker("restarting");
    } finally {
      this.restarting = false;
    }
  }

  // The code did not stop when interrupted: replace the worker. True: the session was restarted.
  async escalate() {
    await this.startWorker("recovering");
    return true;
  }

  async execute(code, timeout) {
    if (this.running || !this.ready) throw new Busy();
    this.running = true;
    const started = process.hrtime.bigint();
    try {
      const worker = this.worker;
      const answered = this.waitForAnswer(Math.max(timeout * 1000, MIN_TIMEOUT_MS));
      worker.send({ code, max_output: settings.maxOutputBytes });
      let answer = await answered;
      let status;
      let restarted = false;
      if (answer === undefined) {
        // Past the deadline: interrupt; code that does not stop is ended with its worker.
        const interrupted = this.waitForAnswer(INTERRUPT_GRACE_MS);
        try {
          // The Node.js process itself, at once; not once its tini has ended (the id may be reused).
          if (worker.exitCode === null && worker.signalCode === null) process.kill(this.workerPid, "SIGINT");
        } catch {
          // it died at the deadline
        }
        answer = await interrupted;
        status = "timeout";
        if (!answer) {
          restarted = await this.escalate();
          answer = { outputs: [], execution_count: null };
        } else {
          await this.drainInterrupt(worker);
          // The code finished (or failed) before the interrupt came: its answer stands.
          if (!answer.outputs.some((item) => item.type === "error" && /interrupted by .?SIGINT/.test(item.evalue))) {
            status = answer.status;
          }
        }
      } else if (answer === null) {
        if (!this.restarting) await this.startWorker("recovering");
        status = "crashed";
        restarted = true;
        answer = { outputs: [], execution_count: null };
      } else {
        status = answer.status;
      }
      return {
        status,
        outputs: answer.outputs,
        execution_count: answer.execution_count ?? null,
        duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
        truncated: Boolean(answer.truncated),
        restarted,
      };
    } finally {
      this.running = false;
    }
  }
}

// -- what the worker answers ---------------------------------------------------------------------

// User code runs in the worker and can send the server anything over IPC (process.send), so an
// answer is untrusted input: its shape is checked, and every string it carries counts against
// MAX_OUTPUT_BYTES (OUTPUT-3). Error items may use ERROR_ALLOWANCE bytes past the cap, all
// together, so that the error that stopped the code is kept (cut if need be).
const ERROR_ALLOWANCE = 16 * 1024;
const ITEM_OVERHEAD = 64;
const ANSWER_STATUSES = new Set(["ok", "error"]);
const ITEM_TYPES = new Set(["stream", "execute_result", "display_data", "error"]);

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// `value` if it is a string (else ""), cut to `cut` UTF-8 bytes.
function cutText(value, cut) {
  const string = typeof value === "string" ? value : "";
  if (Buffer.byteLength(string) <= cut) return string;
  return Buffer.from(string).subarray(0, Math.max(cut, 0)).toString().replace(/\uFFFD$/, "");
}

// The item with only the fields of its type, each of its kind, every string cut to `cut` bytes.
function cleanItem(item, cut) {
  const text = (value) => cutText(value, cut);
  const clean = { type: item.type, text: text(item.text) };
  if (item.type === "stream") clean.name = item.name === "stderr" ? "stderr" : "stdout";
  if (item.type === "error") {
    clean.ename = text(item.ename);
    clean.evalue = text(item.evalue);
    clean.traceback = Array.isArray(item.traceback) ? item.traceback.slice(-100).map(text) : [];
  }
  if (item.type === "execute_result" || item.type === "display_data") {
    clean.data = isPlainObject(item.data)
      ? Object.fromEntries(Object.entries(item.data).slice(0, 100).map(([mime, value]) => [text(mime), text(value)]))
      : {};
  }
  if (item.type === "execute_result") clean.execution_count = Number.isInteger(item.execution_count) ? item.execution_count : null;
  return clean;
}

function sizeOf(item) {
  return Buffer.byteLength(JSON.stringify(item)) + ITEM_OVERHEAD;
}

// The worker's answer, checked and capped; null when it is not an answer at all.
function checkedAnswer(message, max) {
  if (!isPlainObject(message) || !ANSWER_STATUSES.has(message.status) || !Array.isArray(message.outputs)) return null;
  const outputs = [];
  let used = 0;
  let allowance = ERROR_ALLOWANCE;
  let truncated = false; // by this function: the worker's own marker may be cut away with the text
  for (const item of message.outputs) {
    if (!isPlainObject(item) || !ITEM_TYPES.has(item.type)) continue;
    let clean = cleanItem(item, max + 1);
    let size = sizeOf(clean);
    const room = max - used + (clean.type === "error" ? allowance : 0);
    const framing = sizeOf({ ...clean, text: "" });
    if (size > room && clean.type === "stream" && room > framing) {
      clean.text = cutText(clean.text, room - framing); // cut where the cap is
      size = sizeOf(clean);
      truncated = true;
    }
    if (size > room && clean.type === "error" && room > 1024) {
      clean = cleanItem(item, Math.floor(room / 5));
      size = sizeOf(clean);
      truncated = true;
    }
    if (size > room) {
      truncated = true;
      continue;
    }
    const fromCap = Math.min(size, Math.max(max - used, 0));
    used += fromCap;
    allowance -= size - fromCap;
    outputs.push(clean);
  }
  if (truncated) {
    outputs.push({ type: "stream", name: "stderr", text: `\n[output truncated at MAX_OUTPUT_BYTES = ${max} bytes]\n` });
  }
  return {
    status: message.status,
    outputs,
    execution_count: Number.isInteger(message.execution_count) ? message.execution_count : null,
    truncated: truncated || message.truncated === true,
  };
}

// -- HTTP ----------------------------------------------------------------------------------------

class BadRequest extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

const ROUTES = {
  "/health": "GET",
  "/ready": "GET",
  "/execute": "POST",
  "/restart": "POST",
  "/restart-status": "GET",
  "/info": "GET",
};

function sendJson(response, status, body, headers = {}) {
  const data = Buffer.from(JSON.stringify(body));
  response.writeHead(status, { "Content-Type": "application/json", "Content-Length": data.length, ...headers });
  response.end(data);
}

function parseExecute(raw) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new BadRequest(400, "the body is not valid UTF-8");
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new BadRequest(400, `the body is not JSON: ${error.message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new BadRequest(422, "the body must be a JSON object");
  }
  if (typeof body.code !== "string") throw new BadRequest(422, "`code` must be a string");
  let timeout = body.timeout;
  if (timeout === undefined || timeout === null) timeout = null;
  else if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0) {
    throw new BadRequest(422, "`timeout` must be a positive number of seconds");
  } else if (timeout > settings.maxExecutionTimeout) {
    throw new BadRequest(422, `\`timeout\` ${timeout} s is above MAX_EXECUTION_TIMEOUT (${settings.maxExecutionTimeout} s)`);
  }
  return { code: body.code, timeout };
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"] || 0);
    if (declared > settings.maxRequestBytes) {
      reject(new BadRequest(413, `body larger than ${settings.maxRequestBytes} bytes`));
      return;
    }
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size > settings.maxRequestBytes) {
        reject(new BadRequest(413, `body larger than ${settings.maxRequestBytes} bytes`));
        request.pause();
      } else {
        chunks.push(chunk);
      }
    });
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

// The handler of each route: (session, raw body) -> [HTTP status, body].
const HANDLERS = {
  "/health": async () => [200, { status: "ok" }],
  "/ready": async (session) =>
    session.ready && !session.restarting
      ? [200, { ready: true, reason: null }]
      : [503, { ready: false, reason: session.reason || "restarting" }],
  "/restart-status": async (session) => [200, { restarting: session.restarting }],
  "/info": async () => [
    200,
    {
      implementation: "node-executor",
      version: VERSION,
      contract_version: CONTRACT_VERSION,
      language: "javascript",
      features: ["mounted_code", "timeout_override", "rich_output", "restart_status", "info", "executor_token"],
      persistent_folders: settings.submissionDir ? [settings.submissionDir] : [],
      // The values in force, for a client that did not start the executor (INFO-1, contract 1.6).
      settings: {
        EXECUTION_TIMEOUT: settings.executionTimeout,
        MAX_EXECUTION_TIMEOUT: settings.maxExecutionTimeout,
        MAX_OUTPUT_BYTES: settings.maxOutputBytes,
        MAX_REQUEST_BYTES: settings.maxRequestBytes,
      },
    },
  ],
  "/restart": async (session) => {
    await session.restart();
    return [200, { status: "ok" }];
  },
  "/execute": async (session, raw) => {
    const { code, timeout } = parseExecute(raw);
    return [200, await session.execute(code, timeout ?? settings.executionTimeout)];
  },
};

// Serve until SIGTERM, with a session of the Session class given (the broken executors of the
// kit's tests give their own).
async function serve(SessionClass = Session) {
  const session = new SessionClass(await claimUid());
  const server = http.createServer(
    // A request must arrive whole within REQUEST_READ_TIMEOUT_MS, checked twice a second (INPUT-6).
    { requestTimeout: REQUEST_READ_TIMEOUT_MS, headersTimeout: REQUEST_READ_TIMEOUT_MS, connectionsCheckingInterval: 500 },
    async (request, response) => {
      const route = (request.url || "/").split("?")[0];
      try {
        if (!authorised(request)) {
          response.setHeader("WWW-Authenticate", "Bearer");
          throw new BadRequest(401, "this executor serves only calls with its token");
        }
        if (!(route in ROUTES)) throw new BadRequest(404, "not found");
        // HEAD wherever GET (RFC 9110, 9.3.2; INPUT-8): Node sends the head of GET's answer, no body.
        const method = request.method === "HEAD" && ROUTES[route] === "GET" ? "GET" : request.method;
        if (ROUTES[route] !== method) {
          response.setHeader("Allow", ROUTES[route]);
          throw new BadRequest(405, "method not allowed");
        }
        const raw = await readBody(request);
        const [status, body] = await HANDLERS[route](session, raw);
        sendJson(response, status, body);
      } catch (error) {
        if (error instanceof BadRequest) {
          if (error.status === 413) response.setHeader("Connection", "close");
          sendJson(response, error.status, { detail: error.detail });
        } else if (error instanceof Busy) {
          sendJson(response, 429, { detail: "another execution is running, or the session is not ready; try again" });
        } else {
          console.error(error);
          sendJson(response, 500, { detail: `internal error: ${error.name}` });
        }
      }
    },
  );
  server.keepAliveTimeout = 5000;
  process.on("SIGTERM", () => {
    server.close();
    session.stopWorker().finally(() => process.exit(0));
  });
  server.listen(settings.port, settings.host, () => {
    console.error(`node executor on ${settings.host}:${settings.port}`);
    session.startWorker("loading_code").catch((error) => {
      console.error(error);
      process.exit(1);
    });
  });
}

module.exports = { Sandbox, Session, settings, serve };

if (require.main === module) {
  serve().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
