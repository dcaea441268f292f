/**
 * Training and scoring the `best` heads on cached frozen features: assemble (fuse) the features
 * of chosen backbones, standardise them on the training rows, fit the two-output MLP with the
 * mirrored copies as extra training rows, and predict with the plain and mirrored features
 * averaged (test-time flip averaging). Everything here takes seconds to a minute per config,
 * so the ablation can try many configs on the validation split.
 */
import * as tf from "@tensorflow/tfjs";
import type { FaceRecord } from "../data/dataset";
import { GENDER_THRESHOLD, REPORT_AGE_GROUPS, ageGroupOf } from "../data/labels";
import { computeMetrics } from "../analysis/metrics";
import type { FeatureSet } from "../models/feature-cache";
import { BackboneName, FACERES_POOLED, backboneSpec } from "../models/features";
import { AGE_BINS, AgeLoss, Standardizer, ageDistributionTargets, ageLossFn, buildHeadModel, expectedAges, fitStandardizer, standardize } from "../models/heads";
import type { PredictionRow, RunMetrics } from "./runs";
import { mulberry32 } from "../data/splits";

/** Which columns of a backbone's features a head reads. */
export interface FeaturePart {
  backbone: BackboneName;
  /** "all" (default), or for faceres "pooled": the 1024-d identity feature without its own age/gender outputs. */
  columns?: "all" | "pooled";
}

/** A head configuration: the features and how the heads are trained. */
export interface HeadConfig {
  /** Short name for tables. */
  name: string;
  features: FeaturePart[];
  /** Hidden units of each head (0 = linear). */
  hidden: number;
  dropout: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  /** Spread (years) of the DLDL label distribution. */
  sigma: number;
  ageLoss: AgeLoss;
  /** Train on the mirrored copies as extra rows. */
  flipTrain: boolean;
  /** Average the predictions of the plain and mirrored features. */
  flipTest: boolean;
  seed: number;
}

/** Defaults of a head config: FINDINGS' MLP 256, Adam 1e-3, DLDL with a 2-year spread. */
export const DEFAULT_HEAD_CONFIG: HeadConfig = {
  name: "default",
  features: [{ backbone: "facenet" }],
  hidden: 256,
  dropout: 0.3,
  epochs: 30,
  learningRate: 1e-3,
  batchSize: 128,
  sigma: 2,
  ageLoss: "dldl",
  flipTrain: true,
  flipTest: true,
  seed: 42,
};

/** Columns [start, end) of a part within its backbone's feature row. */
function partColumns(part: FeaturePart): [number, number] {
  const spec = backboneSpec(part.backbone);
  if ((part.columns ?? "all") === "all") return [0, spec.dim];
  if (spec.name === "facenet") throw new Error(`Backbone facenet has no "pooled" part: use columns "all".`);
  return [0, FACERES_POOLED];
}

/** Length of the fused feature vector of `parts`. */
export function fusedDim(parts: readonly FeaturePart[]): number {
  return parts.reduce((s, p) => s + partColumns(p)[1] - partColumns(p)[0], 0);
}

/**
 * Fused feature rows of `indices` (rows of the feature sets), plain or mirrored: the chosen
 * columns of each backbone side by side. Sets are looked up by backbone name.
 */
export function fuseFeatures(sets: ReadonlyMap<string, FeatureSet>, parts: readonly FeaturePart[], indices: readonly number[], view: "plain" | "flipped"): Float32Array {
  const dim = fusedDim(parts);
  const out = new Float32Array(indices.length * dim);
  let offset = 0;
  for (const part of parts) {
    const set = sets.get(part.backbone);
    if (!set) throw new Error(`No features of backbone ${part.backbone} were loaded; extract them first (npm run cli -- best features --backbones ${part.backbone}).`);
    const [c0, c1] = partColumns(part);
    // A set extracted without mirrored copies gives its plain features to both views.
    const src = (view === "flipped" ? set.flipped : undefined) ?? set.plain;
    indices.forEach((idx, r) => {
      if (idx < 0 || idx >= set.files.length) throw new Error(`Row ${idx} is outside the ${set.files.length} faces of the ${part.backbone} features.`);
      out.set(src.subarray(idx * set.dim + c0, idx * set.dim + c1), r * dim + offset);
    });
    offset += c1 - c0;
  }
  return out;
}

