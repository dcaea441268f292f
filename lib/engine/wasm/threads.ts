/**
 * Opt-in multi-threaded wasm in Node (UTKFACE_WASM_THREADS=2).
 *
 * tfjs-backend-wasm ships a threaded SIMD build but never uses it in Node: its
 * WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false there (tfjs issue 3830), its loader
 * hands Emscripten's pthread workers blob: URLs that Node's worker_threads cannot open, and the
 * C++ side caps the XNNPACK pool at half the logical cores (1 on a 2-core machine). This module
 * builds the threaded module itself: worker script written to a temp file, main script given as
 * a file path, and the core count the module sees at start-up raised for the cap. It relies on
 * internals of tfjs-backend-wasm 4.22 (file names, the worker source export, the cap), so it is
 * off by default; the default path is the single-threaded build plus one process per fold.
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Environment variable asking for a threaded wasm backend; unset or 1 = single-threaded. */
export const WASM_THREADS_ENV = "UTKFACE_WASM_THREADS";
/** tfjs-backend-wasm pre-starts 8 pthread workers; more threads than that are not used. */
export const MAX_WASM_THREADS = 8;
/** How long the threaded module may take to start its workers before we give up on it. */
const START_TIMEOUT_MS = 60_000;

/** Threads asked for by UTKFACE_WASM_THREADS (1 when unset); a bad value is an error saying what to set. */
export function requestedWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[WASM_THREADS_ENV]?.trim();
  if (!raw) return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    throw new Error(`${WASM_THREADS_ENV}="${raw}" is not a thread count. Use an integer from 1 to ${MAX_WASM_THREADS}, or unset it.`);
  }
  return n;
}

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread?: { terminateAllThreads(): void; runningWorkers: Array<{ unref(): void }> };
  tfjs?: unknown;
}

/**
 * Replaces the registered "wasm" backend factory with one built on the threaded SIMD binary
 * using `threads` XNNPACK threads. Call before the wasm backend is first initialised
 * (tf.setBackend("wasm")); afterwards it would have no effect, so it throws. Returns a function
 * that puts tfjs-backend-wasm's own (single-threaded) factory back, for when this one fails.
 */
export async function installThreadedWasm(threads: number): Promise<() => void> {
  if (tf.engine().registry["wasm"]) throw new Error("installThreadedWasm must run before the wasm backend is initialised.");
  if (typeof SharedArrayBuffer === "undefined") throw new Error("this Node has no SharedArrayBuffer, which wasm threads need");
  const wasmPkg = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm");
  const outDir = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  const mainScript = path.join(outDir, "tfjs-backend-wasm-threaded-simd.js");
  const factory = require(mainScript) as (config: object) => Promise<EmscriptenModule>;
  const { wasmWorkerContents } = require(path.join(outDir, "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string };

  // The worker source is a template string whose "\n" escapes became real newlines; tfjs's own
  // loader escapes them back before making its blob, and so do we.
  const workerDir = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-wasm-worker-"));
  const workerFile = path.join(workerDir, "tfjs-backend-wasm-threaded-simd.worker.js");
  fs.writeFileSync(workerFile, wasmWorkerContents.replace(/\n/g, "\\n"));
  // Workers can start lazily later, so the file stays until the process exits.
  process.once("exit", () => fs.rmSync(workerDir, { recursive: true, force: true }));

  // The C++ start-up caps the pool at (logical cores / 2); the module reads the core count from
  // os.cpus() once, while it initialises. Report enough cores for `threads`, then restore.
  // The module's own require("os") object (an ES namespace import here is read-only).
  const nodeOs = require("os") as { cpus: typeof os.cpus };
  const realCpus = nodeOs.cpus;
  nodeOs.cpus = () => {
    const cpus = realCpus.call(nodeOs);
    return Array.from({ length: Math.max(cpus.length, 2 * threads) }, (_, i) => cpus[i % cpus.length]);
  };
  let module: EmscriptenModule;
  try {
    const starting = factory({
      mainScriptUrlOrBlob: mainScript,
      locateFile: (file: string, prefix: string) => (file.endsWith(".worker.js") ? workerFile : file.endsWith(".wasm") ? path.join(outDir, file) : prefix + file),
    });
    // A worker that never reports "loaded" would leave the module pending forever: never hang.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`threaded wasm did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      timer.unref();
    });
    try {
      module = await Promise.race([starting, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    nodeOs.cpus = realCpus;
  }
  // The same bridge tfjs-backend-wasm's init() attaches.
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  const engine = tf.engine() as unknown as { registryFactory: Record<string, { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number }> };
  const original = engine.registryFactory["wasm"];
  wasmPkg.setThreadsCount(threads);
  tf.removeBackend("wasm");
  // Same priority as tfjs-backend-wasm's own registration.
  tf.registerBackend(
    "wasm",
    () => {
      const backend = new wasmPkg.BackendWasm(module as never);
      // The constructor started XNNPACK's pool threads; Emscripten keeps their workers ref'd,
      // which would keep Node alive after the script ends. They only ever work while the main
      // thread waits on them, so unref'd they still compute and the process can exit.
      for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
      return backend;
    },
    2,
  );
  return () => {
    module.PThread?.terminateAllThreads();
    tf.removeBackend("wasm");
    wasmPkg.setThreadsCount(-1);
    if (original) tf.registerBackend("wasm", original.factory, original.priority);
  };
}
