import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { FaceDataset, decodeImageFile, loadFaces } from "../lib/data/dataset";
import { runExperiment } from "../lib/training/experiment";
import { FACENET_MIN_SIZE, FACENET_NATIVE_SIZE, FACENET_STAGES, buildFaceNetDescriptor, faceNetLayers, faceNetModelDir } from "../lib/models/facenet";
import { buildModel } from "../lib/models/registry";
import { resolveDataDir } from "../lib/core/paths";
import { loadTrainedModel, predictFiles } from "../lib/inference/predict";
import { loadRun } from "../lib/records/runs";
import { saveModel } from "../lib/models/model-files";
import { predictOutputs, trainModel } from "../lib/training/train";
import { TransferEpochRecord, layersToUnfreeze, unfreeze } from "../lib/models/transfer";

setBackendQuiet(true);
const SIZE = 112;
/** Real faces copied from the data folder: enough for a split with train, validation and test. */
const FACES = 24;

let tmp: string;
let faceDir: string;
let data: FaceDataset;

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-"));
  faceDir = path.join(tmp, "faces");
  fs.mkdirSync(faceDir);
  const src = resolveDataDir();
  // Every 7th file: a spread of ages and genders rather than the first names alphabetically.
  const files = fs.readdirSync(src).filter((f) => f.endsWith(".jpg")).sort().filter((_, i) => i % 7 === 0).slice(0, FACES);
  for (const f of files) fs.copyFileSync(path.join(src, f), path.join(faceDir, f));
  data = await loadFaces({ dir: faceDir, size: SIZE, color: "rgb", cacheDir: path.join(tmp, "cache") });
  assert.equal(data.records.length, FACES);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Values of every weight of the named layers, as plain arrays. */
function snapshot(model: tf.LayersModel, names: readonly string[]): Float32Array[] {
  return names.flatMap((n) => model.getLayer(n).getWeights().map((w) => w.dataSync() as Float32Array).map((a) => a.slice()));
}

function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let m = 0;
  a.forEach((x, k) => x.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[k][i])))));
  return m;
}

test("the backbone's descriptor equals face-api's own FaceRecognitionNet on real faces", async () => {
  // face-api's Node build uses our @tensorflow/tfjs instance and whatever backend it runs on.
  const faceapi = require("@vladmandic/face-api/dist/face-api.node-wasm.js");
  await faceapi.nets.faceRecognitionNet.loadFromDisk(faceNetModelDir());
  const model = buildFaceNetDescriptor(FACENET_NATIVE_SIZE);
  const descriptors: Float32Array[] = [];
  for (const r of data.records.slice(0, 3)) {
    const px = await decodeImageFile(path.join(faceDir, r.file), FACENET_NATIVE_SIZE, "rgb");
    const image = tf.tensor3d(Float32Array.from(px), [FACENET_NATIVE_SIZE, FACENET_NATIVE_SIZE, 3]);
    const theirs = (await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(image)) as Float32Array;
    const ours = tf.tidy(() => (model.predict(image.div(255).expandDims(0)) as tf.Tensor).dataSync() as Float32Array);
    image.dispose();
    assert.equal(ours.length, 128);
    const diff = maxAbsDiff([ours], [theirs]);
    assert.ok(diff < 1e-4, `${r.file}: max |ours - face-api| = ${diff}`);
    descriptors.push(ours);
  }
  // Different people get different descriptors (the weights are really loaded, not zeros).
  assert.ok(maxAbsDiff([descriptors[0]], [descriptors[1]]) > 0.01);
  faceapi.nets.faceRecognitionNet.dispose();
  model.dispose();
});

test("inputs below the backbone's minimum size are refused with the minimum in the message", () => {
  assert.throws(() => buildModel("facenet-transfer", { size: FACENET_MIN_SIZE - 1 }), new RegExp(`>= ${FACENET_MIN_SIZE}`));
  assert.throws(() => buildModel("facenet-transfer", { size: SIZE, channels: 1 }), /RGB/);
});

