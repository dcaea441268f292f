/**
 * The wasm training kernels against the cpu backend's kernels on random tensors, over strides
 * 1-3, 'same'/'valid'/explicit padding, odd sizes and non-square filters; then a short model.fit
 * on wasm whose tensor count stays flat (no leaks in the kernels' intermediates).
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerTrainingKernels, trainingKernelsInstalled } from "../lib/engine/wasm/training-kernels";
import { mulberry32 } from "../lib/data/splits";
import { relativeError } from "./helpers";

before(async () => {
  assert.ok(await tf.setBackend("wasm"), "the wasm backend should load");
  registerTrainingKernels();
});

/** Random values in [-1, 1) from a seeded generator, so a failure can be replayed. */
function randomValues(size: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: size }, () => rand() * 2 - 1);
}

type Inputs = Record<string, { shape: number[]; values: Float32Array }>;

/** Runs one kernel on `backend` with fresh tensors and returns its output values and shape. */
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
  const wasm = await runKernelOn("wasm", kernel, inputs, attrs);
  assert.deepEqual(wasm.shape, cpu.shape, `${label}: shape`);
  const err = relativeError(wasm.values, cpu.values);
  assert.ok(err < 1e-5, `${label}: relative error ${err.toExponential(2)} >= 1e-5`);
}

type Pad = "same" | "valid" | tf.backend_util.ExplicitPadding;
const CONV_CASES: Array<{ n: number; h: number; w: number; c: number; o: number; kh: number; kw: number; s: [number, number]; pad: Pad }> = [];
for (const s of [1, 2, 3]) {
  for (const pad of ["same", "valid"] as const) {
    CONV_CASES.push({ n: 3, h: 11, w: 9, c: 3, o: 5, kh: 3, kw: 2, s: [s, s], pad });
    CONV_CASES.push({ n: 2, h: 8, w: 13, c: 4, o: 2, kh: 1, kw: 5, s: [s, s], pad });
  }
}
CONV_CASES.push({ n: 2, h: 10, w: 7, c: 2, o: 3, kh: 3, kw: 3, s: [2, 1], pad: "same" });
CONV_CASES.push({ n: 2, h: 10, w: 7, c: 2, o: 3, kh: 4, kw: 3, s: [1, 3], pad: "valid" });
CONV_CASES.push({ n: 1, h: 9, w: 9, c: 2, o: 2, kh: 3, kw: 3, s: [2, 2], pad: [[0, 0], [1, 0], [2, 1], [0, 0]] });
// Padding larger than the filter: the input gradient's fast path cannot express it (fallback).
CONV_CASES.push({ n: 1, h: 6, w: 6, c: 2, o: 2, kh: 2, kw: 2, s: [1, 1], pad: [[0, 0], [3, 3], [2, 2], [0, 0]] });

function convCaseName(k: (typeof CONV_CASES)[number]): string {
  return `x ${k.n}x${k.h}x${k.w}x${k.c}, filter ${k.kh}x${k.kw}x${k.c}x${k.o}, strides ${k.s}, pad ${JSON.stringify(k.pad)}`;
}

function convOutShape(k: (typeof CONV_CASES)[number]): number[] {
  const info = tf.backend_util.computeConv2DInfo([k.n, k.h, k.w, k.c], [k.kh, k.kw, k.c, k.o], k.s, 1, k.pad);
  return info.outShape;
}

test("Conv2DBackpropFilter on wasm matches cpu", async () => {
  for (const [i, k] of CONV_CASES.entries()) {
    const dyShape = convOutShape(k);
    const inputs: Inputs = {
      x: { shape: [k.n, k.h, k.w, k.c], values: randomValues(k.n * k.h * k.w * k.c, 100 + i) },
      dy: { shape: dyShape, values: randomValues(dyShape.reduce((a, b) => a * b), 200 + i) },
    };
    await assertMatchesCpu("Conv2DBackpropFilter", inputs, { strides: k.s, pad: k.pad, dataFormat: "NHWC", filterShape: [k.kh, k.kw, k.c, k.o] }, convCaseName(k));
  }
});

