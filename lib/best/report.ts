/**
 * What notebook 07 shows about a best-model folder: its saved figures (held-out metrics,
 * ablation, test predictions), figure specs, the comparison with the report's models, and
 * predictions on sample faces that were held out from it.
 */
import * as fs from "fs";
import * as path from "path";
import { readJsonFile } from "../core/file-errors";
import type { FaceDataset } from "../data/dataset";
import { FigureContext, NamedFigure, PlotlyFigure, maeByBandFigure, predictedVsRealFigure } from "../analysis/figures";
import { GENDER_LABELS, REPORT_AGE_GROUPS, ageGroupOf, predictionCaption, decodeAgeGroup } from "../data/labels";
import { showFaces } from "../notebook/display";
import { predictBestFiles, BestModelFile } from "./model-folder";
import type { PredictionRow } from "../records/runs";
import { FACE_API_FIGURES } from "./card";
import { INPUT_ABLATION_FILE } from "./types";
import type { AblationRow, InputAblationRow, PreprocessingRow } from "./types";
import type { BestMetrics } from "./head-training";
import type { StackRecord } from "./stack-weights";
import { CALIBRATION_FILE, CalibrationRecord, ReliabilityBin, ageWithInterval } from "./calibration";

/** Everything a best-model folder records about itself. */
export interface BestReport {
  dir: string;
  model: BestModelFile;
  test: BestMetrics;
  testOwn?: BestMetrics;
  secondsPerImage: number;
  ablation: AblationRow[];
  preprocessing?: PreprocessingRow[];
  fusionAblation?: AblationRow[];
  /** face-api's input framings and sizes compared on fit faces (input-ablation.json), when the folder holds one. */
  inputAblation?: InputAblationRow[];
  /** Held-out test predictions of the final model. */
  predictions: PredictionRow[];
  /** The age interval and gender calibration with its validation and test figures (calibration.json), when calibrated. */
  calibration?: CalibrationRecord;
  /** A stacked folder's weights and out-of-fold figures (run.json's `stack`, written by best stack). */
  stack?: StackRecord;
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: is this a best-model folder written by npm run cli -- best train?`);
  return readJsonFile<T>(file, "Restore the folder from where it came (models/best: git checkout -- models/best) or retrain it (npm run cli -- best train --out <dir>).");
}

/** Reads a best-model folder's records (best.json, metrics.json, ablation.json, predictions.json). */
export function loadBestReport(dir: string): BestReport {
  const metrics = readJson<{ test: BestMetrics; testOwn?: BestMetrics; secondsPerImage: number }>(path.join(dir, "metrics.json"));
  const saved = readJson<{ file: string; age: number; gender: number; predAge: number; pFemale: number }[]>(path.join(dir, "predictions.json"));
  const prep = path.join(dir, "preprocessing.json");
  return {
    dir,
    model: readJson<BestModelFile>(path.join(dir, "best.json")),
    ...metrics,
    ablation: readJson<AblationRow[]>(path.join(dir, "ablation.json")),
    preprocessing: fs.existsSync(prep) ? readJson<PreprocessingRow[]>(prep) : undefined,
    fusionAblation: fs.existsSync(path.join(dir, "ablation-fusion.json")) ? readJson<AblationRow[]>(path.join(dir, "ablation-fusion.json")) : undefined,
    inputAblation: fs.existsSync(path.join(dir, INPUT_ABLATION_FILE)) ? readJson<InputAblationRow[]>(path.join(dir, INPUT_ABLATION_FILE)) : undefined,
    predictions: saved.map((p) => ({ ...p, trueGroup: ageGroupOf(p.age), predGroup: ageGroupOf(p.predAge) })),
    calibration: fs.existsSync(path.join(dir, CALIBRATION_FILE)) ? readJson<CalibrationRecord>(path.join(dir, CALIBRATION_FILE)) : undefined,
    stack: fs.existsSync(path.join(dir, "run.json")) ? readJson<{ stack?: StackRecord }>(path.join(dir, "run.json")).stack : undefined,
  };
}

/** A stacked folder's out-of-fold table: each member and the nested stack, MAE and gender per age band (training faces only). */
export function stackRows(stack: StackRecord): Record<string, string | number>[] {
  return stack.outOfFold.map((x) => ({ model: x.model, faces: stack.fittedOn.faces, MAE: Number(x.mae.toFixed(2)), gender: Number(x.genderAccuracy.toFixed(3)), ...Object.fromEntries(x.genderByBand.map((b) => [`gender ${b.band}`, Number(b.accuracy.toFixed(3))])) }));
}

/** Reliability diagram: mean predicted P(female) per bin against the share of females in it, raw and calibrated. */
export function reliabilityFigure(raw: readonly ReliabilityBin[], calibrated: readonly ReliabilityBin[] | undefined, ctx?: FigureContext): PlotlyFigure {
  const trace = (bins: readonly ReliabilityBin[], name: string) => {
    const used = bins.filter((b) => b.faces > 0);
    return { type: "scatter", mode: "lines+markers", name, x: used.map((b) => b.meanPredicted), y: used.map((b) => b.observed), text: used.map((b) => `n=${b.faces}`), marker: { size: used.map((b) => 6 + Math.sqrt(b.faces) / 2) } };
  };
  return {
    data: [
      { type: "scatter", mode: "lines", name: "perfectly calibrated", x: [0, 1], y: [0, 1], line: { dash: "dash", color: "#888" } },
      trace(raw, "P(female), raw"),
      ...(calibrated ? [trace(calibrated, "P(female), temperature-calibrated")] : []),
    ],
    layout: {
      title: { text: `Gender reliability: predicted P(female) vs share female${ctx?.split ? ` (${ctx.split}${ctx.images ? `, ${ctx.images} faces` : ""}, 10 bins)` : ""}` },
      xaxis: { title: { text: "mean predicted P(female) in the bin" }, range: [0, 1] },
      yaxis: { title: { text: "observed share female" }, range: [0, 1] },
    },
  };
}

/** Share of real ages inside the 80% interval per decade, with the target line. */
export function intervalCoverageFigure(c: CalibrationRecord, ctx?: FigureContext): PlotlyFigure {
  const bands = c.test.byDecade;
  return {
    data: [
      { type: "bar", name: "real age inside the interval", x: bands.map((b) => b.band), y: bands.map((b) => b.coverage), text: bands.map((b) => `n=${b.faces}, width ${b.meanWidth.toFixed(1)} y`), textposition: "outside" },
      { type: "scatter", mode: "lines", name: `target ${Math.round(c.age.level * 100)}%`, x: bands.map((b) => b.band), y: bands.map(() => c.age.level), line: { dash: "dash" } },
    ],
    layout: {
      title: { text: `Age interval coverage by decade (${ctx?.split ?? "test"}${ctx?.images ? `, ${ctx.images} faces` : ""}; overall ${(c.test.coverage.coverage * 100).toFixed(1)}%)` },
      xaxis: { title: { text: "real age (years)" }, type: "category" },
      yaxis: { title: { text: "share inside" }, range: [0, 1.1], tickformat: ".0%" },
    },
  };
}

/** The calibration's summary rows (validation, where it was fitted, and the test split). */
export function calibrationRows(c: CalibrationRecord): { faces: string; inside: string; below: string; above: string; "mean width (years)": string; "gender ECE raw": string; "gender ECE calibrated": string }[] {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return [
    { faces: `${c.source.folds ? "training, out of fold" : "validation"}, ${c.validation.coverage.faces} (fitted on)`, inside: pct(c.validation.coverage.coverage), below: pct(c.validation.coverage.below), above: pct(c.validation.coverage.above), "mean width (years)": c.validation.coverage.meanWidth.toFixed(1), "gender ECE raw": pct(c.gender.eceBefore), "gender ECE calibrated": pct(c.gender.eceAfter) },
    { faces: `test, ${c.test.faces}`, inside: pct(c.test.coverage.coverage), below: pct(c.test.coverage.below), above: pct(c.test.coverage.above), "mean width (years)": c.test.coverage.meanWidth.toFixed(1), "gender ECE raw": pct(c.test.eceBefore), "gender ECE calibrated": pct(c.test.eceAfter) },
  ];
}

/** Gender accuracy per real-age band, this model next to face-api.js's figures. */
export function genderByBandFigure(m: BestMetrics, ctx?: FigureContext): PlotlyFigure {
  const bands = m.genderByBand.filter((b) => b.band !== "13+");
  return {
    data: [
      { type: "bar", name: "this model (test split)", x: bands.map((b) => b.band), y: bands.map((b) => b.accuracy), text: bands.map((b) => `n=${b.images}`), textposition: "outside" },
      { type: "bar", name: "face-api.js (trained on UTKFace)", x: bands.map((b) => b.band), y: bands.map((b) => FACE_API_FIGURES.bands[b.band] ?? null) },
    ],
    layout: {
      title: { text: `Gender accuracy by real-age band${ctx?.split ? ` (${ctx.split}${ctx.images ? `, ${ctx.images} faces` : ""})` : ""}` },
      barmode: "group",
      xaxis: { title: { text: "real age band (years)" }, type: "category" },
      yaxis: { title: { text: "accuracy" }, range: [0, 1.05], tickformat: ".0%" },
    },
  };
}

/** The model card's figures: predicted vs real age, MAE by decade, gender by age band. */
export function bestFigures(r: BestReport): NamedFigure[] {
  const ctx: FigureContext = { split: "test", images: r.test.images, profile: "full" };
  const c = r.calibration;
  return [
    { name: "07-best-predicted-vs-real", figure: predictedVsRealFigure(r.predictions, ctx) },
    { name: "07-best-mae-by-decade", figure: maeByBandFigure(r.test.maeByBand ?? [], ctx) },
    { name: "07-best-gender-by-band", figure: genderByBandFigure(r.test, ctx) },
    ...(c
      ? [
          { name: "07-best-interval-coverage", figure: intervalCoverageFigure(c, { ...ctx, images: c.test.faces }) },
          { name: "07-best-gender-reliability", figure: reliabilityFigure(c.test.reliability, c.test.reliabilityCalibrated, { ...ctx, images: c.test.faces }) },
        ]
      : []),
  ];
}

/**
 * The report's models on the same held-out split (1,764 faces, seed 42, full profile), as
 * measured in this repository and recorded in README.md's results table.
 */
export const REPORT_MODELS_HELD_OUT: readonly { model: string; ageGroupAccuracy?: number; within1?: number; mae?: number; genderAccuracy?: number }[] = [
  { model: "cnn-age-sigmoid (report)", ageGroupAccuracy: 0.374, within1: 0.629, mae: 8.5 },
  { model: "cnn-age-relu (report)", ageGroupAccuracy: 0.215, within1: 0.567, mae: 9.2 },
  { model: "cnn-gender (report)", genderAccuracy: 0.814 },
  { model: "cnn-multi", ageGroupAccuracy: 0.399, within1: 0.668, mae: 7.4, genderAccuracy: 0.813 },
];

/** Rows comparing this model with the report's models and face-api.js (all on held-out faces). */
export function bestComparisonRows(r: BestReport): { model: string; "20-group": string; "±1 group": string; MAE: string; gender: string }[] {
  const pct = (v?: number) => (v === undefined ? "" : `${(v * 100).toFixed(1)}%`);
  const row = (model: string, g?: number, w?: number, mae?: number, gender?: number) => ({ model, "20-group": pct(g), "±1 group": pct(w), MAE: mae === undefined ? "" : mae.toFixed(2), gender: pct(gender) });
  return [
    row(`best (${r.model.config.name}${r.model.stack ? `, stacked with ${r.model.ensemble?.map((e) => e.config.name).join(", ")}` : ""})`, r.test.ageAccuracy, r.test.ageAccuracyWithin1, r.test.mae, r.test.genderAccuracy),
    ...(r.testOwn ? [row(r.testOwn.model, r.testOwn.ageAccuracy, r.testOwn.ageAccuracyWithin1, r.testOwn.mae, r.testOwn.genderAccuracy)] : []),
    ...REPORT_MODELS_HELD_OUT.map((m) => row(m.model, m.ageGroupAccuracy, m.within1, m.mae, m.genderAccuracy)),
    row("face-api.js ageGenderNet (trained on UTKFace; not held out)", FACE_API_FIGURES.group20, undefined, FACE_API_FIGURES.mae, FACE_API_FIGURES.gender),
    row("majority baseline", r.test.baseline?.ageAccuracy, r.test.baseline?.ageAccuracyWithin1, r.test.baseline?.mae, r.test.baseline?.genderAccuracy),
  ];
}

/**
 * Predicts faces of `faces` (e.g. data/sample) that are in the model's held-out test split, with
 * the model itself (decode + backbones + heads), and shows them with their photos. Faces the
 * model trained on are left out, so what is shown is honest. Returns the predictions.
 */
export async function showBestSamplePredictions(faces: FaceDataset, r: BestReport, options: { count?: number; columns?: number } = {}): Promise<{ file: string; age: number; predAge: number; ageLow?: number; ageHigh?: number; gender: string; predGender: string; pFemale: number }[]> {
  const heldOut = new Set(r.predictions.map((p) => p.file));
  const indices = faces.records.map((rec, i) => (heldOut.has(rec.file) ? i : -1)).filter((i) => i >= 0).slice(0, options.count ?? 10);
  if (indices.length === 0) throw new Error(`None of the ${faces.records.length} faces of ${faces.dir} is in the model's held-out test split.`);
  const files = indices.map((i) => path.join(faces.dir, faces.records[i].file));
  const preds = await predictBestFiles(r.dir, files);
  const rows = preds.map((p, k) => {
    const rec = faces.records[indices[k]];
    const round = (v?: number) => (v === undefined ? undefined : Number(v.toFixed(1)));
    return { file: rec.file, age: rec.age, predAge: Number(p.age!.toFixed(1)), ageLow: round(p.ageLow), ageHigh: round(p.ageHigh), gender: GENDER_LABELS[rec.gender], predGender: p.gender!, pFemale: Number(p.pFemale!.toFixed(3)) };
  });
  const captions = rows.map((x) =>
    x.ageLow === undefined
      ? `${predictionCaption({ gender: x.predGender, age: x.predAge })} (${decodeAgeGroup(ageGroupOf(x.predAge), REPORT_AGE_GROUPS)})\nReal: ${x.gender}, ${x.age}`
      : `${x.predGender} (P(female) ${x.pFemale.toFixed(2)}), ${ageWithInterval(x.predAge, x.ageLow, x.ageHigh)}\nReal: ${x.gender}, ${x.age}`,
  );
  await showFaces(faces, indices, { captions, columns: options.columns ?? 5, width: 150, title: "Held-out sample faces predicted by models/best" });
  return rows;
}
