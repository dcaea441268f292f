import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { historyCallback } from "../lib/training/callbacks";
import { loadFaces } from "../lib/data/dataset";
import { runExperiment } from "../lib/training/experiment";
import { buildModel } from "../lib/models/registry";
import { resolveDataDir } from "../lib/core/paths";
import { loadRun } from "../lib/records/runs";
import { trainModel } from "../lib/training/train";

setBackendQuiet(true);
const SIZE = 32;

test("the training loop lowers the loss over two epochs on real faces, with a flat tensor count", async () => {
  await initBackend();
  const data = await loadFaces({ dir: resolveDataDir(), size: SIZE, color: "gray" });
  const indices = Array.from({ length: Math.min(150, data.records.length) }, (_, i) => i);
  const model = buildModel("cnn-age-sigmoid", { size: SIZE });
  const counts: number[] = [];
  const watcher = { onEpochBegin: () => void counts.push(tf.memory().numTensors), onTrainEnd: () => void counts.push(tf.memory().numTensors) };
  const history = historyCallback();
  const r = await trainModel({ model, modelName: "cnn-age-sigmoid", task: "age-groups", data, trainIndices: indices, epochs: 2, batchSize: 25, learningRate: 1e-3, seed: 42, callbacks: [watcher, history] });
  assert.equal(r.history.length, 2);
  assert.equal(history.history.length, 2);
  assert.ok(r.history[1].loss < r.history[0].loss, `loss ${r.history[0].loss} -> ${r.history[1].loss} should fall`);
  // Epoch 1 creates Adam's moment variables; after that, an epoch must not leave tensors behind.
  assert.equal(counts[2], counts[1], `tensors per epoch boundary: ${counts.join(", ")}`);
  model.dispose();
});

test("runExperiment writes a run folder and evaluates only held-out test images", async () => {
  await initBackend();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "runs-"));
  try {
    const data = await loadFaces({ dir: resolveDataDir(), size: SIZE, color: "gray" });
    const tensorsBefore = tf.memory().numTensors;
    const r = await runExperiment({ model: "cnn-seed000", data, epochs: 1, maxImages: 120, resultsRoot: root, progress: false, experiment: "t" });
    // A notebook reruns experiments in one kernel: a finished run must leave no tensor behind.
    assert.equal(tf.memory().numTensors, tensorsBefore, "live tensors after runExperiment");
    for (const f of ["config.json", "history.json", "metrics.json", "predictions.json", "model/model.json", "model/weights.bin"]) {
      assert.ok(fs.existsSync(path.join(r.runDir, f)), f);
    }
    assert.ok(!fs.existsSync(path.join(r.runDir, "checkpoint")), "checkpoint removed after a finished run");
    const split = r.config.split!;
    const trainFiles = new Set(split.train.map((i) => data.records[i].file));
    assert.equal(r.predictions.length, split.test.length);
    assert.ok(r.predictions.every((p) => !trainFiles.has(p.file)), "no training image among the test predictions");
    // seed 000 uses eight ranges 8..80: ages outside are dropped and counted.
    const outside = data.records.filter((x) => x.age < 8 || x.age > 80).length;
    assert.equal(r.config.data.droppedByDivision, outside);
    assert.ok(r.predictions.every((p) => p.age >= 8 && p.age <= 80));
    assert.equal(r.metrics.images, split.test.length);
    assert.equal(r.metrics.ageConfusion!.labels.length, 8);
    // The majority baseline is scored on the same test images, from the training labels.
    assert.ok(r.metrics.baseline && r.metrics.baseline.ageAccuracy! >= 0 && r.metrics.baseline.ageAccuracy! <= 1);
    const back = loadRun(r.runDir);
    assert.deepEqual(back.metrics, r.metrics);
    assert.equal(back.config.profile, r.metrics.profile);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("a non-finite loss stops training with the epoch and batch named", async () => {
  await initBackend();
  const data = await loadFaces({ dir: resolveDataDir(), size: SIZE, color: "gray" });
  const model = buildModel("cnn-age-relu", { size: SIZE });
  await assert.rejects(
    trainModel({ model, modelName: "cnn-age-relu", task: "age-regression", data, trainIndices: [0, 1, 2, 3], epochs: 1, batchSize: 2, learningRate: 1e38, seed: 1 }),
    /loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d\/2/,
  );
  model.dispose();
});
