import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { isFaceRecord, parseFileName } from "../lib/data/dataset";
import {
  EIGHT_AGE_RANGES,
  REPORT_AGE_GROUPS,
  ageDivision,
  ageGroupOf,
  decodeAgeGroup,
  decodeAgeScores,
  decodeGender,
  divisionFromEdges,
  filterByDivision,
  groupCount,
  oneHot,
  predictionCaption,
} from "../lib/data/labels";
import { AGE_GROUP_COUNT, MAX_AGE, SAMPLE_DATA_DIR } from "../lib/core/paths";

test("report division: twenty five-year groups with edges at 4/5, 94/95 and 116 in the open last group", () => {
  assert.equal(groupCount(REPORT_AGE_GROUPS), AGE_GROUP_COUNT);
  assert.equal(ageGroupOf(0), 0);
  assert.equal(ageGroupOf(4), 0);
  assert.equal(ageGroupOf(5), 1);
  assert.equal(ageGroupOf(94), 18);
  assert.equal(ageGroupOf(95), 19);
  assert.equal(ageGroupOf(MAX_AGE), 19);
  // Every age lands in the group whose label spans it.
  for (let age = 0; age <= MAX_AGE; age++) {
    const label = decodeAgeGroup(ageGroupOf(age));
    const [lo, hi] = label.endsWith("+") ? [Number(label.slice(0, -1)), Infinity] : label.split(" - ").map(Number);
    assert.ok(age >= lo && age <= hi, `age ${age} decoded to "${label}"`);
  }
});

test("decoding group indices gives the report's labels", () => {
  assert.equal(decodeAgeGroup(0), "0 - 4");
  assert.equal(decodeAgeGroup(12), "60 - 64");
  assert.equal(decodeAgeGroup(18), "90 - 94");
  assert.equal(decodeAgeGroup(19), "95+");
  assert.throws(() => decodeAgeGroup(20), /outside 0\.\.19/);
  assert.throws(() => decodeAgeGroup(-1), /outside/);
  assert.throws(() => decodeAgeGroup(1.5), /outside/);
  const scores = new Array(20).fill(0.01);
  scores[12] = 0.8;
  assert.equal(decodeAgeScores(scores), "60 - 64");
  assert.throws(() => decodeAgeScores([0.5, 0.5]), /Expected 20 scores/);
});

test("eight ranges: 7/8 and 80/81 are the outer edges, inner edges split where the write-up does", () => {
  assert.equal(groupCount(EIGHT_AGE_RANGES), 8);
  assert.equal(ageGroupOf(7, EIGHT_AGE_RANGES), -1);
  assert.equal(ageGroupOf(8, EIGHT_AGE_RANGES), 0);
  assert.equal(ageGroupOf(12, EIGHT_AGE_RANGES), 0);
  assert.equal(ageGroupOf(13, EIGHT_AGE_RANGES), 1);
  assert.equal(ageGroupOf(70, EIGHT_AGE_RANGES), 6);
  assert.equal(ageGroupOf(71, EIGHT_AGE_RANGES), 7);
  assert.equal(ageGroupOf(80, EIGHT_AGE_RANGES), 7);
  assert.equal(ageGroupOf(81, EIGHT_AGE_RANGES), -1);
  assert.deepEqual([...EIGHT_AGE_RANGES.labels], ["8 - 12", "13 - 18", "19 - 25", "26 - 32", "33 - 44", "45 - 55", "56 - 70", "71 - 80"]);
  const { kept, dropped } = filterByDivision([{ age: 7 }, { age: 8 }, { age: 80 }, { age: 81 }, { age: 30 }], EIGHT_AGE_RANGES);
  assert.deepEqual(kept.map((k) => k.age), [8, 80, 30]);
  assert.equal(dropped, 2);
  assert.equal(ageDivision("ranges8"), EIGHT_AGE_RANGES);
  assert.throws(() => ageDivision("decades"), /Unknown age division "decades". Known: report20, ranges8/);
});

test("custom divisions reject edges that do not increase and a last age below the last edge", () => {
  assert.throws(() => divisionFromEdges("bad", [0, 10, 10]), /increase strictly/);
  assert.throws(() => divisionFromEdges("bad", [0]), /at least two edges/);
  assert.throws(() => divisionFromEdges("bad", [0, 50], 40), /below the last edge/);
  const d = divisionFromEdges("halves", [0, 50], 99);
  assert.deepEqual([...d.labels], ["0 - 49", "50 - 99"]);
  assert.equal(ageGroupOf(100, d), -1);
  assert.throws(() => ageGroupOf(NaN), /finite/);
});

test("one-hot rows have a single 1 at the group index", () => {
  const groups = [0, 19, 7];
  const m = oneHot(groups, 20);
  assert.equal(m.length, 60);
  groups.forEach((g, row) => {
    const r = Array.from(m.subarray(row * 20, (row + 1) * 20));
    assert.equal(r.reduce((a, b) => a + b, 0), 1);
    assert.equal(r.indexOf(1), g);
  });
  assert.throws(() => oneHot([20], 20), /row 0 is outside 0\.\.19/);
  assert.throws(() => oneHot([-1], 20), /outside/);
});

test("gender: codes 0/1 and sigmoid outputs split at the 0.5 threshold", () => {
  assert.equal(decodeGender(0), "Male");
  assert.equal(decodeGender(1), "Female");
  assert.equal(decodeGender(0.5), "Female");
  assert.equal(decodeGender(0.4999), "Male");
  assert.throws(() => decodeGender(1.2), /code 0\/1 or a probability/);
  assert.throws(() => decodeGender(NaN), /probability/);
  assert.equal(predictionCaption({ gender: decodeGender(0.9), ageGroup: decodeAgeGroup(12) }), "Predicted Gender: Female  Predicted Age: 60 - 64");
});

test("labels parsed from the shipped sample's file names fall in the groups their names say", () => {
  const names = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg"));
  assert.ok(names.length > 100, `expected the sample in ${SAMPLE_DATA_DIR}`);
  for (const name of names) {
    const r = parseFileName(name);
    assert.ok(isFaceRecord(r), `${name}: ${JSON.stringify(r)}`);
    const [age, gender] = name.split("_").map(Number);
    assert.equal(r.age, age);
    assert.equal(r.gender, gender);
    assert.equal(ageGroupOf(r.age), Math.min(Math.floor(age / 5), 19));
  }
});
