/**
 * `best calibrate`: fits the age interval and the gender temperature of a best-model folder on
 * predictions of faces the predicting model never trained on: the chosen step's validation
 * predictions (validation-predictions.json, written by `best train`), or with `outOfFold` the
 * out-of-fold predictions of every training face (out-of-fold-predictions.json, written by
 * `best cross-fit`). It stores them in the folder's best.json, then looks at the held-out test
 * split: interval coverage (overall, per decade) and the reliability of P(female), written to
 * calibration.json and the model card, with any earlier look at the same model kept beside it.
 */
import * as fs from "fs";
import * as path from "path";
import { initBackend } from "../engine/backend";
import { readJsonFile } from "../core/file-errors";
import { writeJsonAtomic } from "../core/files";
import { BEST_ENSEMBLE_FORMAT, BEST_MODEL_FILE, BEST_MODEL_FORMAT, BEST_STACK_FORMAT, BestModelFile, disposeBestModel, loadBestModel, predictBestFiles } from "./model-folder";
import { BestSplit, loadBestSplit } from "./faces";
import { bestMetrics, genderAccuracyByBand } from "./head-training";
import { GENDER_THRESHOLD, REPORT_AGE_GROUPS, ageGroupOf } from "../data/labels";
import { OUT_OF_FOLD_FILE, OutOfFoldFile, folderRecipe, recipeKey } from "./cross-fit";
import { CALIBRATION_FILE, CalibrationRecord, Coverage, VALIDATION_PREDICTIONS_FILE, ValidationPrediction, calibratedPFemale, expectedCalibrationError, fitAgeInterval, fitGenderTemperature, intervalCoverage, intervalCoverageByBand, reliabilityBins } from "./calibration";

/** Options of `calibrateBest`. */
export interface CalibrateOptions {
  /** The model folder to calibrate (models/best). */
  modelDir: string;
  /** The folder holding validation-predictions.json (a best train run's), or with `outOfFold` out-of-fold-predictions.json (best cross-fit's). */
  from: string;
  /** Fit on the out-of-fold predictions of every training face instead of the validation faces. */
  outOfFold?: boolean;
  dir?: string;
  log?: (line: string) => void;
}

