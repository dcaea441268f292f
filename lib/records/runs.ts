/**
 * The run folder contract. Every experiment writes `results/<experiment>/<run-id>/`:
 *
 *   config.json       RunConfig: what was run (model, hyper-parameters, seed, split or folds,
 *                     backend, data dir and file count, size, colour, profile, createdAt)
 *   history.json      EpochRecord[]: one row per epoch (per fold for K-fold)
 *   metrics.json      RunMetrics (train/test run) or KFoldSummary (K-fold run)
 *   predictions.json  PredictionRow[]: one row per held-out image
 *   model/            tfjs save format (model.json + weights.bin)
 *
 * A K-fold run holds one subfolder per fold, `fold-01/` ... `fold-10/`, each laid out like a
 * train/test run (plus `checkpoint/` while it trains), and its own top-level files are the
 * merged summary. Figures and notebooks read these files only, through the loaders below.
 */
import * as fs from "fs";
import * as path from "path";
import type { BackendInfo } from "../engine/backend";
import type { ColorMode, Normalization } from "../data/dataset";
import type { ExperimentProfile, ModelTask } from "../core/kinds";
import { describeErrno, pathInTheWay, readJsonFile } from "../core/file-errors";
import { REPO_ROOT, RESULTS_DIR } from "../core/paths";

export type { ExperimentProfile } from "../core/kinds";

/** Hyper-parameters recorded with every run. */
export interface HyperParameters {
  /** Epochs trained (K-fold: the schedule's epochs of this fold, see `KFoldPlan.schedule`). */
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: "adam";
  /** Loss per output, e.g. { age: "categoricalCrossentropy" }. */
  loss: Record<string, string>;
  /** Dropout rate given to the model factory. */
  dropout: number;
  /** Age division of age-group outputs ("report20" or "ranges8"). */
  ageDivision: string;
  /** Fraction of the training images held back to watch validation loss (0 = none). */
  validationFraction: number;
  /** Epochs without validation-loss improvement before stopping (0 = never stop early). */
  patience: number;
  /** "balanced": each classification output's training loss weighted by its class (absent: unweighted). */
  classWeights?: "balanced";
  /** The saved model is the epoch with the lowest validation loss, not the last (absent: the last). */
  keepBest?: boolean;
}

/** Where the images came from. Paths are relative to the repository root when inside it. */
export interface DataInfo {
  dir: string;
  /** Files in the directory, images or not. */
  files: number;
  /** Faces the loader could use. */
  usable: number;
  /** Faces used by this run (after a cap or the age division's filter). */
  used: number;
  /** Faces dropped because the age division does not cover their age (seed 000: outside 8..80). */
  droppedByDivision: number;
  /** Cap on the number of images (quick profile), if any. */
  maxImages?: number;
  /** Hash of the used files' names (training/resume.ts fileListHash): resuming checks the folder still holds them. */
  fileList?: string;
}

/** The K-fold part of a run's configuration. */
export interface KFoldPlan {
  k: number;
  seed: number;
  /** Epochs of each fold, index = fold (see `foldSchedule` in lib/training/kfold.ts). */
  schedule: number[];
  /** Whether each fold starts from the previous fold's weights (the report) or fresh (default). */
  carryWeights: boolean;
  /** The report's second pass over the folds (same schedule again on the carried weights). */
  secondPass: boolean;
  /** Validation indices of each fold (into the dataset's records, in loadFaces order). */
  validation: number[][];
  /**
   * Faces kept out of every fold (`--hold-out-test`): the 80/20 split's test faces, cut from the
   * same seeded order as `train`'s, never trained on by any fold. Each fold's model is scored on
   * them (test-metrics.json in its folder), so a carried run's validation figures can be set
   * beside faces it never saw. Absent: the folds cover every used face.
   */
  heldOutTest?: { testFraction: number; indices: number[] };
}

/** config.json: everything needed to know and repeat what was run. */
export interface RunConfig {
  experiment: string;
  runId: string;
  kind: "split" | "kfold" | "fold";
  model: string;
  task: ModelTask;
  hyper: HyperParameters;
  seed: number;
  /** Train/test split (indices into the dataset's records, in loadFaces order). */
  split?: { testFraction: number; train: number[]; test: number[] };
  /** K-fold plan (kind "kfold", and "fold" for a fold subfolder). */
  kfold?: KFoldPlan;
  /** Fold number of a fold subfolder (0-based). */
  fold?: number;
  backend: BackendInfo;
  data: DataInfo;
  size: number;
  color: ColorMode;
  normalize: Normalization;
  profile: ExperimentProfile;
  /** ISO time the run folder was created. */
  createdAt: string;
}

