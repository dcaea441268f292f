/**
 * tfjs kernels for the wasm backend that hand the arithmetic to oneDNN (native/src/addon.cc).
 *
 * A wasm tensor's bytes sit in the module's linear memory at `dataIdMap.get(dataId).memoryOffset`;
 * the addon reads the operands and writes the output there in place, so a kernel costs one
 * output allocation and no copy. The heap view is taken after the output is allocated: an
 * allocation can grow the memory, which detaches views taken before it.
 *
 * Each kernel covers float32 NHWC, the layout tfjs keeps; anything else (NCHW, int inputs,
 * PReLU, shapes oneDNN refuses) goes to the kernel that was registered before, so the answer
 * is never wrong, only slower.
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "../wasm/util";
import { runOnCpu } from "../wasm/util";
import type { OneDnnAddon } from "./addon";
import { BATCH_NORM_GRAD_PARAMS, BATCH_NORM_PARAMS, CONV_PARAMS, MATMUL_PARAMS, POOL_PARAMS, paramWriter } from "./layouts";

/** The wasm backend's internals the kernels read: tensor offsets and the heap. */
interface WasmInternals extends WasmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
/** What to run when a fast path does not apply: the kernel registered before ours, or cpu's. */
export type Fallback = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** Activation codes of the addon's post-ops (0 = none); absent names (prelu) fall back. */
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, elu: 3, leakyrelu: 4, sigmoid: 5 };

// Parameter arrays reused across calls, written by name in the addon's layouts.
const convParams = paramWriter(CONV_PARAMS);
const matmulParams = paramWriter(MATMUL_PARAMS);
const poolParams = paramWriter(POOL_PARAMS);

const CONV = { forwardTraining: 0, forwardInference: 1, backwardData: 2, backwardWeights: 3 } as const;

/**
 * A number per tensor data (dataId), never reused: tfjs never changes a tensor's values (an
 * optimizer's update gives the variable new data), so the addon may keep a filter's reordered
 * copy for as long as the same id comes back (every inference batch; a step's backward-data
 * call after its forward call).
 */
const dataIds = new WeakMap<object, number>();
let nextDataId = 1;
function idOf(t: tf.TensorInfo): number {
  let id = dataIds.get(t.dataId);
  if (id === undefined) {
    id = nextDataId++;
    dataIds.set(t.dataId, id);
  }
  return id;
}

function offsetOf(be: WasmInternals, t: tf.TensorInfo): number {
  return be.dataIdMap.get(t.dataId).memoryOffset;
}

function allFloat(...ts: Array<tf.TensorInfo | undefined>): boolean {
  return ts.every((t) => !t || t.dtype === "float32");
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Shapes oneDNN refused once (an exotic rounding mode, say): go straight to the fallback. */
const refused = new Set<string>();

/**
 * Fills convParams from tfjs's conv info. `op` picks the primitive; `groups` is 1 or, for
 * depthwise, the input channels.
 */
function convParamsFor(op: number, info: tf.backend_util.Conv2DInfo, groups: number, hasBias: boolean, act: number): Int32Array {
  const { padInfo } = info;
  return convParams({
    op, n: info.batchSize, h: info.inHeight, w: info.inWidth, c: info.inChannels, o: info.outChannels, kh: info.filterHeight, kw: info.filterWidth,
    oh: info.outHeight, ow: info.outWidth, sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
    pt: padInfo.top, pl: padInfo.left, pb: padInfo.bottom, pr: padInfo.right, g: groups, bias: hasBias ? 1 : 0, act,
  });
}

/** Runs one addon call for an output of `shape`; on a oneDNN refusal frees it and returns undefined. */
function withOutput(be: WasmInternals, shape: number[], key: string, call: (heap: Uint8Array, out: number) => void): tf.TensorInfo | undefined {
  if (refused.has(key)) return undefined;
  const out = be.makeOutput(shape, "float32");
  try {
    call(be.wasm.HEAPU8, offsetOf(be, out));
    return out;
  } catch (e) {
    be.disposeData(out.dataId);
    if (!/^oneDNN:/.test((e as Error).message)) throw e;
    refused.add(key);
    return undefined;
  }
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW" | "channelsLast";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
  activation?: string;
  leakyreluAlpha?: number;
}

function nchw(a: ConvAttrs): boolean {
  return a.dataFormat === "NCHW";
}

type Shape4 = [number, number, number, number];

/** tfjs's conv info (NHWC) of an input and filter shape under a conv kernel's attributes. */
function convInfo(input: readonly number[], filter: readonly number[], a: ConvAttrs, depthwise: boolean): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(input as Shape4, filter as Shape4, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, depthwise, "channelsLast");
}

