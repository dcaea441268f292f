/**
 * BatchMatMul for wasm with transposeA done as an explicit transpose first. Dense layers'
 * weight gradient is x^T * dy; wasm's kernel reads A column-wise for transposeA and runs about
 * 15x slower than a Transpose followed by a plain product.
 */
import * as tf from "@tensorflow/tfjs";
import { RawKernel, WasmBackend, release, requireKernel } from "./util";

/** BatchMatMul kernel function wrapping the native one (`native`, captured before override). */
export function makeBatchMatMul(native: RawKernel): tf.KernelFunc {
  const transpose = requireKernel("Transpose", "wasm");
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!transposeA || a.dtype !== "float32") return native({ a, b }, attrs, wasm);
    const rank = a.shape.length;
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    const aT = transpose({ x: a }, { perm }, wasm);
    try {
      return native({ a: aT, b }, { transposeA: false, transposeB }, wasm);
    } finally {
      release(wasm, aT);
    }
  };
}
