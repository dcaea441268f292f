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
import type { FeatureSet } from "./feature-cache";
import { BackboneName, FACERES_POOLED, FineTuneMapsName, backboneSpec } from "./backbones";
import { AGE_BINS, AgeLoss, Standardizer, ageDistributionTargets, ageLossFn, buildHeadModel, expectedAges, fitStandardizer, standardize } from "./heads";
import type { PredictionRow, RunMetrics } from "../records/runs";
import { mulberry32 } from "../data/splits";
import { newOptimizer } from "../training/train";
import type { AugmentOptions } from "./augment";

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
  /** Weight of the gender loss against the age loss (default 1). */
  genderWeight?: number;
  /** Gender label smoothing: targets eps/2 and 1 - eps/2 instead of 0 and 1 (default 0). */
  genderSmoothing?: number;
  /** "age-band": each face's gender loss weighted so that, within each age band of GENDER_BANDS, both genders weigh the same. */
  genderBalance?: "age-band";
  /**
   * Fine-tuning after the heads: the heads are folded onto the backbone's last stages (face-api's,
   * or faceres's last block), which then train together with them on cached trunk maps
   * (fine-tuning.ts); the model then reads those maps (`fineTune.maps`) instead of `features`.
   * Absent: frozen features only.
   */
  fineTune?: FineTuneConfig;
}

/** How the last stages of the backbone are fine-tuned (Adam, cosine-decayed learning rate). */
export interface FineTuneConfig {
  epochs: number;
  learningRate: number;
  batchSize: number;
  /**
   * The cached trunk maps it trains on (default "facenet-maps": stage256 and the descriptor
   * train). "faceres-caffe-maps" continues heads on faceres-caffe's features with faceres's
   * last block and its own age/gender layers.
   */
  maps?: FineTuneMapsName;
  /**
   * Train on augmented pixels instead of the cached maps: every batch's faces are augmented
   * (augment.ts), run through the frozen trunk, and the stages after it train on the result.
   * Each epoch shows every face once (mirrored or not at random), so the epoch count is about
   * twice that of a cached-maps run, which shows each face and its mirror image every epoch.
   * Validation and prediction still read the un-augmented cached maps.
   */
  augment?: AugmentOptions;
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
  /** z-scores of the input features; null when the model takes its inputs as they are (fine-tuned). */
  standardizer: Standardizer | null;
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

/** Runs the heads on standardised features (no flip handling), in batches of `batch` rows. */
function runHeads(model: tf.LayersModel, x: Float32Array, dim: number, batch = 256): HeadOutputs {
  const n = x.length / dim;
  const ageProbabilities = new Float32Array(n * AGE_BINS);
  const pFemale = new Float32Array(n);
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const [age, gender] = tf.tidy(() => model.predict(tf.tensor2d(x.subarray(s * dim, e * dim), [e - s, dim])) as tf.Tensor[]);
    ageProbabilities.set(age.dataSync() as Float32Array, s * AGE_BINS);
    pFemale.set(gender.dataSync() as Float32Array, s);
    tf.dispose([age, gender]);
  }
  return { ageProbabilities, pFemale, n };
}

/**
 * Predictions of trained heads for fused features (un-standardised); with `flipped` and
 * config.flipTest, the age distributions and gender probabilities of both views are averaged.
 */
export function predictHeads(heads: Pick<TrainedHeads, "model" | "standardizer" | "config">, plain: Float32Array, flipped?: Float32Array): HeadOutputs {
  const dim = (heads.model.inputs[0].shape as number[])[1];
  const prepare = (x: Float32Array) => (heads.standardizer ? standardize(x, heads.standardizer) : x);
  const a = runHeads(heads.model, prepare(plain), dim);
  if (!flipped || !heads.config.flipTest) return a;
  const b = runHeads(heads.model, prepare(flipped), dim);
  return {
    ageProbabilities: a.ageProbabilities.map((v, i) => (v + b.ageProbabilities[i]) / 2),
    pFemale: a.pFemale.map((v, i) => (v + b.pFemale[i]) / 2),
    n: a.n,
  };
}

/** The mean of several models' outputs for the same faces (an ensemble): age distributions and P(female) averaged. */
export function averageOutputs(outs: readonly HeadOutputs[]): HeadOutputs {
  if (outs.length === 0) throw new Error("An ensemble needs at least one model's outputs.");
  if (outs.length === 1) return outs[0];
  const n = outs[0].n;
  if (outs.some((o) => o.n !== n)) throw new Error(`Ensemble members predicted different numbers of faces: ${outs.map((o) => o.n).join(", ")}.`);
  const mean = (pick: (o: HeadOutputs) => Float32Array) => pick(outs[0]).map((_, i) => outs.reduce((sum, o) => sum + pick(o)[i], 0) / outs.length);
  return { ageProbabilities: mean((o) => o.ageProbabilities), pFemale: mean((o) => o.pFemale), n };
}

