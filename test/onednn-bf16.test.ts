/**
 * UTKFACE_MATH=bf16 (setMath): the oneDNN engine's convolutions and matrix products round their
 * operands to bfloat16 and sum in float32, as PyTorch's CPU autocast does. On real face
 * activations each result equals float32 arithmetic on the bf16-rounded operands (to float32
 * summation order) and differs from plain float32 by bf16's rounding, no more; switching back
 * gives float32's results again; a short fit on real faces learns as float32's does.
 *
 * Skipped where the addon is not built or this CPU has no bf16 kernel (AMX or AVX512_BF16).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerTrainingKernels } from "../lib/engine/wasm/training-kernels";
import { describeOneDnn, loadOneDnn, registerOneDnnKernels, setMath, unregisterOneDnnKernels } from "../lib/engine/onednn/engine";
import { loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { mulberry32 } from "../lib/data/splits";
import { relativeError } from "./helpers";

const { addon, reason } = loadOneDnn();
const kernel = addon?.mathKernel?.() ?? "";
const skip = !addon ? `oneDNN addon not available: ${reason}` : !kernel ? "this CPU has no bf16 convolution kernel (needs AMX or AVX512_BF16)" : false;

const SIZE = 48;
let faces: tf.Tensor4D;
let sample: Awaited<ReturnType<typeof loadFaces>>;

before(async () => {
  if (skip) return;
  assert.ok(await tf.setBackend("wasm"));
  registerTrainingKernels();
  const status = registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn", UTKFACE_MATH: "f32" });
  assert.ok(status.active, status.reason);
  sample = await loadFaces({ dir: SAMPLE_DATA_DIR, size: SIZE });
  faces = tf.tidy(() => tf.tensor4d(sample.pixels.subarray(0, 4 * SIZE * SIZE), [4, SIZE, SIZE, 1], "int32").toFloat().div(255)) as tf.Tensor4D;
});

after(() => {
  if (addon) setMath("f32");
});

/** Rounds each float32 to the nearest bfloat16 (ties to even), as oneDNN's f32 -> bf16 reorder does. */
function toBf16(values: Float32Array): Float32Array {
  const out = new Float32Array(values);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return out;
}

function randomValues(size: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: size }, () => rand() * 2 - 1);
}

type Inputs = Record<string, { shape: number[]; values: Float32Array }>;

async function runOn(backend: string, kernelName: string, inputs: Inputs, attrs: object): Promise<Float32Array> {
  await tf.setBackend(backend);
  const named: tf.NamedTensorMap = {};
  for (const [k, t] of Object.entries(inputs)) named[k] = tf.tensor(t.values, t.shape);
  const out = tf.engine().runKernel(kernelName, named, attrs as tf.NamedAttrMap) as tf.Tensor;
  const values = out.dataSync() as Float32Array;
  tf.dispose([out, ...Object.values(named)]);
  return values;
}

/** bf16 on oneDNN against float32 on cpu, with the operands rounded (`exact`) and as they are (`plain`). */
async function compare(kernelName: string, inputs: Inputs, attrs: object): Promise<{ exact: number; plain: number; f32: number }> {
  const rounded: Inputs = {};
  for (const [k, t] of Object.entries(inputs)) rounded[k] = { shape: t.shape, values: k === "bias" ? t.values : toBf16(t.values) };
  assert.equal(setMath("bf16").math, "bf16");
  const ours = await runOn("wasm", kernelName, inputs, attrs);
  setMath("f32");
  const oursF32 = await runOn("wasm", kernelName, inputs, attrs);
  const cpuRounded = await runOn("cpu", kernelName, rounded, attrs);
  const cpu = await runOn("cpu", kernelName, inputs, attrs);
  return { exact: relativeError(ours, cpuRounded), plain: relativeError(ours, cpu), f32: relativeError(oursF32, cpu) };
}

/** Real activations: 4 sample faces through one random 3x3 convolution and ReLU, NHWC [4, 48, 48, 16]. */
function activations(): tf.Tensor4D {
  return tf.tidy(() => tf.relu(tf.conv2d(faces, tf.tensor4d(randomValues(9 * 16, 7), [3, 3, 1, 16]), 1, "same")));
}

test("bf16 convolutions (forward, fused, both gradients) are float32 sums of bf16-rounded real face activations", { skip }, async () => {
  const act = activations();
  const x = { shape: act.shape as number[], values: act.dataSync() as Float32Array };
  act.dispose();
  const fShape = [3, 3, 16, 32];
  const filter = { shape: fShape, values: randomValues(fShape.reduce((a, b) => a * b), 11) };
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], fShape as [number, number, number, number], 1, 1, "same");
  const dy = { shape: info.outShape, values: randomValues(info.outShape.reduce((a, b) => a * b), 12) };
  const bias = { shape: [32], values: randomValues(32, 13) };
  const base = { strides: 1, pad: "same", dataFormat: "NHWC", dilations: 1 };
  const cases: [string, Inputs, object][] = [
    ["Conv2D", { x, filter }, base],
    ["FusedConv2D", { x, filter, bias }, { ...base, activation: "relu" }],
    ["Conv2DBackpropInput", { dy, filter }, { ...base, inputShape: x.shape }],
    ["Conv2DBackpropFilter", { x, dy }, { ...base, filterShape: fShape }],
  ];
  for (const [name, inputs, attrs] of cases) {
    const e = await compare(name, inputs, attrs);
    // The same products as float32 on rounded operands: only the order of the float32 sums differs.
    assert.ok(e.exact < 2e-5, `${name}: bf16 differs from float32 on bf16-rounded operands by ${e.exact.toExponential(2)}`);
    // And truly bf16: farther from plain float32 than float32 itself is, within bf16's 2^-9 rounding.
    assert.ok(e.plain > 10 * e.f32 && e.plain > 1e-4, `${name}: bf16 ${e.plain.toExponential(2)} is no farther from float32 than float32 (${e.f32.toExponential(2)}): was bf16 used?`);
    assert.ok(e.plain < 1e-2, `${name}: bf16 is ${e.plain.toExponential(2)} from float32`);
    assert.ok(e.f32 < 1e-5, `${name}: back in float32 the engine is ${e.f32.toExponential(2)} from cpu`);
  }
});

