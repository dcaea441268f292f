/**
 * The oneDNN engine under tfjs's wasm backend: the kernels that dominate training and
 * inference of the project's networks (convolutions and their gradients, depthwise included,
 * matrix products, max pooling) run on oneDNN 2.6.3, the library PyTorch's CPU convolutions run
 * on, through the Node-API addon in native/; so do BatchNorm, the bias-gradient Sum, and Mean
and Tile (BatchNorm's moments and gradient), which wasm runs slowly. Every other kernel stays wasm's.
 *
 * UTKFACE_ENGINE=onednn|wasm forces one engine (default: oneDNN when the addon loads);
 * UTKFACE_THREADS sets oneDNN's OpenMP threads (default: the machine's cores).
 */
import * as tf from "@tensorflow/tfjs";
import * as os from "os";
import { loadOneDnn, OneDnnAddon } from "./addon";
import {
  cpuFallback,
  Fallback,
  makeConvBackprop,
  makeConvForward,
  makeMatMul,
  makeMaxPool,
  makeMaxPoolGrad,
  makeSum,
  makeMean,
  makeTile,
  makeBatchNorm,
  makeRelu,
  makeClip,
  makeRelu6,
  makeRelu6Grad,
  RELU6_GRAD_KERNEL,
  makeClipGrad,
  makeBatchNormGrad,
  CLIP_GRAD_KERNEL,
  BATCH_NORM_GRAD_KERNEL,
  makeMeanGrad,
  makeSquareGrad,
  makeReluGrad,
  makeAdamUpdate,
  ADAM_KERNEL,
  MEAN_GRAD_KERNEL,
  SQUARE_GRAD_KERNEL,
  RELU_GRAD_KERNEL,
} from "./kernels";

export { loadOneDnn, ADDON_PATH } from "./addon";
export type { OneDnnAddon } from "./addon";

/** Environment variable forcing the engine under the wasm backend. */
export const ENGINE_ENV = "UTKFACE_ENGINE";
/** Environment variable setting oneDNN's thread count. */
export const THREADS_ENV = "UTKFACE_THREADS";
/** Values accepted by UTKFACE_ENGINE. */
export const ENGINE_NAMES = ["onednn", "wasm"] as const;
/** Environment variable picking the convolutions' operand layouts: auto (default), mixed, blocked or nhwc. */
export const LAYOUT_ENV = "UTKFACE_ONEDNN_LAYOUT";
/** Environment variable picking the arithmetic of convolutions and matrix products: f32 (default) or bf16. */
export const MATH_ENV = "UTKFACE_MATH";
/** Environment variable picking where the 3x3 convolutions run as Winograd F(4x4, 3x3): on (the default), inference or off. */
export const WINOGRAD_ENV = "UTKFACE_ONEDNN_WINOGRAD";
/** UTKFACE_ONEDNN_WINOGRAD's values and the addon's codes: inference and training, inference only, never. */
const WINOGRAD_MODES: Record<string, number> = { on: 2, inference: 1, off: 0 };
/** Values of UTKFACE_MATH. */
export const MATH_MODES = ["f32", "bf16"] as const;
export type MathMode = (typeof MATH_MODES)[number];

type Maker = (addon: OneDnnAddon, fallback: Fallback) => tf.KernelFunc;

/** Kernels this engine provides for wasm, by tfjs kernel name. */
const KERNELS: Record<string, Maker> = {
  Conv2D: (addon, fb) => makeConvForward(addon, false, fb),
  FusedConv2D: (addon, fb) => makeConvForward(addon, false, fb),
  Conv2DBackpropInput: (addon, fb) => makeConvBackprop(addon, false, "input", fb),
  Conv2DBackpropFilter: (addon, fb) => makeConvBackprop(addon, false, "filter", fb),
  DepthwiseConv2dNative: (addon, fb) => makeConvForward(addon, true, fb),
  FusedDepthwiseConv2D: (addon, fb) => makeConvForward(addon, true, fb),
  DepthwiseConv2dNativeBackpropInput: (addon, fb) => makeConvBackprop(addon, true, "input", fb),
  DepthwiseConv2dNativeBackpropFilter: (addon, fb) => makeConvBackprop(addon, true, "filter", fb),
  BatchMatMul: (addon, fb) => makeMatMul(addon, false, fb),
  _FusedMatMul: (addon, fb) => makeMatMul(addon, true, fb),
  MaxPool: (addon, fb) => makeMaxPool(addon, fb),
  MaxPoolGrad: (addon, fb) => makeMaxPoolGrad(addon, fb),
  Sum: (addon, fb) => makeSum(addon, fb),
  Mean: (addon, fb) => makeMean(addon, fb),
  Tile: (_addon, fb) => makeTile(fb),
  FusedBatchNorm: (addon, fb) => makeBatchNorm(addon, fb),
  Relu: (addon, fb) => makeRelu(addon, fb),
  ClipByValue: (addon, fb) => makeClip(addon, fb),
  Relu6: (addon, fb) => makeRelu6(addon, fb),
};