/** One row of history.json. */
export interface EpochRecord {
  /** Fold number (0-based) in K-fold runs. */
  fold?: number;
  /** Pass over the folds (1 or 2) when the report's second pass is on. */
  pass?: number;
  /** 1-based epoch within the fold or run. */
  epoch: number;
  /** Mean training loss over the epoch's batches. */
  loss: number;
  valLoss?: number;
  /** Training metrics averaged over batches, e.g. { ageAccuracy: 0.31 }. */
  metrics: Record<string, number>;
  valMetrics?: Record<string, number>;
  seconds: number;
  imagesPerSecond: number;
}

/** A confusion matrix: matrix[true][predicted] counts, labelled. */
export interface ConfusionMatrix {
  labels: string[];
  matrix: number[][];
}

/** Mean absolute age error of the images whose real age lies in one band. */
export interface BandError {
  band: string;
  images: number;
  /** NaN-free: null when the band has no image. */
  mae: number | null;
}

/** Mean and variance of predicted and real values (the report's comparison). */
export interface MeanVariance {
  predictedMean: number;
  predictedVariance: number;
  realMean: number;
  realVariance: number;
}

/** metrics.json of a train/test run or a fold: held-out figures only. */
export interface RunMetrics {
  /** Which images: "test" (train/test run) or "validation" (a fold). */
  split: string;
  /** Number of held-out images the figures are computed on. */
  images: number;
  profile: ExperimentProfile;
  task: ModelTask;
  model: string;
  /** Mean loss on the held-out images. */
  loss?: number;
  /** With keep-best: the epoch (1-based) whose weights were saved and scored, chosen by validation loss. */
  keptEpoch?: number;
  /** Age-group accuracy (age-group models; regression: of the decoded age). */
  ageAccuracy?: number;
  /** Share of predictions at most one group away from the true group. */
  ageAccuracyWithin1?: number;
  ageConfusion?: ConfusionMatrix;
  /** Mean absolute error in years (age-group models: of the predicted group's mid age). */
  mae?: number;
  maeByBand?: BandError[];
  /** Predicted vs real age in years. */
  ageMeanVariance?: MeanVariance;
  genderAccuracy?: number;
  genderConfusion?: ConfusionMatrix;
  /** Predicted P(female) vs real code (0 male, 1 female). */
  genderMeanVariance?: MeanVariance;
  /**
   * What always giving the training split's most common answer scores on the same images (the
   * most frequent age group, the median age, the more frequent gender): the bar a model must clear.
   */
  baseline?: Baseline;
  /**
   * What looks wrong with the model, in words: it gives one answer for nearly every face (a
   * collapsed model, e.g. after too high a learning rate). Absent when nothing does.
   */
  warnings?: string[];
  /** Wall time of training (all epochs). */
  trainSeconds: number;
  /** Training throughput. */
  imagesPerSecond: number;
}

/** Figures of the constant "majority" predictor (see RunMetrics.baseline). */
export interface Baseline {
  ageAccuracy?: number;
  ageAccuracyWithin1?: number;
  mae?: number;
  genderAccuracy?: number;
}

/** One held-out image's prediction (predictions.json). */
export interface PredictionRow {
  file: string;
  /** Real age and gender from the file name. */
  age: number;
  gender: number;
  /** Index of the real age group in the run's division, -1 outside it. */
  trueGroup: number;
  /** Predicted group index (age models). */
  predGroup?: number;
  /** Predicted age in years (regression: the output * 100; group models: the group's mid age). */
  predAge?: number;
  /** Predicted probability of female (gender models). */
  pFemale?: number;
}

/** What `runExperiment` returns (and `loadRun` reads back). */
export interface RunResult {
  runDir: string;
  config: RunConfig;
  history: EpochRecord[];
  metrics: RunMetrics;
  predictions: PredictionRow[];
}

/** Mean and standard deviation over folds of one figure. */
export interface FoldStat {
  mean: number;
  std: number;
  values: number[];
}

