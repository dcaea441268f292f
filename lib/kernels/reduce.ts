/**
 * Sum over every axis but the last, for wasm: the bias gradient of each conv and dense layer.
 * wasm's Sum transposes the reduced axes innermost first; a product with a row of ones lets
 * XNNPACK do it about 9x faster (13.5 ms vs 1.5 ms for a 25x70x70x32 gradient).
 */
import * as tf from "@tensorflow/tfjs";
import { RawKernel, WasmBackend, release, sizeOf } from "./util";

/** Sum kernel function for wasm; other reductions go to `native`. */
export function makeSum(native: RawKernel, batchMatMul: () => RawKernel): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== "float32" || sizeOf(x.shape) === 0) return native({ x }, attrs, wasm);
    const C = x.shape[rank - 1];
    const R = sizeOf(x.shape) / C;
    const ones = wasm.makeOutput([1, R], "float32");
    wasm.typedArrayFromHeap(ones).fill(1);
    let product: tf.TensorInfo | undefined;
    try {
      product = batchMatMul()({ a: ones, b: { dataId: x.dataId, shape: [R, C], dtype: x.dtype } }, { transposeA: false, transposeB: false }, wasm);
      const result = { dataId: product.dataId, shape: keepDims ? [...Array(rank - 1).fill(1), C] : [C], dtype: x.dtype };
      product = undefined;
      return result;
    } finally {
      release(wasm, ones, product);
    }
  };
}
