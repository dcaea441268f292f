/**
 * Reading a K-fold run folder: the plan's steps (a fold of a pass, each in its own folder) and
 * the fold folders gathered into one result. Beside runs.ts, below training, so analysis and
 * reference runs read K-fold folders without importing the trainer (training/kfold.ts runs
 * the folds and merges them with these readers).
 */
import * as fs from "fs";
import * as path from "path";
import { readJsonFile } from "../core/file-errors";
import { EpochRecord, FoldStat, KFoldResult, KFoldSummary, PredictionRow, RUN_FILES, RunConfig, RunMetrics, foldDirName, headlineFigures, portablePath, readResumes } from "./runs";

/** One training step of the plan: a fold of a pass. */
export interface FoldStep {
  pass: number;
  fold: number;
  dir: string;
}

/** The plan's steps in training order: every fold of the first pass, then of the second. */
export function foldSteps(k: number, secondPass: boolean): FoldStep[] {
  const steps: FoldStep[] = [];
  for (let pass = 1; pass <= (secondPass ? 2 : 1); pass++) {
    for (let f = 0; f < k; f++) steps.push({ pass, fold: f, dir: (pass === 2 ? "pass2-" : "") + foldDirName(f) });
  }
  return steps;
}

/** Mean and (population) standard deviation. */
function stat(values: number[]): FoldStat {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(values.length, 1));
  return { mean, std, values };
}

/** Reads the fold folders of a K-fold run into a result (without writing anything). */
export function readKFold(runDir: string): KFoldResult {
  const config = readJsonFile<RunConfig>(path.join(runDir, RUN_FILES.config), `${portablePath(runDir)} cannot be read as a K-fold run without it: restore it from a copy (the fold folders' own config.json hold the same plan).`);
  if (config.kind !== "kfold" || !config.kfold) throw new Error(`${portablePath(runDir)} is not a K-fold run folder (config.json kind "${config.kind}").`);
  const steps = foldSteps(config.kfold.k, config.kfold.secondPass);
  // The last pass's results are the ones reported for each fold.
  const lastPass = config.kfold.secondPass ? 2 : 1;
  const history: EpochRecord[] = [];
  const foldMetrics: RunMetrics[] = [];
  const completed: number[] = [];
  const predictions: (PredictionRow & { fold: number })[] = [];
  const heldOutTest: NonNullable<KFoldSummary["heldOutTest"]> = [];
  for (const s of steps) {
    const dir = path.join(runDir, s.dir);
    if (!fs.existsSync(path.join(dir, RUN_FILES.metrics))) continue;
    const fix = `Restore it from a copy, or delete ${portablePath(dir)} and run that fold again (npm run cli -- kfold --run ${portablePath(runDir)} --fold ${s.fold}).`;
    const read = <T>(file: string): T => readJsonFile<T>(path.join(dir, file), fix);
    const testFile = path.join(dir, RUN_FILES.testMetrics);
    if (fs.existsSync(testFile)) heldOutTest.push({ fold: s.fold, pass: s.pass, metrics: read(RUN_FILES.testMetrics) });
    const h = read<EpochRecord[]>(RUN_FILES.history);
    history.push(...h.map((r) => ({ ...r, fold: s.fold, ...(config.kfold!.secondPass ? { pass: s.pass } : {}) })));
    if (s.pass !== lastPass) continue;
    completed.push(s.fold);
    foldMetrics.push(read<RunMetrics>(RUN_FILES.metrics));
    const rows = read<PredictionRow[]>(RUN_FILES.predictions);
    predictions.push(...rows.map((r) => ({ ...r, fold: s.fold })));
  }
  const figures = foldMetrics.map(headlineFigures);
  const keys = [...new Set(figures.flatMap((f) => Object.keys(f)))];
  const summary: KFoldSummary = {
    split: "kfold",
    k: config.kfold.k,
    completed,
    profile: config.profile,
    task: config.task,
    model: config.model,
    folds: foldMetrics,
    summary: Object.fromEntries(keys.map((key) => [key, stat(figures.map((f) => f[key]).filter((v) => v !== undefined))])),
    trainSeconds: history.reduce((a, r) => a + r.seconds, 0),
    resumed: steps.flatMap((s) => readResumes(path.join(runDir, s.dir))),
    ...(config.kfold.heldOutTest ? { heldOutTest } : {}),
  };
  return { runDir, config, history, summary, predictions };
}
