import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { decodeImageFile, parseFileName, FaceRecord } from "../lib/data/dataset";
import { REPO_ROOT, SAMPLE_DATA_DIR } from "../lib/core/paths";
import { FACERES_MAPS, backboneSpec, loadBackbone } from "../lib/best/backbones";
import { extractFeatureSet, featureCacheFile } from "../lib/best/feature-cache";
import { AGE_BINS, ageDistributionTargets, ageQuantiles, expectedAges } from "../lib/best/heads";
import { DEFAULT_HEAD_CONFIG, GENDER_BANDS, bandBalanceWeights, bestMetrics, bestPredictionRows, fuseFeatures, predictHeads, trainHeads } from "../lib/best/head-training";
import { BestModelFile, isBestModelDir } from "../lib/best/model-folder";
import { ageInterval, fitAgeInterval, intervalInputs } from "../lib/best/calibration";
import { faceLabel } from "../lib/inference/annotate";
import { predictFiles } from "../lib/inference/predict";
import { photoPredictionsCsv, predictPhotos } from "../lib/inference/photo";
import { composePhoto } from "../lib/inference/composite";
import { buildFineTuneModel, faceresTail, fineTuneHeads } from "../lib/best/fine-tuning";
import { float16Bits, loadModelFile, saveModel } from "../lib/models/model-files";

setBackendQuiet(true);

let tmp: string;
/** Sample faces spread over names (every 20th of the 2,000), so ages and genders vary. */
let files: string[];
let records: FaceRecord[];

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "best-"));
  files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().filter((_, i) => i % 20 === 0).slice(0, 96).map((f) => path.join(SAMPLE_DATA_DIR, f));
  records = files.map((f) => parseFileName(f) as FaceRecord);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

test("faceres features of real faces: shape, determinism, own outputs are probabilities, a mirrored face is close but not equal", async () => {
  const bb = await loadBackbone("faceres-caffe");
  try {
    const size = bb.spec.size;
    const px = new Uint8Array(2 * size * size * 3);
    for (let i = 0; i < 2; i++) px.set(await decodeImageFile(files[i], size, "rgb"), i * size * size * 3);
    const a = bb.extract(px, 2);
    const b = bb.extract(px, 2);
    assert.equal(a.length, 2 * bb.spec.dim);
    assert.deepEqual(a, b);
    const ageBins = a.subarray(1024, 1124);
    assert.ok(Math.abs(ageBins.reduce((s, v) => s + v, 0) - 1) < 1e-3, "the own age output is a distribution");
    assert.ok(a[1124] >= 0 && a[1124] <= 1);
    const f = bb.extract(px, 2, true);
    const c = cosine(a.subarray(0, 1024), f.subarray(0, 1024));
    assert.ok(c > 0.8 && c < 0.99999, `cosine of a face's and its mirror's pooled feature: ${c}`);
    assert.throws(() => bb.extract(px, 3), /Expected 3 RGB faces of 224x224/);
  } finally {
    bb.dispose();
  }
});

test("faceres fused at load (conv + batch norm + ReLU6 as one convolution) gives the shipped graph's outputs on real faces, both preprocessings, mirrored too", async () => {
  const size = backboneSpec("faceres").size;
  const n = 4;
  const px = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < n; i++) px.set(await decodeImageFile(files[i * 7], size, "rgb"), i * size * size * 3);
  for (const name of ["faceres", "faceres-caffe"]) {
    const plain = await loadBackbone(name, { fuse: false });
    const fused = await loadBackbone(name);
    try {
      for (const flip of [false, true]) {
        const a = plain.extract(px, n, flip);
        const b = fused.extract(px, n, flip);
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < a.length; i++) {
          diff = Math.max(diff, Math.abs(a[i] - b[i]));
          scale = Math.max(scale, Math.abs(a[i]));
        }
        assert.ok(scale > 0.1 && diff < 1e-4 * scale, `${name}${flip ? " mirrored" : ""}: largest difference ${diff} of outputs up to ${scale}`);
      }
    } finally {
      plain.dispose();
      fused.dispose();
    }
  }
});

