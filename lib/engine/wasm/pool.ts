/**
 * MaxPoolGrad for wasm when the window tiles the input (stride == window, no padding: every
 * pooling layer in the report's models). Each input cell belongs to exactly one window, so one
 * pass routes each dy value to its window's first maximum, the same tie rule as the cpu kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, runOnCpu } from "./util";

interface PoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: "valid" | "same" | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** MaxPoolGrad kernel function for wasm; other shapes run the cpu kernel. */
export function makeMaxPoolGrad(): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { dy, input, output } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo; output: tf.TensorInfo };
    const a = attrs as unknown as PoolGradAttrs;
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: oH, outWidth: oW, filterHeight: fH, filterWidth: fW, strideHeight: sH, strideWidth: sW, padInfo } = info;
    const tiles = fH === sH && fW === sW && padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0;
    if (!tiles || input.dtype !== "float32") {
      // Not the native wasm kernel: in 4.22 it disagrees with cpu (and with the definition) for
      // overlapping 'same'-padded windows, e.g. 3x3 stride 2 on 7x7.
      return runOnCpu("MaxPoolGrad", { dy, input, output }, attrs, wasm);
    }
    const dx = wasm.makeOutput(input.shape, "float32");
    const out = wasm.typedArrayFromHeap(dx) as Float32Array;
    const x = wasm.typedArrayFromHeap(input) as Float32Array;
    const g = wasm.typedArrayFromHeap(dy) as Float32Array;
    out.fill(0); // cells that are not a window's maximum (and rows/cols past the last window) get 0
    // Channels innermost: every read walks memory forward. Taps in row-major order with a
    // strict '>' keep the first maximum, as the cpu kernel does.
    const best = new Float32Array(C);
    const at = new Int32Array(C);
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < oH; p++) {
        for (let q = 0; q < oW; q++) {
          best.fill(-Infinity);
          at.fill(-1);
          for (let i = 0; i < fH; i++) {
            for (let j = 0; j < fW; j++) {
              const base = ((n * H + p * sH + i) * W + q * sW + j) * C;
              for (let c = 0; c < C; c++) {
                const v = x[base + c];
                if (v > best[c]) {
                  best[c] = v;
                  at[c] = base + c;
                }
              }
            }
          }
          const gBase = ((n * oH + p) * oW + q) * C;
          // A window of only NaN or -Infinity has no maximum; the cpu kernel passes no gradient.
          for (let c = 0; c < C; c++) if (at[c] >= 0) out[at[c]] = g[gBase + c];
        }
      }
    }
    return dx;
  };
}
