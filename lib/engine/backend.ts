/**
 * Backend choice. On first use the library picks the fastest tfjs backend that actually
 * loads, in order tfjs-node-gpu (with a visible GPU), tfjs-node, wasm, cpu, and says once,
 * in plain words, which one runs and why. TFJS_BACKEND=tensorflow|wasm|cpu forces one.
 * UTKFACE_WASM_THREADS=2 (opt-in) runs wasm on 2 threads; see lib/engine/wasm/threads.ts.
 *
 * A native backend is detected by its registration (`tf.findBackend('tensorflow')`), not by a
 * successful require: in this project's install, "@tensorflow/tfjs-node" can resolve to an
 * alias of pure @tensorflow/tfjs (the danfojs-node override), which registers nothing.
 */
import * as os from "os";
import * as tf from "@tensorflow/tfjs";
import { installThreadedWasm, requestedWasmThreads, WASM_THREADS_ENV } from "./wasm/threads";

/** Names accepted by TFJS_BACKEND. */
export const BACKEND_NAMES = ["tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What was chosen and why. */
export interface BackendInfo {
  /** tfjs backend name: "tensorflow" (tfjs-node or tfjs-node-gpu), "wasm" or "cpu". */
  name: BackendName;
  /** The package that provides it, e.g. "@tensorflow/tfjs-node-gpu". */
  provider: string;
  /** Whether a GPU does the work. */
  gpu: boolean;
  /** Threads the backend computes with: 1 for cpu; for wasm 1 unless UTKFACE_WASM_THREADS asks for more; 0 = TensorFlow decides. */
  threads: number;
  /** Under wasm: "wasm + oneDNN 2.6.3, 2 threads" or "wasm kernels: <why not oneDNN>". */
  engine?: string;
  /** One plain sentence, e.g. "wasm + oneDNN 2.6.3, 2 threads (wasm: tfjs-node not installed)". */
  reason: string;
}

let chosen: Promise<BackendInfo> | undefined;
let quiet = false;

/** Silences the one-line backend message (tests, benchmarks with --json). */
export function setBackendQuiet(value: boolean): void {
  quiet = value;
}

/** Runs `fn` with tfjs's "Hi there, install tfjs-node" banners filtered out of the console. */
async function withoutTfjsBanners<T>(fn: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  const log = console.log;
  const banner = (args: unknown[]) =>
    typeof args[0] === "string" &&
    /(Hi there|To speed things up|tfjs-node|Platform node has already been set|was already registered)/.test(args[0]);
  console.warn = (...args: unknown[]) => (banner(args) ? undefined : warn(...args));
  console.log = (...args: unknown[]) => (banner(args) ? undefined : log(...args));
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.log = log;
  }
}

function tryRequire(name: string): string | undefined {
  try {
    // danfojs-node's override installs pure @tensorflow/tfjs under the name tfjs-node.
    if (require(`${name}/package.json`).name !== name) return "not installed (only a pure-JS alias)";
    require(name);
    return undefined;
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    return /Cannot find module/.test(msg) ? "not installed" : `failed to load (${msg})`;
  }
}

/** Tries the native packages; returns which one registered the "tensorflow" backend. */
function loadNative(): { provider?: string; gpu: boolean; notes: string[] } {
  const notes: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    const err = tryRequire(pkg);
    if (tf.findBackend("tensorflow")) {
      // tfjs-node's backend says whether TensorFlow placed ops on a GPU.
      const be = tf.findBackend("tensorflow") as unknown as { isUsingGpuDevice?: boolean };
      return { provider: pkg, gpu: Boolean(be?.isUsingGpuDevice), notes };
    }
    notes.push(`${pkg.replace("@tensorflow/", "")} ${err ?? "installed without libtensorflow"}`);
  }
  return { gpu: false, notes };
}