test("fuseConvChains rewrites faceres's 27 conv chains into fused convolutions and leaves the rest of the graph as it is", async () => {
  const { fuseConvChains } = await import("../lib/engine/fuse-graph");
  const { fileModelHandler, humanModelDir } = await import("../lib/best/backbones");
  const shipped = await fileModelHandler(path.join(humanModelDir(), "faceres.json")).load!();
  const ops = (art: tf.io.ModelArtifacts) => {
    const count: Record<string, number> = {};
    for (const n of (art.modelTopology as { node: { op: string }[] }).node) count[n.op] = (count[n.op] ?? 0) + 1;
    return count;
  };
  const before = ops(shipped);
  const { artifacts, fused } = await fuseConvChains(shipped);
  const after = ops(artifacts);
  assert.equal(fused, before.Conv2D + before.DepthwiseConv2dNative);
  assert.equal(after._FusedConv2D, before.Conv2D);
  assert.equal(after.FusedDepthwiseConv2dNative, before.DepthwiseConv2dNative);
  for (const op of ["Conv2D", "DepthwiseConv2dNative", "Relu", "Minimum", "Maximum", "Add", "Mul"]) assert.equal(after[op], undefined, `${op} left: ${JSON.stringify(after)}`);
  // The heads after the pooling are untouched.
  for (const op of ["Mean", "_FusedMatMul", "Sigmoid", "Softmax", "Placeholder"]) assert.equal(after[op], before[op], op);
  // Every weight the graph names is there, and nothing else.
  const consts = (artifacts.modelTopology as { node: { op: string; name: string }[] }).node.filter((x) => x.op === "Const").map((x) => x.name).sort();
  assert.deepEqual(artifacts.weightSpecs!.map((w) => w.name).sort(), consts);
  await assert.rejects(fuseConvChains({ modelTopology: { class_name: "Sequential" } }), /needs a tfjs graph model's artifacts/);
});

test("an unknown backbone is a clear error", async () => {
  assert.throws(() => backboneSpec("gear"), /Unknown backbone "gear". Known backbones: facenet, faceres, faceres-caffe/);
  await assert.rejects(() => loadBackbone("ageGenderNet"), /Unknown backbone/);
});

test("feature cache: the mirrored view equals features of mirrored pixels, a second call hits, a changed file list or a damaged file rebuilds", async () => {
  const cacheDir = path.join(tmp, "cache");
  const few = files.slice(0, 3);
  const first = await extractFeatureSet(few, "facenet", { cacheDir });
  assert.equal(first.cacheHit, false);
  assert.equal(first.plain.length, 3 * 128);
  assert.equal(first.flipped.length, 3 * 128);
  // The mirrored view is the backbone on mirrored pixels.
  const px = await decodeImageFile(few[1], 150, "rgb");
  const mirrored = new Uint8Array(px.length);
  for (let y = 0; y < 150; y++) for (let x = 0; x < 150; x++) for (let c = 0; c < 3; c++) mirrored[(y * 150 + x) * 3 + c] = px[(y * 150 + 149 - x) * 3 + c];
  const bb = await loadBackbone("facenet");
  const direct = bb.extract(mirrored, 1);
  bb.dispose();
  for (let j = 0; j < 128; j++) assert.ok(Math.abs(direct[j] - first.flipped[128 + j]) < 1e-5);

  const second = await extractFeatureSet(few, "facenet", { cacheDir });
  assert.equal(second.cacheHit, true);
  assert.deepEqual(second.plain, first.plain);
  assert.deepEqual(second.flipped, first.flipped);

  const other = await extractFeatureSet(files.slice(1, 4), "facenet", { cacheDir });
  assert.equal(other.cacheHit, false, "another file list has another key");
  assert.notEqual(featureCacheFile(files.slice(1, 4), "facenet", cacheDir), first.cacheFile);

  const plainOnly = await extractFeatureSet(few, "facenet", { cacheDir, mirrored: false });
  assert.equal(plainOnly.cacheHit, false, "plain-only features have their own cache entry");
  assert.equal(plainOnly.flipped, undefined);
  assert.deepEqual(plainOnly.plain, first.plain);
  assert.equal((await extractFeatureSet(few, "facenet", { cacheDir, mirrored: false })).cacheHit, true);

  // Flip one payload byte: the checksum fails and the features are extracted again, identically.
  const buf = fs.readFileSync(first.cacheFile!);
  buf[buf.length - 5] ^= 0xff;
  fs.writeFileSync(first.cacheFile!, buf);
  const rebuilt = await extractFeatureSet(few, "facenet", { cacheDir });
  assert.equal(rebuilt.cacheHit, false);
  assert.deepEqual(rebuilt.plain, first.plain);
});

test("DLDL targets are distributions peaked at the age; expected age reads them back", () => {
  const t = ageDistributionTargets([0, 30, 116], 2);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(t.subarray(i * AGE_BINS, (i + 1) * AGE_BINS).reduce((s, v) => s + v, 0) - 1) < 1e-5);
  const e = expectedAges(t, 3);
  assert.ok(Math.abs(e[1] - 30) < 1e-3);
  assert.ok(e[0] > 0 && e[0] < 2, "a newborn's distribution is cut at 0, so its mean sits a little above");
  assert.ok(Math.abs(e[2] - 99) < 1.5, "ages over 100 land in the last bins");
  assert.throws(() => ageDistributionTargets([1], 0), /sigma must be > 0/);
});

