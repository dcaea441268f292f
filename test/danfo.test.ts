import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { isFaceRecord, parseFileName } from "../lib/data/dataset";
import { GENDER_LABELS, ageGroupOf, decodeAgeGroup } from "../lib/data/labels";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { recordsFrame, recordsSummary } from "../lib/analysis/tables";

// Labels only: the frame needs no pixels, so the sample's names are enough.
const records = fs.readdirSync(SAMPLE_DATA_DIR).sort().map(parseFileName).filter(isFaceRecord);

test("recordsFrame: one row per face, columns as documented, values as in the records", () => {
  const df = recordsFrame(records);
  assert.deepEqual(df.shape, [records.length, 8]);
  assert.deepEqual(df.columns, ["file", "age", "ageGroup", "gender", "genderLabel", "race", "raceLabel", "datetime"]);
  assert.deepEqual(df["age"].values, records.map((r) => r.age));
  assert.deepEqual(df["ageGroup"].values, records.map((r) => decodeAgeGroup(ageGroupOf(r.age))));
  assert.deepEqual(df["genderLabel"].values, records.map((r) => GENDER_LABELS[r.gender]));
  assert.throws(() => recordsFrame([]), /at least one record/);
});

test("danfo groupby gender count and age mean agree with plain JS on the sample", () => {
  const df = recordsFrame(records);
  const byGender = df.groupby(["genderLabel"]).col(["age"]);
  const counts = byGender.count();
  const means = byGender.mean();
  for (const label of GENDER_LABELS) {
    const mine = records.filter((r) => GENDER_LABELS[r.gender] === label);
    const row = (counts["genderLabel"].values as string[]).indexOf(label);
    assert.ok(row >= 0, `no ${label} row in ${counts.columns}`);
    assert.equal(counts["age_count"].values[row], mine.length);
    const mrow = (means["genderLabel"].values as string[]).indexOf(label);
    const jsMean = mine.reduce((a, r) => a + r.age, 0) / mine.length;
    assert.ok(Math.abs((means["age_mean"].values[mrow] as number) - jsMean) < 1e-9);
  }
  const ageGroups = new Set(records.map((r) => ageGroupOf(r.age)));
  assert.equal(df.groupby(["ageGroup"]).col(["age"]).count().shape[0], ageGroups.size);
});

test("recordsSummary: describe() of age, gender and race, the mean as in plain JS", () => {
  const d = recordsSummary(records);
  assert.deepEqual(d.columns, ["age", "gender", "race"]);
  const row = (d.index as string[]).indexOf("mean");
  assert.ok(row >= 0, `no mean row in ${d.index}`);
  const jsMean = records.reduce((a, r) => a + r.age, 0) / records.length;
  assert.ok(Math.abs((d["age"].values[row] as number) - jsMean) < 1e-9);
  assert.throws(() => recordsSummary([]), /at least one record/);
});
