import { test } from "node:test";
import * as assert from "node:assert/strict";
import { accuracy, accuracyWithin, computeMetrics, confusionMatrix, maeByBand, majorityBaseline, meanAbsoluteError, predictedVsReal } from "../lib/analysis/metrics";
import type { PredictionRow } from "../lib/records/runs";

test("accuracy, within-one accuracy and confusion matrix match hand counts", () => {
  const truth = [0, 1, 2, 2, 3];
  const pred = [0, 2, 2, 0, 3];
  assert.equal(accuracy(truth, pred), 3 / 5);
  assert.equal(accuracyWithin(truth, pred, 1), 4 / 5); // only 2 -> 0 is two groups off
  const cm = confusionMatrix(truth, pred, ["a", "b", "c", "d"]);
  assert.deepEqual(cm.matrix, [
    [1, 0, 0, 0],
    [0, 0, 1, 0],
    [1, 0, 1, 0],
    [0, 0, 0, 1],
  ]);
  assert.throws(() => confusionMatrix([0], [4], ["a", "b"]), /outside 0..1/);
  assert.throws(() => accuracy([0, 1], [0]), /2 true values but 1 predictions/);
});

test("MAE, per-band MAE and predicted vs real mean/variance", () => {
  const real = [5, 15, 25, 85];
  const pred = [7, 10, 25, 75];
  assert.equal(meanAbsoluteError(real, pred), (2 + 5 + 0 + 10) / 4);
  const bands = maeByBand(real, pred);
  assert.deepEqual(bands[0], { band: "0 - 9", images: 1, mae: 2 });
  assert.deepEqual(bands[1], { band: "10 - 19", images: 1, mae: 5 });
  assert.deepEqual(bands[3], { band: "30 - 39", images: 0, mae: null });
  assert.deepEqual(bands[8], { band: "80+", images: 1, mae: 10 });
  const mv = predictedVsReal([1, 3], [2, 2]);
  assert.deepEqual(mv, { predictedMean: 2, predictedVariance: 0, realMean: 2, realVariance: 1 });
});

test("computeMetrics decodes groups and genders of prediction rows", () => {
  const rows: PredictionRow[] = [
    { file: "a", age: 22, gender: 1, trueGroup: 4, predGroup: 4, predAge: 22, pFemale: 0.9 },
    { file: "b", age: 40, gender: 0, trueGroup: 8, predGroup: 7, predAge: 37, pFemale: 0.6 },
    { file: "c", age: 61, gender: 0, trueGroup: 12, predGroup: 9, predAge: 47, pFemale: 0.2 },
  ];
  const m = computeMetrics(rows, { task: "age-gender", model: "x", split: "test", profile: "quick" });
  assert.equal(m.images, 3);
  assert.equal(m.ageAccuracy, 1 / 3);
  assert.equal(m.ageAccuracyWithin1, 2 / 3);
  assert.equal(m.mae, (0 + 3 + 14) / 3);
  assert.equal(m.genderAccuracy, 2 / 3); // b is male with p=0.6 -> predicted female
  assert.deepEqual(m.genderConfusion!.matrix, [
    [1, 1],
    [0, 1],
  ]);
  assert.equal(m.ageConfusion!.matrix[8][7], 1);
  const g = computeMetrics(rows, { task: "gender", model: "x", split: "test", profile: "quick" });
  assert.equal(g.ageAccuracy, undefined);
});

test("the majority baseline: most frequent training group and gender, median training age", () => {
  // Training: ages 3, 4, 22, 61 -> groups 0, 0, 4, 12 (most frequent 0-4), median age 13; genders 1, 1, 0, 1.
  const training = [
    { age: 3, gender: 1 },
    { age: 4, gender: 1 },
    { age: 22, gender: 0 },
    { age: 61, gender: 1 },
  ];
  const row = (age: number, gender: number, trueGroup: number): PredictionRow => ({ file: `${age}.jpg`, age, gender, trueGroup, predGroup: 0, predAge: 2, pFemale: 0.9 });
  const rows = [row(2, 1, 0), row(7, 0, 1), row(13, 0, 2), row(33, 1, 6)];
  const b = majorityBaseline(training, rows, "age-gender");
  assert.equal(b.ageAccuracy, 1 / 4); // only the 2-year-old is in 0-4
  assert.equal(b.ageAccuracyWithin1, 2 / 4); // 0-4 and 5-9
  assert.equal(b.mae, (11 + 6 + 0 + 20) / 4); // |age - 13|
  assert.equal(b.genderAccuracy, 2 / 4); // always "female"
  assert.equal(majorityBaseline(training, rows, "gender").ageAccuracy, undefined);
  // computeMetrics carries it when given the training labels, and not otherwise.
  assert.deepEqual(computeMetrics(rows, { task: "age-gender", model: "m", split: "test", profile: "quick", training }).baseline, b);
  assert.equal(computeMetrics(rows, { task: "age-gender", model: "m", split: "test", profile: "quick" }).baseline, undefined);
});
