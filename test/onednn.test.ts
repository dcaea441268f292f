/**
 * The oneDNN kernels (lib/engine/onednn) against the cpu backend's kernels on random tensors:
 * convolutions forward and both gradients over strides 1-3, same/valid/explicit padding, odd
 * sizes, non-square and dilated filters, depthwise with channel multipliers 1 and 2; matrix
 * products with every transpose and a fused bias + activation; max pooling and its gradient.
 * Then a short fit on real faces (data/sample) whose losses match the wasm kernels' path with a
 * flat tensor count, and 1,000 training steps whose resident memory stays flat.
 *
 * Skipped with a message where the addon is not built; under CI=true on Debian as root (where
 * `npm ci` builds it) a missing addon is an error.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerTrainingKernels } from "../lib/engine/wasm/training-kernels";
import { loadOneDnn, oneDnnKernelsInstalled, registerOneDnnKernels, requestedEngine, requestedThreads, unregisterOneDnnKernels } from "../lib/engine/onednn/engine";
import { loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { mulberry32 } from "../lib/data/splits";
import { buildModel } from "../lib/models/registry";
import { FusedAdamOptimizer } from "../lib/training/adam";
import { ADAM_KERNEL } from "../lib/engine/onednn/kernels";
import { relativeError } from "./helpers";

const { addon, reason } = loadOneDnn();
const debianRoot = process.getuid?.() === 0 && fs.existsSync("/usr/bin/dpkg");
const skip = addon ? false : process.env.CI === "true" && debianRoot ? false : `oneDNN addon not available: ${reason}`;

before(async () => {
  if (skip) return;
  assert.ok(addon, `CI on Debian as root must build the oneDNN addon at npm ci: ${reason}`);
  assert.ok(await tf.setBackend("wasm"), "the wasm backend should load");
  registerTrainingKernels();
  const status = registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn" });
  assert.ok(status.active, `oneDNN kernels should register: ${status.reason}`);
});

function randomValues(size: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: size }, () => rand() * 2 - 1);
}

type Inputs = Record<string, { shape: number[]; values: Float32Array }>;

async function runKernelOn(backend: string, kernel: string, inputs: Inputs, attrs: object): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  const tensors: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(inputs)) tensors[name] = tf.tensor(t.values, t.shape);
  const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync() as Float32Array };
  tf.dispose([out, ...Object.values(tensors)]);
  return result;
}


async function assertMatchesCpu(kernel: string, inputs: Inputs, attrs: object, label: string): Promise<void> {
  const cpu = await runKernelOn("cpu", kernel, inputs, attrs);
  const ours = await runKernelOn("wasm", kernel, inputs, attrs);
  assert.deepEqual(ours.shape, cpu.shape, `${kernel} ${label}: shape`);
  const err = relativeError(ours.values, cpu.values);
  assert.ok(err < 1e-5, `${kernel} ${label}: relative error ${err.toExponential(2)} >= 1e-5`);
}

type Pad = "same" | "valid" | tf.backend_util.ExplicitPadding;
interface ConvCase { n: number; h: number; w: number; c: number; o: number; kh: number; kw: number; s: [number, number]; pad: Pad; d?: number }
const CONV_CASES: ConvCase[] = [];
for (const s of [1, 2, 3]) {
  for (const pad of ["same", "valid"] as const) {
    CONV_CASES.push({ n: 3, h: 11, w: 9, c: 3, o: 5, kh: 3, kw: 2, s: [s, s], pad });
    CONV_CASES.push({ n: 2, h: 8, w: 13, c: 4, o: 2, kh: 1, kw: 5, s: [s, s], pad });
  }
}
CONV_CASES.push({ n: 2, h: 10, w: 7, c: 2, o: 3, kh: 3, kw: 3, s: [2, 1], pad: "same" });
CONV_CASES.push({ n: 2, h: 10, w: 7, c: 2, o: 3, kh: 4, kw: 3, s: [1, 3], pad: "valid" });
CONV_CASES.push({ n: 1, h: 9, w: 9, c: 2, o: 2, kh: 3, kw: 3, s: [2, 2], pad: [[0, 0], [1, 0], [2, 1], [0, 0]] });
CONV_CASES.push({ n: 1, h: 6, w: 6, c: 2, o: 2, kh: 2, kw: 2, s: [1, 1], pad: [[0, 0], [3, 3], [2, 2], [0, 0]] });
// The report CNN's first layer shape (one channel in) and a wide layer, small batch.
CONV_CASES.push({ n: 2, h: 14, w: 14, c: 1, o: 32, kh: 3, kw: 3, s: [1, 1], pad: "same" });
CONV_CASES.push({ n: 2, h: 5, w: 5, c: 64, o: 48, kh: 3, kw: 3, s: [1, 1], pad: "same" });

const caseName = (k: ConvCase, mult?: number) =>
  `x ${k.n}x${k.h}x${k.w}x${k.c}, filter ${k.kh}x${k.kw}${mult ? ` mult ${mult}` : `x${k.o}`}, strides ${k.s}, pad ${JSON.stringify(k.pad)}${k.d ? `, dilation ${k.d}` : ""}`;

test("Conv2D, FusedConv2D and both conv gradients on oneDNN match cpu", { skip }, async () => {
  for (const [i, k] of CONV_CASES.entries()) {
    const xShape = [k.n, k.h, k.w, k.c];
    const fShape = [k.kh, k.kw, k.c, k.o];
    const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], fShape as [number, number, number, number], k.s, 1, k.pad);
    const x = { shape: xShape, values: randomValues(xShape.reduce((a, b) => a * b), 100 + i) };
    const filter = { shape: fShape, values: randomValues(fShape.reduce((a, b) => a * b), 200 + i) };
    const dy = { shape: info.outShape, values: randomValues(info.outShape.reduce((a, b) => a * b), 300 + i) };
    const bias = { shape: [k.o], values: randomValues(k.o, 400 + i) };
    const base = { strides: k.s, pad: k.pad, dataFormat: "NHWC", dilations: 1 };
    await assertMatchesCpu("Conv2D", { x, filter }, base, caseName(k));
    for (const activation of ["linear", "relu", "relu6", "elu", "sigmoid"]) {
      await assertMatchesCpu("FusedConv2D", { x, filter, bias }, { ...base, activation }, `${caseName(k)}, ${activation}`);
    }
    await assertMatchesCpu("Conv2DBackpropInput", { dy, filter }, { ...base, inputShape: xShape }, caseName(k));
    await assertMatchesCpu("Conv2DBackpropFilter", { x, dy }, { ...base, filterShape: fShape }, caseName(k));
  }
  // Dilated forward conv (tfjs has no dilated conv gradients).
  const k: ConvCase = { n: 2, h: 12, w: 11, c: 3, o: 4, kh: 3, kw: 2, s: [1, 1], pad: "same", d: 2 };
  const x = { shape: [k.n, k.h, k.w, k.c], values: randomValues(k.n * k.h * k.w * k.c, 1) };
  const filter = { shape: [k.kh, k.kw, k.c, k.o], values: randomValues(k.kh * k.kw * k.c * k.o, 2) };
  await assertMatchesCpu("Conv2D", { x, filter }, { strides: 1, pad: "same", dataFormat: "NHWC", dilations: 2 }, caseName(k));
});

test("depthwise convolution and both its gradients on oneDNN match cpu", { skip }, async () => {
  let i = 0;
  for (const k of CONV_CASES.filter((c) => c.c > 1 && c.c <= 4)) {
    for (const mult of [1, 2]) {
      i++;
      const xShape = [k.n, k.h, k.w, k.c];
      const fShape = [k.kh, k.kw, k.c, mult];
      const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], fShape as [number, number, number, number], k.s, 1, k.pad, undefined, true);
      const x = { shape: xShape, values: randomValues(xShape.reduce((a, b) => a * b), 500 + i) };
      const filter = { shape: fShape, values: randomValues(fShape.reduce((a, b) => a * b), 600 + i) };
      const dy = { shape: info.outShape, values: randomValues(info.outShape.reduce((a, b) => a * b), 700 + i) };
      const bias = { shape: [k.c * mult], values: randomValues(k.c * mult, 800 + i) };
      const base = { strides: k.s, pad: k.pad, dilations: 1 };
      await assertMatchesCpu("DepthwiseConv2dNative", { x, filter }, base, caseName(k, mult));
      await assertMatchesCpu("FusedDepthwiseConv2D", { x, filter, bias }, { ...base, activation: "relu6" }, caseName(k, mult));
      await assertMatchesCpu("DepthwiseConv2dNativeBackpropInput", { dy, filter }, { ...base, inputShape: xShape }, caseName(k, mult));
      await assertMatchesCpu("DepthwiseConv2dNativeBackpropFilter", { x, dy }, { ...base, filterShape: fShape }, caseName(k, mult));
    }
  }
});

test("BatchMatMul and _FusedMatMul on oneDNN match cpu for every transpose and batch broadcast", { skip }, async () => {
  const shapes: Array<[number[], number[]]> = [
    [[7, 5], [7, 3]],
    [[4, 7, 5], [4, 7, 3]],
    [[1, 9, 2], [3, 9, 6]],
    [[2048, 25], [2048, 64]],
  ];
  for (const [i, [aShape, bShape]] of shapes.entries()) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const a = transposeA ? aShape : [...aShape.slice(0, -2), aShape.at(-1)!, aShape.at(-2)!];
        const b = transposeB ? [...bShape.slice(0, -2), bShape.at(-1)!, bShape.at(-2)!] : bShape;
        const inputs: Inputs = {
          a: { shape: a, values: randomValues(a.reduce((p, q) => p * q), 900 + i) },
          b: { shape: b, values: randomValues(b.reduce((p, q) => p * q), 1000 + i) },
        };
        const label = `a ${a}, b ${b}, transposeA ${transposeA}, transposeB ${transposeB}`;
        await assertMatchesCpu("BatchMatMul", inputs, { transposeA, transposeB }, label);
        if (a.length === 2) {
          const n = bShape.at(-1)!;
          const bias = { shape: [n], values: randomValues(n, 1100 + i) };
          await assertMatchesCpu("_FusedMatMul", { ...inputs, bias }, { transposeA, transposeB, activation: "relu" }, label);
        }
      }
    }
  }
});

test("MaxPool and MaxPoolGrad on oneDNN match cpu, ties and overlapping padded windows included", { skip }, async () => {
  const cases: Array<{ shape: number[]; filterSize: [number, number]; strides: [number, number]; pad: "same" | "valid" }> = [
    { shape: [2, 8, 6, 3], filterSize: [2, 2], strides: [2, 2], pad: "valid" },
    { shape: [2, 9, 7, 3], filterSize: [2, 2], strides: [2, 2], pad: "valid" },
    { shape: [1, 9, 9, 2], filterSize: [3, 3], strides: [3, 3], pad: "valid" },
    { shape: [1, 6, 9, 2], filterSize: [2, 3], strides: [2, 3], pad: "valid" },
    { shape: [2, 7, 7, 2], filterSize: [3, 3], strides: [2, 2], pad: "same" },
    { shape: [2, 9, 7, 3], filterSize: [2, 2], strides: [2, 2], pad: "same" },
    { shape: [2, 10, 11, 5], filterSize: [3, 3], strides: [1, 1], pad: "same" },
  ];
  for (const [i, k] of cases.entries()) {
    const size = k.shape.reduce((a, b) => a * b);
    // A coarse grid of values, so windows hold ties: checks the first-maximum rule.
    const x = randomValues(size, 1200 + i).map((v) => Math.round(v * 3));
    const attrs = { filterSize: k.filterSize, strides: k.strides, pad: k.pad };
    await assertMatchesCpu("MaxPool", { x: { shape: k.shape, values: x } }, attrs, JSON.stringify(k));
    const output = await runKernelOn("cpu", "MaxPool", { x: { shape: k.shape, values: x } }, attrs);
    const inputs: Inputs = { dy: { shape: output.shape, values: randomValues(output.values.length, 1300 + i) }, input: { shape: k.shape, values: x }, output };
    await assertMatchesCpu("MaxPoolGrad", inputs, attrs, JSON.stringify(k));
  }
});

test("Sum over leading axes (bias gradients) on oneDNN's engine matches cpu; other sums fall back", { skip }, async () => {
  const cases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
    { shape: [25, 17, 13, 32], axis: [0, 1, 2], keepDims: false },
    { shape: [3, 5, 7, 3], axis: [2, 0, 1], keepDims: true },
    { shape: [301, 20], axis: [0], keepDims: false },
    { shape: [4, 6, 5], axis: [1], keepDims: false }, // not leading: fallback
    { shape: [4, 6, 5], axis: [0, 1, 2], keepDims: false }, // everything: fallback
  ];
  for (const [i, k] of cases.entries()) {
    const x = { shape: k.shape, values: randomValues(k.shape.reduce((a, b) => a * b), 1400 + i) };
    await assertMatchesCpu("Sum", { x }, { axis: k.axis, keepDims: k.keepDims }, JSON.stringify(k));
  }
});

test("BatchNorm, Mean over leading axes and Tile (BatchNorm's moments and gradient) match cpu", { skip }, async () => {
  for (const [i, k] of [
    { shape: [4, 9, 7, 6], axis: [0, 1, 2], keepDims: true },
    { shape: [13, 5], axis: [0], keepDims: false },
    { shape: [4, 9, 7], axis: [1, 2], keepDims: false }, // not leading: fallback
  ].entries()) {
    const x = { shape: k.shape, values: randomValues(k.shape.reduce((a, b) => a * b), 1800 + i) };
    await assertMatchesCpu("Mean", { x }, { axis: k.axis, keepDims: k.keepDims }, JSON.stringify(k));
  }
  for (const [i, k] of [
    { shape: [1, 1, 1, 5], reps: [3, 4, 6, 1] },
    { shape: [2, 3, 4], reps: [2, 1, 3] },
    { shape: [3, 1], reps: [1, 7] },
    { shape: [5], reps: [4] },
  ].entries()) {
    const x = { shape: k.shape, values: randomValues(k.shape.reduce((a, b) => a * b), 1900 + i) };
    await assertMatchesCpu("Tile", { x }, { reps: k.reps }, JSON.stringify(k));
  }
  for (const [i, [withScale, withOffset]] of [[true, true], [false, true], [true, false], [false, false]].entries()) {
    const shape = [3, 7, 5, 6];
    const channel = (seed: number, shift = 0) => ({ shape: [6], values: randomValues(6, seed).map((v) => v + shift) });
    const inputs: Inputs = { x: { shape, values: randomValues(shape.reduce((a, b) => a * b), 2000 + i) }, mean: channel(2010 + i), variance: channel(2020 + i, 1.5) };
    if (withScale) inputs.scale = channel(2030 + i);
    if (withOffset) inputs.offset = channel(2040 + i);
    await assertMatchesCpu("FusedBatchNorm", inputs, { varianceEpsilon: 0.001 }, `scale ${withScale}, offset ${withOffset}`);
  }
  // Tile keeps integer and boolean tensors exact too.
  await tf.setBackend("wasm");
  const ints = tf.tile(tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32"), [2, 3]);
  assert.deepEqual(ints.arraySync(), [[1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4], [1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4]]);
  assert.equal(ints.dtype, "int32");
  ints.dispose();
});

test("every layout (auto, mixed, blocked, nhwc) gives cpu's convolutions on 64-channel 3x3 layers, forward and both gradients", { skip }, async () => {
  // 64 channels in and out, 3x3: on a CPU without AVX-512 the auto layout runs these blocked
  // (activations reordered in and out), on AVX-512 NHWC; every layout must give the same answer.
  const k: ConvCase = { n: 2, h: 9, w: 7, c: 64, o: 72, kh: 3, kw: 3, s: [1, 1], pad: "same" };
  const xShape = [k.n, k.h, k.w, k.c];
  const fShape = [k.kh, k.kw, k.c, k.o];
  const x = { shape: xShape, values: randomValues(xShape.reduce((a, b) => a * b), 2500) };
  const filter = { shape: fShape, values: randomValues(fShape.reduce((a, b) => a * b), 2501) };
  const dy = { shape: [k.n, k.h, k.w, k.o], values: randomValues(k.n * k.h * k.w * k.o, 2502) };
  const bias = { shape: [k.o], values: randomValues(k.o, 2503) };
  const base = { strides: k.s, pad: k.pad, dataFormat: "NHWC", dilations: 1 };
  try {
    for (const [layout, n] of [["auto", 3], ["mixed", 2], ["blocked", 0], ["nhwc", 1]] as const) {
      addon!.setLayout!(n);
      assert.equal(addon!.info().layout, layout);
      if (layout === "auto") assert.equal(typeof addon!.info().nhwcNative, "boolean", "the addon says whether NHWC is native here");
      await assertMatchesCpu("Conv2D", { x, filter }, base, `${layout}: ${caseName(k)}`);
      await assertMatchesCpu("FusedConv2D", { x, filter, bias }, { ...base, activation: "relu" }, `${layout}: ${caseName(k)}, relu`);
      await assertMatchesCpu("Conv2DBackpropInput", { dy, filter }, { ...base, inputShape: xShape }, `${layout}: ${caseName(k)}`);
      await assertMatchesCpu("Conv2DBackpropFilter", { x, dy }, { ...base, filterShape: fShape }, `${layout}: ${caseName(k)}`);
    }
  } finally {
    addon!.setLayout!(3);
  }
});

test("layers of one shape keep their own reordered filters across inference batches", { skip }, async () => {
  // Four layers of one shape share a cached primitive; batch after batch, each must be read
  // with its own filter (the addon keeps one reordered copy per filter tensor).
  // The direct kernel's reordered filters (batches of 2 at 6x6: 8 tiles) and the Winograd
  // path's transformed ones (4 at 8x8: 16 tiles).
  for (const [xShape, tolerance] of [[[2, 6, 6, 64], 1e-5], [[4, 8, 8, 64], 5e-5]] as const) {
    await tf.setBackend("wasm");
    const shape: [number, number, number, number] = [3, 3, 64, 64];
    const filters = [0, 1, 2, 3].map((i) => randomValues(3 * 3 * 64 * 64, 2600 + i));
    const ws = filters.map((v) => tf.tensor4d(v, shape));
    const size = xShape.reduce((a, b) => a * b);
    const batches = [0, 1, 2].map((b) => randomValues(size, 2700 + b));
    const got: Float32Array[][] = [];
    for (const b of batches) {
      const x = tf.tensor4d(b, [...xShape]);
      const ys = ws.map((w) => tf.conv2d(x, w, 1, "same"));
      got.push(ys.map((y) => y.dataSync().slice() as Float32Array));
      tf.dispose([x, ...ys]);
    }
    tf.dispose(ws);
    await tf.setBackend("cpu");
    for (const [bi, b] of batches.entries()) {
      for (const [li, f] of filters.entries()) {
        const want = tf.tidy(() => tf.conv2d(tf.tensor4d(b, [...xShape]), tf.tensor4d(f, shape), 1, "same").dataSync().slice() as Float32Array);
        const err = relativeError(got[bi][li], want);
        assert.ok(err < tolerance, `x ${xShape.join("x")}, batch ${bi}, layer ${li}: relative error ${err.toExponential(2)}`);
      }
    }
  }
  await tf.setBackend("wasm");
});

test("a filter's reordered copy is reused only for the same tensor: new weights at a freed filter's offset are read", { skip }, async () => {
  await tf.setBackend("wasm");
  const x = tf.tensor4d(randomValues(2 * 9 * 9 * 16, 2400), [2, 9, 9, 16]);
  const dy = tf.tensor4d(randomValues(2 * 9 * 9 * 32, 2401), [2, 9, 9, 32]);
  for (let k = 0; k < 4; k++) {
    const values = randomValues(3 * 3 * 16 * 32, 2410 + k);
    const w = tf.tensor4d(values, [3, 3, 16, 32]);
    // Twice with the same filter (the second call may reuse its reordered copy), then the
    // input gradient with it (may reuse the forward call's copy).
    const y1 = tf.conv2d(x, w, 1, "same");
    const y2 = tf.conv2d(x, w, 1, "same");
    const dx = tf.conv2dTranspose(dy, w, [2, 9, 9, 16], 1, "same");
    const got = [y1.dataSync().slice(), y2.dataSync().slice(), dx.dataSync().slice()];
    tf.dispose([w, y1, y2, dx]); // the next filter is likely allocated where this one lay
    await tf.setBackend("cpu");
    const [cx, cw, cdy] = [tf.tensor4d(x.dataSync().slice(), x.shape), tf.tensor4d(values, [3, 3, 16, 32]), tf.tensor4d(dy.dataSync().slice(), dy.shape)];
    const want = [tf.conv2d(cx, cw, 1, "same"), tf.conv2dTranspose(cdy, cw, [2, 9, 9, 16], 1, "same")].map((t) => t.dataSync().slice());
    tf.dispose([cx, cw, cdy]);
    await tf.setBackend("wasm");
    for (const [i, j] of [[0, 0], [1, 0], [2, 1]]) {
      const err = relativeError(got[i] as Float32Array, want[j] as Float32Array);
      assert.ok(err < 1e-5, `filter ${k}, output ${i}: relative error ${err.toExponential(2)}`);
    }
  }
  tf.dispose([x, dy]);
});

interface WinoCase { n: number; h: number; w: number; c: number; o: number; pad: Pad }
// Shapes that take the Winograd path (3x3, stride 1, >= 32 channels in, >= 64 out, >= 16 tiles
// of 4x4 outputs): odd sizes whose last tiles overrun the edge, same, valid and explicit
// asymmetric padding, and VGG19's widest layer.
const WINO_CASES: WinoCase[] = [
  { n: 3, h: 11, w: 9, c: 64, o: 72, pad: "same" },
  { n: 4, h: 10, w: 13, c: 32, o: 64, pad: "valid" },
  { n: 2, h: 17, w: 17, c: 96, o: 80, pad: [[0, 0], [2, 0], [1, 2], [0, 0]] },
  { n: 4, h: 8, w: 8, c: 512, o: 512, pad: "same" },
];

test("Winograd inference of 3x3 convolutions matches cpu: odd sizes, every padding, bias and activations; off gives the direct kernel", { skip }, async () => {
  try {
    for (const [i, k] of WINO_CASES.entries()) {
      const xShape = [k.n, k.h, k.w, k.c];
      const fShape = [3, 3, k.c, k.o];
      // Real-looking activations: non-negative inputs (a ReLU's), He-scaled filters.
      const x = { shape: xShape, values: randomValues(xShape.reduce((a, b) => a * b), 2800 + i).map((v) => Math.max(0, v)) };
      const filter = { shape: fShape, values: randomValues(fShape.reduce((a, b) => a * b), 2900 + i).map((v) => v * Math.sqrt(6 / (9 * k.c))) };
      const bias = { shape: [k.o], values: randomValues(k.o, 3000 + i) };
      const base = { strides: 1, pad: k.pad, dataFormat: "NHWC", dilations: 1 };
      const cases: Array<[string, Inputs, object]> = [
        ["Conv2D", { x, filter }, base],
        ...["linear", "relu", "relu6"].map((activation): [string, Inputs, object] => ["FusedConv2D", { x, filter, bias }, { ...base, activation }]),
      ];
      for (const [kernel, inputs, attrs] of cases) {
        const label = `${kernel} x ${xShape.join("x")} -> ${k.o}, pad ${JSON.stringify(k.pad)}, ${(attrs as { activation?: string }).activation ?? "no bias"}`;
        const cpu = await runKernelOn("cpu", kernel, inputs, attrs);
        addon!.setWinograd!(1);
        assert.equal(addon!.info().winograd, "inference");
        const before = addon!.info().winogradCalls!;
        const wino = await runKernelOn("wasm", kernel, inputs, attrs);
        assert.equal(addon!.info().winogradCalls, before + 1, `${label}: the Winograd path ran`);
        addon!.setWinograd!(0);
        const direct = await runKernelOn("wasm", kernel, inputs, attrs);
        assert.equal(addon!.info().winogradCalls, before + 1, `${label}: off runs the direct kernel`);
        assert.deepEqual(wino.shape, cpu.shape, `${label}: shape`);
        // Float rounding of the transforms: a few 1e-6 of the largest output, ~1e-5 at 512 channels.
        const err = relativeError(wino.values, cpu.values);
        assert.ok(err < 5e-5, `${label}: Winograd relative error ${err.toExponential(2)} >= 5e-5`);
        assert.ok(relativeError(direct.values, cpu.values) < 1e-5, `${label}: direct`);
      }
    }
  } finally {
    addon!.setWinograd!(2);
  }
  assert.equal(addon!.info().winograd, "on", "back to on, the default");
  // Training (forward and input gradient on the Winograd path, the default): both gradients
  // match cpu; with UTKFACE_ONEDNN_WINOGRAD=inference training keeps the direct kernels.
  // Training takes at least 64 tiles: the first three shapes with larger batches.
  const TRAIN_CASES: WinoCase[] = WINO_CASES.slice(0, 3).map((k) => ({ ...k, n: k.n * 4 }));
  for (const [i, k] of TRAIN_CASES.entries()) {
    const xs = [k.n, k.h, k.w, k.c];
    const xv = randomValues(xs.reduce((a, b) => a * b), 3200 + i).map((v) => Math.max(0, v));
    const fv = randomValues(9 * k.c * k.o, 3300 + i).map((v) => v * Math.sqrt(6 / (9 * k.c)));
    const loss = (x: tf.Tensor, f: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, k.pad).relu().square().sum();
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(xv, xs as [number, number, number, number]);
      const f = tf.tensor4d(fv, [3, 3, k.c, k.o]);
      const before = addon!.info().winogradCalls!;
      const [dx, df] = tf.grads(loss)([x, f]);
      const out = { dx: dx.dataSync().slice() as Float32Array, df: df.dataSync().slice() as Float32Array, calls: addon!.info().winogradCalls! - before };
      tf.dispose([x, f, dx, df]);
      return out;
    };
    const cpu = await run("cpu");
    const ours = await run("wasm");
    assert.ok(ours.calls >= 1, `training ${JSON.stringify(k)}: took the Winograd path`);
    for (const g of ["dx", "df"] as const) {
      const err = relativeError(ours[g], cpu[g]);
      assert.ok(err < 5e-5, `training ${JSON.stringify(k)}: ${g} relative error ${err.toExponential(2)}`);
    }
    addon!.setWinograd!(1);
    try {
      assert.equal((await run("wasm")).calls, 0, `training ${JSON.stringify(k)}: inference-only mode keeps training direct`);
    } finally {
      addon!.setWinograd!(2);
    }
  }
  // A batch too small for it (4 tiles of a 512-channel 8x8 layer) and a stride-2 layer keep the direct kernel.
  const before = addon!.info().winogradCalls!;
  await runKernelOn("wasm", "Conv2D", { x: { shape: [1, 8, 8, 512], values: randomValues(8 * 8 * 512, 3100) }, filter: { shape: [3, 3, 512, 512], values: randomValues(9 * 512 * 512, 3101) } }, { strides: 1, pad: "same" });
  await runKernelOn("wasm", "Conv2D", { x: { shape: [8, 16, 16, 64], values: randomValues(8 * 256 * 64, 3102) }, filter: { shape: [3, 3, 64, 64], values: randomValues(9 * 64 * 64, 3103) } }, { strides: 2, pad: "same" });
  assert.equal(addon!.info().winogradCalls, before, "no Winograd where it does not pay");
  assert.throws(() => registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn", UTKFACE_ONEDNN_WINOGRAD: "yes" }), /UTKFACE_ONEDNN_WINOGRAD="yes": use on .*inference .*off/);
});

/**
 * Activations of real faces: 32x32 gray crops of data/sample through a seeded 3x3 conv with 6
 * filters, scaled so that values fall below 0, inside 0..6 and above 6 (ReLU6's three regions).
 */
