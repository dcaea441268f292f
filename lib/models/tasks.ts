/**
 * Task specs: one description per output kind (age groups, age in years, gender) holding how
 * its labels become targets, its loss, the metric the loop reports, how its raw output is
 * decoded, and which held-out figures and baseline apply. The trainer, the evaluator and the
 * predictor read these instead of branching on the task; a multi-output model is several
 * kinds (TASK_OUTPUTS), in its output order. A new kind of output is one entry here.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelTask } from "../core/kinds";
import type { FaceRecord } from "../data/dataset";
import { AGE_SCALE, AgeDivision, GENDER_LABELS, GENDER_THRESHOLD, ageGroupOf, argmax, groupCount, groupMidAge, oneHot } from "../data/labels";
import { accuracy, accuracyWithin, confusionMatrix, maeByBand, meanAbsoluteError, median, mostFrequent, predictedVsReal } from "../analysis/scores";
import type { Baseline, PredictionRow, RunMetrics } from "../records/runs";

/** One kind of model output. */
export type OutputKind = "age-groups" | "age-years" | "gender";

/** A model's decoded prediction for one sample; fields its outputs do not give are absent. */
export interface DecodedPrediction {
  predGroup?: number;
  predAge?: number;
  pFemale?: number;
}

/** Everything the library needs to know about one kind of output. */
export interface TaskSpec {
  kind: OutputKind;
  /** Name of the model's output layer of this kind. */
  output: "age" | "gender";
  /** Target tensor [n, units] of the given samples. */
  targets(records: readonly FaceRecord[], indices: readonly number[], division: AgeDivision): tf.Tensor2D;
  /** Loss name, given the activation of the output layer (the head decides between sigmoids and softmax). */
  loss(activation: string | undefined): string;
  /** Name of the metric the training loop reports for this output (history, progress). */
  metric: string;
  /** That metric's mean over a batch. */
  batchMetric(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar;
  /** Decodes row `i` of this output's raw values (row-major, as predictOutputs returns). */
  decode(values: Float32Array, i: number, division: AgeDivision): DecodedPrediction;
  /** Held-out figures of this output from prediction rows. */
  heldOut(rows: readonly PredictionRow[], division: AgeDivision): Partial<RunMetrics>;
  /** Scores of the constant predictor fitted on the training labels, on the held-out rows. */
  baseline(training: readonly { age: number; gender: number }[], rows: readonly PredictionRow[], division: AgeDivision): Baseline;
  /** Classification outputs: the class of a face and the number of classes (for class weights). */
  classes?: { count(division: AgeDivision): number; of(record: FaceRecord, division: AgeDivision): number };
}

/**
 * Age figures from rows: group accuracy (exact and within one group), the confusion matrix and
 * MAE. Group and regression models both get all of them: a group is decoded to its mid age,
 * an age to its group.
 */
function ageHeldOut(rows: readonly PredictionRow[], division: AgeDivision): Partial<RunMetrics> {
  const aged = rows.filter((r) => r.predAge !== undefined);
  const grouped = rows.filter((r) => r.predGroup !== undefined && r.predGroup >= 0 && r.trueGroup >= 0);
  const t = grouped.map((r) => r.trueGroup);
  const p = grouped.map((r) => r.predGroup as number);
  const real = aged.map((r) => r.age);
  const pred = aged.map((r) => r.predAge as number);
  return {
    ageAccuracy: accuracy(t, p),
    ageAccuracyWithin1: accuracyWithin(t, p, 1),
    ageConfusion: confusionMatrix(t, p, division.labels),
    mae: meanAbsoluteError(real, pred),
    maeByBand: maeByBand(real, pred),
    ageMeanVariance: predictedVsReal(real, pred),
  };
}

/** Age baseline: the most frequent training group and the median training age (the constant with the smallest MAE). */
function ageBaseline(training: readonly { age: number; gender: number }[], rows: readonly PredictionRow[], division: AgeDivision): Baseline {
  const b: Baseline = {};
  const trainGroups = training.map((t) => ageGroupOf(t.age, division)).filter((g) => g >= 0);
  const grouped = rows.filter((r) => r.trueGroup >= 0);
  if (trainGroups.length > 0 && grouped.length > 0) {
    const g = mostFrequent(trainGroups);
    b.ageAccuracy = accuracy(grouped.map((r) => r.trueGroup), grouped.map(() => g));
    b.ageAccuracyWithin1 = accuracyWithin(grouped.map((r) => r.trueGroup), grouped.map(() => g), 1);
  }
  const a = median(training.map((t) => t.age));
  b.mae = meanAbsoluteError(rows.map((r) => r.age), rows.map(() => a));
  return b;
}

/** The one-hot group targets; an age outside the division is an error naming the file. */
function groupTargets(records: readonly FaceRecord[], indices: readonly number[], division: AgeDivision): tf.Tensor2D {
  const groups = indices.map((i) => {
    const g = ageGroupOf(records[i].age, division);
    if (g < 0) throw new Error(`${records[i].file}: age ${records[i].age} is outside the "${division.name}" division; filter the data with filterByDivision first.`);
    return g;
  });
  return tf.tensor2d(oneHot(groups, groupCount(division)), [indices.length, groupCount(division)]);
}

/** Every output kind, by name. */
export const TASK_SPECS: Record<OutputKind, TaskSpec> = {
  "age-groups": {
    kind: "age-groups",
    output: "age",
    targets: groupTargets,
    // Independent sigmoids per group (the report's age model) are binary problems; softmax is one choice among groups.
    loss: (activation) => (activation === "sigmoid" ? "binaryCrossentropy" : "categoricalCrossentropy"),
    metric: "ageAccuracy",
    batchMetric: (y, p) => tf.mean(tf.metrics.categoricalAccuracy(y, p)) as tf.Scalar,
    decode: (values, i, division) => {
      const g = groupCount(division);
      const predGroup = argmax(values.subarray(i * g, (i + 1) * g));
      return { predGroup, predAge: groupMidAge(predGroup, division) };
    },
    heldOut: ageHeldOut,
    baseline: ageBaseline,
    classes: { count: groupCount, of: (r, division) => ageGroupOf(r.age, division) },
  },
  "age-years": {
    kind: "age-years",
    output: "age",
    targets: (records, indices) => tf.tensor2d(indices.map((i) => records[i].age / AGE_SCALE), [indices.length, 1]),
    loss: () => "meanSquaredError",
    metric: "maeYears",
    batchMetric: (y, p) => tf.mul(tf.mean(tf.abs(tf.sub(y, p))), AGE_SCALE) as tf.Scalar,
    decode: (values, i, division) => {
      const predAge = Math.max(0, values[i] * AGE_SCALE);
      return { predAge, predGroup: ageGroupOf(predAge, division) };
    },
    heldOut: ageHeldOut,
    baseline: ageBaseline,
  },
  gender: {
    kind: "gender",
    output: "gender",
    targets: (records, indices) => tf.tensor2d(indices.map((i) => records[i].gender), [indices.length, 1]),
    loss: () => "binaryCrossentropy",
    metric: "genderAccuracy",
    batchMetric: (y, p) => tf.mean(tf.metrics.binaryAccuracy(y, p)) as tf.Scalar,
    decode: (values, i) => ({ pFemale: values[i] }),
    heldOut: (rows) => {
      const g = rows.filter((r) => r.pFemale !== undefined);
      const t = g.map((r) => r.gender);
      const p = g.map((r) => ((r.pFemale as number) >= GENDER_THRESHOLD ? 1 : 0));
      return { genderAccuracy: accuracy(t, p), genderConfusion: confusionMatrix(t, p, GENDER_LABELS), genderMeanVariance: predictedVsReal(t, g.map((r) => r.pFemale as number)) };
    },
    baseline: (training, rows) => {
      const g = mostFrequent(training.map((t) => t.gender));
      return { genderAccuracy: accuracy(rows.map((r) => r.gender), rows.map(() => g)) };
    },
    classes: { count: () => GENDER_LABELS.length, of: (r) => r.gender },
  },
};

/**
 * Balanced class weights of each classification output, from the training faces' class counts
 * (Keras's and scikit-learn's "balanced": n / (classes present x count), so the weights average 1
 * over the training faces). A class no training face has gets weight 0. Regression outputs get none.
 */
export function balancedClassWeights(task: ModelTask, records: readonly FaceRecord[], indices: readonly number[], division: AgeDivision): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const spec of taskSpecs(task)) {
    if (!spec.classes) continue;
    const counts = new Array<number>(spec.classes.count(division)).fill(0);
    for (const i of indices) {
      const c = spec.classes.of(records[i], division);
      if (c >= 0 && c < counts.length) counts[c]++;
    }
    const present = counts.filter((c) => c > 0).length;
    out[spec.output] = counts.map((c) => (c > 0 ? indices.length / (present * c) : 0));
  }
  return out;
}

/** The output kinds of each model task, in the model's output order. */
export const TASK_OUTPUTS: Record<ModelTask, readonly OutputKind[]> = {
  "age-groups": ["age-groups"],
  "age-regression": ["age-years"],
  gender: ["gender"],
  "age-gender": ["age-groups", "gender"],
};

/** The specs of a task's outputs, in the model's output order; an unknown task is an error. */
export function taskSpecs(task: ModelTask): TaskSpec[] {
  const kinds = TASK_OUTPUTS[task];
  if (!kinds) throw new Error(`Unknown task "${task}". Known tasks: ${Object.keys(TASK_OUTPUTS).join(", ")}.`);
  return kinds.map((k) => TASK_SPECS[k]);
}

/** Whether a task has an age-group output (its data are filtered to the model's age division). */
export function hasAgeGroups(task: ModelTask): boolean {
  return taskSpecs(task).some((s) => s.kind === "age-groups");
}

/** Loss name per output ("age", "gender") of a task, given each output layer's activation. */
export function taskLosses(task: ModelTask, activationOf: (output: string) => string | undefined = () => undefined): Record<string, string> {
  return Object.fromEntries(taskSpecs(task).map((s) => [s.output, s.loss(activationOf(s.output))]));
}