/**
 * Convolution operand layouts (UTKFACE_ONEDNN_LAYOUT): auto (default) is mixed where the CPU's
 * convolutions read and write NHWC at full speed (AVX-512) and, on a CPU without (AVX2), blocked
 * for the dense 3x3-and-wider convolutions of 64 channels and more, where the NHWC kernel is slow
 * enough that two activation reorders pay; mixed keeps activations in tfjs's NHWC and lets oneDNN
 * pick the weights' layout, so no activation is reordered around a convolution; blocked lets it
 * pick every operand's (reorders in and out of each call); nhwc takes every operand as tfjs holds
 * it (gemm-based, slowest).
 */
const LAYOUTS: Record<string, number> = { blocked: 0, nhwc: 1, mixed: 2, auto: 3 };

/** tfjs kernel names the oneDNN engine registers for wasm. */
export const ONEDNN_KERNELS = Object.keys(KERNELS);

/** The engine's own gradient kernels (no tfjs kernel of that name exists), by name. */
const GRAD_KERNELS: Record<string, (addon: OneDnnAddon) => tf.KernelFunc> = {
  [CLIP_GRAD_KERNEL]: makeClipGrad,
  [BATCH_NORM_GRAD_KERNEL]: makeBatchNormGrad,
};

/** Gradient kernels of BatchNorm's moments (tf.moments: Mean, Square), with a newer addon only. */
const MOMENT_GRAD_KERNELS: Record<string, (addon: OneDnnAddon) => tf.KernelFunc> = {
  [MEAN_GRAD_KERNEL]: makeMeanGrad,
  [SQUARE_GRAD_KERNEL]: makeSquareGrad,
};

/** Relu's gradient kernel, with a newer addon only. */
const RELU_GRAD_KERNELS: Record<string, (addon: OneDnnAddon) => tf.KernelFunc> = {
  [RELU_GRAD_KERNEL]: makeReluGrad,
};

/** Whether the engine's gradient kernel `name` serves the active backend now. */
function gradKernelActive(name: string): boolean {
  return tf.getBackend() === "wasm" && isOurs(tf.getKernel(name, "wasm"));
}

let gradientsOverridden = false;

/**
 * Replaces tfjs's gradients of ClipByValue (ReLU6) and FusedBatchNorm with ones that run the
 * engine's single-pass kernels when the wasm backend with oneDNN is active, and tfjs's own
 * gradient otherwise (any other backend, the wasm kernels, shapes outside the fast path).
 * Once per process: the registry is global, the choice is made at every call.
 */
/**
 * Gives the one-input element-wise op `op` the gradient kernel `kernel` (inputs x and dy of one
 * shape, float32) where it serves; tfjs's own gradient otherwise.
 */
function overrideElementwiseGradient(op: string, kernel: string): void {
  const original = tf.getGradient(op);
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const d = dy as tf.Tensor;
      if (!gradKernelActive(kernel) || x.dtype !== "float32" || d.dtype !== "float32" || !tf.util.arraysEqual(x.shape, d.shape)) return original.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(kernel, { x, dy: d }, {}) as tf.Tensor };
    },
  });
}