test("heads on real face features beat the majority baseline on held-out faces and keep tensors bounded", async () => {
  const set = await extractFeatureSet(files, "facenet", { cacheDir: path.join(tmp, "cache") });
  const sets = new Map([["facenet", set]]);
  const train = files.map((_, i) => i).filter((i) => i % 4 !== 0);
  const held = files.map((_, i) => i).filter((i) => i % 4 === 0);
  const parts = [{ backbone: "facenet" as const }];
  const config = { ...DEFAULT_HEAD_CONFIG, epochs: 40, name: "test", ageLoss: "dldl-l1" as const };
  const before = tf.memory().numTensors;
  const heads = await trainHeads(config, {
    plain: fuseFeatures(sets, parts, train, "plain"),
    flipped: fuseFeatures(sets, parts, train, "flipped"),
    ages: train.map((i) => records[i].age),
    genders: train.map((i) => records[i].gender),
  });
  const out = predictHeads(heads, fuseFeatures(sets, parts, held, "plain"), fuseFeatures(sets, parts, held, "flipped"));
  const m = bestMetrics(bestPredictionRows(records, held, out), "held-out", train.map((i) => records[i]));
  heads.model.dispose();
  assert.ok(tf.memory().numTensors - before < 10, `tensors left after training and predicting: ${tf.memory().numTensors - before}`);
  assert.ok(m.mae! < m.baseline!.mae!, `MAE ${m.mae} vs median-age baseline ${m.baseline!.mae}`);
  assert.ok(m.genderAccuracy! > m.baseline!.genderAccuracy!, `gender ${m.genderAccuracy} vs majority ${m.baseline!.genderAccuracy}`);
  assert.equal(m.genderByBand.length, 6);
});

test("the shipped models/best predicts sample faces with sane ages and genders", { skip: !isBestModelDir(path.join(REPO_ROOT, "models", "best")) && "models/best is not trained yet" }, async () => {
  const some = files.slice(0, 24);
  const rows = await predictFiles(path.join(REPO_ROOT, "models", "best"), some);
  assert.equal(rows.length, some.length);
  let absErr = 0;
  let right = 0;
  rows.forEach((r, i) => {
    assert.equal(r.file, some[i]);
    assert.ok(r.age! >= 0 && r.age! <= 100, `age ${r.age}`);
    assert.ok(r.pFemale! >= 0 && r.pFemale! <= 1);
    absErr += Math.abs(r.age! - records[i].age);
    if ((r.gender === "Female" ? 1 : 0) === records[i].gender) right++;
  });
  // A bad file among good ones is listed with its reason, the others still predicted.
  const bad = path.join(tmp, "not-a-face.jpg");
  fs.writeFileSync(bad, "not an image");
  const mixed = await predictFiles(path.join(REPO_ROOT, "models", "best"), [some[0], bad]);
  // The same face in a batch of 2 instead of 24: equal up to float rounding (oneDNN may pick another kernel by batch size).
  assert.ok(Math.abs(mixed[0].age! - rows[0].age!) < 1e-3, `age ${mixed[0].age} alone vs ${rows[0].age} in the batch`);
  assert.equal(mixed[1].age, undefined);
  assert.match(mixed[1].skipped ?? "", /not an image/);
  // Loose bounds that a broken model (constant, swapped genders, wrong preprocessing) fails.
  assert.ok(absErr / rows.length < 12, `MAE on 24 sample faces: ${absErr / rows.length}`);
  assert.ok(right / rows.length > 0.7, `gender accuracy on 24 sample faces: ${right / rows.length}`);
});

