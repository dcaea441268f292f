/**
 * Training kernels for tfjs's wasm backend, registered through tfjs's public kernel registry.
 *
 * tfjs-backend-wasm 4.22 cannot train a conv net (no Conv2DBackpropFilter, tfjs issue 8474)
 * and its Conv2DBackpropInput and transposed BatchMatMul are slow loops and its MaxPoolGrad is
 * wrong for some shapes (see pool.ts). This module adds or replaces exactly those four kernels
 * for the "wasm" backend, and makes its Identity and same-type Cast share their input's data as
 * the cpu backend's do, instead of copying every byte (a report CNN training step runs about 115
 * of them: 8% of its time), and so a Slice of the whole tensor (tfjs-layers' predict and fit
 * slice every batch out of their input, also when it is the whole input); every other backend
 * (tfjs-node's "tensorflow", "cpu", "webgl") is left untouched.
 */
import * as tf from "@tensorflow/tfjs";
import { makeConv2DBackpropFilter, makeConv2DBackpropInput } from "./conv";
import { makeBatchMatMul } from "./matmul";
import { makeMaxPoolGrad } from "./pool";
import { captureKernel } from "./util";

/** Kernels this module provides for wasm, by tfjs kernel name. */
export const WASM_TRAINING_KERNELS = ["Conv2DBackpropFilter", "Conv2DBackpropInput", "BatchMatMul", "MaxPoolGrad", "Identity", "Cast", "Slice"] as const;

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
  install("Identity", (native) => makeSharedIdentity(native, false));
  install("Cast", (native) => makeSharedIdentity(native, true));
  install("Slice", (native) => makeSharedWholeSlice(native));
  return wasmThreadsCount();
}

/**
 * Identity, or Cast to the type a tensor already has: the output shares the input's data (one
 * more reference, no copy). tfjs never writes into a tensor's data, so sharing is safe; the cpu
 * backend does the same. Strings and real casts go to wasm's own kernel.
 */
function makeSharedIdentity(native: ReturnType<typeof captureKernel>, cast: boolean): tf.KernelFunc {
  if (!native) throw new Error(`tfjs-backend-wasm registers no ${cast ? "Cast" : "Identity"} kernel; expected @tensorflow/tfjs-backend-wasm 4.22.0.`);
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    const dtype = cast ? (args.attrs as { dtype?: tf.DataType }).dtype : x.dtype;
    if (x.dtype === "string" || dtype !== x.dtype) return native(args.inputs as Parameters<typeof native>[0], args.attrs, args.backend as Parameters<typeof native>[2]);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/** A Slice that keeps every element (begin 0, full size) shares its input's data; any other goes to wasm's kernel. */
function makeSharedWholeSlice(native: ReturnType<typeof captureKernel>): tf.KernelFunc {
  if (!native) throw new Error("tfjs-backend-wasm registers no Slice kernel; expected @tensorflow/tfjs-backend-wasm 4.22.0.");
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, n] = tf.slice_util.parseSliceParams(x, begin, size);
    const whole = x.dtype !== "string" && b.every((v) => v === 0) && n.every((v, i) => v === x.shape[i]);
    if (!whole) return native(args.inputs as Parameters<typeof native>[0], args.attrs, args.backend as Parameters<typeof native>[2]);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
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