/**
 * Conv2D, FusedConv2D, DepthwiseConv2dNative and FusedDepthwiseConv2D. Under a gradient tape
 * tfjs emits the fused kernels only with a linear activation (bias alone); for inference it
 * fuses ReLU & co., which become oneDNN post-ops here.
 */
export function makeConvForward(addon: OneDnnAddon, depthwise: boolean, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const a = args.attrs as unknown as ConvAttrs;
    const act = ACTIVATIONS[a.activation ?? "linear"];
    if (!x || !filter || nchw(a) || act === undefined || preluActivationWeights || !allFloat(x, filter, bias) || x.shape.length !== 4) return fallback(args);
    const info = convInfo(x.shape, filter.shape, a, depthwise);
    if (bias && sizeOf(bias.shape) !== info.outChannels) return fallback(args);
    // Under a tape the forward result feeds a backward pass: training primitives keep what it needs.
    const op = tf.engine().state.gradientDepth > 0 ? CONV.forwardTraining : CONV.forwardInference;
    const p = convParamsFor(op, info, depthwise ? info.inChannels : 1, Boolean(bias), act);
    const out = withOutput(be, info.outShape, `conv${p.join(",")}`, (heap, y) =>
      addon.conv(heap, p, offsetOf(be, x), offsetOf(be, filter), bias ? offsetOf(be, bias) : 0, y, a.leakyreluAlpha ?? 0.2, idOf(filter)),
    );
    return out ?? fallback(args);
  };
}

/**
 * The two convolution gradients, one kernel each way:
 *   "input":  Conv2DBackpropInput and DepthwiseConv2dNativeBackpropInput (inputs dy, filter; attr inputShape);
 *   "filter": Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropFilter (inputs x, dy; attr filterShape).
 */
export function makeConvBackprop(addon: OneDnnAddon, depthwise: boolean, gradient: "input" | "filter", fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number]; filterShape: [number, number, number, number] };
    const toInput = gradient === "input";
    // The addon's two operands: (dy, filter) for the input gradient, (x, dy) for the filter's.
    const [first, second] = toInput ? [inputs.dy, inputs.filter] : [inputs.x, inputs.dy];
    if (nchw(a) || !allFloat(first, second)) return fallback(args);
    const info = toInput ? convInfo(a.inputShape, inputs.filter.shape, a, depthwise) : convInfo(inputs.x.shape, a.filterShape, a, depthwise);
    const p = convParamsFor(toInput ? CONV.backwardData : CONV.backwardWeights, info, depthwise ? info.inChannels : 1, false, 0);
    const outShape = toInput ? [...a.inputShape] : [...a.filterShape];
    // The input gradient reuses the filter's reordered weights (idOf); the filter's is computed fresh.
    const out = withOutput(be, outShape, `conv${p.join(",")}`, (heap, d) =>
      toInput ? addon.conv(heap, p, offsetOf(be, first), offsetOf(be, second), 0, d, 0, idOf(second)) : addon.conv(heap, p, offsetOf(be, first), offsetOf(be, second), 0, d, 0),
    );
    return out ?? fallback(args);
  };
}

/**
 * BatchMatMul and _FusedMatMul. Transposed operands are described to oneDNN by strides (no
 * copy); batch dimensions must be equal or one side a single matrix (broadcast).
 */
