/**
 * Issue 19's last lever, measured on training faces only: does fine-tuning faceres's last block
 * (conv_dw_13 + conv_pw_13, with its own age/gender layers) beat the frozen faceres-caffe heads
 * of models/best's second member?
 *
 *   UTKFACE_DIR=../shared/data/utkface/crop_part1 npx tsx scripts/faceres-tail.ts
 *
 * The best-model split's fit faces (the training split minus its validation faces) train, its
 * validation faces score; the test split is never read. Both views of every face go through the
 * fused faceres graph once, giving the frozen member's 1,125 features and the 7x7x1024 map after
 * conv_pw_12. The frozen heads are trained as `best stack` trains them; then the last block, the
 * network's own age/gender layers and those heads become one model (the heads' standardiser
 * folded into their first layer, so it starts exactly where the frozen model ends: checked) and
 * train on the cached maps with Adam, a warm-up and a cosine decay, as face-api's stages are
 * fine-tuned. Prints the validation figures before and after each epoch.
 *
 * Environment: EPOCHS (default 8), LR (default 3e-4), LIMIT (at most this many fit faces, and a
 * fifth as many validation faces: a rehearsal), UTKFACE_THREADS.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/engine/backend";
import { loadBestSplit } from "../lib/best/faces";
import { FACERES_AGE_BINS, FACERES_MAPS, backboneSpec, FACERES_MAPS_NODE, FACERES_POOLED, faceresInput, loadFaceresArtifacts } from "../lib/best/backbones";
import { fuseConvChains } from "../lib/engine/fuse-graph";
import { decodeImageFile } from "../lib/data/dataset";
import { GENDER_THRESHOLD } from "../lib/data/labels";
import { HeadConfig, TrainedHeads, fitRows, genderAccuracyByBand, predictHeads, trainHeads } from "../lib/best/head-training";
import { expectedAges } from "../lib/best/heads";
import { buildFineTuneModel } from "../lib/best/fine-tuning";
import { memberConfig } from "../lib/best/stack";
import { readJsonFile } from "../lib/core/file-errors";
import type { BestModelFile } from "../lib/best/model-folder";

const SIDE = 224;
const MAPS = backboneSpec(FACERES_MAPS).dim;
const FEATURES = FACERES_POOLED + FACERES_AGE_BINS + 1;
const OUTPUTS = [FACERES_MAPS_NODE, "global_pooling/Mean", "age_pred/Softmax", "gender_pred/Sigmoid"];

interface Views {
  maps: [Float32Array, Float32Array];
  features: [Float32Array, Float32Array];
  ages: number[];
  genders: number[];
}

function figures(label: string, pFemale: Float32Array, predAge: Float32Array, v: Views): void {
  const rows = v.ages.map((age, i) => ({ file: "", age, gender: v.genders[i], trueGroup: -1, pFemale: pFemale[i] }));
  const mae = predAge.reduce((s, p, i) => s + Math.abs(p - v.ages[i]), 0) / v.ages.length;
  const right = rows.filter((r) => (r.pFemale >= GENDER_THRESHOLD ? 1 : 0) === r.gender).length;
  const bands = genderAccuracyByBand(rows).map((b) => `${b.band} ${(b.accuracy * 100).toFixed(1)}`);
  console.log(`${label}: MAE ${mae.toFixed(3)}, gender ${((100 * right) / rows.length).toFixed(1)}% (${bands.join(", ")})`);
}

async function main(): Promise<void> {
  await initBackend();
  const epochs = Number(process.env.EPOCHS ?? 8);
  const learningRate = Number(process.env.LR ?? 3e-4);
  const limit = Number(process.env.LIMIT ?? Infinity);
  const split = await loadBestSplit({ dir: process.env.UTKFACE_DIR });
  const fit = split.fit.slice(0, limit);
  const validation = split.validation.slice(0, Math.ceil(limit / 5));
  console.log(`${fit.length} fit faces, ${validation.length} validation faces (training split only), ${epochs} epochs at ${learningRate}`);

  const shipped = await loadFaceresArtifacts();
  const graph = await tf.loadGraphModel({ load: async () => (await fuseConvChains(shipped)).artifacts });
  const extract = async (idx: number[]): Promise<Views> => {
    const n = idx.length;
    const v: Views = { maps: [new Float32Array(n * MAPS), new Float32Array(n * MAPS)], features: [new Float32Array(n * FEATURES), new Float32Array(n * FEATURES)], ages: [], genders: [] };
    const per = SIDE * SIDE * 3;
    for (let s = 0; s < n; s += 16) {
      const e = Math.min(n, s + 16);
      const pixels = new Uint8Array((e - s) * per);
      (await Promise.all(idx.slice(s, e).map((r) => decodeImageFile(split.files[r], SIDE, "rgb")))).forEach((p, i) => pixels.set(p, i * per));
      for (const view of [0, 1] as const) {
        const [maps, features] = tf.tidy(() => {
          const [m, pooled, age, gender] = graph.execute(faceresInput(pixels, e - s, SIDE, view === 1, true), OUTPUTS) as tf.Tensor[];
          return [m, tf.concat([pooled.reshape([e - s, FACERES_POOLED]), age.reshape([e - s, FACERES_AGE_BINS]), gender.reshape([e - s, 1])], 1)];
        });
        v.maps[view].set(maps.dataSync() as Float32Array, s * MAPS);
        v.features[view].set(features.dataSync() as Float32Array, s * FEATURES);
        tf.dispose([maps, features]);
      }
    }
    v.ages = idx.map((r) => split.records[r].age);
    v.genders = idx.map((r) => split.records[r].gender);
    return v;
  };
  const t0 = Date.now();
  const train = await extract(fit);
  const val = await extract(validation);
  graph.dispose();
  console.log(`faceres maps and features of both views: ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  // The frozen member, as `best stack` trains it from models/best's settings.
  const base = readJsonFile<BestModelFile>("models/best/best.json", "It ships with the project.").config;
  const config: HeadConfig = memberConfig(base, "faceres-caffe");
  const heads = await trainHeads(config, { plain: train.features[0], flipped: train.features[1], ages: train.ages, genders: train.genders });
  const frozen = predictHeads(heads, val.features[0], val.features[1]);
  figures("frozen faceres-caffe heads", frozen.pFemale, expectedAges(frozen.ageProbabilities, frozen.n), val);

  // maps -> last block (batch norm folded, as the graph runs it) -> mean -> [pooled, own age, own gender] -> heads.
  const model = await buildFineTuneModel({ ...heads, config: { ...config, fineTune: { epochs, learningRate, batchSize: 64, maps: FACERES_MAPS } } });
  heads.model.dispose();

  const tuned: TrainedHeads = { config, model, standardizer: null, curve: [] };
  const score = (label: string) => {
    const o = predictHeads(tuned, val.maps[0], val.maps[1]);
    figures(label, o.pFemale, expectedAges(o.ageProbabilities, o.n), val);
  };
  score("the same as one model on the maps, before fine-tuning");
  const n = train.ages.length;
  const rows = new Float32Array(2 * n * MAPS);
  rows.set(train.maps[0]);
  rows.set(train.maps[1], n * MAPS);
  train.maps = [new Float32Array(0), new Float32Array(0)];
  const t1 = Date.now();
  await fitRows(model, rows, MAPS, [...train.ages, ...train.ages], [...train.genders, ...train.genders], {
    ...config,
    epochs,
    learningRate,
    batchSize: 64,
    schedule: "cosine",
    onEpoch: (epoch, loss) => score(`fine-tuned, epoch ${epoch}/${epochs} (loss ${loss.toFixed(3)}, ${((2 * n * epoch) / ((Date.now() - t1) / 1000)).toFixed(0)} rows/s)`),
  });
  model.dispose();
}

main().catch((e) => {
  console.error(`faceres-tail: ${(e as Error).message}`);
  process.exit(1);
});
