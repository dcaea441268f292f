/**
 * Convolution gradients for the wasm backend, both expressed as forward convolutions so that
 * XNNPACK's fast Conv2D does the arithmetic:
 *
 * - Conv2DBackpropFilter (missing from tfjs-backend-wasm 4.22, tfjs issue 8474):
 *   dW[i,j,c,o] = sum over n,p,q of x[n, p*s+i-pad, q*s+j-pad, c] * dy[n,p,q,o], which is a
 *   'valid' stride-1 conv of x seen as [inC, H, W, batch] with dy seen as a [outH, outW, batch,
 *   outC] filter dilated by the stride.
 * - Conv2DBackpropInput (wasm has one, a naive loop many times slower): a conv of dy, padded by
 *   k-1-pad with zeros between rows/columns for stride > 1, with the filter flipped spatially
 *   and its channels swapped.
 *
 * Shapes outside these paths (NCHW, padding larger than the filter) run the cpu kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { RawKernel, WasmBackend, release, requireKernel, runOnCpu } from "./util";

interface ConvGradAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

interface Prims {
  conv2d: RawKernel;
  transpose: RawKernel;
  slice: RawKernel;
}

function prims(): Prims {
  return { conv2d: requireKernel("Conv2D", "wasm"), transpose: requireKernel("Transpose", "wasm"), slice: requireKernel("Slice", "wasm") };
}

/** Explicit NHWC padding for a forward Conv2D call. */
function explicitPad(top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/** Conv2DBackpropFilter kernel function for wasm (inputs x, dy; attr filterShape). */
export function makeConv2DBackpropFilter(): tf.KernelFunc {
  const p = prims();
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as ConvGradAttrs & { filterShape: [number, number, number, number] };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, "channelsLast",
    );
    const { inHeight: H, inWidth: W, outHeight: oH, outWidth: oW, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW, padInfo } = info;
    if (a.dataFormat === "NCHW" || padInfo.top < 0 || padInfo.left < 0 || x.dtype !== "float32") {
      return runOnCpu("Conv2DBackpropFilter", { x, dy }, attrs, wasm);
    }
    // Rows the dilated dy "filter" must sweep so that exactly kH output rows come out;
    // a negative value means x has rows no output used ('valid', stride > 1): crop after.
    const padBottom = kH + (oH - 1) * sH - H - padInfo.top;
    const padRight = kW + (oW - 1) * sW - W - padInfo.left;
    const xT = p.transpose({ x }, { perm: [3, 1, 2, 0] }, wasm); // [inC, H, W, batch]
    const dyT = p.transpose({ x: dy }, { perm: [1, 2, 0, 3] }, wasm); // [outH, outW, batch, outC]
    let dw: tf.TensorInfo | undefined;
    let cropped: tf.TensorInfo | undefined;
    try {
      dw = p.conv2d(
        { x: xT, filter: dyT },
        { strides: 1, pad: explicitPad(padInfo.top, Math.max(0, padBottom), padInfo.left, Math.max(0, padRight)), dilations: [sH, sW], dataFormat: "NHWC" },
        wasm,
      ); // [inC, kH', kW', outC]
      if (dw.shape[1] !== kH || dw.shape[2] !== kW) {
        cropped = p.slice({ x: dw }, { begin: [0, 0, 0, 0], size: [dw.shape[0], kH, kW, dw.shape[3]] }, wasm);
      }
      return p.transpose({ x: cropped ?? dw }, { perm: [1, 2, 0, 3] }, wasm);
    } finally {
      release(wasm, xT, dyT, dw, cropped);
    }
  };
}

/**
 * The filter for the input gradient: flipped in both spatial axes and with in/out channels
 * swapped, [kH, kW, inC, outC] -> [kH, kW, outC, inC]. A plain loop: one pass over the
 * weights, far cheaper than reverse + transpose kernels.
 */
function flippedFilter(filter: tf.TensorInfo, wasm: WasmBackend): tf.TensorInfo {
  const [kH, kW, C, O] = filter.shape;
  const out = wasm.makeOutput([kH, kW, O, C], "float32");
  // Views are taken after makeOutput: an allocation can grow (and move) the wasm heap.
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  const src = wasm.typedArrayFromHeap(filter) as Float32Array;
  for (let i = 0; i < kH; i++) {
    for (let j = 0; j < kW; j++) {
      const srcTap = ((kH - 1 - i) * kW + (kW - 1 - j)) * C * O;
      const dstTap = (i * kW + j) * O * C;
      for (let c = 0; c < C; c++) {
        const s = srcTap + c * O;
        for (let o = 0; o < O; o++) dst[dstTap + o * C + c] = src[s + o];
      }
    }
  }
  return out;
}

/** dy with (stride - 1) zero rows/columns between its rows/columns: [N, (oH-1)*sH+1, (oW-1)*sW+1, C]. */
function dilatedGradient(dy: tf.TensorInfo, sH: number, sW: number, wasm: WasmBackend): tf.TensorInfo {
  const [N, oH, oW, C] = dy.shape;
  const dH = (oH - 1) * sH + 1;
  const dW = (oW - 1) * sW + 1;
  const out = wasm.makeOutput([N, dH, dW, C], "float32");
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  const src = wasm.typedArrayFromHeap(dy) as Float32Array;
  dst.fill(0); // wasm's malloc does not clear memory
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < oH; p++) {
      for (let q = 0; q < oW; q++) {
        const s = ((n * oH + p) * oW + q) * C;
        dst.set(src.subarray(s, s + C), ((n * dH + p * sH) * dW + q * sW) * C);
      }
    }
  }
  return out;
}

/** Conv2DBackpropInput kernel function for wasm (inputs dy, filter; attr inputShape). */
export function makeConv2DBackpropInput(nativeKernel: RawKernel | undefined): tf.KernelFunc {
  const p = prims();
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as unknown as ConvGradAttrs & { inputShape: [number, number, number, number] };
    const fallback = () => (nativeKernel ? nativeKernel({ dy, filter }, attrs, wasm) : runOnCpu("Conv2DBackpropInput", { dy, filter }, attrs, wasm));
    if (a.dataFormat === "NCHW" || dy.dtype !== "float32") return fallback();
    const info = tf.backend_util.computeConv2DInfo(
      a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, false, "channelsLast",
    );
    const { inHeight: H, inWidth: W, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW, padInfo } = info;
    const top = kH - 1 - padInfo.top;
    const left = kW - 1 - padInfo.left;
    if (top < 0 || left < 0) return fallback();
    let spread: tf.TensorInfo | undefined;
    let flipped: tf.TensorInfo | undefined;
    let dx: tf.TensorInfo | undefined;
    try {
      flipped = flippedFilter(filter, wasm);
      spread = sH > 1 || sW > 1 ? dilatedGradient(dy, sH, sW, wasm) : undefined;
      const src = spread ?? dy;
      // Output rows of a stride-1 'valid' conv = rows + top + bottom - kH + 1, which must be H.
      const bottom = H + kH - 1 - top - src.shape[1];
      const right = W + kW - 1 - left - src.shape[2];
      dx = p.conv2d({ x: src, filter: flipped }, { strides: 1, pad: explicitPad(top, Math.max(0, bottom), left, Math.max(0, right)), dilations: 1, dataFormat: "NHWC" }, wasm);
      if (dx.shape[1] === H && dx.shape[2] === W) {
        const result = dx;
        dx = undefined;
        return result;
      }
      return p.slice({ x: dx }, { begin: [0, 0, 0, 0], size: [dx.shape[0], H, W, dx.shape[3]] }, wasm);
    } finally {
      release(wasm, spread, flipped, dx);
    }
  };
}