export function makeMatMul(addon: OneDnnAddon, fused: boolean, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const at = args.attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: string; leakyreluAlpha?: number };
    const act = ACTIVATIONS[fused ? at.activation ?? "linear" : "linear"];
    if (!a || !b || act === undefined || preluActivationWeights || !allFloat(a, b, bias) || a.shape.length < 2 || a.shape.length !== b.shape.length) return fallback(args);
    const r = a.shape.length;
    const outerA = a.shape.slice(0, r - 2);
    const outerB = b.shape.slice(0, r - 2);
    const batchA = sizeOf(outerA);
    const batchB = sizeOf(outerB);
    const sameOuter = outerA.every((d, i) => d === outerB[i]);
    if (!sameOuter && batchA !== 1 && batchB !== 1) return fallback(args);
    const M = at.transposeA ? a.shape[r - 1] : a.shape[r - 2];
    const K = at.transposeA ? a.shape[r - 2] : a.shape[r - 1];
    const Kb = at.transposeB ? b.shape[r - 1] : b.shape[r - 2];
    const N = at.transposeB ? b.shape[r - 2] : b.shape[r - 1];
    if (K !== Kb || (bias && sizeOf(bias.shape) !== N)) return fallback(args);
    const outer = batchA >= batchB ? outerA : outerB;
    const p = matmulParams({ ba: batchA, bb: batchB, m: M, k: K, n: N, ta: at.transposeA ? 1 : 0, tb: at.transposeB ? 1 : 0, bias: bias ? 1 : 0, act });
    const out = withOutput(be, [...outer, M, N], `mm${p.join(",")}`, (heap, c) =>
      addon.matMul(heap, p, offsetOf(be, a), offsetOf(be, b), bias ? offsetOf(be, bias) : 0, c, at.leakyreluAlpha ?? 0.2),
    );
    return out ?? fallback(args);
  };
}

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function poolParamsFor(info: tf.backend_util.Conv2DInfo): Int32Array {
  const { padInfo } = info;
  return poolParams({
    n: info.batchSize, h: info.inHeight, w: info.inWidth, c: info.inChannels, oh: info.outHeight, ow: info.outWidth, kh: info.filterHeight, kw: info.filterWidth,
    sh: info.strideHeight, sw: info.strideWidth, pt: padInfo.top, pl: padInfo.left, pb: padInfo.bottom, pr: padInfo.right,
  });
}

/** MaxPool on oneDNN's pooling primitive (NHWC, padded cells never win). */
export function makeMaxPool(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as PoolAttrs;
    if (!allFloat(x) || x.shape.length !== 4) return fallback(args);
    const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const p = poolParamsFor(info);
    const out = withOutput(be, info.outShape, `pool${p.join(",")}`, (heap, y) => addon.maxPool(heap, p, offsetOf(be, x), y));
    return out ?? fallback(args);
  };
}

/**
 * MaxPoolGrad: the addon's loop routes each dy value to its window's first maximum, tfjs cpu's
 * rule, for any window, stride and padding (wasm's own kernel is wrong for overlapping windows).
 */
export function makeMaxPoolGrad(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { dy, input, output } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const a = args.attrs as unknown as PoolAttrs;
    if (!dy || !input || !allFloat(dy, input) || input.shape.length !== 4) return fallback(args);
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const p = poolParamsFor(info);
    const dx = be.makeOutput(input.shape, "float32");
    // The forward's output lets tiling windows find their maximum without a second forward.
    const y = output && allFloat(output) && tf.util.arraysEqual(output.shape, dy.shape) ? offsetOf(be, output) : 0;
    addon.maxPoolGrad(be.wasm.HEAPU8, p, offsetOf(be, input), offsetOf(be, dy), offsetOf(be, dx), y);
    return dx;
  };
}

/** A fallback that runs the cpu backend's kernel on copies (for kernels wasm lacks). */
export function cpuFallback(kernelName: string): Fallback {
  return ({ inputs, attrs, backend }) => runOnCpu(kernelName, inputs as Record<string, tf.TensorInfo>, attrs as Record<string, unknown>, backend as WasmBackend);
}

/**
 * Sum over every axis but the last (a bias gradient: dy summed over batch, height and width),
 * threaded in the addon; wasm's single-threaded Sum took ~15% of a report-CNN training step.
 * Other reductions go to the fallback.
 */
export function makeSum(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    if (!allFloat(x) || rank < 2) return fallback(args);
    const axes = tf.util.parseAxisParam(a.axis, x.shape).sort((p, q) => p - q);
    if (axes.length !== rank - 1 || axes.some((ax, i) => ax !== i)) return fallback(args);
    const cols = x.shape[rank - 1];
    const rows = sizeOf(x.shape) / cols;
    if (rows === 0) return fallback(args);
    const y = be.makeOutput(a.keepDims ? [...x.shape.slice(0, -1).map(() => 1), cols] : [cols], "float32");
    addon.sumRows(be.wasm.HEAPU8, rows, cols, offsetOf(be, x), offsetOf(be, y));
    return y;
  };
}