async function faceActivations(n: number): Promise<{ shape: number[]; values: Float32Array }> {
  const faces = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32 });
  await tf.setBackend("cpu");
  const out = tf.tidy(() => {
    const x = tf.tensor4d(faces.pixels.subarray(0, n * 32 * 32), [n, 32, 32, 1], "int32").toFloat().div(255);
    const w = tf.tensor4d(randomValues(9 * 6, 2100), [3, 3, 1, 6]);
    return tf.conv2d(x, w, 1, "same").mul(12);
  });
  const result = { shape: out.shape, values: out.dataSync() as Float32Array };
  out.dispose();
  return result;
}

/** Runs `f` on `backend` over fresh tensors of `inputs`, returning its values and the kernels it ran. */
async function gradsOn(backend: string, inputs: Array<{ shape: number[]; values: Float32Array }>, f: (ts: tf.Tensor[]) => tf.Tensor[]): Promise<{ values: Float32Array[]; kernels: string[] }> {
  await tf.setBackend(backend);
  const ts = inputs.map((t) => tf.tensor(t.values, t.shape));
  let outs: tf.Tensor[] = [];
  const info = await tf.profile(() => {
    outs = f(ts);
    return outs;
  });
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose([...ts, ...outs]);
  return { values, kernels: info.kernelNames };
}