/** metrics.json of a K-fold run: per-fold metrics and their mean and spread. */
export interface KFoldSummary {
  split: "kfold";
  k: number;
  /** Folds finished and merged (fold numbers, 0-based). */
  completed: number[];
  profile: ExperimentProfile;
  task: ModelTask;
  model: string;
  folds: RunMetrics[];
  /** Mean/std over folds of each numeric figure (ageAccuracy, mae, genderAccuracy, ...). */
  summary: Record<string, FoldStat>;
  trainSeconds: number;
  /** Folds continued from a checkpoint after an interruption (lib/training/resume.ts). */
  resumed?: ResumeEvent[];
  /** With `--hold-out-test`: each finished fold's model on the held-out test faces (fold order). */
  heldOutTest?: { fold: number; pass: number; metrics: RunMetrics }[];
}

/** One continuation of an interrupted training (a fold's or run's resumes.json, lib/training/resume.ts). */
export interface ResumeEvent {
  /** ISO time the training continued. */
  at: string;
  /** Fold number (0-based) for K-fold runs. */
  fold?: number;
  /** Last epoch finished before the interruption; training went on from the next one. */
  afterEpoch: number;
  /** Epochs planned for this fold or run. */
  epochs: number;
  /** Which machine and process continued it (runs may move between machines). */
  host: string;
  pid: number;
}

/** What `runKFold` returns. */
export interface KFoldResult {
  runDir: string;
  config: RunConfig;
  /** Every fold's epochs, `fold` set. */
  history: EpochRecord[];
  summary: KFoldSummary;
  /** Held-out predictions of every completed fold (each image appears once). */
  predictions: (PredictionRow & { fold: number })[];
}

/** A run as read from disk: train/test or K-fold. */
export type LoadedRun =
  | (RunResult & { kind: "split" | "fold" })
  | (Omit<KFoldResult, "summary"> & { kind: "kfold"; metrics: KFoldSummary; summary: KFoldSummary });

/** File names inside a run folder. */
export const RUN_FILES = {
  config: "config.json",
  history: "history.json",
  metrics: "metrics.json",
  predictions: "predictions.json",
  model: "model",
  checkpoint: "checkpoint",
  /** A K-fold fold's model scored on the run's held-out test faces (`--hold-out-test`). */
  testMetrics: "test-metrics.json",
  testPredictions: "test-predictions.json",
} as const;

/** Folder name of a fold inside a K-fold run: fold-01 for fold 0. */
export function foldDirName(fold: number): string {
  return `fold-${String(fold + 1).padStart(2, "0")}`;
}

/** A path as stored in config.json: relative to the repo root when inside it (no machine paths). */
export function portablePath(p: string): string {
  const rel = path.relative(REPO_ROOT, path.resolve(p));
  return rel.startsWith("..") || path.isAbsolute(rel) ? path.resolve(p) : rel.split(path.sep).join("/");
}

/** Resolves a path read from config.json (relative to the repo root) to an absolute one. */
export function resolveStoredPath(p: string): string {
  return path.isAbsolute(p) ? p : path.join(REPO_ROOT, p);
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: is this a finished run folder? (see lib/records/runs.ts for the layout)`);
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); the run may have been interrupted while writing it.`);
  }
}

function readOptional<T>(file: string, fallback: T): T {
  return fs.existsSync(file) ? readJson<T>(file) : fallback;
}

/**
 * Reads a run folder (train/test, K-fold or a single fold). `runDir` may be absolute, relative
 * to the current directory, or relative to results/ ("cnn-gender/20250101-120000-ab12").
 */
export function loadRun(runDir: string): LoadedRun {
  const dir = resolveRunDir(runDir);
  const config = readJson<RunConfig>(path.join(dir, RUN_FILES.config));
  const history = readOptional<EpochRecord[]>(path.join(dir, RUN_FILES.history), []);
  const predictions = readOptional<PredictionRow[]>(path.join(dir, RUN_FILES.predictions), []);
  const metrics = readJson<RunMetrics & KFoldSummary>(path.join(dir, RUN_FILES.metrics));
  if (config.kind === "kfold") {
    return { kind: "kfold", runDir: dir, config, history, metrics, summary: metrics, predictions: predictions as KFoldResult["predictions"] };
  }
  return { kind: config.kind, runDir: dir, config, history, metrics, predictions };
}

/** Finds a run folder from a path or a results/-relative name; clear error when absent. */
export function resolveRunDir(runDir: string): string {
  const candidates = [path.resolve(runDir), path.join(RESULTS_DIR, runDir)];
  for (const c of candidates) if (fs.existsSync(path.join(c, RUN_FILES.config))) return c;
  throw new Error(`No run folder at "${runDir}" (looked for config.json in ${candidates.map(portablePath).join(" and ")}). List runs with listRuns().`);
}