/**
 * Mean over every axis but the last (BatchNorm's moments): the Sum above, scaled. Other
 * reductions go to the fallback.
 */
export function makeMean(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  const sum = makeSum(addon, () => undefined as unknown as tf.TensorInfo);
  return (args) => {
    const out = sum(args) as tf.TensorInfo | undefined;
    if (!out) return fallback(args);
    const be = args.backend as WasmInternals;
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    const values = be.typedArrayFromHeap(out) as Float32Array;
    const rows = sizeOf(x.shape) / x.shape[x.shape.length - 1];
    for (let i = 0; i < values.length; i++) values[i] /= rows;
    return out;
  };
}

/**
 * Tile by block copies on the heap: each axis copies its first block once and then doubles it
 * with copyWithin, so tiling a [1, 1, 1, C] BatchNorm gradient over [N, H, W] costs a few
 * dozen memmoves (wasm's kernel walks every output element: half of a MobileNet step).
 */
export function makeTile(fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    const { reps } = args.attrs as unknown as { reps: number[] };
    if (x.dtype === "string" || x.dtype === "complex64" || reps.length !== x.shape.length || x.shape.length === 0) return fallback(args);
    const s = x.shape;
    const o = s.map((d, i) => d * reps[i]);
    if (sizeOf(o) === 0) return fallback(args);
    const out = be.makeOutput(o, x.dtype);
    const src = be.typedArrayFromHeap(x);
    const dst = be.typedArrayFromHeap(out);
    const rank = s.length;
    const srcStride = new Array<number>(rank);
    const dstStride = new Array<number>(rank);
    srcStride[rank - 1] = dstStride[rank - 1] = 1;
    for (let k = rank - 2; k >= 0; k--) {
      srcStride[k] = srcStride[k + 1] * s[k + 1];
      dstStride[k] = dstStride[k + 1] * o[k + 1];
    }
    const repeat = (at: number, length: number, times: number) => {
      let done = length;
      const total = length * times;
      while (done < total) {
        const n = Math.min(done, total - done);
        dst.copyWithin(at + done, at, at + n);
        done += n;
      }
    };
    const fill = (axis: number, from: number, to: number) => {
      if (axis === rank - 1) {
        dst.set(src.subarray(from, from + s[axis]), to);
      } else {
        for (let j = 0; j < s[axis]; j++) fill(axis + 1, from + j * srcStride[axis], to + j * dstStride[axis]);
      }
      // The axis' first block (s[axis] source slices) is in place: repeat it reps[axis] times.
      repeat(to, s[axis] * dstStride[axis], reps[axis]);
    };
    fill(0, 0, 0);
    return out;
  };
}

const batchNormParams = paramWriter(BATCH_NORM_PARAMS);

/**
 * FusedBatchNorm (tfjs's batchNorm: given mean and variance, optional scale and offset), 4-D
 * NHWC with per-channel statistics, on oneDNN's batch normalization; wasm's kernel was 45% of
 * a MobileNet inference. Broadcast statistics of other shapes go to the fallback.
 */
export function makeBatchNorm(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
    if (!x || !mean || !variance || x.shape.length !== 4 || !allFloat(x, mean, variance, offset, scale)) return fallback(args);
    const C = x.shape[3];
    if ([mean, variance, offset, scale].some((t) => t && sizeOf(t.shape) !== C) || sizeOf(x.shape) === 0) return fallback(args);
    const p = batchNormParams({ n: x.shape[0], h: x.shape[1], w: x.shape[2], c: C, scale: scale ? 1 : 0, shift: offset ? 1 : 0 });
    const out = withOutput(be, [...x.shape], `bn${p.join(",")}/${varianceEpsilon}`, (heap, y) =>
      addon.batchNorm(heap, p, offsetOf(be, x), offsetOf(be, mean), offsetOf(be, variance), scale ? offsetOf(be, scale) : 0, offset ? offsetOf(be, offset) : 0, y, varianceEpsilon),
    );
    return out ?? fallback(args);
  };
}

/** Name of the wasm kernel computing ClipByValue's (ReLU6's) gradient on the addon. */
export const CLIP_GRAD_KERNEL = "UtkfaceClipByValueGrad";
/** Name of the wasm kernel computing FusedBatchNorm's five gradients on the addon. */
export const BATCH_NORM_GRAD_KERNEL = "UtkfaceFusedBatchNormGrad";

