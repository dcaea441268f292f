/**
 * How sure the best model is (issue 19): an age interval per face and a calibrated P(female).
 *
 * Age: the model's age distribution gives its 10th and 90th percentiles; on their own those are
 * too narrow (the DLDL targets have a 2-year spread, and the fine-tuned network is confident),
 * so each side is widened by a scale fitted on validation faces, split-conformal style:
 *
 *   low  = age - lowerScale * (age - q10)     high = age + upperScale * (q90 - age)
 *
 * where `age` is the point estimate (the distribution's expected value), so the interval always
 * holds it. lowerScale is the smallest scale that leaves at most 10% of the validation faces'
 * real ages below `low` (with the conformal (n + 1) correction), upperScale likewise above
 * `high`: 80% inside on faces like the validation faces.
 *
 * Gender: one temperature on the logit of P(female), fitted by likelihood on validation faces;
 * it changes how sure P(female) says the model is, never which gender it predicts.
 *
 * Both are fitted on predictions of a model that never trained on those validation faces (the
 * validation-only run of the chosen step), then stored in best.json and applied to the final model.
 */
import { AGE_BINS, ageQuantiles, expectedAges } from "./heads";

/** The percentiles the interval starts from and the share of real ages it is calibrated to hold. */
export const AGE_INTERVAL = { lowQuantile: 0.1, highQuantile: 0.9, level: 0.8 } as const;

/** The age-interval calibration stored in best.json (`calibration.age`). */
export interface AgeIntervalCalibration {
  /** Share of real ages the interval is fitted to hold (0.8). */
  level: number;
  /** Percentiles of the predicted distribution it widens (0.1 and 0.9). */
  lowQuantile: number;
  highQuantile: number;
  /** Scales of (age - q10) and (q90 - age). */
  lowerScale: number;
  upperScale: number;
  /** The faces it was fitted on, in words and counts. */
  fittedOn: { split: string; faces: number; model: string };
  /** On those faces: share inside the raw percentiles, and inside the calibrated interval. */
  rawCoverage: number;
  coverage: number;
}

/** The gender calibration stored in best.json (`calibration.gender`). */
export interface GenderCalibration {
  /** P(female) = sigmoid(logit(p) / temperature). */
  temperature: number;
  fittedOn: { split: string; faces: number; model: string };
  /** Expected calibration error (10 bins) on those faces before and after. */
  eceBefore: number;
  eceAfter: number;
}

/** best.json's `calibration` (absent in models written before issue 19). */
export interface BestCalibration {
  age?: AgeIntervalCalibration;
  gender?: GenderCalibration;
}

/** What one face's interval is computed from. */
export interface IntervalInputs {
  /** Point estimate (expected age). */
  predAge: number;
  /** The distribution's lowQuantile and highQuantile percentiles. */
  q10: number;
  q90: number;
}

/** Point estimates and the interval's percentiles of head outputs. */
export function intervalInputs(probabilities: Float32Array, n: number, c: Pick<AgeIntervalCalibration, "lowQuantile" | "highQuantile"> = AGE_INTERVAL): IntervalInputs[] {
  const mean = expectedAges(probabilities, n);
  const lo = ageQuantiles(probabilities, n, c.lowQuantile);
  const hi = ageQuantiles(probabilities, n, c.highQuantile);
  return Array.from(mean, (m, i) => ({ predAge: m, q10: lo[i], q90: hi[i] }));
}

/** The calibrated interval of one face: [low, high] in years, low <= predAge <= high, within 0..AGE_BINS-1. */
export function ageInterval(x: IntervalInputs, c: Pick<AgeIntervalCalibration, "lowerScale" | "upperScale">): { low: number; high: number } {
  const down = Math.max(0, x.predAge - x.q10);
  const up = Math.max(0, x.q90 - x.predAge);
  return { low: Math.max(0, Math.min(x.predAge, x.predAge - c.lowerScale * down)), high: Math.min(AGE_BINS - 1, Math.max(x.predAge, x.predAge + c.upperScale * up)) };
}

/** The conformal quantile: the ceil((n + 1) * level)-th smallest score (Infinity when n is too small). */
function conformalQuantile(scores: number[], level: number): number {
  const sorted = [...scores].sort((a, b) => a - b);
  const k = Math.ceil((sorted.length + 1) * level);
  return k > sorted.length ? Infinity : sorted[k - 1];
}