/** A run folder found by `listRuns`. */
export interface RunEntry {
  experiment: string;
  runId: string;
  runDir: string;
  kind: RunConfig["kind"];
  model: string;
  createdAt: string;
  /** Whether metrics.json exists (the run finished, or a K-fold run was merged). */
  finished: boolean;
}

/** Every run under results/ (or of one experiment), oldest first. */
export function listRuns(experiment?: string): RunEntry[] {
  if (!fs.existsSync(RESULTS_DIR)) return [];
  const experiments = experiment ? [experiment] : fs.readdirSync(RESULTS_DIR).filter((e) => fs.statSync(path.join(RESULTS_DIR, e)).isDirectory());
  const out: RunEntry[] = [];
  for (const exp of experiments) {
    const expDir = path.join(RESULTS_DIR, exp);
    if (!fs.existsSync(expDir)) continue;
    for (const id of fs.readdirSync(expDir)) {
      const runDir = path.join(expDir, id);
      const cfgFile = path.join(runDir, RUN_FILES.config);
      if (!fs.existsSync(cfgFile)) continue;
      let cfg: RunConfig;
      try {
        cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
      } catch {
        continue;
      }
      out.push({ experiment: exp, runId: id, runDir, kind: cfg.kind, model: cfg.model, createdAt: cfg.createdAt, finished: fs.existsSync(path.join(runDir, RUN_FILES.metrics)) });
    }
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.runId.localeCompare(b.runId)));
}

/** The newest finished run of an experiment; a clear error when there is none. */
export function latestRun(experiment: string): LoadedRun {
  const runs = listRuns(experiment).filter((r) => r.finished);
  if (runs.length === 0) {
    throw new Error(`No finished run of experiment "${experiment}" under ${portablePath(path.join(RESULTS_DIR, experiment))}. Run it first (npm run cli -- train / kfold).`);
  }
  return loadRun(runs[runs.length - 1].runDir);
}

/**
 * Creates a new, empty run folder results/<experiment>/<timestamp>-<random>/ and returns it.
 * Creation is exclusive (mkdir fails if it exists), so two processes never share a run id.
 */
export function createRunDir(experiment: string, root: string = RESULTS_DIR): { runId: string; runDir: string } {
  if (!/^[A-Za-z0-9._-]+$/.test(experiment)) throw new Error(`Experiment name "${experiment}" may use only letters, digits, '.', '_' and '-'.`);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  try {
    fs.mkdirSync(path.join(root, experiment), { recursive: true });
  } catch (e) {
    // e.g. results/ (or results/<experiment>) is a file: say which path is in the way.
    const where = pathInTheWay(path.join(root, experiment));
    const words = describeErrno((e as NodeJS.ErrnoException).code) ?? `cannot be created (${(e as Error).message})`;
    throw new Error(`Cannot create the run folder under ${portablePath(path.join(root, experiment))}: ${portablePath(where)} ${words}.`);
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const runId = `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
    const runDir = path.join(root, experiment, runId);
    try {
      fs.mkdirSync(runDir);
      return { runId, runDir };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  throw new Error(`Could not create a new run folder under ${portablePath(path.join(root, experiment))}.`);
}

/** The held-out figures a run is compared by (tables, K-fold means, the comparison figure), in display order. */
export const HELD_OUT_FIGURES = ["ageAccuracy", "ageAccuracyWithin1", "mae", "genderAccuracy"] as const;

/** Numeric headline figures of a metrics object (for K-fold means and tables). */
export function headlineFigures(m: RunMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of ["loss", ...HELD_OUT_FIGURES, "trainSeconds", "imagesPerSecond"] as const) {
    const v = m[key];
    if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
  }
  return out;
}

/** File name of the resume records inside a fold or run folder (training/resume-log.ts writes them). */
export const RESUMES_FILE = "resumes.json";

/** The resume records of a fold or run folder (empty when it never resumed). */
export function readResumes(dir: string): ResumeEvent[] {
  const file = path.join(dir, RESUMES_FILE);
  return fs.existsSync(file) ? readJsonFile<ResumeEvent[]>(file, "It only records when the run was continued: restore it from a copy, or delete it to go on without those records.") : [];
}
