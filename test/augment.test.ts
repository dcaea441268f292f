import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { FaceRecord, decodeImageFile, parseFileName } from "../lib/data/dataset";
import { REPO_ROOT, SAMPLE_DATA_DIR } from "../lib/core/paths";
import { DEFAULT_AUGMENT, FaceTransform, NO_AUGMENT, applyTransform, augmentBatch } from "../lib/best/augment";
import { backboneSpec } from "../lib/best/backbones";
import { extractFeatureSet } from "../lib/best/feature-cache";
import { DEFAULT_HEAD_CONFIG, HeadConfig, fuseFeatures, predictHeads, trainHeads } from "../lib/best/head-training";
import { fineTuneOnPixels } from "../lib/best/fine-tuning";
import { buildFaceNetTrunk } from "../lib/models/facenet";
import { mulberry32 } from "../lib/data/splits";

setBackendQuiet(true);

const SIDE = backboneSpec("facenet-maps64").size;
const PER = SIDE * SIDE * 3;
let tmp: string;
let files: string[];
let records: FaceRecord[];
/** The faces at the backbone's input size, as the feature cache decodes them. */
let pixels: Uint8Array;

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "augment-"));
  files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().filter((_, i) => i % 25 === 0).slice(0, 64).map((f) => path.join(SAMPLE_DATA_DIR, f));
  records = files.map((f) => parseFileName(f) as FaceRecord);
  pixels = new Uint8Array(files.length * PER);
  for (const [i, f] of files.entries()) pixels.set(await decodeImageFile(f, SIDE, "rgb"), i * PER);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const none: FaceTransform = { angle: 0, scale: 1, dx: 0, dy: 0, mirror: false, brightness: 0, contrast: 1 };
const face = (i: number) => pixels.subarray(i * PER, (i + 1) * PER);
const at = (a: ArrayLike<number>, x: number, y: number, k: number) => a[(y * SIDE + x) * 3 + k];

test("no augmentation gives the face as the backbone reads it, and the trunk's maps of it are the cached maps to the bit", async () => {
  const out = augmentBatch(pixels, SIDE, [0, 1, 2, 3], NO_AUGMENT, mulberry32(1));
  for (let i = 0; i < out.length; i++) assert.equal(out[i], Math.fround(pixels[i] / 255), `value ${i}`);
  const cached = await extractFeatureSet(files.slice(0, 4), "facenet-maps64", { cache: false, mirrored: false });
  const trunk = buildFaceNetTrunk("facenet_stage64", SIDE);
  const maps = tf.tidy(() => (trunk.predict(tf.tensor4d(out, [4, SIDE, SIDE, 3])) as tf.Tensor).dataSync() as Float32Array);
  trunk.dispose();
  assert.equal(maps.length, cached.plain.length);
  assert.deepEqual(maps, cached.plain);
});

test("geometry on a real face: a mirror reverses each row, an integer shift moves pixels and repeats the edge, a quarter turn turns it", () => {
  const src = face(5);
  const mirrored = new Float32Array(PER);
  applyTransform(src, SIDE, { ...none, mirror: true }, mirrored, 0);
  for (const [x, y] of [[0, 0], [17, 40], [149, 149], [75, 3]]) for (let k = 0; k < 3; k++) assert.equal(mirrored[(y * SIDE + x) * 3 + k], Math.fround(at(src, SIDE - 1 - x, y, k) / 255));
  const shifted = new Float32Array(PER);
  applyTransform(src, SIDE, { ...none, dx: 3, dy: -2 }, shifted, 0);
  for (const [x, y] of [[3, 0], [50, 60], [149, 147]]) for (let k = 0; k < 3; k++) assert.ok(Math.abs(shifted[(y * SIDE + x) * 3 + k] - at(src, x - 3, y + 2, k) / 255) < 1e-6, `shifted (${x}, ${y})`);
  // Left of the shift the first column repeats; below it the last row.
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(shifted[(10 * SIDE + 1) * 3 + k] - at(src, 0, 12, k) / 255) < 1e-6);
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(shifted[(149 * SIDE + 20) * 3 + k] - at(src, 17, 149, k) / 255) < 1e-6);
  const turned = new Float32Array(PER);
  applyTransform(src, SIDE, { ...none, angle: Math.PI / 2 }, turned, 0);
  // Output (x, y) reads source (c + (y - c), c - (x - c)) = (y, last - x).
  let worst = 0;
  for (let y = 0; y < SIDE; y += 7) for (let x = 0; x < SIDE; x += 5) for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(turned[(y * SIDE + x) * 3 + k] - at(src, y, SIDE - 1 - x, k) / 255));
  assert.ok(worst < 1e-5, `a quarter turn is off by ${worst}`);
});