test("ReLU6's gradient (ClipByValue) on the addon matches tfjs cpu on real face activations, ends exact", { skip }, async () => {
  const a = await faceActivations(8);
  // Some values exactly at the ends: tfjs passes the gradient at both (min <= x <= max).
  for (let i = 0; i < a.values.length; i += 97) a.values[i] = i % 2 ? 0 : 6;
  const w = { shape: a.shape, values: randomValues(a.values.length, 2200) };
  const f = ([x, wt]: tf.Tensor[]) => [tf.grad((v: tf.Tensor) => tf.clipByValue(v, 0, 6).mul(wt).sum())(x)];
  const cpu = await gradsOn("cpu", [a, w], f);
  const ours = await gradsOn("wasm", [a, w], f);
  assert.ok(ours.kernels.includes("UtkfaceClipByValueGrad"), `the addon's kernel should run: ${ours.kernels.join(" ")}`);
  assert.ok(!ours.kernels.includes("LogicalAnd"), "tfjs's five-kernel form should not run on oneDNN's engine");
  assert.deepEqual(Array.from(ours.values[0]), Array.from(cpu.values[0]), "ReLU6 gradient: exact");
  const inside = cpu.values[0].filter((v) => v !== 0).length;
  assert.ok(inside > a.values.length / 10 && inside < a.values.length * 0.9, `all three regions present (${inside} of ${a.values.length} pass)`);
});