/** Trained heads and what they need at prediction time. */
export interface TrainedHeads {
  config: HeadConfig;
  model: tf.LayersModel;
  standardizer: Standardizer;
  /** Validation figures after each checked epoch, when validation rows were given. */
  curve: { epoch: number; mae: number; genderAccuracy: number }[];
}

/** Training rows: plain features and labels of the faces, mirrored features when flipTrain. */
export interface HeadTrainingData {
  plain: Float32Array;
  flipped?: Float32Array;
  ages: number[];
  genders: number[];
}

/** Raw predictions of fused features: [n, AGE_BINS] age probabilities and P(female). */
export interface HeadOutputs {
  ageProbabilities: Float32Array;
  pFemale: Float32Array;
  n: number;
}

/** Runs the heads on standardised features (no flip handling). */
function runHeads(model: tf.LayersModel, x: Float32Array, dim: number): HeadOutputs {
  const n = x.length / dim;
  const [age, gender] = tf.tidy(() => model.predict(tf.tensor2d(x, [n, dim])) as tf.Tensor[]);
  const out = { ageProbabilities: age.dataSync() as Float32Array, pFemale: gender.dataSync() as Float32Array, n };
  age.dispose();
  gender.dispose();
  return out;
}

/**
 * Predictions of trained heads for fused features (un-standardised); with `flipped` and
 * config.flipTest, the age distributions and gender probabilities of both views are averaged.
 */
export function predictHeads(heads: Pick<TrainedHeads, "model" | "standardizer" | "config">, plain: Float32Array, flipped?: Float32Array): HeadOutputs {
  const dim = heads.standardizer.mean.length;
  const a = runHeads(heads.model, standardize(plain, heads.standardizer), dim);
  if (!flipped || !heads.config.flipTest) return a;
  const b = runHeads(heads.model, standardize(flipped, heads.standardizer), dim);
  return {
    ageProbabilities: a.ageProbabilities.map((v, i) => (v + b.ageProbabilities[i]) / 2),
    pFemale: a.pFemale.map((v, i) => (v + b.pFemale[i]) / 2),
    n: a.n,
  };
}

/**
 * Fits heads on training rows. With `validation`, the validation MAE and gender accuracy are
 * recorded every `checkEvery` epochs (the curve an ablation reads to choose the epoch count).
 */