test("photometric changes on a real face: brightness moves the mean, contrast keeps it and spreads the values, results stay in [0, 1]", () => {
  const src = face(9);
  const stats = (a: Float32Array) => {
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    return { mean, sd: Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length) };
  };
  const plain = new Float32Array(PER);
  applyTransform(src, SIDE, none, plain, 0);
  const darker = new Float32Array(PER);
  applyTransform(src, SIDE, { ...none, brightness: -20 }, darker, 0);
  const contrast = new Float32Array(PER);
  applyTransform(src, SIDE, { ...none, contrast: 1.15 }, contrast, 0);
  const p = stats(plain);
  const d = stats(darker);
  const c = stats(contrast);
  // Clamping at 0 makes the drop a little smaller than 20/255.
  assert.ok(p.mean - d.mean > 15 / 255 && p.mean - d.mean <= 20 / 255 + 1e-6, `brightness -20 moved the mean by ${(p.mean - d.mean) * 255}`);
  assert.ok(Math.abs(c.mean - p.mean) < 3 / 255, `contrast moved the mean by ${(c.mean - p.mean) * 255}`);
  assert.ok(c.sd > p.sd * 1.08, `contrast 1.15 spread ${p.sd} to ${c.sd}`);
  for (const a of [darker, contrast]) assert.ok(a.every((v) => v >= 0 && v <= 1));
});

test("random augmentation: seeded and repeatable, every face changed, values in [0, 1], and nothing changes the source pixels", () => {
  const before = Uint8Array.from(pixels);
  const a = augmentBatch(pixels, SIDE, [0, 1, 2, 3, 4, 5, 6, 7], DEFAULT_AUGMENT, mulberry32(7));
  const b = augmentBatch(pixels, SIDE, [0, 1, 2, 3, 4, 5, 6, 7], DEFAULT_AUGMENT, mulberry32(7));
  const c = augmentBatch(pixels, SIDE, [0, 1, 2, 3, 4, 5, 6, 7], DEFAULT_AUGMENT, mulberry32(8));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.every((v) => v >= 0 && v <= 1));
  for (let i = 0; i < 8; i++) {
    let diff = 0;
    for (let j = 0; j < PER; j++) diff += Math.abs(a[i * PER + j] - pixels[i * PER + j] / 255);
    assert.ok(diff / PER > 0.005, `face ${i} changed by ${diff / PER} on average`);
  }
  assert.deepEqual(pixels, before);
  assert.throws(() => augmentBatch(pixels, SIDE, [files.length], DEFAULT_AUGMENT, mulberry32(1)), /Face 64 is outside the 64 faces/);
  assert.throws(() => augmentBatch(pixels.subarray(1), SIDE, [0], DEFAULT_AUGMENT, mulberry32(1)), /not a whole number of 150x150 RGB faces/);
});

test("fine-tuning on augmented pixels: starts from the folded heads, trains, moves the model, keeps tensors bounded, and names bad input", async () => {
  const desc = await extractFeatureSet(files, "facenet", { cacheDir: path.join(tmp, "cache") });
  const maps = await extractFeatureSet(files, "facenet-maps64", { cacheDir: path.join(tmp, "cache") });
  const sets = new Map([["facenet", desc], ["facenet-maps64", maps]]);
  const train = files.map((_, i) => i).filter((i) => i % 4 !== 0);
  const held = files.map((_, i) => i).filter((i) => i % 4 === 0);
  const rows = (backbone: "facenet" | "facenet-maps64", idx: number[]) => ({
    plain: fuseFeatures(sets, [{ backbone }], idx, "plain"),
    flipped: fuseFeatures(sets, [{ backbone }], idx, "flipped"),
    ages: idx.map((i) => records[i].age),
    genders: idx.map((i) => records[i].gender),
  });
  const config: HeadConfig = { ...DEFAULT_HEAD_CONFIG, epochs: 10, name: "pixels-test", ageLoss: "dldl-l1", fineTune: { epochs: 3, learningRate: 1e-4, batchSize: 16, maps: "facenet-maps64", augment: DEFAULT_AUGMENT } };
  const trainPixels = new Uint8Array(train.length * PER);
  train.forEach((i, k) => trainPixels.set(face(i), k * PER));
  const pixelData = { pixels: trainPixels, side: SIDE, ages: train.map((i) => records[i].age), genders: train.map((i) => records[i].gender) };

  const noAugment = await trainHeads({ ...config, fineTune: { ...config.fineTune!, augment: undefined } }, rows("facenet", train));
  await assert.rejects(fineTuneOnPixels(noAugment, pixelData), /has no fineTune.augment settings/);
  noAugment.model.dispose();

  const heads = await trainHeads(config, rows("facenet", train));
  const frozen = predictHeads(heads, fuseFeatures(sets, [{ backbone: "facenet" }], held, "plain"), fuseFeatures(sets, [{ backbone: "facenet" }], held, "flipped"));
  await assert.rejects(fineTuneOnPixels(heads, { ...pixelData, ages: pixelData.ages.slice(1) }), /hold 48 faces of 150x150 RGB, labels 47/);
  const tensors = tf.memory().numTensors;
  const lines: string[] = [];
  const heldMaps = rows("facenet-maps64", held);
  const tuned = await fineTuneOnPixels(heads, pixelData, heldMaps, (l) => lines.push(l));
  assert.equal(tuned.curve.length, 3);
  assert.match(lines[2], /epoch 3\/3 \(augmented pixels\): loss \d/);
  const losses = lines.map((l) => Number(/loss ([\d.]+)/.exec(l)?.[1]));
  assert.ok(losses.every(Number.isFinite), lines.join("\n"));
  // It reads the un-augmented cached maps, as the cached-maps fine-tuning does, and has moved.
  const out = predictHeads(tuned, heldMaps.plain, heldMaps.flipped);
  const moved = out.ageProbabilities.reduce((m, v, i) => Math.max(m, Math.abs(v - frozen.ageProbabilities[i])), 0);
  assert.ok(moved > 1e-4, `fine-tuning on pixels left the model unchanged (${moved})`);
  assert.ok(out.pFemale.every((p) => p >= 0 && p <= 1));
  tuned.model.dispose();
  assert.ok(tf.memory().numTensors - tensors < 10, `tensors left after fine-tuning on pixels: ${tf.memory().numTensors - tensors}`);
});

