/**
 * Plumbing shared by the wasm training kernels: calling another registered kernel directly
 * (no engine bookkeeping, so the caller frees what it makes), and running a kernel on the cpu
 * backend for the rare shapes a fast path does not cover.
 */
import * as tf from "@tensorflow/tfjs";

type NamedInfos = Record<string, tf.TensorInfo>;
type Attrs = Record<string, unknown> | undefined;

/** The part of tfjs-backend-wasm's BackendWasm the kernels use. */
export interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  readSync(dataId: object): tf.backend_util.BackendValues;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** A kernel function as captured from the registry before this module overrides anything. */
export type RawKernel = (inputs: NamedInfos, attrs: Attrs, backend: WasmBackend) => tf.TensorInfo;

/** Captures `kernelName` as registered for `backendName` now, so overrides can still call it. */
export function captureKernel(kernelName: string, backendName: string): RawKernel | undefined {
  const config = tf.getKernel(kernelName, backendName);
  if (!config) return undefined;
  const fn = config.kernelFunc;
  return (inputs, attrs, backend) => fn({ inputs, attrs: (attrs ?? {}) as tf.NamedAttrMap, backend }) as tf.TensorInfo;
}

/** Like captureKernel, for kernels the fast paths cannot do without: a missing one is a bug. */
export function requireKernel(kernelName: string, backendName: string): RawKernel {
  const k = captureKernel(kernelName, backendName);
  if (!k) throw new Error(`tfjs kernel ${kernelName} is not registered for backend "${backendName}"; check the @tensorflow/tfjs-backend-wasm version (4.22.0 expected).`);
  return k;
}

/**
 * Frees intermediate results of direct kernel calls. They never went through the engine, so
 * tf.tidy cannot see them; each one must be released here or it leaks wasm heap.
 */
export function release(backend: WasmBackend, ...infos: Array<tf.TensorInfo | undefined>): void {
  for (const info of infos) if (info) backend.disposeData(info.dataId);
}

/**
 * Runs the cpu backend's kernel on copies of wasm tensors and returns the result as a new
 * wasm tensor: slow, but exact, for shapes the wasm fast paths do not handle.
 */
export function runOnCpu(kernelName: string, inputs: NamedInfos, attrs: Attrs, backend: WasmBackend): tf.TensorInfo {
  const cpu = tf.findBackend("cpu") as (tf.KernelBackend & { write(v: tf.backend_util.BackendValues, s: number[], d: tf.DataType): object }) | null;
  const config = tf.getKernel(kernelName, "cpu");
  if (!cpu || !config) throw new Error(`No cpu kernel ${kernelName} to fall back on; import @tensorflow/tfjs (which registers the cpu backend).`);
  const cpuInputs: NamedInfos = {};
  for (const [name, t] of Object.entries(inputs)) {
    cpuInputs[name] = { dataId: cpu.write(backend.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
  }
  try {
    const out = config.kernelFunc({ inputs: cpuInputs, attrs: (attrs ?? {}) as tf.NamedAttrMap, backend: cpu }) as tf.TensorInfo;
    const values = cpu.readSync(out.dataId) as tf.backend_util.BackendValues;
    cpu.disposeData(out.dataId);
    return backend.makeOutput(out.shape, out.dtype, undefined, values);
  } finally {
    for (const t of Object.values(cpuInputs)) cpu.disposeData(t.dataId);
  }
}

/**
 * Swaps the last two axes of a float32 tensor in a cache-blocked JS loop: about twice as fast
 * as wasm's Transpose kernel for matrices (5.5 ms vs 11 ms for 2048x512 on the dev machine).
 */
export function transposeLastTwo(x: tf.TensorInfo, backend: WasmBackend): tf.TensorInfo {
  const rank = x.shape.length;
  const R = x.shape[rank - 2];
  const C = x.shape[rank - 1];
  const B = x.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([...x.shape.slice(0, -2), C, R], x.dtype);
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const T = 32; // a 32x32 float tile of source and destination fits in L1
  for (let b = 0; b < B; b++) {
    const o = b * R * C;
    for (let r0 = 0; r0 < R; r0 += T) {
      const rEnd = Math.min(R, r0 + T);
      for (let c0 = 0; c0 < C; c0 += T) {
        const cEnd = Math.min(C, c0 + T);
        for (let r = r0; r < rEnd; r++) {
          const s = o + r * C;
          for (let c = c0; c < cEnd; c++) dst[o + c * R + r] = src[s + c];
        }
      }
    }
  }
  return out;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