test("models/best predicts every face of a photo (detect, cut, predict) like the faces' own crops", { skip: !isBestModelDir(path.join(REPO_ROOT, "models", "best")) && "models/best is not trained yet" }, async () => {
  const dir = path.join(REPO_ROOT, "models", "best");
  const two = files.slice(0, 2);
  const photo = path.join(tmp, "two-faces.jpg");
  fs.writeFileSync(photo, await composePhoto([{ file: two[0], x: 40, y: 50, side: 220 }, { file: two[1], x: 420, y: 60, side: 200 }], { width: 720, height: 340 }));
  const [result] = await predictPhotos(dir, [photo]);
  assert.equal(result.source, "detected");
  assert.equal(result.faces.length, 2, "both pasted faces found");
  const byX = [...result.faces].sort((a, b) => a.box.x - b.box.x);
  const direct = await predictFiles(dir, two);
  byX.forEach((f, i) => {
    assert.ok(f.age! >= 0 && f.age! <= 100, `age ${f.age}`);
    // Cut from the photo as the detector frames it vs the crop itself: the same person, close answers.
    assert.ok(Math.abs(f.age! - direct[i].age!) < 15, `face ${i}: ${f.age} vs crop ${direct[i].age}`);
  });
});

test("fine-tuning: trunk maps through the frozen last stage give face-api's descriptor, the folded model starts where the heads ended, training moves it, a float16 save reloads", async () => {
  const maps = await extractFeatureSet(files, "facenet-maps", { cacheDir: path.join(tmp, "cache") });
  const desc = await extractFeatureSet(files, "facenet", { cacheDir: path.join(tmp, "cache") });
  assert.equal(maps.dim, 8 * 8 * 128);
  const sets = new Map([["facenet", desc], ["facenet-maps", maps]]);
  const train = files.map((_, i) => i).filter((i) => i % 4 !== 0);
  const held = files.map((_, i) => i).filter((i) => i % 4 === 0);
  const data = (parts: { backbone: "facenet" | "facenet-maps" }[], idx: number[]) => ({
    plain: fuseFeatures(sets, parts, idx, "plain"),
    flipped: fuseFeatures(sets, parts, idx, "flipped"),
    ages: idx.map((i) => records[i].age),
    genders: idx.map((i) => records[i].gender),
  });
  const config = { ...DEFAULT_HEAD_CONFIG, epochs: 20, name: "ft-test", ageLoss: "dldl-l1" as const, fineTune: { epochs: 6, learningRate: 1e-4, batchSize: 32 } };
  const heads = await trainHeads(config, data([{ backbone: "facenet" }], train));
  const frozen = predictHeads(heads, fuseFeatures(sets, [{ backbone: "facenet" }], held, "plain"), fuseFeatures(sets, [{ backbone: "facenet" }], held, "flipped"));
  const heldMaps = data([{ backbone: "facenet-maps" }], held);
  // Folding the standardiser into the first layers changes nothing: same outputs from the maps.
  const folded = await buildFineTuneModel(heads);
  const start = predictHeads({ model: folded, standardizer: null, config }, heldMaps.plain, heldMaps.flipped);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  assert.ok(maxDiff(start.ageProbabilities, frozen.ageProbabilities) < 1e-4, `age distributions differ by ${maxDiff(start.ageProbabilities, frozen.ageProbabilities)}`);
  assert.ok(maxDiff(start.pFemale, frozen.pFemale) < 1e-4);
  folded.dispose();
  const before = tf.memory().numTensors;
  const curveLines: string[] = [];
  const tuned = await fineTuneHeads(heads, data([{ backbone: "facenet-maps" }], train), heldMaps, (l) => curveLines.push(l));
  assert.equal(tuned.curve.length, 6);
  assert.equal(curveLines.length, 6);
  assert.match(curveLines[5], /epoch 6\/6: loss \d/);
  const after1 = predictHeads(tuned, heldMaps.plain, heldMaps.flipped);
  assert.ok(maxDiff(after1.ageProbabilities, frozen.ageProbabilities) > 1e-4, "fine-tuning left the model unchanged");
  // Fine-tuning descends its own objective (the loss on the training faces and their mirror
  // images): heads already fitted to 72 faces need not fit their plain views better afterwards.
  const losses = curveLines.map((l) => Number(/loss ([\d.]+)/.exec(l)?.[1]));
  assert.ok(losses.every(Number.isFinite), curveLines.join("\n"));
  assert.ok(losses[5] < losses[0], `fine-tuning loss ${losses[5]} at epoch 6 vs ${losses[0]} at epoch 1`);
  for (const a of expectedAges(after1.ageProbabilities, after1.n)) assert.ok(a >= 0 && a <= 100);
  // float16 storage: half the bytes, nearly the same predictions.
  const dir32 = path.join(tmp, "ft32");
  const dir16 = path.join(tmp, "ft16");
  await saveModel(tuned.model, dir32);
  await saveModel(tuned.model, dir16, {}, { float16: true });
  const size = (d: string) => fs.statSync(path.join(d, "weights.bin")).size;
  assert.ok(Math.abs(size(dir16) * 2 - size(dir32)) < 16, `float16 ${size(dir16)} bytes vs float32 ${size(dir32)}`);
  const reloaded = await loadModelFile(path.join(dir16, "model.json"));
  const again = predictHeads({ model: reloaded, standardizer: null, config }, heldMaps.plain, heldMaps.flipped);
  const ageDiff = expectedAges(again.ageProbabilities, again.n).reduce((mx, v, i) => Math.max(mx, Math.abs(v - expectedAges(after1.ageProbabilities, after1.n)[i])), 0);
  assert.ok(ageDiff < 0.5, `float16 weights move an expected age by ${ageDiff} years`);
  assert.ok(maxDiff(again.pFemale, after1.pFemale) < 0.02);
  reloaded.dispose();
  tuned.model.dispose();
  assert.ok(tf.memory().numTensors - before < 10, `tensors left after fine-tuning: ${tf.memory().numTensors - before}`);
});

