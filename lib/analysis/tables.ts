/**
 * Summary tables with danfo.js. danfojs-node takes over a second to load, so it is required
 * inside `recordsFrame`, never when lib/ is imported.
 */
import type { DataFrame } from "danfojs-node";
import type { FaceRecord } from "../data/dataset";
import { RACE_LABELS } from "./figures";
import { GENDER_LABELS, REPORT_AGE_GROUPS, ageGroupOf, decodeAgeGroup } from "../data/labels";

/**
 * A danfo.js DataFrame with one row per face: file, age, ageGroup ("60 - 64"), gender (0 male,
 * 1 female), genderLabel, race (code), raceLabel, datetime. Notebooks group and describe it.
 */
export function recordsFrame(records: readonly FaceRecord[]): DataFrame {
  if (records.length === 0) throw new Error("recordsFrame needs at least one record; the loaded dataset is empty.");
  const dfd = require("danfojs-node") as typeof import("danfojs-node");
  return new dfd.DataFrame({
    file: records.map((r) => r.file),
    age: records.map((r) => r.age),
    ageGroup: records.map((r) => decodeAgeGroup(ageGroupOf(r.age), REPORT_AGE_GROUPS)),
    gender: records.map((r) => r.gender),
    genderLabel: records.map((r) => GENDER_LABELS[r.gender]),
    race: records.map((r) => r.race),
    raceLabel: records.map((r) => RACE_LABELS[r.race] ?? String(r.race)),
    datetime: records.map((r) => r.datetime),
  });
}

/**
 * danfo.js `describe()` of the faces' numeric labels (age, gender with 1 = female, race code):
 * count, mean, std, min, median, max per column, notebook 01's summary table.
 */
export function recordsSummary(records: readonly FaceRecord[]): DataFrame {
  if (records.length === 0) throw new Error("recordsSummary needs at least one record; the loaded dataset is empty.");
  const dfd = require("danfojs-node") as typeof import("danfojs-node");
  return new dfd.DataFrame(records.map((r) => ({ age: r.age, gender: r.gender, race: r.race }))).describe() as DataFrame;
}