/** Validation rows of `trainHeads` / `fineTuneHeads`: features as the model reads them (un-standardised) and labels. */
export interface HeadValidationData {
  plain: Float32Array;
  flipped?: Float32Array;
  ages: number[];
  genders: number[];
}

/** Validation MAE and gender accuracy of trained heads (the curve an ablation reads). */
export function validationPoint(heads: Pick<TrainedHeads, "model" | "standardizer" | "config">, validation: HeadValidationData, epoch: number): { epoch: number; mae: number; genderAccuracy: number } {
  const out = predictHeads(heads, validation.plain, validation.flipped);
  const pred = expectedAges(out.ageProbabilities, out.n);
  return {
    epoch,
    mae: pred.reduce((s, p, i) => s + Math.abs(p - validation.ages[i]), 0) / out.n,
    genderAccuracy: out.pFemale.reduce((s, p, i) => s + ((p >= GENDER_THRESHOLD ? 1 : 0) === validation.genders[i] ? 1 : 0), 0) / out.n,
  };
}

/**
 * Makes one batch's input tensor (the shape the model reads) from the batch's row indices; the
 * caller of fitRows disposes nothing: fitRows frees each batch after its step.
 */
export type BatchSource = (rows: Uint32Array) => tf.Tensor;

/** Options of `fitRows`. */
export interface FitRowsOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /**
   * "cosine" (fine-tuning): the learning rate rises linearly from 0 over the first epoch's
   * batches (a warm-up: Adam's first steps move every weight by the full rate, which upsets a
   * pretrained network), then decays from `learningRate` to 0 along a cosine over the epochs.
   */
  schedule?: "constant" | "cosine";
  sigma: number;
  ageLoss: AgeLoss;
  seed: number;
  /** Weight of the gender loss against the age loss (default 1). */
  genderWeight?: number;
  /** Gender label smoothing (see HeadConfig). */
  genderSmoothing?: number;
  /** Gender class balance within age bands (see HeadConfig). */
  genderBalance?: "age-band";
  /** Called after each epoch (validation checks). */
  onEpoch?: (epoch: number, loss: number) => void;
}

/**
 * The training loop of the feature models (heads on frozen features, and fine-tuning on cached
 * trunk maps): Adam, a seeded shuffle per epoch, each batch gathered from the rows in JS memory
 * (so hundreds of MB of trunk maps never sit on the tensor heap at once), DLDL targets for age
 * and binary cross-entropy for gender. `x` holds `ages.length` rows of `dim` values, already in
 * the layout the model reads, or is a `BatchSource` that makes each batch's input tensor from
 * its row indices (fine-tuning on augmented pixels). Adam's state is freed at the end.
 */