test("Relu's gradient on the addon equals tfjs cpu's to the bit on real face activations, zeros and negative gradients included", { skip }, async () => {
  const a = await faceActivations(8);
  // Centred, so about half the activations are negative; some exactly 0 (Step gives 0 there).
  const mid = a.values.reduce((s, v) => s + v, 0) / a.values.length;
  const x = { shape: a.shape, values: a.values.map((v, i) => (i % 101 === 0 ? 0 : v - mid)) };
  const w = { shape: a.shape, values: randomValues(a.values.length, 2250) };
  const f = ([xv, wt]: tf.Tensor[]) => [tf.grad((v: tf.Tensor) => tf.relu(v).mul(wt).sum())(xv)];
  const cpu = await gradsOn("cpu", [x, w], f);
  const ours = await gradsOn("wasm", [x, w], f);
  assert.ok(ours.kernels.includes("UtkfaceReluGrad"), `the addon's kernel should run: ${ours.kernels.join(" ")}`);
  assert.ok(!ours.kernels.includes("Step"), "tfjs's Step-and-Multiply form should not run on oneDNN's engine");
  // Bit patterns, so -0 (a negative gradient times step 0) must match too.
  assert.deepEqual(new Uint32Array(ours.values[0].buffer), new Uint32Array(cpu.values[0].buffer), "Relu gradient: exact");
  const passed = cpu.values[0].filter((v) => v !== 0).length;
  assert.ok(passed > x.values.length / 5 && passed < x.values.length * 0.8, `both sides of 0 present (${passed} of ${x.values.length} pass)`);
});
test("Relu, ClipByValue and Relu6 on the addon equal wasm's own kernels to the bit on real face activations, -0, NaN, infinities and odd lengths included", { skip }, async () => {
  const a = await faceActivations(8);
  const mid = a.values.reduce((s, v) => s + v, 0) / a.values.length;
  // Centred (half negative), some values exactly at 0 and 6, -0, NaN and both infinities.
  const special = [0, -0, 6, NaN, Infinity, -Infinity, -1e-3, 6.0001];
  const values = a.values.map((v, i) => (i % 89 === 0 ? special[(i / 89) % special.length] : v - mid));
  // Odd lengths too, for the tails of the vector loops on both sides.
  const cases = [{ shape: a.shape, values }, { shape: [1003], values: values.subarray(0, 1003) }, { shape: [7], values: Float32Array.from(special.slice(0, 7)) }];
  const run = async (f: (x: tf.Tensor) => tf.Tensor) => {
    const outs: Uint32Array[] = [];
    const kernels: string[] = [];
    for (const c of cases) {
      const r = await gradsOn("wasm", [c], ([x]) => [f(x)]);
      outs.push(new Uint32Array(r.values[0].buffer));
      kernels.push(...r.kernels);
    }
    return { outs, kernels };
  };
  const ops: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
    ["Relu", (x) => tf.relu(x)],
    ["ClipByValue", (x) => tf.clipByValue(x, 0, 6)],
    ["ClipByValue", (x) => tf.clipByValue(x, -0.25, 0.5)],
    ["Relu6", (x) => tf.relu6(x)],
  ];
  const ours = [];
  for (const [, f] of ops) ours.push(await run(f));
  unregisterOneDnnKernels();
  const wasm = [];
  try {
    for (const [, f] of ops) wasm.push(await run(f));
  } finally {
    registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn" });
  }
  ops.forEach(([name], k) => {
    cases.forEach((c, i) => assert.deepEqual(ours[k].outs[i], wasm[k].outs[i], `${name} #${k} on ${c.shape.join("x")}: bit patterns`));
  });
  // The threaded pass ran (the kernel names are tfjs's; the addon is seen by its speed in the bench).
  assert.ok(ours[0].kernels.includes("Relu") && ours[1].kernels.includes("ClipByValue") && ours[3].kernels.includes("Relu6"));
  const zeros = ours[0].outs[0].filter((b) => b === 0).length;
  assert.ok(zeros > values.length / 5 && zeros < values.length * 0.8, `both sides of 0 present (${zeros} of ${values.length} are +0)`);
});