export async function trainHeads(config: HeadConfig, train: HeadTrainingData, validation?: { plain: Float32Array; flipped?: Float32Array; ages: number[]; genders: number[] }, checkEvery = 5): Promise<TrainedHeads> {
  const dim = fusedDim(config.features);
  const n = train.ages.length;
  if (train.plain.length !== n * dim) throw new Error(`Training features hold ${train.plain.length / dim} rows of ${dim}, labels ${n}.`);
  const rowsX = config.flipTrain && train.flipped ? concatFloat(train.plain, train.flipped) : train.plain;
  const ages = config.flipTrain && train.flipped ? [...train.ages, ...train.ages] : train.ages;
  const genders = config.flipTrain && train.flipped ? [...train.genders, ...train.genders] : train.genders;
  const rows = ages.length;
  const standardizer = fitStandardizer(rowsX, rows, dim);
  const x = standardize(rowsX, standardizer);
  const ageTargets = ageDistributionTargets(ages, config.sigma);
  const model = buildHeadModel({ inputDim: dim, hidden: config.hidden, dropout: config.dropout, seed: config.seed });
  model.compile({ optimizer: tf.train.adam(config.learningRate), loss: [ageLossFn(config.ageLoss), (yt: tf.Tensor, yp: tf.Tensor) => tf.mean(tf.metrics.binaryCrossentropy(yt, yp))] });
  const xs = tf.tensor2d(x, [rows, dim]);
  const ya = tf.tensor2d(ageTargets, [rows, AGE_BINS]);
  const yg = tf.tensor2d(Float32Array.from(genders), [rows, 1]);
  const heads: TrainedHeads = { config, model, standardizer, curve: [] };
  try {
    // Seeded shuffling per epoch (tfjs's own shuffle is not seeded), done by reordering indices.
    const rng = mulberry32(config.seed);
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      const order = Uint32Array.from({ length: rows }, (_, i) => i);
      for (let i = rows - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let s = 0; s < rows; s += config.batchSize) {
        const idx = tf.tensor1d(Int32Array.from(order.subarray(s, Math.min(rows, s + config.batchSize))), "int32");
        const bx = tf.gather(xs, idx);
        const ba = tf.gather(ya, idx);
        const bg = tf.gather(yg, idx);
        await model.trainOnBatch(bx, [ba, bg]);
        tf.dispose([idx, bx, ba, bg]);
      }
      if (validation && (epoch % checkEvery === 0 || epoch === config.epochs)) {
        const out = predictHeads(heads, validation.plain, validation.flipped);
        const pred = expectedAges(out.ageProbabilities, out.n);
        heads.curve.push({
          epoch,
          mae: pred.reduce((s, p, i) => s + Math.abs(p - validation.ages[i]), 0) / out.n,
          genderAccuracy: out.pFemale.reduce((s, p, i) => s + ((p >= GENDER_THRESHOLD ? 1 : 0) === validation.genders[i] ? 1 : 0), 0) / out.n,
        });
      }
    }
  } finally {
    tf.dispose([xs, ya, yg]);
    // Adam's moment estimates are not freed by model.dispose(); the heads never train again.
    model.optimizer?.dispose();
  }
  return heads;
}

function concatFloat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Gender-accuracy age bands of the model card (the bands). */
export const GENDER_BANDS: readonly { label: string; lo: number; hi: number }[] = [
  { label: "0-3", lo: 0, hi: 3 },
  { label: "4-12", lo: 4, hi: 12 },
  { label: "13-19", lo: 13, hi: 19 },
  { label: "20-59", lo: 20, hi: 59 },
  { label: "60+", lo: 60, hi: Infinity },
  { label: "13+", lo: 13, hi: Infinity },
];

/** Gender accuracy and count per age band of the real age. */
export function genderAccuracyByBand(rows: readonly PredictionRow[]): { band: string; images: number; accuracy: number }[] {
  return GENDER_BANDS.map((b) => {
    const inBand = rows.filter((r) => r.pFemale !== undefined && r.age >= b.lo && r.age <= b.hi);
    const right = inBand.filter((r) => ((r.pFemale as number) >= GENDER_THRESHOLD ? 1 : 0) === r.gender).length;
    return { band: b.label, images: inBand.length, accuracy: inBand.length ? right / inBand.length : NaN };
  });
}

/** Held-out figures of the best model: the library's metrics plus gender by age band. */
export interface BestMetrics extends RunMetrics {
  genderByBand: { band: string; images: number; accuracy: number }[];
}

/** Prediction rows (real labels + expected age, its 20-group, P(female)) of faces. */
export function bestPredictionRows(records: readonly FaceRecord[], indices: readonly number[], out: HeadOutputs): PredictionRow[] {
  const ages = expectedAges(out.ageProbabilities, out.n);
  return indices.map((idx, i) => {
    const r = records[idx];
    return { file: r.file, age: r.age, gender: r.gender, trueGroup: ageGroupOf(r.age, REPORT_AGE_GROUPS), predAge: ages[i], predGroup: ageGroupOf(ages[i], REPORT_AGE_GROUPS), pFemale: out.pFemale[i] };
  });
}

/** Every figure of the model card from prediction rows (and the training labels, for the baseline). */
export function bestMetrics(rows: readonly PredictionRow[], split: string, training: readonly { age: number; gender: number }[], model = "best"): BestMetrics {
  const m = computeMetrics(rows, { task: "age-gender", model, split, profile: "full", division: REPORT_AGE_GROUPS, training });
  return { ...m, genderByBand: genderAccuracyByBand(rows) };
}