test("faceres fine-tuning: its 7x7x1024 maps through the tail layers give faceres-caffe's features, the folded model starts where the heads ended, a step moves it", async () => {
  const few = files.slice(0, 16);
  const cacheDir = path.join(tmp, "cache-faceres");
  const maps = await extractFeatureSet(few, FACERES_MAPS, { cacheDir });
  const feats = await extractFeatureSet(few, "faceres-caffe", { cacheDir });
  assert.equal(maps.dim, 7 * 7 * 1024);
  // conv_pw_12's output after ReLU6, of real faces: inside [0, 6] and not all zero.
  let max = 0;
  for (const v of maps.plain) {
    assert.ok(v >= 0 && v <= 6, `map value ${v}`);
    max = Math.max(max, v);
  }
  assert.ok(max > 1, `largest map value ${max}`);
  // The tail as tfjs layers with the shipped weights reproduces the graph's pooled feature, age bins and gender score.
  const input = tf.input({ shape: [maps.dim] });
  const tail = faceresTail(input);
  const net = tf.model({ inputs: input, outputs: tail.features });
  await tail.loadWeights();
  for (const view of ["plain", "flipped"] as const) {
    const out = tf.tidy(() => (net.predict(tf.tensor2d(maps[view]!, [few.length, maps.dim])) as tf.Tensor).dataSync() as Float32Array);
    const want = feats[view]!;
    const diff = out.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    assert.ok(diff < 2e-3, `${view}: tail layers differ from the graph by ${diff}`);
  }
  net.dispose();
  const sets = new Map([["faceres-caffe", feats], [FACERES_MAPS, maps]]);
  const idx = few.map((_, i) => i);
  const rows = (backbone: string) => ({ plain: fuseFeatures(sets, [{ backbone: backbone as "faceres-caffe" }], idx, "plain"), flipped: fuseFeatures(sets, [{ backbone: backbone as "faceres-caffe" }], idx, "flipped"), ages: idx.map((i) => records[i].age), genders: idx.map((i) => records[i].gender) });
  const config = { ...DEFAULT_HEAD_CONFIG, name: "faceres-ft-test", features: [{ backbone: "faceres-caffe" as const }], epochs: 5, ageLoss: "dldl-l1" as const, fineTune: { epochs: 1, learningRate: 1e-4, batchSize: 8, maps: FACERES_MAPS } };
  const heads = await trainHeads(config, rows("faceres-caffe"));
  const frozen = predictHeads(heads, rows("faceres-caffe").plain, rows("faceres-caffe").flipped);
  const folded = await buildFineTuneModel(heads);
  const start = predictHeads({ model: folded, standardizer: null, config }, rows(FACERES_MAPS).plain, rows(FACERES_MAPS).flipped);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  assert.ok(maxDiff(start.ageProbabilities, frozen.ageProbabilities) < 2e-3, `age distributions differ by ${maxDiff(start.ageProbabilities, frozen.ageProbabilities)}`);
  assert.ok(maxDiff(start.pFemale, frozen.pFemale) < 2e-3);
  folded.dispose();
  const tuned = await fineTuneHeads(heads, rows(FACERES_MAPS));
  const after1 = predictHeads(tuned, rows(FACERES_MAPS).plain, rows(FACERES_MAPS).flipped);
  assert.ok(maxDiff(after1.ageProbabilities, frozen.ageProbabilities) > 1e-4, "fine-tuning left the model unchanged");
  tuned.model.dispose();
  // Heads on other features cannot be folded onto faceres's block.
  const other = await trainHeads({ ...config, features: [{ backbone: "faceres-caffe", columns: "pooled" }] }, { ...rows("faceres-caffe"), plain: fuseFeatures(sets, [{ backbone: "faceres-caffe", columns: "pooled" }], idx, "plain"), flipped: undefined });
  await assert.rejects(buildFineTuneModel(other), /Fine-tuning on faceres-caffe-maps continues heads trained on faceres-caffe's features alone .*got faceres-caffe \(pooled\)/);
  other.model.dispose();
});

test("float16 bits: exact for representable values, rounded to nearest, overflow to infinity", () => {
  const back = (bits: number) => {
    const s = bits & 0x8000 ? -1 : 1;
    const e = (bits >> 10) & 0x1f;
    const f = bits & 0x3ff;
    if (e === 0x1f) return f ? NaN : s * Infinity;
    return e === 0 ? s * f * 2 ** -24 : s * (1 + f / 1024) * 2 ** (e - 15);
  };
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14), 0.0999755859375]) assert.equal(back(float16Bits(v)), v);
  assert.equal(back(float16Bits(1 + 1 / 4096)), 1, "ties round to even");
  assert.ok(Math.abs(back(float16Bits(0.1)) - 0.1) < 1e-4);
  assert.equal(back(float16Bits(1e6)), Infinity);
  assert.ok(Number.isNaN(back(float16Bits(NaN))));
});