function overrideGradients(): void {
  if (gradientsOverridden) return;
  gradientsOverridden = true;
  // Relu (every conv and dense layer here): tfjs differentiates it as Step, Cast, Multiply.
  overrideElementwiseGradient("Relu", RELU_GRAD_KERNEL);
  // Relu6 (the "relu6" activation): LessEqual, Step, Cast and two Multiply.
  overrideElementwiseGradient("Relu6", RELU6_GRAD_KERNEL);
  const clip = tf.getGradient("ClipByValue");
  if (clip) {
    tf.registerGradient({
      ...clip,
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved;
        if (!gradKernelActive(CLIP_GRAD_KERNEL) || x.dtype !== "float32" || (dy as tf.Tensor).dtype !== "float32") return clip.gradFunc(dy, saved, attrs);
        const { clipValueMin, clipValueMax } = attrs as unknown as { clipValueMin: number; clipValueMax: number };
        return { x: () => tf.engine().runKernel(CLIP_GRAD_KERNEL, { x, dy: dy as tf.Tensor }, { clipValueMin, clipValueMax }) as tf.Tensor };
      },
    });
  }
  const bn = tf.getGradient("FusedBatchNorm");
  if (bn) {
    tf.registerGradient({
      ...bn,
      gradFunc: (dy, saved, attrs) => {
        const [x, mean, variance, scale] = saved;
        const d = dy as tf.Tensor;
        const C = x.shape[x.rank - 1];
        const perChannel = x.rank >= 2 && mean.rank === 1 && variance.rank === 1 && mean.size === C && variance.size === C && (!scale || (scale.rank === 1 && scale.size === C));
        const float = [x, mean, variance, scale, d].every((t) => !t || t.dtype === "float32");
        if (!gradKernelActive(BATCH_NORM_GRAD_KERNEL) || !perChannel || !float || x.size === 0 || d.size !== x.size) return bn.gradFunc(dy, saved, attrs);
        const inputs: Record<string, tf.Tensor> = { x, dy: d, mean, variance };
        if (scale) inputs.scale = scale;
        // All five at once: the ones the tape does not ask for are freed with its scope.
        const [dx, dmean, dvariance, dscale, doffset] = tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, inputs, { varianceEpsilon: (attrs as { varianceEpsilon: number }).varianceEpsilon }) as tf.Tensor[];
        return { x: () => dx, mean: () => dmean, variance: () => dvariance, scale: () => dscale, offset: () => doffset };
      },
    });
  }
  // tf.moments (BatchNorm's statistics in training) differentiates Mean and Square with
  // full-size temporaries; the leading-axes Mean and a same-shape Square get one pass each.
  const mean = tf.getGradient("Mean");
  if (mean) {
    tf.registerGradient({
      ...mean,
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved;
        const d = dy as tf.Tensor;
        const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape).sort((p, q) => p - q);
        const C = x.shape[x.rank - 1];
        const leading = x.rank >= 2 && axes.length === x.rank - 1 && axes.every((ax, i) => ax === i) && d.size === C && x.size > 0;
        if (!gradKernelActive(MEAN_GRAD_KERNEL) || !leading || x.dtype !== "float32" || d.dtype !== "float32") return mean.gradFunc(dy, saved, attrs);
        return { x: () => tf.engine().runKernel(MEAN_GRAD_KERNEL, { dy: d }, { shape: x.shape }) as tf.Tensor };
      },
    });
  }
  overrideElementwiseGradient("Square", SQUARE_GRAD_KERNEL);
}

/** Which engine the environment asks for: "onednn", "wasm", or undefined (automatic). */
export function requestedEngine(env: NodeJS.ProcessEnv = process.env): "onednn" | "wasm" | undefined {
  const raw = env[ENGINE_ENV]?.trim().toLowerCase();
  if (!raw) return undefined;
  if (!(ENGINE_NAMES as readonly string[]).includes(raw)) {
    throw new Error(`${ENGINE_ENV}="${env[ENGINE_ENV]}" is not an engine. Use one of: ${ENGINE_NAMES.join(", ")}; or unset it.`);
  }
  return raw as "onednn" | "wasm";
}

/** oneDNN threads: UTKFACE_THREADS, else every core of the machine. A bad value is an error. */
export function requestedThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[THREADS_ENV]?.trim();
  if (!raw) return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`${THREADS_ENV}="${raw}" is not a thread count: use a whole number from 1, or unset it for all cores.`);
  return n;
}