test("Conv2DBackpropInput on wasm matches cpu", async () => {
  for (const [i, k] of CONV_CASES.entries()) {
    const dyShape = convOutShape(k);
    const inputs: Inputs = {
      dy: { shape: dyShape, values: randomValues(dyShape.reduce((a, b) => a * b), 300 + i) },
      filter: { shape: [k.kh, k.kw, k.c, k.o], values: randomValues(k.kh * k.kw * k.c * k.o, 400 + i) },
    };
    await assertMatchesCpu("Conv2DBackpropInput", inputs, { strides: k.s, pad: k.pad, dataFormat: "NHWC", inputShape: [k.n, k.h, k.w, k.c] }, convCaseName(k));
  }
});

test("BatchMatMul on wasm matches cpu for every transpose combination and batch broadcast", async () => {
  const shapes: Array<[number[], number[]]> = [
    [[7, 5], [7, 3]],
    [[4, 7, 5], [4, 7, 3]],
    [[1, 9, 2], [3, 9, 6]],
  ];
  for (const [i, [aShape, bShape]] of shapes.entries()) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        // Shapes are written for transposeA=true, transposeB=false; swap axes as needed.
        const a = transposeA ? aShape : [...aShape.slice(0, -2), aShape.at(-1)!, aShape.at(-2)!];
        const b = transposeB ? [...bShape.slice(0, -2), bShape.at(-1)!, bShape.at(-2)!] : bShape;
        const inputs: Inputs = {
          a: { shape: a, values: randomValues(a.reduce((p, q) => p * q), 500 + i) },
          b: { shape: b, values: randomValues(b.reduce((p, q) => p * q), 600 + i) },
        };
        await assertMatchesCpu("BatchMatMul", inputs, { transposeA, transposeB }, `a ${a}, b ${b}, transposeA ${transposeA}, transposeB ${transposeB}`);
      }
    }
  }
});

test("MaxPoolGrad on wasm matches cpu, tiled windows (fast path) and overlapping/padded ones (fallback)", async () => {
  const cases: Array<{ shape: number[]; filterSize: [number, number]; strides: [number, number]; pad: "same" | "valid" }> = [
    { shape: [2, 8, 6, 3], filterSize: [2, 2], strides: [2, 2], pad: "valid" },
    { shape: [2, 9, 7, 3], filterSize: [2, 2], strides: [2, 2], pad: "valid" }, // odd: last row/col unused
    { shape: [1, 9, 9, 2], filterSize: [3, 3], strides: [3, 3], pad: "valid" },
    { shape: [1, 6, 9, 2], filterSize: [2, 3], strides: [2, 3], pad: "valid" },
    { shape: [2, 7, 7, 2], filterSize: [3, 3], strides: [2, 2], pad: "same" },
    { shape: [2, 9, 7, 3], filterSize: [2, 2], strides: [2, 2], pad: "same" },
  ];
  for (const [i, k] of cases.entries()) {
    const size = k.shape.reduce((a, b) => a * b);
    // Values on a coarse grid so that windows contain ties: checks the first-maximum rule.
    const x = randomValues(size, 700 + i).map((v) => Math.round(v * 3));
    await tf.setBackend("cpu");
    const pooled = tf.tidy(() => tf.maxPool(tf.tensor4d(x, k.shape as [number, number, number, number]), k.filterSize, k.strides, k.pad));
    const output = { shape: pooled.shape, values: pooled.dataSync() as Float32Array };
    pooled.dispose();
    const inputs: Inputs = {
      dy: { shape: output.shape, values: randomValues(output.values.length, 800 + i) },
      input: { shape: k.shape, values: x },
      output,
    };
    await assertMatchesCpu("MaxPoolGrad", inputs, { filterSize: k.filterSize, strides: k.strides, pad: k.pad }, `maxPool ${JSON.stringify(k)}`);
  }
});

test("Identity and same-type Cast on wasm share the input's data; the copy outlives the original; real casts convert", async () => {
  await tf.setBackend("wasm");
  const be = tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } }; refCount(id: object): number };
  const before = tf.memory();
  const values = randomValues(1000, 900);
  const x = tf.tensor2d(values, [40, 25]);
  const y = x.clone(); // Identity
  const z = tf.cast(x, "float32");
  assert.equal(be.dataIdMap.get(y.dataId).memoryOffset, be.dataIdMap.get(x.dataId).memoryOffset, "Identity shares the buffer");
  assert.equal(be.refCount(x.dataId), 3, "one buffer, three references");
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), Array.from(values), "the copy keeps its values after the original is gone");
  assert.deepEqual(Array.from(z.dataSync()), Array.from(values));
  const f = tf.tensor1d([1.7, -2.2, 3.9]);
  const i = tf.cast(f, "int32");
  assert.equal(i.dtype, "int32");
  assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3], "a real cast still converts");
  tf.dispose([y, z, f, i]);
  assert.equal(tf.memory().numTensors, before.numTensors, "no tensor left");
  assert.equal(tf.memory().numBytes, before.numBytes, "no buffer left");
});

