/**
 * Label division: the report's twenty five-year age groups, the seed write-up's eight
 * ranges, custom edges, one-hot encoding and decoding to the report's labels.
 */
import { AGE_GROUP_COUNT, AGE_GROUP_WIDTH } from "../core/paths";

/** A division of ages into ordered, contiguous groups. */
export interface AgeDivision {
  /** Short identifier used in configs and file names. */
  readonly name: string;
  /** Lower bound (inclusive) of each group, ascending. */
  readonly lows: readonly number[];
  /** Upper bound (inclusive) of each group; Infinity for an open last group. */
  readonly highs: readonly number[];
  /** Human labels, e.g. "60 - 64" and "95+". */
  readonly labels: readonly string[];
}

/** Number of groups in a division. */
export function groupCount(division: AgeDivision): number {
  return division.lows.length;
}

/**
 * Builds a division from group edges. `edges[i]` is the first age of group i; the last group
 * ends at `last` (inclusive) or is open ("95+") when `last` is omitted.
 */
export function divisionFromEdges(name: string, edges: readonly number[], last?: number): AgeDivision {
  if (edges.length < 2) throw new Error(`Age division "${name}" needs at least two edges, got [${edges.join(", ")}].`);
  for (let i = 1; i < edges.length; i++) {
    if (!(edges[i] > edges[i - 1])) {
      throw new Error(`Age division "${name}": edges must increase strictly, got [${edges.join(", ")}].`);
    }
  }
  if (last !== undefined && last < edges[edges.length - 1]) {
    throw new Error(`Age division "${name}": last age ${last} is below the last edge ${edges[edges.length - 1]}.`);
  }
  const lows = [...edges];
  const highs = edges.map((e, i) => (i + 1 < edges.length ? edges[i + 1] - 1 : last ?? Infinity));
  const labels = lows.map((lo, i) => (highs[i] === Infinity ? `${lo}+` : `${lo} - ${highs[i]}`));
  return { name, lows, highs, labels };
}

/** The report's division: 0-4, 5-9, ..., 90-94, 95+ (20 groups). */
export const REPORT_AGE_GROUPS: AgeDivision = divisionFromEdges(
  "report20",
  Array.from({ length: AGE_GROUP_COUNT }, (_, i) => i * AGE_GROUP_WIDTH),
);

/**
 * The seed write-up's eight ranges: 8-12, 13-18, 19-25, 26-32, 33-44, 45-55, 56-70, 71-80.
 * Ages outside 8..80 belong to no group and are dropped (and counted) by `filterByDivision`.
 */
export const EIGHT_AGE_RANGES: AgeDivision = divisionFromEdges("ranges8", [8, 13, 19, 26, 33, 45, 56, 71], 80);

/** Known divisions by name. */
export const AGE_DIVISIONS: Readonly<Record<string, AgeDivision>> = {
  report20: REPORT_AGE_GROUPS,
  ranges8: EIGHT_AGE_RANGES,
};

/** Looks a division up by name; an unknown name lists the known ones. */
export function ageDivision(name: string): AgeDivision {
  const d = AGE_DIVISIONS[name];
  if (!d) throw new Error(`Unknown age division "${name}". Known: ${Object.keys(AGE_DIVISIONS).join(", ")}.`);
  return d;
}

/** Index of the group holding `age`, or -1 when the division does not cover it. */
export function ageGroupOf(age: number, division: AgeDivision = REPORT_AGE_GROUPS): number {
  if (!Number.isFinite(age)) throw new Error(`Age must be a finite number, got ${age}.`);
  const a = Math.floor(age);
  for (let i = 0; i < division.lows.length; i++) {
    if (a >= division.lows[i] && a <= division.highs[i]) return i;
  }
  return -1;
}

/** Label of a group index, e.g. decodeAgeGroup(12) === "60 - 64", decodeAgeGroup(19) === "95+". */
export function decodeAgeGroup(index: number, division: AgeDivision = REPORT_AGE_GROUPS): string {
  if (!Number.isInteger(index) || index < 0 || index >= division.labels.length) {
    throw new Error(`Age group index ${index} is outside 0..${division.labels.length - 1} of division "${division.name}".`);
  }
  return division.labels[index];
}

/** Index of the largest value: the predicted group of a probability (or sigmoid score) vector. */
export function argmax(values: ArrayLike<number>): number {
  if (values.length === 0) throw new Error("argmax of an empty vector.");
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Label of the most likely group in a probability vector (one value per group). */
export function decodeAgeScores(scores: ArrayLike<number>, division: AgeDivision = REPORT_AGE_GROUPS): string {
  if (scores.length !== groupCount(division)) {
    throw new Error(`Expected ${groupCount(division)} scores for division "${division.name}", got ${scores.length}.`);
  }
  return decodeAgeGroup(argmax(scores), division);
}

/** A representative age for a group: its midpoint (open last group: its low + half a width). */
export function groupMidAge(index: number, division: AgeDivision = REPORT_AGE_GROUPS): number {
  const lo = division.lows[index];
  const hi = division.highs[index];
  return hi === Infinity ? lo + AGE_GROUP_WIDTH / 2 : (lo + hi) / 2;
}

/** One-hot rows for group indices, as a flat Float32Array of n * groups values. */
export function oneHot(indices: readonly number[], groups: number): Float32Array {
  const out = new Float32Array(indices.length * groups);
  indices.forEach((g, i) => {
    if (!Number.isInteger(g) || g < 0 || g >= groups) throw new Error(`Group index ${g} at row ${i} is outside 0..${groups - 1}.`);
    out[i * groups + g] = 1;
  });
  return out;
}

/** Keeps the items whose age the division covers; reports how many were dropped. */
export function filterByDivision<T extends { age: number }>(
  items: readonly T[],
  division: AgeDivision,
): { kept: T[]; dropped: number } {
  const kept = items.filter((it) => ageGroupOf(it.age, division) >= 0);
  return { kept, dropped: items.length - kept.length };
}

/** The report's gender coding: 0 = male, 1 = female. */
export type Gender = 0 | 1;
/** Gender labels by code. */
export const GENDER_LABELS: readonly string[] = ["Male", "Female"];
/** The report's decision threshold on the sigmoid output. */
export const GENDER_THRESHOLD = 0.5;

/** "Male" or "Female" for a code, or for a sigmoid probability of female (threshold 0.5). */
export function decodeGender(pFemaleOrCode: number): string {
  if (!Number.isFinite(pFemaleOrCode) || pFemaleOrCode < 0 || pFemaleOrCode > 1) {
    throw new Error(`Gender must be a code 0/1 or a probability in [0,1], got ${pFemaleOrCode}.`);
  }
  return GENDER_LABELS[pFemaleOrCode >= GENDER_THRESHOLD ? 1 : 0];
}

/** Age scaling of the ReLU regression model: the output is age / AGE_SCALE. */
export const AGE_SCALE = 100;

/** The report's sample-prediction caption: "Predicted Gender: Female  Predicted Age: 60 - 64". */
export function predictionCaption(p: { gender?: string; ageGroup?: string; age?: number }): string {
  const parts: string[] = [];
  if (p.gender) parts.push(`Predicted Gender: ${p.gender}`);
  if (p.ageGroup) parts.push(`Predicted Age: ${p.ageGroup}`);
  else if (p.age !== undefined) parts.push(`Predicted Age: ${Math.round(p.age)}`);
  return parts.join("  ");
}
