/**
 * Loads the oneDNN addon built from native/ (at `npm install`, see scripts/build-native.sh)
 * and says in one phrase why it is not there when it is not.
 */
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../../core/paths";

/** The addon's entry points (native/src/addon.cc documents the parameter layouts). */
export interface OneDnnAddon {
  /** `weightId` (> 0) names the filter tensor's data: its reordered copy is reused while the id is the same. */
  conv(heap: Uint8Array, params: Int32Array, a: number, b: number, c: number, out: number, alpha: number, weightId?: number): void;
  matMul(heap: Uint8Array, params: Int32Array, a: number, b: number, bias: number, out: number, alpha: number): void;
  maxPool(heap: Uint8Array, params: Int32Array, x: number, y: number): void;
  /** y: the forward's output (0 or left out when not at hand); with it, tiling windows take one pass. */
  maxPoolGrad(heap: Uint8Array, params: Int32Array, x: number, dy: number, dx: number, y?: number): void;
  sumRows(heap: Uint8Array, rows: number, cols: number, x: number, y: number): void;
  batchNorm(heap: Uint8Array, params: Int32Array, x: number, mean: number, variance: number, scale: number, shift: number, y: number, epsilon: number): void;
  setThreads(n: number): void;
  setBlocked(blocked: boolean): void;
  /** Convolution operand layouts: 0 blocked, 1 plain NHWC, 2 NHWC activations with blocked weights. */
  setLayout?(layout: number): void;
  /** Convolution and matrix-product arithmetic: 0 float32, 1 bfloat16 operands with float32 sums. */
  setMath?(math: number): void;
  /** Winograd F(4x4, 3x3) for the 3x3 convolutions where it pays: 0 off, 1 forward inference, 2 also training's forward and input-gradient calls (the default). */
  setWinograd?(on: number): void;
  /** The kernel a bf16 convolution gets on this CPU, or "" when it has none but oneDNN's reference code. */
  mathKernel?(): string;
  clipGrad?(heap: Uint8Array, n: number, x: number, dy: number, dx: number, lo: number, hi: number): void;
  batchNormGrad?(
    heap: Uint8Array, params: Int32Array, x: number, dy: number, mean: number, variance: number, scale: number,
    dx: number, dmean: number, dvariance: number, dscale: number, doffset: number, epsilon: number,
  ): void;
  meanGrad?(heap: Uint8Array, rows: number, cols: number, dy: number, dx: number, scale: number): void;
  squareGrad?(heap: Uint8Array, n: number, x: number, dy: number, dx: number): void;
  reluGrad?(heap: Uint8Array, n: number, x: number, dy: number, dx: number): void;
  relu6Grad?(heap: Uint8Array, n: number, x: number, dy: number, dx: number): void;
  /** Forward ReLU, y = max(x, 0) as wasm computes it (x is passed twice: the pointwise pass's unused second input). */
  relu?(heap: Uint8Array, n: number, x: number, xAgain: number, y: number): void;
  /** Forward ClipByValue, y = min(max(x, lo), hi) as wasm's XNNPACK clamp computes it (x passed twice, as for relu). */
  clip?(heap: Uint8Array, n: number, x: number, xAgain: number, y: number, lo: number, hi: number): void;
  /** One variable's Adam step (x, g, m, v in; x', m', v' out), tfjs's arithmetic in one pass; see ADAM_KERNEL. */
  adam?(
    heap: Uint8Array, n: number, x: number, g: number, m: number, v: number, xOut: number, mOut: number, vOut: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number, biasCorrection1: number, biasCorrection2: number, epsilon: number, negLearningRate: number,
  ): void;
  /** `winograd`: where the Winograd 3x3 convolutions run (on, inference, off; UTKFACE_ONEDNN_WINOGRAD); `winogradCalls`: convolutions run that way so far. `nhwcNative`: oneDNN's convolutions read NHWC at full speed here (AVX-512); where not, the auto layout blocks the wide ones. */
  info(): { version: string; threads: number; cachedPrimitives: number; isa: string; blocked: boolean; layout?: string; math?: string; nhwcNative?: boolean; winograd?: string; winogradCalls?: number };
}

/**
 * Where node-gyp puts the addon; UTKFACE_ONEDNN_ADDON names another build (a rebuilt addon
 * tried before it replaces the one running processes have loaded).
 */
export const ADDON_PATH = process.env.UTKFACE_ONEDNN_ADDON || path.join(REPO_ROOT, "native", "build", "Release", "utkface_onednn.node");

let loaded: { addon?: OneDnnAddon; reason?: string } | undefined;

/**
 * The addon, or the reason it cannot load: not built (no compiler or no libdnnl-dev at
 * install), or built but libdnnl.so missing now. Loaded once per process.
 */
export function loadOneDnn(): { addon?: OneDnnAddon; reason?: string } {
  if (loaded) return loaded;
  if (!fs.existsSync(ADDON_PATH)) {
    loaded = { reason: "oneDNN addon not built (needs g++ and libdnnl-dev at npm install), see README" };
  } else {
    // Waiting OpenMP threads sleep instead of spinning, unless the user chose otherwise: on a
    // machine shared with other processes a spinning thread takes the core its partner needs
    // (report CNN training, 2 threads, load ~18 on 2 cores: 4.1 img/s spinning, 9.6-20.4
    // passive). libgomp reads this once, when the addon loads it; child processes (the PyTorch
    // reference of `npm run bench`) inherit it, so both sides wait the same way.
    if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = "PASSIVE";
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      loaded = { addon: require(ADDON_PATH) as OneDnnAddon };
    } catch (e) {
      const msg = (e as Error).message.split("\n")[0];
      loaded = { reason: /libdnnl/.test(msg) ? "libdnnl not found, see README" : `oneDNN addon failed to load (${msg})` };
    }
  }
  return loaded;
}