test("a Slice of the whole tensor on wasm shares its data (size -1 too); other slices copy the right elements", async () => {
  await tf.setBackend("wasm");
  const be = tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } };
  const before = tf.memory();
  const values = randomValues(6 * 5 * 4, 950);
  const x = tf.tensor3d(values, [6, 5, 4]);
  const whole = tf.slice(x, [0, 0, 0], [6, 5, 4]);
  const toEnd = tf.slice(x, 0, -1);
  assert.equal(be.dataIdMap.get(whole.dataId).memoryOffset, be.dataIdMap.get(x.dataId).memoryOffset, "the whole slice shares the buffer");
  assert.equal(be.dataIdMap.get(toEnd.dataId).memoryOffset, be.dataIdMap.get(x.dataId).memoryOffset, "size -1 from 0 is the whole tensor");
  const part = tf.slice(x, [1, 0, 2], [2, 5, 2]);
  const expected: number[] = [];
  for (let i = 1; i < 3; i++) for (let j = 0; j < 5; j++) for (let k = 2; k < 4; k++) expected.push(values[(i * 5 + j) * 4 + k]);
  assert.deepEqual(Array.from(part.dataSync()), expected, "a partial slice is wasm's, element for element");
  const rows = tf.slice(x, [2, 0, 0], [3, 5, 4]);
  assert.deepEqual(Array.from(rows.dataSync()), Array.from(values.subarray(40, 100)), "a contiguous partial slice too");
  x.dispose();
  assert.deepEqual(Array.from(whole.dataSync()), Array.from(values), "the shared slice keeps its values after the original is gone");
  tf.dispose([whole, toEnd, part, rows]);
  assert.equal(tf.memory().numTensors, before.numTensors, "no tensor left");
  assert.equal(tf.memory().numBytes, before.numBytes, "no buffer left");
});

test("registration is idempotent and only touches wasm", async () => {
  const cpuBefore = tf.getKernel("Conv2DBackpropFilter", "cpu");
  registerTrainingKernels();
  assert.ok(trainingKernelsInstalled());
  assert.equal(tf.getKernel("Conv2DBackpropFilter", "cpu"), cpuBefore);
});

test("a small conv net trains with model.fit on wasm: loss falls, tensor count stays flat", async () => {
  await tf.setBackend("wasm");
  const rand = mulberry32(7);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: "valid", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.dropout({ rate: 0.25, seed: 3 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 16, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
      tf.layers.dense({ units: 3, activation: "sigmoid", kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "binaryCrossentropy" });
  const xs = tf.tensor4d(Float32Array.from({ length: 16 * 12 * 12 }, () => rand()), [16, 12, 12, 1]);
  // A learnable target: each output says whether one image quadrant is brighter than average.
  const ys = tf.tidy(() => {
    const q = [xs.slice([0, 0, 0, 0], [16, 6, 6, 1]), xs.slice([0, 6, 6, 0], [16, 6, 6, 1]), xs.slice([0, 0, 6, 0], [16, 6, 6, 1])];
    return tf.stack(q.map((t) => tf.greater(t.mean([1, 2, 3]), xs.mean()).toFloat()), 1);
  });
  const counts: number[] = [];
  const losses: number[] = [];
  await model.fit(xs, ys, {
    epochs: 12,
    batchSize: 8,
    shuffle: false,
    verbose: 0,
    callbacks: {
      onEpochEnd: async (_epoch, logs) => {
        counts.push(tf.memory().numTensors);
        losses.push(logs!.loss as number);
      },
    },
  });
  assert.ok(losses.at(-1)! < losses[0], `loss should fall: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
  // After the first epoch (optimizer slots created) the count must not grow.
  assert.deepEqual(new Set(counts.slice(1)).size, 1, `tensor count per epoch: ${counts.join(" ")}`);
  tf.dispose([xs, ys]);
  model.dispose();
});
