/**
 * How face-api's recognition network should see a UTKFace crop (issue 19's input-resolution
 * lever): its 128-d descriptor of each 200x200 crop, framed tighter or looser (a centre square
 * of `fraction` times the crop's side; beyond 1 the crop is mirrored outwards at its edges) and
 * fed at `side` pixels, then frozen DLDL-v2 heads fitted on the first 3,000 fit faces and
 * scored on the next 1,000 fit faces. Never a validation or test face: the choice it informs is
 * made before those are looked at. Usage:
 *   UTKFACE_DIR=path/to/crop_part1 npx tsx scripts/facenet-input.ts [--fractions 0.8,1,1.15] [--sides 150,175,200]
 * Each variant resamples the same decoded crops bilinearly, so they differ in framing and size only.
 */
import * as path from "path";
import { parseArgs } from "util";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { loadBestSplit } from "../lib/best/faces";
import { decodeImageFile } from "../lib/data/dataset";
import { buildFaceNetDescriptor, FACENET_NATIVE_SIZE } from "../lib/models/facenet";
import { DEFAULT_HEAD_CONFIG, bestMetrics, bestPredictionRows, predictHeads, trainHeads } from "../lib/best/head-training";
import { INPUT_ABLATION_FILE } from "../lib/best/types";
import type { InputAblationRow } from "../lib/best/types";
import { writeJsonAtomic } from "../lib/core/files";

const CROP = 200;
const PAD = 40;

/** Descriptors of uint8 200x200 crops, each framed at `fraction` and resized to `side`. */
function descriptors(crops: readonly Uint8Array[], fraction: number, side: number): Float32Array {
  const model = buildFaceNetDescriptor(side);
  const out = new Float32Array(crops.length * 128);
  const batch = 50;
  for (let b = 0; b < crops.length; b += batch) {
    const n = Math.min(batch, crops.length - b);
    const d = tf.tidy(() => {
      const x = tf.tensor4d(Float32Array.from(Buffer.concat(crops.slice(b, b + n))), [n, CROP, CROP, 3]);
      const padded = tf.mirrorPad(x, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]], "symmetric");
      const full = CROP + 2 * PAD;
      const lo = (full / 2 - (fraction * CROP) / 2) / full;
      const hi = (full / 2 + (fraction * CROP) / 2) / full;
      const boxes = tf.tensor2d(Array.from({ length: n }, () => [lo, lo, hi, hi]));
      const faces = tf.clipByValue(tf.round(tf.image.cropAndResize(padded, boxes, tf.range(0, n, 1, "int32") as tf.Tensor1D, [side, side], "bilinear")), 0, 255);
      return model.predict(tf.div(faces, 255)) as tf.Tensor;
    });
    out.set(d.dataSync() as Float32Array, b * 128);
    d.dispose();
  }
  model.dispose();
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { fractions: { type: "string", default: "0.8,0.9,1,1.15,1.3" }, sides: { type: "string", default: "175,200" }, dir: { type: "string" }, out: { type: "string" } }, strict: true });
  const list = (s: string, what: string) =>
    s.split(",").map((v) => {
      const x = Number(v);
      if (!(x > 0)) throw new Error(`--${what} "${s}": each value must be a positive number (e.g. --${what} ${what === "sides" ? "150,200" : "0.9,1,1.15"}).`);
      return x;
    });
  const fractions = list(values.fractions!, "fractions");
  const sides = list(values.sides!, "sides");
  if (fractions.some((f) => f * CROP > CROP + 2 * PAD)) throw new Error(`--fractions: at most ${(CROP + 2 * PAD) / CROP} (the crop mirrored ${PAD} px outwards).`);
  setBackendQuiet(true);
  await initBackend();
  const split = await loadBestSplit({ dir: values.dir });
  if (split.fit.length < 4000) throw new Error(`${split.dir} has ${split.fit.length} fit faces; this comparison needs 4,000 (crop_part1 has 6,349).`);
  const fit = split.fit.slice(0, 3000);
  const held = split.fit.slice(3000, 4000);
  const crops: Uint8Array[] = [];
  for (const i of [...fit, ...held]) crops.push(await decodeImageFile(split.files[i], CROP, "rgb"));
  const rows = (all: Float32Array, from: number, n: number) => all.subarray(from * 128, (from + n) * 128);
  const variants = [...fractions.map((fraction) => ({ fraction, side: FACENET_NATIVE_SIZE })), ...sides.filter((side) => side !== FACENET_NATIVE_SIZE).map((side) => ({ fraction: 1, side }))];
  const table: InputAblationRow[] = [];
  for (const { fraction, side } of variants) {
    const t = Date.now();
    const d = descriptors(crops, fraction, side);
    const config = { ...DEFAULT_HEAD_CONFIG, name: `fraction ${fraction}, side ${side}`, features: [{ backbone: "facenet" as const }], ageLoss: "dldl-l1" as const, flipTrain: false, flipTest: false };
    const heads = await trainHeads(config, { plain: rows(d, 0, fit.length), ages: fit.map((i) => split.records[i].age), genders: fit.map((i) => split.records[i].gender as number) });
    const out = predictHeads(heads, rows(d, fit.length, held.length));
    heads.model.dispose();
    const m = bestMetrics(bestPredictionRows(split.records, held, out), "fit faces 3001-4000", fit.map((i) => split.records[i]));
    const byBand = Object.fromEntries(m.genderByBand.map((b) => [b.band, b.accuracy ?? NaN]));
    table.push({ fraction, side, fitFaces: fit.length, scoredFaces: held.length, mae: m.mae!, genderAccuracy: m.genderAccuracy!, genderByBand: byBand, ageGroupAccuracy: m.ageAccuracy! });
    const bands = Object.entries(byBand).map(([b, a]) => `${b} ${(a * 100).toFixed(1)}%`).join(", ");
    console.log(`fraction ${fraction}, side ${side}: MAE ${m.mae!.toFixed(2)}, gender ${(m.genderAccuracy! * 100).toFixed(1)}% (${bands}), 20-group ${(m.ageAccuracy! * 100).toFixed(1)}% (${((Date.now() - t) / 1000).toFixed(0)} s)`);
  }
  if (values.out) {
    writeJsonAtomic(path.join(values.out, INPUT_ABLATION_FILE), table);
    console.log(`written to ${path.join(values.out, INPUT_ABLATION_FILE)}; npm run cli -- best card --out ${values.out} puts it in the model card`);
  }
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
