/**
 * Training kernels for tfjs's wasm backend, registered through tfjs's public kernel registry.
 *
 * tfjs-backend-wasm 4.22 cannot train a conv net (no Conv2DBackpropFilter, tfjs issue 8474)
 * and its Conv2DBackpropInput and transposed BatchMatMul are slow loops and its MaxPoolGrad is
 * wrong for some shapes (see pool.ts). This module adds or replaces exactly those four kernels
 * for the "wasm" backend; every other backend (tfjs-node's "tensorflow", "cpu", "webgl") is left
 * untouched.
 */
import * as tf from "@tensorflow/tfjs";
import { makeConv2DBackpropFilter, makeConv2DBackpropInput } from "./conv";
import { makeBatchMatMul } from "./matmul";
import { makeMaxPoolGrad } from "./pool";
import { captureKernel } from "./util";

/** Kernels this module provides for wasm, by tfjs kernel name. */
export const WASM_TRAINING_KERNELS = ["Conv2DBackpropFilter", "Conv2DBackpropInput", "BatchMatMul", "MaxPoolGrad"] as const;

/** Marks our configs so a second call (or a second copy of the library) does not wrap twice. */
const OURS = Symbol.for("utkface-ts.trainingKernel");

function isOurs(config: tf.KernelConfig | undefined): boolean {
  return Boolean(config && (config as unknown as Record<symbol, unknown>)[OURS]);
}

/** Replaces (or adds) one wasm kernel, keeping the original's setup so a backend re-init still works. */
function install(kernelName: string, make: (native: ReturnType<typeof captureKernel>) => tf.KernelFunc): void {
  const existing = tf.getKernel(kernelName, "wasm");
  if (isOurs(existing)) return;
  const native = captureKernel(kernelName, "wasm");
  const config: tf.KernelConfig = { kernelName, backendName: "wasm", kernelFunc: make(native), setupFunc: existing?.setupFunc, disposeFunc: existing?.disposeFunc };
  (config as unknown as Record<symbol, unknown>)[OURS] = true;
  if (existing) tf.unregisterKernel(kernelName, "wasm");
  tf.registerKernel(config);
}

/** Whether this module's kernels are the ones registered for wasm now. */
export function trainingKernelsInstalled(): boolean {
  return WASM_TRAINING_KERNELS.every((name) => isOurs(tf.getKernel(name, "wasm")));
}

/**
 * Registers the wasm training kernels when the wasm backend is registered (idempotent), and
 * returns the number of threads the wasm backend computes with (1 unless threads were enabled,
 * see lib/engine/backend.ts). Other backends need nothing and get nothing.
 */
export function registerTrainingKernels(): number {
  if (!tf.getKernel("Conv2D", "wasm")) return 1; // tfjs-backend-wasm not loaded: nothing to fix
  install("Conv2DBackpropFilter", () => makeConv2DBackpropFilter());
  install("Conv2DBackpropInput", (native) => makeConv2DBackpropInput(native));
  install("BatchMatMul", (native) => {
    if (!native) throw new Error("tfjs-backend-wasm registers no BatchMatMul kernel; expected @tensorflow/tfjs-backend-wasm 4.22.0.");
    return makeBatchMatMul(native);
  });
  install("MaxPoolGrad", () => makeMaxPoolGrad());
  return wasmThreadsCount();
}

/** Threads the initialised wasm backend uses (1 when it is not initialised or single-threaded). */
export function wasmThreadsCount(): number {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const n = require("@tensorflow/tfjs-backend-wasm").getThreadsCount() as number;
    return n > 0 ? n : 1;
  } catch {
    return 1;
  }
}

export { requestedWasmThreads, WASM_THREADS_ENV, MAX_WASM_THREADS } from "./threads";