/** Fits the calibration on validation, stores it in best.json, scores the test split once. */
export async function calibrateBest(o: CalibrateOptions): Promise<CalibrationRecord> {
  const log = o.log ?? console.log;
  await initBackend();
  const split = await loadBestSplit({ dir: o.dir });
  const testFiles = split.test.map((i) => split.records[i].file);
  const { rows, fittedOn, source } = o.outOfFold ? outOfFoldSource(o.from, split, o.modelDir) : validationSource(o.from, split);
  if (!o.outOfFold && fs.existsSync(path.join(o.from, OUT_OF_FOLD_FILE))) log(`[calibrate] ${path.join(o.from, OUT_OF_FOLD_FILE)} is there too: --out-of-fold fits on it (every training face) instead of the validation faces`);
  const age = fitAgeInterval(rows, fittedOn);
  const gender = fitGenderTemperature(rows.map((r) => r.pFemale), rows.map((r) => r.gender), fittedOn);
  log(`[calibrate] ${rows.length} ${fittedOn.split} faces: 10-90th percentiles held ${(age.rawCoverage * 100).toFixed(1)}% of real ages; scales ${age.lowerScale.toFixed(3)} (below) and ${age.upperScale.toFixed(3)} (above) hold ${(age.coverage * 100).toFixed(1)}%; gender temperature ${gender.temperature} (ECE ${(gender.eceBefore * 100).toFixed(1)}% -> ${(gender.eceAfter * 100).toFixed(1)}%)`);

  const bestFile = path.join(o.modelDir, BEST_MODEL_FILE);
  const file = readJsonFile<BestModelFile>(bestFile, "Is it a best-model folder (npm run cli -- best train)?");
  writeJsonAtomic(bestFile, { ...file, format: file.stack ? BEST_STACK_FORMAT : file.ensemble ? BEST_ENSEMBLE_FORMAT : BEST_MODEL_FORMAT, calibration: { age, gender } });

  // The one look at the test split, through the whole predictor as a user runs it.
  const model = await loadBestModel(o.modelDir);
  let preds: Awaited<ReturnType<typeof predictBestFiles>>;
  try {
    preds = await predictBestFiles(model, split.test.map((i) => split.files[i]), 32, (done, total) => {
      if (done % 320 === 0 || done === total) log(`[calibrate] test split: ${done}/${total} faces predicted`);
    });
  } finally {
    disposeBestModel(model);
  }
  const missing = preds.filter((p) => p.skipped || p.ageLow === undefined);
  if (missing.length) throw new Error(`${missing.length} test faces got no interval (first: ${missing[0].file}: ${missing[0].skipped ?? "no calibration"}).`);
  const test = split.test.map((i, k) => ({ file: testFiles[k], age: split.records[i].age, gender: split.records[i].gender as number, predAge: preds[k].age!, low: preds[k].ageLow!, high: preds[k].ageHigh!, pFemale: preds[k].pFemale! }));
  // Coverage straight from the bounds a user gets.
  const inside = (r: { age: number; low: number; high: number }) => r.age >= r.low && r.age <= r.high;
  const cov = (xs: typeof test): Coverage => ({
    faces: xs.length,
    coverage: xs.filter(inside).length / xs.length,
    below: xs.filter((r) => r.age < r.low).length / xs.length,
    above: xs.filter((r) => r.age > r.high).length / xs.length,
    meanWidth: xs.reduce((s, r) => s + r.high - r.low, 0) / xs.length,
  });
  const byDecade = intervalCoverageByBand([], age).map((b, d) => {
    const lo = d * 10;
    const xs = test.filter((r) => (d === 8 ? r.age >= 80 : r.age >= lo && r.age <= lo + 9));
    return { ...cov(xs), band: b.band };
  });
  const rawP = test.map((r) => uncalibrate(r.pFemale, gender.temperature));
  const genders = test.map((r) => r.gender);
  const record: CalibrationRecord = {
    age,
    gender,
    source: { run: path.relative(process.cwd(), path.resolve(o.from)).split(path.sep).join("/"), ...source },
    fitted: {
      faces: rows.length,
      mae: rows.reduce((sum, r) => sum + Math.abs(r.predAge - r.age), 0) / rows.length,
      genderAccuracy: rows.filter((r) => (r.pFemale >= GENDER_THRESHOLD ? 1 : 0) === r.gender).length / rows.length,
      genderByBand: genderAccuracyByBand(rows.map((r) => ({ ...r, trueGroup: -1 }))),
    },
    validation: {
      coverage: intervalCoverage(rows, age),
      byDecade: intervalCoverageByBand(rows, age),
      reliability: reliabilityBins(rows.map((r) => r.pFemale), rows.map((r) => r.gender)),
      reliabilityCalibrated: reliabilityBins(rows.map((r) => calibratedPFemale(r.pFemale, gender.temperature)), rows.map((r) => r.gender)),
    },
    test: {
      faces: test.length,
      mae: test.reduce((s, r) => s + Math.abs(r.predAge - r.age), 0) / test.length,
      coverage: cov(test),
      byDecade,
      reliability: reliabilityBins(rawP, genders),
      reliabilityCalibrated: reliabilityBins(test.map((r) => r.pFemale), genders),
      eceBefore: 0,
      eceAfter: 0,
    },
  };
  record.test.eceBefore = expectedCalibrationError(record.test.reliability);
  record.test.eceAfter = expectedCalibrationError(record.test.reliabilityCalibrated);
  const earlier = earlierLooks(path.join(o.modelDir, CALIBRATION_FILE), record);
  if (earlier.length) record.earlierLooks = earlier;
  writeJsonAtomic(path.join(o.modelDir, CALIBRATION_FILE), record);
  // predictions.json gains each test face's interval and calibrated P(female).
  const predFile = path.join(o.modelDir, "predictions.json");
  if (file.stack) {
    // A stacked folder's test figures are its predictor's: `best train` scored its first member alone.
    rescoreTest(o.modelDir, split, test.map((r) => ({ ...r, pFemale: uncalibrate(r.pFemale, gender.temperature), pFemaleCalibrated: r.pFemale })));
    log(`[calibrate] stacked folder: metrics.json, run.json and predictions.json rescored from the stacked predictor's test predictions`);
  } else if (fs.existsSync(predFile)) {
    const byFile = new Map(test.map((r) => [r.file, r]));
    const saved = readJsonFile<{ file: string; [k: string]: unknown }[]>(predFile, "Retrain the folder with npm run cli -- best train.");
    writeJsonAtomic(predFile, saved.map((p) => {
      const r = byFile.get(p.file);
      return r ? { ...p, ageLow: Number(r.low.toFixed(2)), ageHigh: Number(r.high.toFixed(2)), pFemaleCalibrated: Number(r.pFemale.toFixed(4)) } : p;
    }));
  }
  log(`[calibrate] test split, ${test.length} faces (${record.earlierLooks ? `looked at ${record.earlierLooks.length + 1} times with this model` : "looked at once"}): ${(record.test.coverage.coverage * 100).toFixed(1)}% of real ages inside the 80% interval, mean width ${record.test.coverage.meanWidth.toFixed(1)} years; gender ECE ${(record.test.eceBefore * 100).toFixed(1)}% -> ${(record.test.eceAfter * 100).toFixed(1)}%; MAE ${record.test.mae.toFixed(2)}`);
  return record;
}