test("Relu6's gradient on the addon equals tfjs cpu's to the bit on real face activations: 0 and 6 at the ends, NaN, negative gradients", { skip }, async () => {
  const a = await faceActivations(8);
  // Values exactly at 0 (no gradient: step(0) is 0) and 6 (gradient: x <= 6), and NaN.
  const x = { shape: a.shape, values: a.values.map((v, i) => (i % 97 === 0 ? [0, 6, NaN][(i / 97) % 3] : v - 1)) };
  const w = { shape: a.shape, values: randomValues(a.values.length, 2260) };
  const f = ([xv, wt]: tf.Tensor[]) => [tf.grad((v: tf.Tensor) => tf.relu6(v).mul(wt).sum())(xv)];
  const cpu = await gradsOn("cpu", [x, w], f);
  const ours = await gradsOn("wasm", [x, w], f);
  assert.ok(ours.kernels.includes("UtkfaceRelu6Grad"), `the addon's kernel should run: ${ours.kernels.join(" ")}`);
  assert.ok(!ours.kernels.includes("LessEqual"), "tfjs's LessEqual-Step-Multiply form should not run on oneDNN's engine");
  assert.deepEqual(new Uint32Array(ours.values[0].buffer), new Uint32Array(cpu.values[0].buffer), "Relu6 gradient: exact");
  const passed = cpu.values[0].filter((v) => v !== 0 && !Number.isNaN(v)).length;
  assert.ok(passed > x.values.length / 10 && passed < x.values.length * 0.9, `all three regions present (${passed} of ${x.values.length} pass)`);
});