// Issue 19: how sure models/best is.
const bestDir = path.join(REPO_ROOT, "models", "best");
const bestCalibrated = isBestModelDir(bestDir) && !!(JSON.parse(fs.readFileSync(path.join(bestDir, "best.json"), "utf8")) as BestModelFile).calibration?.age;

test("age quantiles of a distribution: the median of a DLDL target is its age, q10 < median < q90, an interval always holds its point estimate", () => {
  const ages = [0, 7, 34, 81];
  const probs = ageDistributionTargets(ages, 3);
  const [q10, q50, q90] = [0.1, 0.5, 0.9].map((q) => ageQuantiles(probs, ages.length, q));
  ages.forEach((a, i) => {
    if (a > 5) assert.ok(Math.abs(q50[i] - a) < 0.05, `median ${q50[i]} of a Gaussian at ${a}`);
    assert.ok(q10[i] < q50[i] && q50[i] < q90[i], `${q10[i]} < ${q50[i]} < ${q90[i]}`);
    if (a > 10) assert.ok(Math.abs(q90[i] - a - 1.2816 * 3) < 0.6, `q90 ${q90[i]} of sd 3 at ${a}`);
  });
  const x = intervalInputs(probs, ages.length);
  for (const s of [0, 0.5, 1, 2.5]) {
    x.forEach((xi) => {
      const { low, high } = ageInterval(xi, { lowerScale: s, upperScale: s });
      assert.ok(low <= xi.predAge && xi.predAge <= high && low >= 0 && high <= AGE_BINS - 1, `scale ${s}: ${low} <= ${xi.predAge} <= ${high}`);
    });
  }
  // A fitted interval holds (at least) its level of the faces it was fitted on.
  const rows = Array.from({ length: 200 }, (_, i) => ({ predAge: 30, q10: 28, q90: 32, age: 30 + ((i % 100) - 49.5) / 5 }));
  const cal = fitAgeInterval(rows, { split: "synthetic", model: "none" });
  assert.ok(cal.coverage >= 0.8 && cal.coverage < 0.9, `coverage ${cal.coverage}`);
  assert.ok(cal.rawCoverage < 0.3, `raw coverage ${cal.rawCoverage}`);
});

