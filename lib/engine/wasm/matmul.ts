/**
 * BatchMatMul for wasm without its slow transposed paths. Dense layers' backward pass needs
 * x^T * dy (transposeA) and dy * W^T (transposeB); wasm's kernel runs those as strided loops,
 * 10-15x slower than its XNNPACK product of untransposed operands. Here a transposed operand is
 * transposed explicitly first, and for a * b^T with a large b (the weight matrix) the product
 * is computed as (b * a^T)^T so that only the small operands are moved.
 */
import * as tf from "@tensorflow/tfjs";
import { RawKernel, WasmBackend, release, sizeOf, transposeLastTwo } from "./util";

/** BatchMatMul kernel function wrapping the native one (`native`, captured before override). */
export function makeBatchMatMul(native: RawKernel): tf.KernelFunc {
  const plain = { transposeA: false, transposeB: false };
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if ((!transposeA && !transposeB) || a.dtype !== "float32" || b.dtype !== "float32") return native({ a, b }, attrs, wasm);
    const temps: tf.TensorInfo[] = [];
    try {
      let left = a;
      if (transposeA) temps.push((left = transposeLastTwo(a, wasm)));
      if (!transposeB) return native({ a: left, b }, plain, wasm);
      const rows = left.shape[left.shape.length - 2];
      const cols = b.shape[b.shape.length - 2];
      if (sizeOf(b.shape) > sizeOf(left.shape) + rows * cols) {
        const leftT = transposeLastTwo(left, wasm);
        temps.push(leftT);
        const product = native({ a: b, b: leftT }, plain, wasm);
        temps.push(product);
        return transposeLastTwo(product, wasm);
      }
      const bT = transposeLastTwo(b, wasm);
      temps.push(bT);
      return native({ a: left, b: bT }, plain, wasm);
    } finally {
      release(wasm, ...temps);
    }
  };
}