test("BatchNorm's gradients (and its moments' Mean and Square gradients) on the addon match tfjs cpu on real face activations", { skip }, async () => {
  const a = await faceActivations(8);
  const C = a.shape[3];
  const w = { shape: a.shape, values: randomValues(a.values.length, 2300) };
  const ch = (seed: number, shift: number) => ({ shape: [C], values: randomValues(C, seed).map((v) => v + shift) });
  const gamma = ch(2310, 1);
  const beta = ch(2320, 0);
  // Training form, as tf.layers.batchNormalization writes it: moments of x, then batchNorm.
  const train = ([x, wt, g, b]: tf.Tensor[]) => {
    const loss = (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) => {
      const { mean, variance } = tf.moments(xv, [0, 1, 2]);
      return tf.batchNorm(xv, mean, variance, bv, gv, 0.001).mul(wt).sum();
    };
    return tf.grads(loss as (...ts: tf.Tensor[]) => tf.Tensor)([x, g, b]);
  };
  const cpu = await gradsOn("cpu", [a, w, gamma, beta], train);
  const ours = await gradsOn("wasm", [a, w, gamma, beta], train);
  for (const k of ["UtkfaceFusedBatchNormGrad", "UtkfaceMeanGrad", "UtkfaceSquareGrad"]) assert.ok(ours.kernels.includes(k), `the addon's ${k} should run: ${ours.kernels.join(" ")}`);
  for (const [i, name] of ["x", "scale", "offset"].entries()) {
    const err = relativeError(ours.values[i], cpu.values[i]);
    assert.ok(err < 1e-4, `training BatchNorm d${name}: relative error ${err.toExponential(2)}`);
  }
  // Given statistics: all five gradients. (Without a scale tfjs 4.22 cannot take this gradient
  // on any backend: it saves the absent scale for the backward pass and fails.)
  const mean = ch(2330, 0.5);
  const variance = ch(2340, 2);
  const given = ([x, wt, m, v, g, b]: tf.Tensor[]) =>
    tf.grads(((xv: tf.Tensor, mv: tf.Tensor, vv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) => tf.batchNorm(xv, mv, vv, bv, gv, 0.001).mul(wt).sum()) as (...ts: tf.Tensor[]) => tf.Tensor)([x, m, v, g, b]);
  const inputs = [a, w, mean, variance, gamma, beta];
  const c = await gradsOn("cpu", inputs, given);
  const o = await gradsOn("wasm", inputs, given);
  assert.ok(o.kernels.includes("UtkfaceFusedBatchNormGrad"));
  for (const [i, name] of ["x", "mean", "variance", "scale", "offset"].entries()) {
    const err = relativeError(o.values[i], c.values[i]);
    assert.ok(err < 1e-4, `BatchNorm (given statistics) d${name}: relative error ${err.toExponential(2)}`);
  }
});

/**
 * A small conv net in the report's style, seeded, so two engines start from the same weights.
 * `depthwise` adds a depthwise layer (the wasm kernels cannot train one: tfjs-backend-wasm 4.22
 * has no depthwise gradients).
 */
function smallCnn(size: number, depthwise: boolean): tf.Sequential {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [size, size, 1], filters: 8, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: init(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      ...(depthwise ? [tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", activation: "relu", depthwiseInitializer: init(2) })] : []),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: "valid", activation: "relu", kernelInitializer: init(3) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 16, activation: "relu", kernelInitializer: init(4) }),
      tf.layers.dense({ units: 2, activation: "softmax", kernelInitializer: init(5) }),
    ],
  });
}

/** Trains smallCnn on real faces (gender) and returns per-epoch losses and live tensor counts. */
async function fitFaces(x: tf.Tensor4D, y: tf.Tensor2D): Promise<{ losses: number[]; counts: number[] }> {
  const model = smallCnn(x.shape[1], false);
  model.compile({ optimizer: tf.train.adam(0.003), loss: "categoricalCrossentropy" });
  const losses: number[] = [];
  const counts: number[] = [];
  await model.fit(x, y, {
    epochs: 4,
    batchSize: 25,
    shuffle: false,
    verbose: 0,
    callbacks: {
      onEpochEnd: async (_e, logs) => {
        losses.push(logs!.loss as number);
        counts.push(tf.memory().numTensors);
      },
    },
  });
  model.dispose();
  return { losses, counts };
}