/**
 * The test split's earlier looks at this same final model with a calibration fitted otherwise
 * (validation faces, then out-of-fold ones, say), kept so the card can say the split was looked
 * at more than once. The same model is told by the same test MAE through the whole predictor; a
 * refit on the same kind of faces is the same look again, not a new one.
 */
function earlierLooks(file: string, now: CalibrationRecord): NonNullable<CalibrationRecord["earlierLooks"]> {
  if (!fs.existsSync(file)) return [];
  const prev = readJsonFile<CalibrationRecord>(file, "Delete it: best calibrate writes it anew.");
  if (!prev.test || prev.test.mae !== now.test.mae) return [];
  const looks = prev.earlierLooks ?? [];
  if (prev.age.fittedOn.split === now.age.fittedOn.split && prev.age.fittedOn.faces === now.age.fittedOn.faces) return looks;
  return [...looks, { fittedOn: prev.age.fittedOn, testCoverage: prev.test.coverage.coverage, testMeanWidth: prev.test.coverage.meanWidth }];
}

type Source = { rows: ValidationPrediction[]; fittedOn: { split: string; model: string }; source: Omit<CalibrationRecord["source"], "run"> };

/** The chosen step's predictions of the validation faces (its ablation fit never trained on them). */
function validationSource(from: string, split: BestSplit): Source {
  const file = path.join(from, VALIDATION_PREDICTIONS_FILE);
  const source = readJsonFile<{ model: string; fitFaces: number; predictions: ValidationPrediction[] }>(file, "Write it with npm run cli -- best train --out <that folder> (or best train --validation-only).");
  // The calibration must come from the validation faces, never a test face.
  const validationFiles = new Set(split.validation.map((i) => split.records[i].file));
  const stray = source.predictions.filter((p) => !validationFiles.has(p.file));
  if (stray.length || source.predictions.length !== validationFiles.size) {
    throw new Error(`${file} holds ${source.predictions.length} faces, ${stray.length} of them outside the ${validationFiles.size} validation faces of this split: rerun best train --validation-only on the same data.`);
  }
  return {
    rows: source.predictions,
    fittedOn: { split: "validation", model: `${source.model} (its ablation fit, on ${source.fitFaces} other training faces)` },
    source: { model: source.model, fitFaces: source.fitFaces },
  };
}