test("frozen: a step trains only the head; after unfreezing the last stages they train too; save + load keeps predictions", async () => {
  const model = buildModel("facenet-transfer", { size: SIZE });
  const backbone = faceNetLayers(model).map((l) => l.name);
  assert.deepEqual(backbone, [...FACENET_STAGES]);
  const head = ["age_dense1", "age", "gender_dense1", "gender"];
  assert.ok(backbone.every((n) => !model.getLayer(n).trainable));
  assert.equal(model.trainableWeights.length, 2 * head.length);

  const step = (lr: number) =>
    trainModel({ model, modelName: "facenet-transfer", task: "age-gender", data, trainIndices: [0, 1, 2, 3, 4, 5, 6, 7], epochs: 1, batchSize: 8, learningRate: lr, seed: 1 });
  const backbone0 = snapshot(model, backbone);
  const head0 = snapshot(model, head);
  await step(1e-3);
  assert.equal(maxAbsDiff(snapshot(model, backbone), backbone0), 0, "frozen backbone weights must not move");
  assert.ok(maxAbsDiff(snapshot(model, head), head0) > 0, "head weights must move");

  assert.throws(() => layersToUnfreeze(model, 7), /6 frozen/);
  assert.deepEqual(unfreeze(model, 2), ["facenet_stage256", "facenet_descriptor"]);
  const early = backbone.slice(0, 4);
  const late = backbone.slice(4);
  const early0 = snapshot(model, early);
  const late0 = snapshot(model, late);
  await step(1e-4);
  assert.equal(maxAbsDiff(snapshot(model, early), early0), 0, "stages left frozen must not move");
  assert.ok(maxAbsDiff(snapshot(model, late), late0) > 0, "unfrozen stages must move");

  const dir = path.join(tmp, "saved");
  await saveModel(model, dir, { model: "facenet-transfer", task: "age-gender", size: SIZE, color: "rgb", normalize: "unit", ageDivision: "report20" });
  const loaded = await loadTrainedModel(dir);
  const idx = [8, 9, 10, 11];
  const before = await predictOutputs(model, data, idx);
  const after = await predictOutputs(loaded.model, data, idx);
  assert.ok(maxAbsDiff(after, before) < 1e-5, `round trip changed predictions by ${maxAbsDiff(after, before)}`);
  // The frozen/unfrozen state travels with the model.
  assert.deepEqual(faceNetLayers(loaded.model).map((l) => l.trainable), [false, false, false, false, true, true]);
  loaded.model.dispose();
  model.dispose();
});

test("runExperiment runs the frozen and fine-tune stages into one run folder that predict can use", async () => {
  const result = await runExperiment({
    model: "facenet-transfer",
    data,
    epochs: 1,
    fineTuneEpochs: 1,
    batchSize: 8,
    testFraction: 0.25,
    progress: false,
    resultsRoot: path.join(tmp, "results"),
  });
  const history = result.history as TransferEpochRecord[];
  assert.deepEqual(history.map((h) => [h.epoch, h.stage]), [[1, "frozen"], [2, "fine-tune"]]);
  const run = loadRun(result.runDir);
  const cfg = run.config as typeof run.config & { fineTune?: { epochs: number; learningRate: number; unfrozen: string[] } };
  assert.equal(cfg.size, SIZE);
  assert.deepEqual(cfg.fineTune, { epochs: 1, learningRate: 1e-5, unfrozen: ["facenet_stage256", "facenet_descriptor"] });
  assert.equal(result.metrics.images, result.config.split!.test.length);
  assert.ok(!fs.existsSync(path.join(result.runDir, "checkpoint")), "checkpoints are removed once the model is saved");
  const files = result.predictions.map((p) => path.join(faceDir, p.file));
  const rows = await predictFiles(result.runDir, files);
  rows.forEach((row, i) => assert.ok(Math.abs(row.pFemale! - result.predictions[i].pFemale!) < 1e-5, `${row.file}: ${row.pFemale} vs ${result.predictions[i].pFemale}`));
});