test("bf16 matrix products (dense layers' forward and gradients) are float32 sums of bf16-rounded operands", { skip }, async () => {
  const act = activations();
  const flat = tf.tidy(() => tf.avgPool(act, 6, 6, "valid").reshape([4, 8 * 8 * 16]));
  const a = { shape: flat.shape as number[], values: flat.dataSync() as Float32Array };
  tf.dispose([act, flat]);
  const b = { shape: [1024, 24], values: randomValues(1024 * 24, 21) };
  // x . w (a dense layer's forward) and x^T . dy (its weight gradient).
  for (const [ta, tb, aa, bb] of [[false, false, a, b], [true, false, a, { shape: [4, 24], values: randomValues(4 * 24, 22) }]] as const) {
    const a3 = { shape: [1, ...aa.shape], values: aa.values };
    const b3 = { shape: [1, ...bb.shape], values: bb.values };
    const e = await compare("BatchMatMul", { a: a3, b: b3 }, { transposeA: ta, transposeB: tb });
    assert.ok(e.exact < 2e-5, `BatchMatMul transposeA=${ta}: ${e.exact.toExponential(2)} from float32 on rounded operands`);
    assert.ok(e.plain > 1e-4 && e.plain < 1e-2, `BatchMatMul transposeA=${ta}: ${e.plain.toExponential(2)} from plain float32`);
  }
});

test("a fit of the report CNN's first layers on real faces learns in bf16 as in float32", { skip }, async () => {
  await tf.setBackend("wasm");
  const n = 160;
  const x = tf.tidy(() => tf.tensor4d(sample.pixels.subarray(0, n * SIZE * SIZE), [n, SIZE, SIZE, 1], "int32").toFloat().div(255));
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(sample.records.slice(0, n).map((r) => r.gender), "int32"), 2).toFloat());
  const losses: Record<string, number[]> = {};
  for (const math of ["f32", "bf16"] as const) {
    setMath(math);
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [SIZE, SIZE, 1], filters: 16, kernelSize: 3, activation: "relu", kernelInitializer: init(1) }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, activation: "relu", kernelInitializer: init(2) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, activation: "softmax", kernelInitializer: init(3) }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.001), loss: "categoricalCrossentropy" });
    const h = await model.fit(x, y, { epochs: 12, batchSize: 16, shuffle: false, verbose: 0 });
    losses[math] = h.history.loss as number[];
    model.dispose();
  }
  setMath("f32");
  tf.dispose([x, y]);
  faces.dispose();
  const [f, b] = [losses.f32, losses.bf16];
  assert.ok(b[b.length - 1] < 0.9 * b[0], `bf16 did not learn: loss ${b[0].toFixed(4)} -> ${b[b.length - 1].toFixed(4)}`);
  assert.ok(Math.abs(b[b.length - 1] - f[f.length - 1]) < 0.1 * f[f.length - 1], `bf16's final loss ${b[b.length - 1].toFixed(4)} vs float32's ${f[f.length - 1].toFixed(4)}`);
  assert.notDeepEqual(b, f, "bf16 and float32 losses are identical: was bf16 used?");
});

test("UTKFACE_MATH is checked and said in the engine line; without a bf16 kernel float32 stays, with the reason", { skip: addon ? false : `oneDNN addon not available: ${reason}` }, async () => {
  if (skip) assert.ok(await tf.setBackend("wasm"));
  assert.throws(() => registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn", UTKFACE_MATH: "fp8" }), /UTKFACE_MATH="fp8": use f32 .* or bf16/);
  const status = registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn", UTKFACE_MATH: "bf16" });
  if (kernel) {
    assert.equal(status.math, "bf16");
    assert.match(describeOneDnn(status), new RegExp(`bf16 on ${kernel.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.equal(addon!.info().math, "bf16");
  } else {
    assert.equal(status.math, "f32");
    assert.match(describeOneDnn(status), /bf16 asked for, but this CPU has no bf16 convolution kernel .*float32 used/);
    assert.equal(addon!.info().math, "f32");
  }
  assert.throws(() => setMath("fp16" as never), /use "f32" or "bf16"/);
  assert.equal(setMath("f32").math, "f32");
  assert.equal(addon!.info().math, "f32");
  // With the wasm kernels in its place there is nothing to switch, and it says so.
  unregisterOneDnnKernels();
  try {
    const off = setMath("bf16");
    assert.equal(off.math, "f32");
    assert.match(off.mathNote ?? "", /oneDNN engine is not in use/);
    assert.equal(addon!.info().math, "f32");
  } finally {
    registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn", UTKFACE_MATH: "f32" });
  }
});