/** Every training face's out-of-fold prediction (best cross-fit): each from a model that never trained on it. */
function outOfFoldSource(from: string, split: BestSplit, modelDir: string): Source {
  const file = path.join(from, OUT_OF_FOLD_FILE);
  const source = readJsonFile<OutOfFoldFile>(file, `Write it with npm run cli -- best cross-fit --from ${from}.`);
  if (source.recipe !== recipeKey(folderRecipe(modelDir))) throw new Error(`${file} was cross-fitted with another recipe than ${path.join(modelDir, BEST_MODEL_FILE)}'s (it was retrained since): rerun npm run cli -- best cross-fit --from ${modelDir}.`);
  const trainFiles = new Set(split.train.map((i) => split.records[i].file));
  const stray = source.predictions.filter((p) => !trainFiles.has(p.file));
  if (stray.length || source.predictions.length !== trainFiles.size || new Set(source.predictions.map((p) => p.file)).size !== trainFiles.size) {
    throw new Error(`${file} holds ${source.predictions.length} faces, ${stray.length} of them outside the ${trainFiles.size} training faces of this split (first: ${stray[0]?.file ?? "none"}): rerun best cross-fit on the same data.`);
  }
  return {
    rows: source.predictions,
    fittedOn: { split: "out-of-fold training", model: `${source.model} (${source.folds} folds, each predicted by the recipe fitted on the other ${source.fitFaces.min}-${source.fitFaces.max} training faces)` },
    source: { model: source.model, fitFaces: source.fitFaces.min, folds: source.folds, ...(source.foldMae ? { foldMae: source.foldMae } : {}) },
  };
}

/**
 * Rewrites a folder's test figures (metrics.json, run.json's test, predictions.json) from the
 * whole predictor's test predictions: raw P(female) for the figures (the temperature moves no
 * decision), both P(female) and the interval in predictions.json.
 */
function rescoreTest(modelDir: string, split: BestSplit, test: { file: string; age: number; gender: number; predAge: number; low: number; high: number; pFemale: number; pFemaleCalibrated: number }[]): void {
  const rows = test.map((r) => ({ file: r.file, age: r.age, gender: r.gender, trueGroup: ageGroupOf(r.age, REPORT_AGE_GROUPS), predAge: r.predAge, predGroup: ageGroupOf(r.predAge, REPORT_AGE_GROUPS), pFemale: r.pFemale }));
  const training = split.train.map((i) => ({ age: split.records[i].age, gender: split.records[i].gender as number }));
  const fix = "Retrain the folder with npm run cli -- best train.";
  const metricsFile = path.join(modelDir, "metrics.json");
  const prev = fs.existsSync(metricsFile) ? readJsonFile<{ test?: { trainSeconds?: number }; [k: string]: unknown }>(metricsFile, fix) : {};
  const metrics = { ...bestMetrics(rows, "test", training, "best"), trainSeconds: prev.test?.trainSeconds ?? 0 };
  writeJsonAtomic(metricsFile, { ...prev, test: metrics });
  const runFile = path.join(modelDir, "run.json");
  if (fs.existsSync(runFile)) writeJsonAtomic(runFile, { ...readJsonFile<Record<string, unknown>>(runFile, fix), test: metrics });
  writeJsonAtomic(path.join(modelDir, "predictions.json"), test.map((r) => ({
    file: r.file, age: r.age, gender: r.gender, predAge: Number(r.predAge.toFixed(2)), pFemale: Number(r.pFemale.toFixed(4)),
    ageLow: Number(r.low.toFixed(2)), ageHigh: Number(r.high.toFixed(2)), pFemaleCalibrated: Number(r.pFemaleCalibrated.toFixed(4)),
  })));
}

/** The raw P(female) back from a calibrated one. */
function uncalibrate(p: number, temperature: number): number {
  return calibratedPFemale(p, 1 / temperature);
}