/**
 * Fits the two scales on faces with known ages (validation faces of a model that did not train
 * on them): each side misses at most (1 - level) / 2 of them.
 */
export function fitAgeInterval(rows: readonly (IntervalInputs & { age: number })[], fittedOn: { split: string; model: string }, level: number = AGE_INTERVAL.level): AgeIntervalCalibration {
  if (rows.length < 20) throw new Error(`An age interval needs at least 20 faces to fit on, got ${rows.length}.`);
  const side = 1 - (1 - level) / 2;
  const eps = 0.05;
  // A face's score: how many times its (age - q10) the real age lies below the point estimate (0 when above it).
  const below = rows.map((r) => (r.age < r.predAge ? (r.predAge - r.age) / Math.max(eps, r.predAge - r.q10) : 0));
  const above = rows.map((r) => (r.age > r.predAge ? (r.age - r.predAge) / Math.max(eps, r.q90 - r.predAge) : 0));
  const lowerScale = conformalQuantile(below, side);
  const upperScale = conformalQuantile(above, side);
  const cal: AgeIntervalCalibration = { level, lowQuantile: AGE_INTERVAL.lowQuantile, highQuantile: AGE_INTERVAL.highQuantile, lowerScale, upperScale, fittedOn: { ...fittedOn, faces: rows.length }, rawCoverage: 0, coverage: 0 };
  cal.rawCoverage = intervalCoverage(rows, { lowerScale: 1, upperScale: 1 }).coverage;
  cal.coverage = intervalCoverage(rows, cal).coverage;
  return cal;
}

/** Share of real ages inside the intervals, and the intervals' mean width. */
export function intervalCoverage(rows: readonly (IntervalInputs & { age: number })[], c: Pick<AgeIntervalCalibration, "lowerScale" | "upperScale">): { faces: number; coverage: number; below: number; above: number; meanWidth: number } {
  let inside = 0;
  let below = 0;
  let above = 0;
  let width = 0;
  for (const r of rows) {
    const { low, high } = ageInterval(r, c);
    if (r.age < low) below++;
    else if (r.age > high) above++;
    else inside++;
    width += high - low;
  }
  const n = rows.length || NaN;
  return { faces: rows.length, coverage: inside / n, below: below / n, above: above / n, meanWidth: width / n };
}

/** Coverage per band of the real age (the model card's decades). */
export function intervalCoverageByBand(rows: readonly (IntervalInputs & { age: number })[], c: Pick<AgeIntervalCalibration, "lowerScale" | "upperScale">, bands: readonly { label: string; lo: number; hi: number }[] = DECADES) {
  return bands.map((b) => ({ band: b.label, ...intervalCoverage(rows.filter((r) => r.age >= b.lo && r.age <= b.hi), c) }));
}

/** Decades of the real age, as in the model card's MAE table. */
export const DECADES: readonly { label: string; lo: number; hi: number }[] = [
  ...Array.from({ length: 8 }, (_, d) => ({ label: `${d * 10} - ${d * 10 + 9}`, lo: d * 10, hi: d * 10 + 9 })),
  { label: "80+", lo: 80, hi: Infinity },
];

const clampP = (p: number) => Math.min(1 - 1e-6, Math.max(1e-6, p));
const logit = (p: number) => Math.log(clampP(p) / (1 - clampP(p)));

/** P(female) after a temperature (1 leaves it as it is). */
export function calibratedPFemale(p: number, temperature: number): number {
  if (temperature === 1) return p;
  return 1 / (1 + Math.exp(-logit(p) / temperature));
}

/** One bin of a reliability diagram: faces whose P(female) fell in [lo, hi). */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  faces: number;
  /** Mean predicted P(female) of the bin's faces. */
  meanPredicted: number;
  /** Share of them that are female. */
  observed: number;
}

/** Reliability diagram bins (equal width) of P(female) against the real genders (1 = female). */
export function reliabilityBins(pFemale: ArrayLike<number>, genders: ArrayLike<number>, bins = 10): ReliabilityBin[] {
  const out: ReliabilityBin[] = Array.from({ length: bins }, (_, b) => ({ lo: b / bins, hi: (b + 1) / bins, faces: 0, meanPredicted: 0, observed: 0 }));
  for (let i = 0; i < pFemale.length; i++) {
    const b = out[Math.min(bins - 1, Math.floor(pFemale[i] * bins))];
    b.faces++;
    b.meanPredicted += pFemale[i];
    b.observed += genders[i];
  }
  for (const b of out) {
    b.meanPredicted = b.faces ? b.meanPredicted / b.faces : NaN;
    b.observed = b.faces ? b.observed / b.faces : NaN;
  }
  return out;
}