/** What registerOneDnnKernels did. */
export interface OneDnnStatus {
  /** Whether the oneDNN kernels are registered for wasm now. */
  active: boolean;
  /** oneDNN's version, e.g. "2.6.3", when active. */
  version?: string;
  /** OpenMP threads oneDNN computes with, when active. */
  threads?: number;
  /** The CPU instruction set oneDNN's JIT targets (e.g. "avx2"), when active. */
  isa?: string;
  /** Why not active (addon not built, library missing, forced off). */
  reason?: string;
  /** The arithmetic of convolutions and matrix products (see setMath), when active. */
  math?: MathMode;
  /** Why bf16 was asked for and float32 is used (no bf16 kernel on this CPU, or an older addon). */
  mathNote?: string;
}

const OURS = Symbol.for("utkface-ts.onednnKernel");
/** Configs we replaced, to restore them (unregisterOneDnnKernels). */
const replaced = new Map<string, tf.KernelConfig | undefined>();

function isOurs(config: tf.KernelConfig | undefined): boolean {
  return Boolean(config && (config as unknown as Record<symbol, unknown>)[OURS]);
}

/** Whether the oneDNN kernels are the ones registered for wasm now. */
export function oneDnnKernelsInstalled(): boolean {
  return ONEDNN_KERNELS.every((name) => isOurs(tf.getKernel(name, "wasm")));
}

/**
 * Registers the oneDNN kernels for the wasm backend over whatever is registered now (wasm's own
 * or lib/kernels' training kernels, which become the fallbacks). Call after the wasm backend
 * and the training kernels are registered. Idempotent; never throws for a missing addon (the
 * status says why), but does for a bad UTKFACE_ENGINE / UTKFACE_THREADS value, or when
 * UTKFACE_ENGINE=onednn and the addon cannot load.
 */
export function registerOneDnnKernels(env: NodeJS.ProcessEnv = process.env): OneDnnStatus {
  const engine = requestedEngine(env);
  if (engine === "wasm") return { active: false, reason: `${ENGINE_ENV}=wasm` };
  const threads = requestedThreads(env);
  const { addon, reason } = loadOneDnn();
  if (!addon) {
    if (engine === "onednn") throw new Error(`${ENGINE_ENV}=onednn but ${reason}. Install libdnnl-dev, g++ and make (Debian) and run bash scripts/build-native.sh (as root it installs them itself), or unset ${ENGINE_ENV}.`);
    return { active: false, reason };
  }
  const layout = env[LAYOUT_ENV]?.trim();
  if (layout && !(layout in LAYOUTS)) throw new Error(`${LAYOUT_ENV}="${layout}": use auto, mixed, blocked or nhwc.`);
  if (addon.setLayout) addon.setLayout(LAYOUTS[layout || "auto"]);
  else addon.setBlocked(layout !== "nhwc");
  const winograd = env[WINOGRAD_ENV]?.trim();
  if (winograd && !(winograd in WINOGRAD_MODES)) throw new Error(`${WINOGRAD_ENV}="${winograd}": use on (the default: Winograd F(4x4, 3x3) for the 3x3 convolutions where it pays, in inference and in training's forward and input-gradient calls), inference (inference only) or off (oneDNN's direct convolutions only).`);
  addon.setWinograd?.(WINOGRAD_MODES[winograd || "on"]);
  addon.setThreads(threads);
  const math = requestedMath(env);
  const mathSet = setMathOn(addon, math);
  if (!tf.getKernel("Conv2D", "wasm")) return { active: false, reason: "tfjs-backend-wasm not loaded" };
  for (const [name, make] of Object.entries(KERNELS)) {
    const existing = tf.getKernel(name, "wasm");
    if (isOurs(existing)) continue;
    const fallback: Fallback = existing ? (args) => existing.kernelFunc(args) : cpuFallback(name);
    const config: tf.KernelConfig = { kernelName: name, backendName: "wasm", kernelFunc: make(addon, fallback), setupFunc: existing?.setupFunc, disposeFunc: existing?.disposeFunc };
    (config as unknown as Record<symbol, unknown>)[OURS] = true;
    replaced.set(name, existing);
    if (existing) tf.unregisterKernel(name, "wasm");
    tf.registerKernel(config);
  }
  // Gradient kernels wasm lacks (no existing kernel to fall back to), each set when the addon has it.
  const registerNew = (kernels: Record<string, (a: OneDnnAddon) => tf.KernelFunc>) => {
    for (const [name, make] of Object.entries(kernels)) {
      if (isOurs(tf.getKernel(name, "wasm"))) continue;
      const config: tf.KernelConfig = { kernelName: name, backendName: "wasm", kernelFunc: make(addon) };
      (config as unknown as Record<symbol, unknown>)[OURS] = true;
      replaced.set(name, undefined);
      tf.registerKernel(config);
    }
  };
  if (addon.clipGrad && addon.batchNormGrad) {
    registerNew(GRAD_KERNELS);
    if (addon.meanGrad && addon.squareGrad) registerNew(MOMENT_GRAD_KERNELS);
    if (addon.reluGrad) registerNew(RELU_GRAD_KERNELS);
    if (addon.relu6Grad) registerNew({ [RELU6_GRAD_KERNEL]: makeRelu6Grad });
    overrideGradients();
  }
  // The optimizer's fused update (lib/training/adam.ts uses it where it is registered).
  if (addon.adam) registerNew({ [ADAM_KERNEL]: makeAdamUpdate });
  const info = addon.info();
  return { active: true, version: info.version, threads: info.threads, isa: info.isa, ...mathSet };
}

