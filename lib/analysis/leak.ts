/**
 * The leak of the report's K-fold procedure, measured: with weights carried from fold to fold,
 * every fold after the first is validated on faces an earlier fold trained on. For each fold of
 * a carried run this gives the share of its validation faces already trained on, its accuracy
 * on those faces and on faces never seen, and (with `kfold --hold-out-test`) the same model on
 * the 80/20 split's test faces, which no fold trained on.
 */
import * as fs from "fs";
import * as path from "path";
import { GENDER_THRESHOLD } from "../data/labels";
import { LeakFigureRow } from "./figures";
import { KFoldPlan, PredictionRow, RUN_FILES, RunConfig, RunMetrics, foldDirName, portablePath } from "../records/runs";

/** One fold (of one pass) of a K-fold run, as the leak sees it. */
export interface FoldLeak extends LeakFigureRow {
  pass: number;
  /** Validation faces of the fold. */
  validationFaces: number;
  /** How many of them an earlier fold (or pass) had trained on. */
  seenBefore: number;
  /** Accuracy on the validation faces already trained on / never trained on (undefined when there are none). */
  accuracySeen?: number;
  accuracyUnseen?: number;
  /** Held-out test faces the fold's model was scored on (0 without --hold-out-test). */
  testFaces: number;
}

/** The leak of a K-fold run, fold by fold. */
export interface LeakReport {
  model: string;
  metric: "ageAccuracy" | "genderAccuracy";
  carried: boolean;
  folds: FoldLeak[];
  /** The last finished fold's model on the held-out test faces: the carried run's honest figure. */
  finalTest?: { fold: number; accuracy: number; faces: number };
  /** Mean of the validation accuracies over the folds done: the figure the report's procedure gives. */
  meanValidation: number;
}

/** Whether a prediction row is right on the run's headline figure. */
function correct(metric: LeakReport["metric"], r: PredictionRow): number {
  if (metric === "genderAccuracy") return ((r.pFemale ?? 0) >= GENDER_THRESHOLD ? 1 : 0) === r.gender ? 1 : 0;
  return r.predGroup === r.trueGroup ? 1 : 0;
}

function mean(values: number[]): number | undefined {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
}

/**
 * Measures the leak of a K-fold run folder (results/... or results/reference/...). Folds not
 * finished yet are left out. A run with fresh folds has no leak (every share 0); it is measured
 * the same way, so the two procedures can be set side by side.
 */
export function measureLeak(runDir: string): LeakReport {
  const read = <T>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8")) as T;
  const config = read<RunConfig>(path.join(runDir, RUN_FILES.config));
  const plan: KFoldPlan | undefined = config.kfold;
  if (config.kind !== "kfold" || !plan) throw new Error(`${portablePath(runDir)} is not a K-fold run folder (config.json kind "${config.kind}"): measureLeak needs the folder kfold printed as "run folder:".`);
  const metric: LeakReport["metric"] = config.task === "gender" ? "genderAccuracy" : "ageAccuracy";
  const pool = plan.validation.flat();
  const steps = [1, 2].filter((p) => p === 1 || plan.secondPass).flatMap((pass) => plan.validation.map((_, fold) => ({ pass, fold, dir: (pass === 2 ? "pass2-" : "") + foldDirName(fold) })));
  const trained = new Set<number>();
  const folds: FoldLeak[] = [];
  for (const step of steps) {
    const dir = path.join(runDir, step.dir);
    const validation = plan.validation[step.fold];
    if (!fs.existsSync(path.join(dir, RUN_FILES.metrics))) break; // later folds depend on this one
    const rows = read<PredictionRow[]>(path.join(dir, RUN_FILES.predictions));
    if (rows.length !== validation.length) throw new Error(`${portablePath(path.join(dir, RUN_FILES.predictions))} has ${rows.length} rows for ${validation.length} validation faces: the fold folder does not belong to this run's config.json.`);
    const seen = validation.map((i) => plan.carryWeights && trained.has(i));
    const metrics = read<RunMetrics>(path.join(dir, RUN_FILES.metrics));
    const testFile = path.join(dir, RUN_FILES.testMetrics);
    const test = fs.existsSync(testFile) ? read<RunMetrics>(testFile) : undefined;
    const accSeen = mean(rows.filter((_, j) => seen[j]).map((r) => correct(metric, r)));
    const accUnseen = mean(rows.filter((_, j) => !seen[j]).map((r) => correct(metric, r)));
    const seenBefore = seen.filter(Boolean).length;
    folds.push({
      fold: step.fold,
      pass: step.pass,
      validationFaces: validation.length,
      seenBefore,
      share: seenBefore / Math.max(validation.length, 1),
      validation: metrics[metric] ?? mean(rows.map((r) => correct(metric, r))) ?? NaN,
      accuracySeen: accSeen,
      accuracyUnseen: accUnseen,
      test: test?.[metric],
      testFaces: test?.images ?? 0,
    });
    // This fold trained on every face of the pool outside its validation fold.
    const inVal = new Set(validation);
    for (const i of pool) if (!inVal.has(i)) trained.add(i);
  }
  const last = folds[folds.length - 1];
  return {
    model: config.model,
    metric,
    carried: plan.carryWeights,
    folds,
    ...(last && last.test !== undefined ? { finalTest: { fold: last.fold, accuracy: last.test, faces: last.testFaces } } : {}),
    meanValidation: mean(folds.filter((f) => f.pass === (plan.secondPass ? 2 : 1)).map((f) => f.validation)) ?? NaN,
  };
}

/** "the report's procedure gives X% on its validation folds and Y% on faces it never saw (N faces)". */
export function leakSentence(r: LeakReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const what = r.metric === "genderAccuracy" ? "gender accuracy" : "age-group accuracy";
  const done = `${r.folds.length} fold(s) done`;
  if (!r.finalTest) return `${r.model}: the report's procedure gives ${pct(r.meanValidation)} ${what} on its validation folds (${done}); no held-out test faces were kept out of this run.`;
  return `${r.model}: the report's procedure gives ${pct(r.meanValidation)} ${what} on its validation folds (mean of ${done}) and ${pct(r.finalTest.accuracy)} on ${r.finalTest.faces.toLocaleString("en")} faces it never saw (the held-out test faces, scored by the model of fold ${r.finalTest.fold + 1}).`;
}