test("a face of the wrong size or an output too small is a clear error", () => {
  const out = new Float32Array(PER);
  assert.throws(() => applyTransform(face(0).subarray(3), SIDE, none, out, 0), /150x150 RGB holds 67500 bytes, got 67497/);
  assert.throws(() => applyTransform(face(0), SIDE, none, out, 3), /holds 67500 values; a face at offset 3 does not fit/);
});

test("--pixels adds the two pixel steps: twice the cached-maps epochs, face-api's maps after stage64 and after stage32, the default augmentation", async () => {
  const { defaultAblation, DEFAULT_FINE_TUNE } = await import("../lib/best/run");
  const steps = defaultAblation(["facenet"], 30, { deeper: true, pixels: true });
  const named = (n: string) => steps.find((s) => s.kind === "heads" && s.config.name === n);
  const pixels = named("facenet fine-tune pixels");
  const deeper = named("facenet fine-tune pixels deeper");
  assert.ok(pixels?.kind === "heads" && deeper?.kind === "heads", steps.map((s) => (s.kind === "heads" ? s.config.name : s.name)).join(", "));
  assert.equal(pixels.config.fineTune?.epochs, 2 * DEFAULT_FINE_TUNE.epochs);
  assert.equal(pixels.config.fineTune?.maps, "facenet-maps64");
  assert.equal(deeper.config.fineTune?.maps, "facenet-maps32");
  assert.deepEqual(deeper.config.fineTune?.augment, DEFAULT_AUGMENT);
  assert.match(pixels.description, /rotated \(up to 10 degrees\), zoomed \(8%\)/);
  assert.equal(defaultAblation(["facenet"], 30, { deeper: true }).filter((s) => s.kind === "heads" && s.config.fineTune?.augment).length, 0);
});

const RUN_FILE = path.join(REPO_ROOT, "models", "best", "run.json");

test("the model card says what fine-tuning trained, on what, and what stayed frozen, for cached maps and for augmented pixels", { skip: !fs.existsSync(RUN_FILE) && "models/best has no run.json" }, async () => {
  const { bestModelCard } = await import("../lib/best/card");
  const run = JSON.parse(fs.readFileSync(RUN_FILE, "utf8"));
  const card = (fineTune: object) => bestModelCard({ ...run, chosen: { ...run.chosen, fineTune: { epochs: 16, learningRate: 1e-4, batchSize: 64, ...fineTune } } });
  const maps = card({ maps: "facenet-maps64" });
  assert.match(maps, /last two stages \(stage128: three residual blocks/);
  assert.match(maps, /on the training faces and their mirror images/);
  assert.match(maps, /stem to stage64\) stay frozen: their 17x17x64 output of every face is computed once and cached/);
  assert.doesNotMatch(maps, /on augmented training faces|trained here together on augmented faces|mildly augmented/);
  const pixels = card({ maps: "facenet-maps32", augment: DEFAULT_AUGMENT });
  assert.match(pixels, /last three stages \(stage64: four residual blocks, 32 -> 64 channels, 35x35 -> 17x17; stage128/);
  assert.match(pixels, /5\.6M weights/);
  assert.match(pixels, /on augmented training faces: every epoch shows each face once, afresh rotated by up to 10 degrees, zoomed by up to 8%/);
  assert.match(pixels, /stem to stage32\) stay frozen: they run forward on every augmented batch; .* 35x35x32 output .* cached \(`facenet-maps32`\)/);
  assert.match(pixels, /on mildly augmented faces/);
});
