/**
 * Batch norm folded into the convolutions before it for inference (lib/models/fold.ts): the
 * same outputs as the model itself on real faces after real training steps, the original left
 * as it was, what does not match the pattern left alone, and nothing leaked.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { buildModel } from "../lib/models/registry";
import { buildMobileNetV1 } from "../lib/bench/mobilenet";
import { foldBatchNorm, inferenceModel } from "../lib/models/fold";
import { relativeError } from "./helpers";

setBackendQuiet(true);
before(async () => {
  await initBackend();
});

/** Real faces as a batch: n sample faces at `size`, gray or RGB, scaled to [0, 1]. */
async function faces(n: number, size: number, color: "gray" | "rgb"): Promise<tf.Tensor4D> {
  const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size, color });
  const c = color === "rgb" ? 3 : 1;
  return tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(data.pixels.subarray(0, n * size * size * c)), [n, size, size, c]), 255));
}


test("the seed-000 CNN (conv, BatchNorm, ReLU x 8) and MobileNet-v1 (27 conv/depthwise + BN + ReLU6) fold to the same outputs on real faces after training", async () => {
  for (const [name, model, x, classes] of [
    ["cnn-seed000", buildModel("cnn-seed000"), await faces(16, 70, "gray"), 8],
    ["mobilenet", buildMobileNetV1({ classes: 20, size: 96 }), await faces(8, 96, "rgb"), 20],
  ] as const) {
    model.compile({ optimizer: tf.train.adam(1e-2), loss: "categoricalCrossentropy" });
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: x.shape[0] }, (_, i) => i % classes), "int32"), classes).toFloat();
    // A few real steps: moving means and variances away from 0 and 1, filters away from their start.
    for (let i = 0; i < 3; i++) await model.trainOnBatch(x, y);
    const plain = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const before = tf.memory().numTensors;
    const f = foldBatchNorm(model);
    assert.equal(f.folded, name === "cnn-seed000" ? 8 : 27);
    assert.equal(f.model.layers.filter((l) => l.getClassName() === "BatchNormalization").length, 0, "no batch norm left");
    const folded = tf.tidy(() => (f.model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    assert.ok(relativeError(plain, folded) < 1e-4, `${name}: relative difference ${relativeError(plain, folded)}`);
    // The original still predicts as before and still trains.
    tf.tidy(() => assert.deepEqual((model.predict(x) as tf.Tensor).dataSync(), plain));
    f.dispose();
    assert.equal(tf.memory().numTensors, before, "the fold's filters and biases are freed");
    await model.trainOnBatch(x, y);
    tf.dispose([x, y]);
    model.dispose();
  }
});

test("a model without conv -> batch norm comes back as it is; a conv with an activation of its own is not folded", () => {
  const cnn = buildModel("cnn-age-sigmoid");
  const f = foldBatchNorm(cnn);
  assert.equal(f.folded, 0);
  assert.equal(f.model, cnn);
  cnn.dispose();
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, activation: "relu" }),
      tf.layers.batchNormalization(),
      tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.reLU({ maxValue: 6 }),
    ],
  });
  const g = foldBatchNorm(m);
  assert.equal(g.folded, 1, "only the linear conv folds (with its ReLU6)");
  const x = tf.randomUniform([2, 12, 12, 3], 0, 1, "float32", 5);
  assert.ok(relativeError((m.predict(x) as tf.Tensor).dataSync() as Float32Array, (g.model.predict(x) as tf.Tensor).dataSync() as Float32Array) < 1e-5);
  g.dispose();
  tf.dispose(x);
  m.dispose();
});

test("inferenceModel folds a model once and frees the fold with the model", async () => {
  const model = buildModel("cnn-seed000");
  const a = inferenceModel(model);
  assert.notEqual(a, model);
  assert.equal(inferenceModel(model), a, "made once per model");
  const before = tf.memory().numTensors;
  model.dispose();
  assert.ok(tf.memory().numTensors < before - 8, "the model and its fold freed together");
});
