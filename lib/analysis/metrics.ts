/**
 * Held-out figures of a run: every figure its task's outputs have (lib/models/tasks.ts), the
 * majority baseline, and the headline numbers K-fold averages. The scores themselves
 * (accuracy, confusion, MAE, mean/variance) are pure functions in ./scores, re-exported here.
 */
import { AgeDivision, REPORT_AGE_GROUPS } from "../data/labels";
import type { ModelTask } from "../core/kinds";
import { taskSpecs } from "../models/tasks";
import type { Baseline, PredictionRow, RunMetrics } from "../training/runs";

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
  return m;
}

/** The held-out figures a run is compared by (tables, K-fold means, the comparison figure), in display order. */
export const HELD_OUT_FIGURES = ["ageAccuracy", "ageAccuracyWithin1", "mae", "genderAccuracy"] as const;

/** Numeric headline figures of a metrics object (for K-fold means and tables). */
export function headlineFigures(m: RunMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of ["loss", ...HELD_OUT_FIGURES, "trainSeconds", "imagesPerSecond"] as const) {
    const v = m[key];
    if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
  }
  return out;
}