test("the fused Adam update gives tfjs's Adam to the bit: weights and moments over 4 steps of the report CNN on real faces (denormal moments flushed)", { skip }, async () => {
  await tf.setBackend("wasm");
  const faces = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 48 });
  const n = 16;
  const x = tf.tidy(() => tf.tensor4d(faces.pixels.subarray(0, n * 48 * 48), [n, 48, 48, 1], "int32").toFloat().div(255));
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(faces.records.slice(0, n).map((r) => Math.min(19, Math.floor(r.age / 5))), "int32"), 20).toFloat());
  const run = async (optimizer: tf.Optimizer) => {
    const model = buildModel("cnn-age-sigmoid", { size: 48, channels: 1 });
    model.compile({ optimizer, loss: "binaryCrossentropy" });
    const losses: number[] = [];
    let kernels: string[] = [];
    for (let step = 0; step < 4; step++) {
      const info = await tf.profile(async () => void losses.push(Number(await model.trainOnBatch(x, y))));
      kernels = info.kernelNames;
    }
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    const state = (await optimizer.getWeights()).map((w) => ({ name: w.name, values: Array.from(w.tensor.dataSync()) }));
    model.dispose();
    optimizer.dispose();
    return { losses, kernels, weights, state };
  };
  const before = tf.memory().numTensors;
  const theirs = await run(tf.train.adam(1e-3));
  const ours = await run(new FusedAdamOptimizer(1e-3, 0.9, 0.999));
  assert.ok(ours.kernels.includes(ADAM_KERNEL), `the fused update should run: ${ours.kernels.join(" ")}`);
  assert.ok(!ours.kernels.includes("Sqrt"), "tfjs's per-variable element-wise update should not run");
  assert.ok(theirs.kernels.includes("Sqrt") && !theirs.kernels.includes(ADAM_KERNEL), "the comparison runs tfjs's own Adam");
  assert.deepEqual(ours.losses, theirs.losses, "losses of every step");
  assert.ok(theirs.losses[3] < theirs.losses[0], `the loss falls: ${theirs.losses.join(", ")}`);
  assert.equal(ours.weights.length, theirs.weights.length);
  ours.weights.forEach((w, i) => assert.deepEqual(w, theirs.weights[i], `weight ${i}: exact`));
  // The second model's variables get tfjs's unique suffix ("kernel_1"): the names agree without it.
  const plain = (name: string) => name.replace(/_\d+\/([mv])$/, "/$1");
  assert.deepEqual(ours.state.map((s) => plain(s.name)), theirs.state.map((s) => plain(s.name)), "optimizer state names (checkpoints)");
  // Exact but where tfjs keeps a denormal second moment (a gradient near 1e-19): the addon's
  // kernels flush those to 0 while they run, as TensorFlow's do (see FlushDenormals).
  const MIN_NORMAL = 1.1754943508222875e-38;
  ours.state.forEach((s, i) =>
    s.values.forEach((v, j) => {
      const want = theirs.state[i].values[j];
      if (v !== want) assert.ok(Math.abs(v) < MIN_NORMAL && Math.abs(want) < MIN_NORMAL, `optimizer state ${s.name}[${j}]: ${v} vs ${want}, exact above the denormals`);
    }),
  );
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before, "no tensor left behind");
});

test("a fit on real faces gives the wasm kernels' losses with a flat tensor count", { skip }, async () => {
  const faces = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32 });
  const n = 200;
  await tf.setBackend("wasm");
  const x = tf.tidy(() => tf.tensor4d(faces.pixels.subarray(0, n * 32 * 32), [n, 32, 32, 1], "int32").toFloat().div(255)) as tf.Tensor4D;
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(faces.records.slice(0, n).map((r) => r.gender), "int32"), 2).toFloat()) as tf.Tensor2D;
  try {
    const ours = await fitFaces(x, y);
    unregisterOneDnnKernels();
    let wasm: Awaited<ReturnType<typeof fitFaces>>;
    try {
      assert.ok(!oneDnnKernelsInstalled());
      wasm = await fitFaces(x, y);
    } finally {
      registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn" });
    }
    assert.ok(oneDnnKernelsInstalled());
    assert.ok(ours.losses.at(-1)! < ours.losses[0], `loss should fall on oneDNN: ${ours.losses.join(" ")}`);
    for (let e = 0; e < ours.losses.length; e++) {
      const rel = Math.abs(ours.losses[e] - wasm.losses[e]) / wasm.losses[e];
      assert.ok(rel < 1e-3, `epoch ${e + 1}: oneDNN loss ${ours.losses[e]} vs wasm ${wasm.losses[e]} (relative ${rel.toExponential(2)})`);
    }
    assert.equal(new Set(ours.counts).size, 1, `tensor count per epoch on oneDNN: ${ours.counts.join(" ")}`);
  } finally {
    tf.dispose([x, y]);
  }
});

test("1,000 steps of every oneDNN kernel hold resident memory flat (no native leak)", { skip }, async () => {
  await tf.setBackend("wasm");
  // One "step" runs each kernel once on a small layer, forward and both gradients, as a
  // training step does; any buffer the addon failed to release would pile up per call.
  const x = tf.randomUniform([4, 12, 12, 8], -1, 1, "float32", 3) as tf.Tensor4D;
  const w = tf.randomUniform([3, 3, 8, 8], -1, 1, "float32", 4) as tf.Tensor4D;
  const dw = tf.randomUniform([3, 3, 8, 1], -1, 1, "float32", 5) as tf.Tensor4D;
  const bias = tf.randomUniform([8], -1, 1, "float32", 6);
  const m = tf.randomUniform([64, 32], -1, 1, "float32", 7);
  const bias64 = tf.randomUniform([64], -1, 1, "float32", 8);
  const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: object) => tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
  const conv = { strides: 1, pad: "same", dataFormat: "NHWC", dilations: 1 };
  const step = () =>
    tf.tidy(() => {
      const y = run("FusedConv2D", { x, filter: w, bias }, { ...conv, activation: "relu" });
      run("Conv2DBackpropInput", { dy: y, filter: w }, { ...conv, inputShape: x.shape });
      run("Conv2DBackpropFilter", { x, dy: y }, { ...conv, filterShape: w.shape });
      const d = run("DepthwiseConv2dNative", { x, filter: dw }, conv);
      run("DepthwiseConv2dNativeBackpropInput", { dy: d, filter: dw }, { ...conv, inputShape: x.shape });
      run("DepthwiseConv2dNativeBackpropFilter", { x, dy: d }, { ...conv, filterShape: dw.shape });
      const pooled = run("MaxPool", { x: y }, { filterSize: 2, strides: 2, pad: "valid" });
      run("MaxPoolGrad", { dy: pooled, input: y, output: pooled }, { filterSize: 2, strides: 2, pad: "valid" });
      run("BatchMatMul", { a: m, b: m }, { transposeA: true, transposeB: false });
      run("_FusedMatMul", { a: m, b: m, bias: bias64 }, { transposeA: false, transposeB: true, activation: "relu" });
    });
  // Native memory = resident set minus V8's heap and external buffers (the wasm heap is one):
  // those grow for a while as V8 warms up, whatever the kernels do.
  const native = () => {
    const m = process.memoryUsage();
    return m.rss - m.heapTotal - m.external;
  };
  // One thread: the same code paths, and fast on a loaded shared machine.
  addon!.setThreads(1);
  try {
    for (let i = 0; i < 300; i++) step();
    const tensors = tf.memory().numTensors;
    const before = native();
    for (let i = 0; i < 1000; i++) step();
    const grownMb = (native() - before) / 2 ** 20;
    assert.equal(tf.memory().numTensors, tensors, "live tensors after 1,000 steps");
    // Leaking the smallest output of a step (the 32x32 product, 4 KiB) would add ~4 MB, a conv
    // output (18 KiB) ~18 MB.
    assert.ok(grownMb < 4, `native memory grew ${grownMb.toFixed(1)} MB over 1,000 steps`);
  } finally {
    registerOneDnnKernels({ ...process.env, UTKFACE_ENGINE: "onednn" }); // back to UTKFACE_THREADS
    tf.dispose([x, w, dw, bias, m, bias64]);
  }
});

