/**
 * Per-layer time of 3x3 convolutions through the oneDNN addon with its Winograd F(4x4, 3x3)
 * path and without, alternating twice, each side's best of 6 calls (inference) or 5 steps
 * (training).
 *
 * - inference (the default): forward with bias and ReLU, Winograd (1) against direct (0), and
 *   the largest difference between the two outputs relative to the largest output;
 * - `--train`: a training step's three convolutions (forward, input and filter gradients) with a
 *   new filter every step, Winograd in the forward and input-gradient calls (2) against
 *   Winograd in inference only (1).
 *
 * The default shapes are VGG19's at 70x70, batch 25; SHAPES=NxHxCxO,... picks others (H = W).
 *
 *   UTKFACE_THREADS=1 npx tsx scripts/winograd-layers.ts [--train]
 *   SHAPES=1x8x512x512,4x4x512x512 UTKFACE_THREADS=1 npx tsx scripts/winograd-layers.ts
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerTrainingKernels } from "../lib/engine/wasm/training-kernels";
import { loadOneDnn, registerOneDnnKernels } from "../lib/engine/onednn/engine";

const VGG19_70 = "25x70x64x64,25x35x64x128,25x35x128x128,25x17x128x256,25x17x256x256,25x8x256x512,25x8x512x512,25x4x512x512";

/** The best of `reps` timed calls of `f`, in ms. */
function best(reps: number, f: (r: number) => void): number {
  let ms = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f(r);
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

(async () => {
  const { addon, reason } = loadOneDnn();
  if (!addon?.setWinograd) throw new Error(`the oneDNN addon with Winograd is needed: ${reason ?? "rebuild it (bash scripts/build-native.sh)"}`);
  const train = process.argv.includes("--train");
  await tf.setBackend("wasm");
  registerTrainingKernels();
  registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn" });
  const [slow, fast] = train ? [1, 2] : [0, 1];
  for (const s of (process.env.SHAPES ?? VGG19_70).split(",")) {
    const [n, h, c, o] = s.split("x").map(Number);
    const x = tf.randomUniform([n, h, h, c], 0, 1, "float32", 1);
    const w = tf.randomNormal([3, 3, c, o], 0, Math.sqrt(2 / (9 * c)), "float32", 2);
    const b = tf.randomNormal([o], 0, 0.1, "float32", 3);
    const ms: Record<number, number> = {};
    const outs: Record<number, Float32Array> = {};
    const calls0 = addon.info().winogradCalls ?? 0;
    for (const mode of [slow, fast, slow, fast]) {
      addon.setWinograd(mode);
      const t = train
        ? best(5, (r) => {
            const f = tf.randomNormal([3, 3, c, o], 0, 0.05, "float32", 10 + r); // a new filter each step, as in training
            const [dx, df] = tf.grads((a: tf.Tensor, k: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, "same").sum())([x, f]);
            dx.dataSync();
            df.dataSync();
            tf.dispose([f, dx, df]);
          })
        : best(6, () => {
            const y = tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: "same", bias: b, activation: "relu" });
            outs[mode] = y.dataSync() as Float32Array;
            y.dispose();
          });
      ms[mode] = Math.min(ms[mode] ?? Infinity, t);
    }
    const taken = (addon.info().winogradCalls ?? 0) > calls0 ? "" : " (Winograd not taken: direct both times)";
    let diff = "";
    if (!train) {
      let d = 0, scale = 0;
      for (let i = 0; i < outs[0].length; i++) {
        d = Math.max(d, Math.abs(outs[0][i] - outs[1][i]));
        scale = Math.max(scale, Math.abs(outs[0][i]));
      }
      diff = `, max rel diff ${(d / scale).toExponential(2)}`;
    }
    const gflop = (2 * n * h * h * c * o * 9) / 1e9;
    console.log(`${s}${train ? " training step" : ""}: direct ${ms[slow].toFixed(1)} ms (${((train ? 3 : 1) * gflop / ms[slow] * 1000).toFixed(0)} GFLOP/s), Winograd ${ms[fast].toFixed(1)} ms, ${(ms[slow] / ms[fast]).toFixed(2)}x${diff}${taken}`);
    tf.dispose([x, w, b]);
  }
  addon.setWinograd(2);
})();