async function choose(): Promise<BackendInfo> {
  const forced = process.env.TFJS_BACKEND?.trim();
  if (forced && !(BACKEND_NAMES as readonly string[]).includes(forced)) {
    throw new Error(`TFJS_BACKEND="${forced}" is not a backend name. Use one of: ${BACKEND_NAMES.join(", ")}; or unset it.`);
  }
  // Read before anything loads, so a bad value fails fast with its own message.
  const wasmThreads = requestedWasmThreads();
  const native = forced === undefined || forced === "" || forced === "tensorflow" ? loadNative() : { gpu: false, notes: [] as string[] };
  let info: BackendInfo;
  if (native.provider && (!forced || forced === "tensorflow")) {
    await tf.setBackend("tensorflow");
    const why = native.provider.endsWith("gpu") && !native.gpu ? ", no GPU visible: TensorFlow runs on the CPU" : "";
    info = { name: "tensorflow", provider: native.provider, gpu: native.gpu, threads: 0, reason: `tensorflow (${native.provider})${why}` };
  } else if (forced === "tensorflow") {
    throw new Error(
      `TFJS_BACKEND=tensorflow but no native backend loaded (${native.notes.join("; ")}). ` +
        "Install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu where its libtensorflow download is reachable, or unset TFJS_BACKEND.",
    );
  } else if (forced !== "cpu" && (await tryWasm(wasmThreads))) {
    const { registerTrainingKernels } = await import("./wasm/training-kernels");
    const wasmThreadCount = registerTrainingKernels();
    // oneDNN under the hot kernels when its addon is built (lib/engine/onednn), else wasm's own.
    const { registerOneDnnKernels, describeOneDnn } = await import("./onednn/engine");
    const threadsEnv = clampThreadsEnv(process.env);
    if (threadsEnv.warning) process.stderr.write(`warning: ${threadsEnv.warning}\n`);
    const onednn = registerOneDnnKernels(threadsEnv.env);
    const threads = onednn.active ? onednn.threads! : wasmThreadCount;
    const why = forced ? "wasm: forced by TFJS_BACKEND" : `wasm: ${native.notes.join(", ")}`;
    const engine = onednn.active ? `wasm + ${describeOneDnn(onednn)}` : describeOneDnn(onednn);
    info = { name: "wasm", provider: "@tensorflow/tfjs-backend-wasm", gpu: false, threads, engine, reason: `${engine} (${why})${threadNote(wasmThreads, wasmThreadCount)}` };
  } else {
    await tf.setBackend("cpu");
    info = { name: "cpu", provider: "@tensorflow/tfjs-backend-cpu", gpu: false, threads: 1, reason: forced === "cpu" ? "cpu: forced by TFJS_BACKEND" : "cpu: neither tfjs-node nor wasm loaded" };
  }
  await tf.ready();
  return info;
}

/** oneDNN's thread-count variable (lib/engine/onednn reads it; named here to check it before it loads). */
export const ONEDNN_THREADS_ENV = "UTKFACE_THREADS";

/**
 * UTKFACE_THREADS above this machine's cores (e.g. 999 on 2 cores) only oversubscribes them:
 * the count is clamped to the cores, with a warning that says so. Anything that is not a whole
 * number is left for oneDNN's own check, which refuses it.
 */
export function clampThreadsEnv(env: NodeJS.ProcessEnv, cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length): { env: NodeJS.ProcessEnv; warning?: string } {
  const raw = env[ONEDNN_THREADS_ENV]?.trim();
  const n = Number(raw);
  if (!raw || !Number.isInteger(n) || n <= cores) return { env };
  return {
    env: { ...env, [ONEDNN_THREADS_ENV]: String(cores) },
    warning: `${ONEDNN_THREADS_ENV}=${raw} asks for more threads than this machine's ${cores} core(s): using ${cores} (more threads than cores only slows each one down). Set ${ONEDNN_THREADS_ENV} to 1..${cores}, or unset it for all cores.`,
  };
}

/** Set when the threaded wasm build was asked for but could not start (said in the reason). */
let threadFailure: string | undefined;

function threadNote(requested: number, actual: number): string {
  if (threadFailure) return ` (${WASM_THREADS_ENV}=${requested} failed: ${threadFailure}; single-threaded)`;
  return requested > 1 ? ` (${actual} threads, ${WASM_THREADS_ENV})` : "";
}

/**
 * Starts the wasm backend; with UTKFACE_WASM_THREADS > 1 its threaded build first, falling back
 * to the single-threaded build (never failing the run) if that does not start.
 */
async function tryWasm(threads: number): Promise<boolean> {
  try {
    require("@tensorflow/tfjs-backend-wasm");
  } catch {
    return false;
  }
  if (threads > 1) {
    let restore: (() => void) | undefined;
    try {
      restore = await installThreadedWasm(threads);
      if (await tf.setBackend("wasm")) return true;
      threadFailure = "the threaded module did not initialise";
    } catch (e) {
      threadFailure = (e as Error).message.split("\n")[0];
    }
    restore?.();
  }
  try {
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

/**
 * Picks and initialises the backend once per process (later calls return the same answer).
 * Every library function that computes with tfjs awaits this first.
 */
export function initBackend(): Promise<BackendInfo> {
  if (!chosen) {
    chosen = withoutTfjsBanners(choose).then((info) => {
      if (!quiet) console.log(`[utkface-ts] backend ${info.reason}`);
      return info;
    });
  }
  return chosen;
}

export { tf };
