/**
 * Held-out figures of a run: every figure its task's outputs have (lib/models/tasks.ts), the
 * majority baseline, and the headline numbers K-fold averages. The scores themselves
 * (accuracy, confusion, MAE, mean/variance) are pure functions in ./scores, re-exported here.
 */
import { AgeDivision, GENDER_LABELS, GENDER_THRESHOLD, REPORT_AGE_GROUPS } from "../data/labels";
import { meanAndVariance, mostFrequent } from "./scores";
import type { ModelTask } from "../core/kinds";
import { taskSpecs } from "../models/tasks";
import type { Baseline, PredictionRow, RunMetrics } from "../records/runs";
// Re-exported: the figures a record is compared by are part of a run's metrics.
export { HELD_OUT_FIGURES, headlineFigures } from "../records/runs";

export { AGE_BANDS, accuracy, accuracyWithin, confusionMatrix, maeByBand, meanAbsoluteError, meanAndVariance, predictedVsReal } from "./scores";

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
  for (const spec of taskSpecs(task)) Object.assign(b, spec.baseline(training, rows, division));
  return b;
}

/**
 * Every figure a task has, from held-out prediction rows: each of its outputs' held-out
 * figures (TaskSpec.heldOut), in output order, after the loss and the baseline.
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
  for (const spec of taskSpecs(o.task)) Object.assign(m, spec.heldOut(rows, division));
  const warnings = degenerateWarnings(rows, o.task, division);
  if (warnings.length > 0) m.warnings = warnings;
  return m;
}


/** Share of held-out faces given the same answer above which a model counts as collapsed. */
export const DEGENERATE_SHARE = 0.95;
/** Fewer held-out faces than this say too little to call a model collapsed. */
const DEGENERATE_MIN_ROWS = 10;

/**
 * Warnings for a degenerate model: one gender or one age group for nearly every held-out face
 * (while the faces themselves are mixed), or a constant predicted age. Such a model can finish
 * with a plausible accuracy (the majority class) and exit 0; this says so in words.
 */
export function degenerateWarnings(rows: readonly PredictionRow[], task: ModelTask, division: AgeDivision = REPORT_AGE_GROUPS): string[] {
  const out: string[] = [];
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const dominant = (values: readonly number[]): { value: number; share: number } => {
    const value = mostFrequent(values);
    return { value, share: values.filter((v) => v === value).length / values.length };
  };
  const advice = "the model has collapsed to one answer: lower the learning rate (--lr), train longer or check the data";
  if (task === "gender" || task === "age-gender") {
    const g = rows.filter((r) => r.pFemale !== undefined);
    if (g.length >= DEGENERATE_MIN_ROWS) {
      const pred = dominant(g.map((r) => ((r.pFemale as number) >= GENDER_THRESHOLD ? 1 : 0)));
      const real = g.filter((r) => r.gender === pred.value).length / g.length;
      if (pred.share >= DEGENERATE_SHARE && real < DEGENERATE_SHARE) {
        out.push(`gender: predicts ${GENDER_LABELS[pred.value]} for ${pct(pred.share)} of ${g.length} held-out faces (really ${pct(real)} ${GENDER_LABELS[pred.value]}); ${advice}.`);
      }
    }
  }
  if (task === "age-groups" || task === "age-gender") {
    const a = rows.filter((r) => r.predGroup !== undefined && r.predGroup >= 0);
    if (a.length >= DEGENERATE_MIN_ROWS) {
      const pred = dominant(a.map((r) => r.predGroup as number));
      const real = a.filter((r) => r.trueGroup === pred.value).length / a.length;
      if (pred.share >= DEGENERATE_SHARE && real < DEGENERATE_SHARE) {
        out.push(`age: predicts group ${division.labels[pred.value]} for ${pct(pred.share)} of ${a.length} held-out faces (really ${pct(real)} in it); ${advice}.`);
      }
    }
  }
  if (task === "age-regression") {
    const a = rows.filter((r) => r.predAge !== undefined);
    if (a.length >= DEGENERATE_MIN_ROWS) {
      const p = meanAndVariance(a.map((r) => r.predAge as number));
      const real = meanAndVariance(a.map((r) => r.age));
      // Under a year of spread while real ages spread over decades: one answer for everyone.
      if (Math.sqrt(p.variance) < 1 && Math.sqrt(real.variance) >= 5) {
        out.push(`age: predicts about ${p.mean.toFixed(1)} years for every held-out face (spread ${Math.sqrt(p.variance).toFixed(2)} years; real ages spread ${Math.sqrt(real.variance).toFixed(1)}); ${advice}.`);
      }
    }
  }
  return out;
}