/**
 * ClipByValue's gradient (inputs x, dy; attrs clipValueMin, clipValueMax): dy where
 * min <= x <= max, else 0, in one threaded pass (tfjs writes it as GreaterEqual, LessEqual,
 * LogicalAnd, ZerosLike and Select: five wasm kernels and four full-size temporaries).
 */
export function makeClipGrad(addon: OneDnnAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x, dy } = args.inputs as Record<string, tf.TensorInfo>;
    const { clipValueMin, clipValueMax } = args.attrs as unknown as { clipValueMin: number; clipValueMax: number };
    const dx = be.makeOutput([...x.shape], "float32");
    addon.clipGrad!(be.wasm.HEAPU8, sizeOf(x.shape), offsetOf(be, x), offsetOf(be, dy), offsetOf(be, dx), clipValueMin, clipValueMax);
    return dx;
  };
}

const batchNormGradParams = paramWriter(BATCH_NORM_GRAD_PARAMS);

/**
 * FusedBatchNorm's gradients (inputs x, dy, mean, variance, scale?; attr varianceEpsilon) for
 * per-channel statistics over the last axis: outputs dx, dmean, dvariance, dscale, doffset,
 * the formulas of tfjs's own gradient (FusedBatchNorm_grad), in two passes over x and dy
 * instead of about ten wasm kernels with a Tile and full-size temporaries.
 */
export function makeBatchNormGrad(addon: OneDnnAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x, dy, mean, variance, scale } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
    const C = x!.shape[x!.shape.length - 1];
    const rows = sizeOf(x!.shape) / C;
    const outs = [be.makeOutput([...x!.shape], "float32"), ...[0, 1, 2, 3].map(() => be.makeOutput([C], "float32"))];
    const o = outs.map((t) => offsetOf(be, t));
    addon.batchNormGrad!(
      be.wasm.HEAPU8, batchNormGradParams({ rows, c: C, scale: scale ? 1 : 0 }), offsetOf(be, x!), offsetOf(be, dy!), offsetOf(be, mean!), offsetOf(be, variance!),
      scale ? offsetOf(be, scale) : 0, o[0], o[1], o[2], o[3], o[4], varianceEpsilon,
    );
    return outs;
  };
}

/** Name of the wasm kernel computing a leading-axes Mean's gradient on the addon. */
export const MEAN_GRAD_KERNEL = "UtkfaceMeanGrad";
/** Name of the wasm kernel computing Square's gradient on the addon. */
export const SQUARE_GRAD_KERNEL = "UtkfaceSquareGrad";

/**
 * The gradient of a Mean over every axis but the last (inputs dy of [C] elements; attrs shape,
 * the input's): dy / n copied to every row, one threaded pass (tfjs: Fill, Multiply, RealDiv).
 */
export function makeMeanGrad(addon: OneDnnAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { dy } = args.inputs as Record<string, tf.TensorInfo>;
    const { shape } = args.attrs as unknown as { shape: number[] };
    const cols = shape[shape.length - 1];
    const rows = sizeOf(shape) / cols;
    const dx = be.makeOutput([...shape], "float32");
    addon.meanGrad!(be.wasm.HEAPU8, rows, cols, offsetOf(be, dy), offsetOf(be, dx), 1 / rows);
    return dx;
  };
}

/** A pointwise gradient kernel of the addon (inputs x, dy of one shape, float32): dx in one pass. */
function makePointwiseGrad(name: "squareGrad" | "reluGrad" | "relu6Grad"): (addon: OneDnnAddon) => tf.KernelFunc {
  return (addon) => (args) => {
    const be = args.backend as WasmInternals;
    const { x, dy } = args.inputs as Record<string, tf.TensorInfo>;
    const dx = be.makeOutput([...x.shape], "float32");
    addon[name]!(be.wasm.HEAPU8, sizeOf(x.shape), offsetOf(be, x), offsetOf(be, dy), offsetOf(be, dx));
    return dx;
  };
}

/** Square's gradient (inputs x, dy of one shape): dy * 2x in one pass (tfjs: Cast, two Multiply). */
export const makeSquareGrad = makePointwiseGrad("squareGrad");

/** Name of the wasm kernel computing Relu's gradient on the addon. */
export const RELU_GRAD_KERNEL = "UtkfaceReluGrad";