/** Expected calibration error: the face-weighted mean |observed - predicted| over the bins. */
export function expectedCalibrationError(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((s, b) => s + b.faces, 0);
  return bins.reduce((s, b) => s + (b.faces ? (b.faces / n) * Math.abs(b.observed - b.meanPredicted) : 0), 0);
}

/** Mean negative log-likelihood of genders under P(female) at a temperature. */
function genderNll(pFemale: ArrayLike<number>, genders: ArrayLike<number>, t: number): number {
  let s = 0;
  for (let i = 0; i < pFemale.length; i++) {
    const p = clampP(calibratedPFemale(pFemale[i], t));
    s -= genders[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / pFemale.length;
}

/** Fits the temperature (0.25..8, golden-section search on the likelihood) on faces of known gender. */
export function fitGenderTemperature(pFemale: ArrayLike<number>, genders: ArrayLike<number>, fittedOn: { split: string; model: string }): GenderCalibration {
  let a = Math.log(0.25);
  let b = Math.log(8);
  const f = (x: number) => genderNll(pFemale, genders, Math.exp(x));
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  for (let i = 0; i < 60; i++) {
    if (f(c) < f(d)) b = d;
    else a = c;
    c = b - g * (b - a);
    d = a + g * (b - a);
  }
  const temperature = Number(Math.exp((a + b) / 2).toFixed(4));
  const after = Array.from(pFemale, (p) => calibratedPFemale(p, temperature));
  return { temperature, fittedOn: { ...fittedOn, faces: pFemale.length }, eceBefore: expectedCalibrationError(reliabilityBins(pFemale, genders)), eceAfter: expectedCalibrationError(reliabilityBins(after, genders)) };
}

/** The label of a face's age with its interval, e.g. "34 y, 29-40". */
export function ageWithInterval(age: number, low?: number, high?: number): string {
  const a = `${Math.round(age)} y`;
  return low === undefined || high === undefined ? a : `${a}, ${Math.round(low)}-${Math.round(high)}`;
}

/** The file of a validation-only run holding its chosen step's validation predictions. */
export const VALIDATION_PREDICTIONS_FILE = "validation-predictions.json";

/** One validation face's prediction with what its age interval is computed from. */
export interface ValidationPrediction extends IntervalInputs {
  file: string;
  age: number;
  gender: number;
  pFemale: number;
}

/** The file of a calibrated folder holding the calibration's validation and test figures. */
export const CALIBRATION_FILE = "calibration.json";

/** Coverage figures of a set of faces. */
export type Coverage = ReturnType<typeof intervalCoverage>;

/** calibration.json: what was fitted, on which faces, and how it does on the test split. */
export interface CalibrationRecord {
  age: AgeIntervalCalibration;
  gender: GenderCalibration;
  /** The run the calibration was fitted on (its folder, model name, fit faces; folds when cross-fitted). */
  source: { run: string; model: string; fitFaces: number; folds?: number; foldMae?: number[] };
  validation: { coverage: Coverage; byDecade: ({ band: string } & Coverage)[]; reliability: ReliabilityBin[]; reliabilityCalibrated: ReliabilityBin[] };
  /** The age and gender figures of the predictions it was fitted on (absent in older files). */
  fitted?: { faces: number; mae: number; genderAccuracy: number; genderByBand: { band: string; images: number; accuracy: number }[] };
  /** Earlier looks at the test split with the same final model, calibrated on other faces (oldest first). */
  earlierLooks?: { fittedOn: AgeIntervalCalibration["fittedOn"]; testCoverage: number; testMeanWidth: number }[];
  test: {
    faces: number;
    /** MAE of the re-run predictions (decode + backbones + stored heads), beside metrics.json's. */
    mae: number;
    coverage: Coverage;
    byDecade: ({ band: string } & Coverage)[];
    reliability: ReliabilityBin[];
    reliabilityCalibrated: ReliabilityBin[];
    eceBefore: number;
    eceAfter: number;
  };
}

