/**
 * Held-out figures: age-group accuracy (exact and within one group), confusion matrices, MAE in
 * years (overall and per age band), gender accuracy, and the report's predicted-vs-real mean
 * and variance. Pure functions on plain arrays, so they are checked against hand-computed values.
 */
import { AgeDivision, GENDER_LABELS, GENDER_THRESHOLD, REPORT_AGE_GROUPS, divisionFromEdges } from "../data/labels";
import type { ModelTask } from "../core/kinds";
import type { BandError, Baseline, ConfusionMatrix, MeanVariance, PredictionRow, RunMetrics } from "../training/runs";

function sameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} true values but ${b.length} predictions.`);
}

/** Share of positions where prediction equals truth (NaN for no samples). */
export function accuracy(truth: readonly number[], predicted: readonly number[]): number {
  sameLength(truth, predicted, "accuracy");
  if (truth.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === predicted[i]) hits++;
  return hits / truth.length;
}

/** Share of predictions at most `tolerance` groups away from the true group (the report's ±1). */
export function accuracyWithin(truth: readonly number[], predicted: readonly number[], tolerance = 1): number {
  sameLength(truth, predicted, "accuracyWithin");
  if (truth.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < truth.length; i++) if (Math.abs(truth[i] - predicted[i]) <= tolerance) hits++;
  return hits / truth.length;
}

/** Counts matrix[true][predicted] over class indices 0..labels.length-1. */
export function confusionMatrix(truth: readonly number[], predicted: readonly number[], labels: readonly string[]): ConfusionMatrix {
  sameLength(truth, predicted, "confusionMatrix");
  const k = labels.length;
  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i];
    const p = predicted[i];
    if (!(t >= 0 && t < k && p >= 0 && p < k)) throw new Error(`confusionMatrix: class pair (${t}, ${p}) at row ${i} is outside 0..${k - 1}.`);
    matrix[t][p]++;
  }
  return { labels: [...labels], matrix };
}

/** Mean absolute error (NaN for no samples). */
export function meanAbsoluteError(real: readonly number[], predicted: readonly number[]): number {
  sameLength(real, predicted, "meanAbsoluteError");
  if (real.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < real.length; i++) s += Math.abs(real[i] - predicted[i]);
  return s / real.length;
}

/** Age bands of the per-band MAE: decades 0-9 ... 70-79, then 80+. */
export const AGE_BANDS: AgeDivision = divisionFromEdges("decades", [0, 10, 20, 30, 40, 50, 60, 70, 80]);

/** MAE of the images whose real age lies in each band (null where a band has no image). */
export function maeByBand(realAges: readonly number[], predictedAges: readonly number[], bands: AgeDivision = AGE_BANDS): BandError[] {
  sameLength(realAges, predictedAges, "maeByBand");
  return bands.labels.map((band, b) => {
    let n = 0;
    let s = 0;
    for (let i = 0; i < realAges.length; i++) {
      const a = Math.floor(realAges[i]);
      if (a >= bands.lows[b] && a <= bands.highs[b]) {
        n++;
        s += Math.abs(realAges[i] - predictedAges[i]);
      }
    }
    return { band, images: n, mae: n > 0 ? s / n : null };
  });
}

/** Population mean and variance of a list. */
export function meanAndVariance(values: readonly number[]): { mean: number; variance: number } {
  if (values.length === 0) return { mean: NaN, variance: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, variance };
}

/** The report's comparison of predicted and real distributions (population variance). */
export function predictedVsReal(real: readonly number[], predicted: readonly number[]): MeanVariance {
  sameLength(real, predicted, "predictedVsReal");
  const r = meanAndVariance(real);
  const p = meanAndVariance(predicted);
  return { predictedMean: p.mean, predictedVariance: p.variance, realMean: r.mean, realVariance: r.variance };
}

/** Options of `computeMetrics`. */
export interface MetricsOptions {
  task: ModelTask;
  model: string;
  split: string;
  profile: RunMetrics["profile"];
  division?: AgeDivision;
  trainSeconds?: number;
  imagesPerSecond?: number;
  loss?: number;
  /** Labels of the training images: with them the metrics carry the majority baseline. */
  training?: readonly { age: number; gender: number }[];
}

/** The most frequent value (the smallest on a tie, so the answer is deterministic). */
function mostFrequent(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = NaN;
  let bestCount = 0;
  for (const [v, c] of counts) if (c > bestCount || (c === bestCount && v < best)) [best, bestCount] = [v, c];
  return best;
}

/** The median (the constant with the smallest mean absolute error). */
function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Scores of a constant predictor fitted on the training labels, on the held-out rows: the most
 * frequent training age group, the median training age (for MAE) and the more frequent
 * training gender. A model that does not beat these has learnt nothing from the faces.
 */
export function majorityBaseline(
  training: readonly { age: number; gender: number }[],
  rows: readonly PredictionRow[],
  task: ModelTask,
  division: AgeDivision = REPORT_AGE_GROUPS,
): Baseline {
  if (training.length === 0) throw new Error("majorityBaseline needs at least one training label.");
  const b: Baseline = {};
  if (task !== "gender") {
    const groupOf = (age: number) => division.lows.findIndex((lo, g) => Math.floor(age) >= lo && Math.floor(age) <= division.highs[g]);
    const trainGroups = training.map((t) => groupOf(t.age)).filter((g) => g >= 0);
    const grouped = rows.filter((r) => r.trueGroup >= 0);
    if (trainGroups.length > 0 && grouped.length > 0) {
      const g = mostFrequent(trainGroups);
      b.ageAccuracy = accuracy(grouped.map((r) => r.trueGroup), grouped.map(() => g));
      b.ageAccuracyWithin1 = accuracyWithin(grouped.map((r) => r.trueGroup), grouped.map(() => g), 1);
    }
    const a = median(training.map((t) => t.age));
    b.mae = meanAbsoluteError(rows.map((r) => r.age), rows.map(() => a));
  }
  if (task === "gender" || task === "age-gender") {
    const g = mostFrequent(training.map((t) => t.gender));
    b.genderAccuracy = accuracy(rows.map((r) => r.gender), rows.map(() => g));
  }
  return b;
}

/**
 * Every figure a task has, from held-out prediction rows. Age-group and regression models
 * both get group accuracy and MAE: a group is decoded to its mid age, an age to its group.
 */
export function computeMetrics(rows: readonly PredictionRow[], o: MetricsOptions): RunMetrics {
  const division = o.division ?? REPORT_AGE_GROUPS;
  const m: RunMetrics = {
    split: o.split,
    images: rows.length,
    profile: o.profile,
    task: o.task,
    model: o.model,
    trainSeconds: o.trainSeconds ?? 0,
    imagesPerSecond: o.imagesPerSecond ?? 0,
  };
  if (o.loss !== undefined) m.loss = o.loss;
  if (o.training && o.training.length > 0) m.baseline = majorityBaseline(o.training, rows, o.task, division);
  if (o.task !== "gender") {
    const aged = rows.filter((r) => r.predAge !== undefined);
    const grouped = rows.filter((r) => r.predGroup !== undefined && r.predGroup >= 0 && r.trueGroup >= 0);
    const t = grouped.map((r) => r.trueGroup);
    const p = grouped.map((r) => r.predGroup as number);
    m.ageAccuracy = accuracy(t, p);
    m.ageAccuracyWithin1 = accuracyWithin(t, p, 1);
    m.ageConfusion = confusionMatrix(t, p, division.labels);
    const real = aged.map((r) => r.age);
    const pred = aged.map((r) => r.predAge as number);
    m.mae = meanAbsoluteError(real, pred);
    m.maeByBand = maeByBand(real, pred);
    m.ageMeanVariance = predictedVsReal(real, pred);
  }
  if (o.task === "gender" || o.task === "age-gender") {
    const g = rows.filter((r) => r.pFemale !== undefined);
    const t = g.map((r) => r.gender);
    const p = g.map((r) => ((r.pFemale as number) >= GENDER_THRESHOLD ? 1 : 0));
    m.genderAccuracy = accuracy(t, p);
    m.genderConfusion = confusionMatrix(t, p, GENDER_LABELS);
    m.genderMeanVariance = predictedVsReal(t, g.map((r) => r.pFemale as number));
  }
  return m;
}

/** Numeric headline figures of a metrics object (for K-fold means and tables). */
export function headlineFigures(m: RunMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of ["loss", "ageAccuracy", "ageAccuracyWithin1", "mae", "genderAccuracy", "trainSeconds", "imagesPerSecond"] as const) {
    const v = m[key];
    if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
  }
  return out;
}