test("calibrated models/best: every held-out sample face gets an interval around its age and P(female); about 80% of real ages inside; the CSV and annotate label show them", { skip: !bestCalibrated && "models/best has no calibration yet (npm run cli -- best calibrate)" }, async () => {
  const heldOut = new Set((JSON.parse(fs.readFileSync(path.join(bestDir, "predictions.json"), "utf8")) as { file: string }[]).map((p) => p.file));
  const all = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => heldOut.has(f)).sort();
  assert.ok(all.length >= 40, `${all.length} sample faces in the test split`);
  const some = all.slice(0, 60).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const rows = await predictFiles(bestDir, some);
  let inside = 0;
  rows.forEach((r, i) => {
    const real = parseFileName(some[i]) as FaceRecord;
    assert.ok(r.ageLow !== undefined && r.ageHigh !== undefined, `${r.file} has an interval`);
    assert.ok(r.ageLow! <= r.age! && r.age! <= r.ageHigh!, `${r.ageLow} <= ${r.age} <= ${r.ageHigh}`);
    assert.ok(r.ageLow! >= 0 && r.ageHigh! <= 100 && r.ageHigh! - r.ageLow! < 60, `${r.ageLow}-${r.ageHigh}`);
    assert.ok(r.pFemale! > 0 && r.pFemale! < 1);
    if (real.age >= r.ageLow! && real.age <= r.ageHigh!) inside++;
  });
  // 80% on average; on 60 faces the share lies in 0.6-0.95 unless the interval is broken (raw percentiles hold far fewer).
  const share = inside / rows.length;
  assert.ok(share >= 0.6 && share <= 0.95, `${inside}/${rows.length} real ages inside the 80% interval`);
  // Through the photo path: the CSV's age_low/age_high columns and the annotate label.
  const [photo] = await predictPhotos(bestDir, [some[0]]);
  const csv = photoPredictionsCsv([photo]).trim().split("\n");
  const header = csv[0].split(",");
  const cells = csv[1].split(",");
  const lo = Number(cells[header.indexOf("age_low")]);
  const hi = Number(cells[header.indexOf("age_high")]);
  const age = Number(cells[header.indexOf("age")]);
  assert.ok(Number.isFinite(lo) && Number.isFinite(hi) && lo <= age && age <= hi, `CSV ${csv[1]}`);
  assert.match(faceLabel(photo.faces[0]), /^(Female|Male) \d+% · \d+ y, \d+-\d+$/);
});

test("an older best.json without calibration still loads and predicts: same ages and genders, no interval", { skip: !bestCalibrated && "models/best has no calibration yet" }, async () => {
  const old = path.join(tmp, "best-v2");
  fs.cpSync(bestDir, old, { recursive: true });
  const json = JSON.parse(fs.readFileSync(path.join(old, "best.json"), "utf8")) as BestModelFile;
  delete json.calibration;
  fs.writeFileSync(path.join(old, "best.json"), JSON.stringify({ ...json, format: "utkface-best-v2" }));
  const two = files.slice(0, 2);
  const [before, now] = [await predictFiles(old, two), await predictFiles(bestDir, two)];
  before.forEach((r, i) => {
    assert.equal(r.ageLow, undefined);
    assert.equal(r.ageHigh, undefined);
    assert.ok(Math.abs(r.age! - now[i].age!) < 1e-4);
    assert.equal(r.gender, now[i].gender, "the temperature never changes the predicted gender");
  });
  assert.equal(faceLabel({ gender: "Male", ageGroup: "30 - 34" }), "Male · 30-34");
});

test("gender balance by age band: on real sample labels both genders of each band weigh alike, every weight positive", () => {
  const ages = records.map((r) => r.age);
  const genders = records.map((r) => r.gender as number);
  const w = bandBalanceWeights(ages, genders);
  assert.equal(w.length, ages.length);
  for (const b of GENDER_BANDS.filter((x) => x.label !== "13+")) {
    const sum = [0, 0];
    const n = [0, 0];
    ages.forEach((a, i) => {
      if (a >= b.lo && a <= b.hi) {
        sum[genders[i]] += w[i];
        n[genders[i]]++;
      }
    });
    if (n[0] && n[1]) assert.ok(Math.abs(sum[0] - sum[1]) < 1e-3, `band ${b.label}: ${sum[0]} vs ${sum[1]}`);
    if (n[0] && n[1]) assert.ok(Math.abs(sum[0] + sum[1] - n[0] - n[1]) < 1e-3, `band ${b.label} keeps its total weight`);
  }
  assert.ok(w.every((v) => v > 0));
});
