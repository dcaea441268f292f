import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { isFaceRecord, parseFileName } from "../lib/data/dataset";
import { ageGroupOf } from "../lib/data/labels";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { epochSchedule, kFold, mulberry32, permutation, trainTestSplit } from "../lib/data/splits";

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The sample's age groups, a realistic, unbalanced class vector for stratification. */
function sampleAgeGroups(): number[] {
  return fs
    .readdirSync(SAMPLE_DATA_DIR)
    .sort()
    .map(parseFileName)
    .filter(isFaceRecord)
    .map((r) => ageGroupOf(r.age));
}

test("mulberry32 and permutation are deterministic for a seed and differ across seeds", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = range(5).map(() => a());
  assert.deepEqual(range(5).map(() => b()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const p = permutation(1000, 42);
  assert.deepEqual(permutation(1000, 42), p);
  assert.notDeepEqual(permutation(1000, 43), p);
  assert.deepEqual(sorted(p), range(1000));
  assert.notDeepEqual(p, range(1000));
});

test("train/test split: disjoint, covers every sample, test fraction honoured, deterministic", () => {
  const n = 1001;
  const s = trainTestSplit(n, { testFraction: 0.2, seed: 42 });
  assert.equal(s.test.length, Math.round(n * 0.2));
  assert.deepEqual(sorted([...s.train, ...s.test]), range(n));
  assert.equal(new Set([...s.train, ...s.test]).size, n);
  assert.deepEqual(trainTestSplit(n, { testFraction: 0.2, seed: 42 }), s);
  assert.notDeepEqual(trainTestSplit(n, { testFraction: 0.2, seed: 7 }).test, s.test);
  assert.throws(() => trainTestSplit(n, { testFraction: 1 }), /testFraction must be in \(0, 1\)/);
  assert.throws(() => trainTestSplit(1), /at least 2/);
});

test("stratified split keeps each age group's share in the test set (the sample's real groups)", () => {
  const groups = sampleAgeGroups();
  assert.ok(groups.length >= 100);
  const s = trainTestSplit(groups.length, { testFraction: 0.2, seed: 42, stratify: groups });
  assert.deepEqual(sorted([...s.train, ...s.test]), range(groups.length));
  const count = (idx: readonly number[], g: number) => idx.filter((i) => groups[i] === g).length;
  for (const g of new Set(groups)) {
    const all = count(range(groups.length), g);
    const inTest = count(s.test, g);
    // Per class the test share is the rounded fraction: within one sample of 20 %.
    assert.ok(Math.abs(inTest - all * 0.2) <= 1, `group ${g}: ${inTest} of ${all} in test`);
  }
  assert.throws(() => trainTestSplit(5, { stratify: [0, 1] }), /stratify has 2 labels for 5 samples/);
});

test("K-fold: validation folds are disjoint, cover every sample once, sizes differ by at most one", () => {
  const n = 403;
  const k = 10;
  const folds = kFold(n, k, 42);
  assert.equal(folds.length, k);
  const seen = folds.flatMap((f) => f.validation);
  assert.deepEqual(sorted(seen), range(n));
  for (const f of folds) {
    assert.deepEqual(sorted([...f.train, ...f.validation]), range(n));
    const v = new Set(f.validation);
    assert.ok(f.train.every((i) => !v.has(i)), `fold ${f.fold} trains on a validation sample`);
  }
  const sizes = folds.map((f) => f.validation.length);
  // scikit-learn's layout: the first n % k folds hold one sample more.
  assert.deepEqual(sizes, range(k).map((f) => Math.floor(n / k) + (f < n % k ? 1 : 0)));
  assert.deepEqual(kFold(n, k, 42), folds);
  assert.notDeepEqual(kFold(n, k, 1)[0].validation, folds[0].validation);
  assert.throws(() => kFold(5, 10), /at least 10 samples/);
  assert.throws(() => kFold(50, 1), /k >= 2/);
});

test("epoch schedule: first and last fold's epochs kept, never increasing, at least one fewer a fold until the floor", () => {
  for (const [folds, first, last] of [[10, 15, 2], [4, 3, 2], [5, 20, 5], [1, 15, 2]]) {
    const s = epochSchedule(folds, first, last);
    assert.equal(s.length, folds);
    assert.equal(s[0], first);
    if (folds > 1) assert.equal(s[folds - 1], last, `schedule ${s.join(", ")}`);
    for (let f = 1; f < folds; f++) {
      assert.ok(s[f] === last || s[f] <= s[f - 1] - 1, `schedule ${s.join(", ")} at fold ${f}`);
      assert.ok(s[f] >= last);
    }
  }
  assert.throws(() => epochSchedule(0), /at least one fold/);
  assert.throws(() => epochSchedule(10, 2, 15), /firstEpochs >= lastEpochs/);
});