/**
 * Relu's gradient (inputs x, dy of one shape): dy * step(x) in one threaded pass (tfjs: Step,
 * Cast and Multiply, single-threaded on wasm, with a full-size temporary), to the bit
 * (denormals aside: the addon flushes them unless UTKFACE_DENORMALS=keep).
 */
export const makeReluGrad = makePointwiseGrad("reluGrad");

/**
 * A one-input float32 pass of the addon, into a fresh output of x's shape: Relu, ClipByValue and
 * Relu6 below. Other dtypes, and an addon built before these passes (`ready` false), go to wasm's
 * kernel.
 */
function makeUnaryPass(fallback: Fallback, ready: boolean, pass: (heap: Uint8Array, n: number, x: number, y: number, attrs: tf.NamedAttrMap) => void): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    if (!ready || !allFloat(x)) return fallback(args);
    const be = args.backend as WasmInternals;
    const y = be.makeOutput([...x.shape], "float32");
    pass(be.wasm.HEAPU8, sizeOf(x.shape), offsetOf(be, x), offsetOf(be, y), args.attrs as tf.NamedAttrMap);
    return y;
  };
}

/**
 * Relu, ClipByValue (tfjs-layers' ReLU layer with maxValue 6 is Relu then ClipByValue) and Relu6
 * as one threaded, vectorised addon pass each, in place of wasm's single-threaded XNNPACK clamp;
 * equal to it to the bit (-0, NaN and the ends included; denormals aside). The addon's pass takes
 * x twice (the pointwise pass's unused second input).
 */
export function makeRelu(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return makeUnaryPass(fallback, Boolean(addon.relu), (heap, n, x, y) => addon.relu!(heap, n, x, x, y));
}

/** ClipByValue (attrs clipValueMin, clipValueMax); see makeRelu. */
export function makeClip(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return makeUnaryPass(fallback, Boolean(addon.clip), (heap, n, x, y, a) => addon.clip!(heap, n, x, x, y, a.clipValueMin as number, a.clipValueMax as number));
}

/** Relu6 (tf.relu6): wasm's clamp to [0, 6], the addon's ClipByValue pass; see makeRelu. */
export function makeRelu6(addon: OneDnnAddon, fallback: Fallback): tf.KernelFunc {
  return makeUnaryPass(fallback, Boolean(addon.clip), (heap, n, x, y) => addon.clip!(heap, n, x, x, y, 0, 6));
}

/** Name of the wasm kernel computing Relu6's gradient on the addon. */
export const RELU6_GRAD_KERNEL = "UtkfaceRelu6Grad";

/**
 * Relu6's gradient (inputs x, dy of one shape): dy * (x <= 6) * step(x) in one threaded pass
 * (tfjs: LessEqual, Step, Cast and two Multiply on wasm), to the bit (denormals aside).
 */
export const makeRelu6Grad = makePointwiseGrad("relu6Grad");

/** Name of the wasm kernel running one variable's Adam update on the addon (see lib/training/adam.ts). */
export const ADAM_KERNEL = "UtkfaceAdam";

/** Attributes of ADAM_KERNEL: the float32 scalars tfjs's Adam multiplies and divides by. */
export interface AdamKernelAttrs {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** 1 - beta1^t and 1 - beta2^t, as tfjs's float32 accBeta tensors give them. */
  biasCorrection1: number;
  biasCorrection2: number;
  epsilon: number;
  learningRate: number;
}

/**
 * Adam's update of one variable (inputs x, g, m, v of one shape; outputs x', m', v'): the 13
 * element-wise kernels tfjs's AdamOptimizer runs per variable and step, as one threaded pass
 * with the same float32 roundings.
 */
export function makeAdamUpdate(addon: OneDnnAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as WasmInternals;
    const { x, g, m, v } = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as AdamKernelAttrs;
    const outs = [0, 1, 2].map(() => be.makeOutput([...x.shape], "float32"));
    const [xo, mo, vo] = outs.map((t) => offsetOf(be, t));
    addon.adam!(
      be.wasm.HEAPU8, sizeOf(x.shape), offsetOf(be, x), offsetOf(be, g), offsetOf(be, m), offsetOf(be, v), xo, mo, vo,
      a.beta1, a.oneMinusBeta1, a.beta2, a.oneMinusBeta2, a.biasCorrection1, a.biasCorrection2, a.epsilon, -a.learningRate,
    );
    return outs;
  };
}