function requestedMath(env: NodeJS.ProcessEnv): MathMode {
  const raw = env[MATH_ENV]?.trim();
  if (!raw) return "f32";
  if (!(MATH_MODES as readonly string[]).includes(raw)) throw new Error(`${MATH_ENV}="${raw}": use f32 (the default: float32 throughout) or bf16 (bfloat16 operands, float32 sums; needs a CPU with AMX or AVX512_BF16).`);
  return raw as MathMode;
}

/** Sets the addon's arithmetic; bf16 only where this CPU has a bf16 kernel (else float32, with the reason). */
function setMathOn(addon: OneDnnAddon, math: MathMode): { math: MathMode; mathNote?: string } {
  if (math === "f32") {
    addon.setMath?.(0);
    return { math };
  }
  if (!addon.setMath || !addon.mathKernel) return { math: "f32", mathNote: "bf16 asked for, but the oneDNN addon predates it: rebuild it (bash scripts/build-native.sh); float32 used" };
  const kernel = addon.mathKernel();
  if (!kernel) {
    addon.setMath(0);
    return { math: "f32", mathNote: "bf16 asked for, but this CPU has no bf16 convolution kernel (needs AMX or AVX512_BF16); float32 used" };
  }
  addon.setMath(1);
  return { math: "bf16", mathNote: `bf16 on ${kernel}` };
}

/**
 * Switches the oneDNN engine's convolutions and matrix products between float32 (`"f32"`, the
 * default: every figure the project ships) and bfloat16 operands with float32 sums (`"bf16"`,
 * what PyTorch's CPU autocast does; UTKFACE_MATH=bf16 sets it at start). bf16 needs a CPU with
 * AMX or AVX512_BF16; elsewhere float32 stays and the returned note says why. Applies to
 * primitives made from now on: each shape's is made once per arithmetic, so switching back and
 * forth costs nothing after the first call. Returns the arithmetic in force: float32, with the
 * reason, where the oneDNN engine is not the one running.
 */
export function setMath(math: MathMode): { math: MathMode; mathNote?: string } {
  if (!(MATH_MODES as readonly string[]).includes(math)) throw new Error(`setMath("${math}"): use "f32" or "bf16".`);
  const { addon, reason } = loadOneDnn();
  if (!addon) return { math: "f32", mathNote: reason };
  if (!oneDnnKernelsInstalled()) return { math: "f32", mathNote: "the oneDNN engine is not in use (another backend, or UTKFACE_ENGINE=wasm): nothing to switch" };
  return setMathOn(addon, math);
}

/** Puts back the kernels registerOneDnnKernels replaced (tests compare both engines in one process). */
export function unregisterOneDnnKernels(): void {
  for (const [name, previous] of replaced) {
    if (isOurs(tf.getKernel(name, "wasm"))) tf.unregisterKernel(name, "wasm");
    if (previous) tf.registerKernel(previous);
  }
  replaced.clear();
}

/** The engine phrase of the backend line, e.g. "oneDNN 2.6.3, 2 threads". */
export function describeOneDnn(status: OneDnnStatus): string {
  if (!status.active) return `wasm kernels: ${status.reason}`;
  const math = status.math === "bf16" ? `, ${status.mathNote}` : status.mathNote ? ` (${status.mathNote})` : "";
  return `oneDNN ${status.version}, ${status.threads} thread${status.threads === 1 ? "" : "s"}${math}`;
}