export async function fitRows(model: tf.LayersModel, x: Float32Array | BatchSource, dim: number, ages: readonly number[], genders: readonly number[], o: FitRowsOptions): Promise<void> {
  const rows = ages.length;
  if (typeof x !== "function" && x.length !== rows * dim) throw new Error(`Training rows hold ${x.length / dim} rows of ${dim} values, labels ${rows}.`);
  const optimizer = newOptimizer(o.learningRate);
  const genderWeight = o.genderWeight ?? 1;
  // Each row's gender loss weight (balance by age band), set per batch before its step (tfjs
  // layers take no per-sample weights in trainOnBatch; the loss runs eagerly inside the step).
  let batchWeight: tf.Tensor | undefined;
  const genderLoss = (yt: tf.Tensor, yp: tf.Tensor) =>
    tf.tidy(() => {
      const bce = tf.metrics.binaryCrossentropy(yt, yp);
      return tf.mul(tf.mean(batchWeight ? tf.mul(bce, batchWeight) : bce), genderWeight);
    });
  model.compile({ optimizer, loss: [ageLossFn(o.ageLoss), genderLoss] });
  const eps = o.genderSmoothing ?? 0;
  const rowWeight = o.genderBalance === "age-band" ? bandBalanceWeights(ages, genders) : undefined;
  const inputShape = (model.inputs[0].shape as number[]).slice(1);
  const rng = mulberry32(o.seed);
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const epochRate = o.schedule === "cosine" ? (o.learningRate * (1 + Math.cos((Math.PI * (epoch - 1)) / o.epochs))) / 2 : o.learningRate;
      const batchesPerEpoch = Math.ceil(rows / o.batchSize);
      const order = Uint32Array.from({ length: rows }, (_, i) => i);
      for (let i = rows - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      let lossSum = 0;
      let batches = 0;
      for (let s = 0; s < rows; s += o.batchSize) {
        // tfjs's Adam reads its learning rate on every step; the field is not in its typings.
        const warm = o.schedule === "cosine" && epoch === 1 ? Math.min(1, (batches + 1) / batchesPerEpoch) : 1;
        (optimizer as unknown as { learningRate: number }).learningRate = epochRate * warm;
        const idx = order.subarray(s, Math.min(rows, s + o.batchSize));
        const xs = typeof x === "function" ? x(idx) : gatherBatch(x, dim, idx, inputShape);
        const ya = tf.tensor2d(ageDistributionTargets(Array.from(idx, (r) => ages[r]), o.sigma), [idx.length, AGE_BINS]);
        const yg = tf.tensor2d(Float32Array.from(idx, (r) => genders[r] * (1 - eps) + eps / 2), [idx.length, 1]);
        batchWeight = rowWeight && tf.tensor1d(Float32Array.from(idx, (r) => rowWeight[r]));
        const loss = (await model.trainOnBatch(xs, [ya, yg])) as number[];
        lossSum += loss[0];
        batches++;
        tf.dispose([xs, ya, yg]);
        if (batchWeight) batchWeight.dispose();
      }
      o.onEpoch?.(epoch, lossSum / batches);
    }
  } finally {
    // Adam's moment estimates are not freed by model.dispose().
    optimizer.dispose();
  }
}

/** The rows `idx` of `x` (rows of `dim` values) as one tensor of the model's input shape. */
function gatherBatch(x: Float32Array, dim: number, idx: Uint32Array, inputShape: number[]): tf.Tensor {
  const bx = new Float32Array(idx.length * dim);
  idx.forEach((r, k) => bx.set(x.subarray(r * dim, (r + 1) * dim), k * dim));
  return tf.tensor(bx, [idx.length, ...inputShape]);
}

/**
 * Per-row gender loss weights that balance the genders within each age band (0-3, 4-12, 13-19,
 * 20-59, 60+): a row weighs n_band / (2 n_band,gender), so both genders of a band weigh alike.
 */
export function bandBalanceWeights(ages: readonly number[], genders: readonly number[]): Float32Array {
  const bands = GENDER_BANDS.filter((b) => b.label !== "13+");
  const bandOf = (a: number) => bands.findIndex((b) => a >= b.lo && a <= b.hi);
  const count = bands.map(() => [0, 0]);
  ages.forEach((a, i) => count[bandOf(a)][genders[i]]++);
  return Float32Array.from(ages, (a, i) => {
    const c = count[bandOf(a)];
    return c[0] && c[1] ? (c[0] + c[1]) / (2 * c[genders[i]]) : 1;
  });
}

/** Training rows with the mirrored copies appended when `flipTrain` (and they exist). */
export function withMirroredRows(config: Pick<HeadConfig, "flipTrain">, train: HeadTrainingData): HeadTrainingData {
  if (!config.flipTrain || !train.flipped) return train;
  return { plain: concatFloat(train.plain, train.flipped), ages: [...train.ages, ...train.ages], genders: [...train.genders, ...train.genders] };
}

/**
 * Fits heads on training rows. With `validation`, the validation MAE and gender accuracy are
 * recorded every `checkEvery` epochs (the curve an ablation reads to choose the epoch count).
 */
export async function trainHeads(config: HeadConfig, train: HeadTrainingData, validation?: HeadValidationData, checkEvery = 5): Promise<TrainedHeads> {
  const dim = fusedDim(config.features);
  const n = train.ages.length;
  if (train.plain.length !== n * dim) throw new Error(`Training features hold ${train.plain.length / dim} rows of ${dim}, labels ${n}.`);
  const rows = withMirroredRows(config, train);
  const standardizer = fitStandardizer(rows.plain, rows.ages.length, dim);
  const model = buildHeadModel({ inputDim: dim, hidden: config.hidden, dropout: config.dropout, seed: config.seed });
  const heads: TrainedHeads = { config, model, standardizer, curve: [] };
  await fitRows(model, standardize(rows.plain, standardizer), dim, rows.ages, rows.genders, {
    ...config,
    onEpoch: (epoch) => {
      if (validation && (epoch % checkEvery === 0 || epoch === config.epochs)) heads.curve.push(validationPoint(heads, validation, epoch));
    },
  });
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
