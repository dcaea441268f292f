/**
 * Scores on plain arrays: accuracy (exact and within a tolerance), confusion matrices, MAE
 * (overall and per age band), predicted-vs-real mean and variance, and the constants a
 * majority baseline predicts. Pure functions, checked against hand-computed values; the task
 * specs (lib/models/tasks.ts) and computeMetrics build on them.
 */
import { AgeDivision, divisionFromEdges } from "../data/labels";
import type { BandError, ConfusionMatrix, MeanVariance } from "../records/runs";

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

/** The most frequent value (the smallest on a tie, so the answer is deterministic). */
export function mostFrequent(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = NaN;
  let bestCount = 0;
  for (const [v, c] of counts) if (c > bestCount || (c === bestCount && v < best)) [best, bestCount] = [v, c];
  return best;
}

/** The median (the constant with the smallest mean absolute error). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