/** A conv-gradient checksum in a fresh process, with the backend line the library chose. */
function checksumIn(env: NodeJS.ProcessEnv): { threads: number; engine: string; reason: string; grad: number[] } {
  const source = `
const { initBackend, setBackendQuiet, tf } = require(${JSON.stringify(path.join(__dirname, "..", "lib", "engine", "backend"))});
(async () => {
  setBackendQuiet(true);
  const info = await initBackend();
  const x = tf.randomNormal([4, 9, 9, 3], 0, 1, "float32", 1);
  const w = tf.randomNormal([3, 3, 3, 5], 0, 1, "float32", 2);
  const g = tf.grad((f) => tf.maxPool(tf.conv2d(x, f, 2, "same").relu(), 2, 2, "valid").square().sum())(w);
  console.log(JSON.stringify({ threads: info.threads, engine: info.engine, reason: info.reason, grad: Array.from(g.dataSync()) }));
})();`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", source], { cwd: path.join(__dirname, ".."), env: { ...process.env, TFJS_BACKEND: "wasm", ...env }, encoding: "utf8", timeout: 90_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("UTKFACE_ENGINE and UTKFACE_THREADS pick the engine and say so; both engines give the same gradient", { skip }, () => {
  const dnn = checksumIn({ UTKFACE_ENGINE: "onednn", UTKFACE_THREADS: "2" });
  const wasm = checksumIn({ UTKFACE_ENGINE: "wasm" });
  assert.match(dnn.reason, /^wasm \+ oneDNN 2\.6\.\d+, 2 threads/);
  assert.equal(dnn.threads, 2);
  assert.match(wasm.reason, /^wasm kernels: UTKFACE_ENGINE=wasm/);
  dnn.grad.forEach((v, i) => assert.ok(Math.abs(v - wasm.grad[i]) <= 1e-4 * Math.max(1, Math.abs(wasm.grad[i])), `grad[${i}] ${v} vs ${wasm.grad[i]}`));
  assert.throws(() => requestedEngine({ UTKFACE_ENGINE: "mkl" }), /UTKFACE_ENGINE="mkl" is not an engine/);
  for (const bad of ["0", "two", "1.5"]) assert.throws(() => requestedThreads({ UTKFACE_THREADS: bad }), /is not a thread count/);
  assert.equal(requestedThreads({ UTKFACE_THREADS: "3" }), 3);
});

test("signals arriving while oneDNN runs corrupt nothing: matrix products and convolutions under node --cpu-prof's 250 us SIGPROF", { skip, timeout: 180_000 }, () => {
  // oneDNN 2.6's generated GEMM kernels (every float32 matmul on an AVX2 CPU) point rsp into the
  // heap while they run; a signal handled meanwhile used to abort the process within seconds.
  const source = `
const { initBackend, setBackendQuiet, tf } = require(${JSON.stringify(path.join(__dirname, "..", "lib", "engine", "backend"))});
(async () => {
  setBackendQuiet(true);
  await initBackend();
  const a = tf.randomUniform([256, 512], -1, 1, "float32", 1), b = tf.randomUniform([512, 512], -1, 1, "float32", 2);
  const x = tf.randomUniform([8, 17, 17, 64], -1, 1, "float32", 3), w = tf.randomUniform([3, 3, 64, 64], -1, 1, "float32", 4);
  let sum = 0;
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < 3000; i++) sum += tf.tidy(() => tf.matMul(a, b).sum().add(tf.conv2d(x, w, 1, "same").sum()).dataSync()[0]);
  console.log(JSON.stringify({ finite: Number.isFinite(sum) }));
})();`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-prof-"));
  try {
    const r = spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-interval", "250", "--cpu-prof-dir", dir, "--import", "tsx", "-e", source], { cwd: path.join(__dirname, ".."), env: { ...process.env, TFJS_BACKEND: "wasm", UTKFACE_ENGINE: "onednn", UTKFACE_THREADS: "2" }, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, `the child died (signal ${r.signal}): ${r.stderr.slice(-500)}`);
    assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), { finite: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** In a child process: a oneDNN conv of denormal inputs, then JavaScript's and wasm's arithmetic on denormals. */
function denormalsIn(env: NodeJS.ProcessEnv): { conv: number[]; js: number; wasmMul: number } {
  const source = `
const { initBackend, setBackendQuiet, tf } = require(${JSON.stringify(path.join(__dirname, "..", "lib", "engine", "backend"))});
(async () => {
  setBackendQuiet(true);
  await initBackend();
  // 2e-39 is a float32 denormal (the smallest normal is 1.18e-38): each output sums 9 of them.
  const x = tf.fill([1, 4, 4, 2], 2e-39);
  const conv = Array.from(tf.conv2d(x, tf.ones([3, 3, 2, 1]), 1, "valid").dataSync());
  let d = 1e-310; for (let i = 0; i < 3; i++) d = d * 1.5;
  const wasmMul = tf.mul(x, tf.scalar(2)).dataSync()[0];
  console.log(JSON.stringify({ conv, js: d, wasmMul }));
})();`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", source], { cwd: path.join(__dirname, ".."), env: { ...process.env, TFJS_BACKEND: "wasm", UTKFACE_ENGINE: "onednn", UTKFACE_THREADS: "2", ...env }, encoding: "utf8", timeout: 90_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("oneDNN's convolutions flush denormals (UTKFACE_DENORMALS=keep keeps them); JavaScript and wasm keep IEEE denormals after the call", { skip, timeout: 180_000 }, () => {
  const flushed = denormalsIn({});
  const kept = denormalsIn({ UTKFACE_DENORMALS: "keep" });
  assert.deepEqual(flushed.conv, [0, 0, 0, 0], "denormal inputs are read as zero by the convolution");
  kept.conv.forEach((v) => assert.ok(Math.abs(v / 3.6e-38 - 1) < 1e-3, `kept: 18 x 2e-39 = 3.6e-38, got ${v}`));
  for (const r of [flushed, kept]) {
    assert.ok(Math.abs(r.js / 3.375e-310 - 1) < 1e-9, `JavaScript's doubles keep denormals after a oneDNN call: ${r.js}`);
    assert.ok(Math.abs(r.wasmMul / 4e-39 - 1) < 1e-3, `wasm's Multiply keeps float32 denormals: ${r.wasmMul}`);
  }
});
