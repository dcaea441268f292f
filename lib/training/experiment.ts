/**
 * Train/test experiments: train one model on the train split, evaluate it on the held-out test
 * split (never on training images) and write results/<experiment>/<run-id>/ (lib/records/runs.ts).
 * The data preparation here is shared with K-fold runs (lib/training/kfold.ts).
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { BackendInfo, initBackend } from "../engine/backend";
import { TrainingCallback, ProgressOptions, earlyStopping, progressCallback } from "./callbacks";
import { ColorMode, FaceDataset, Normalization, loadFaces } from "../data/dataset";
import { AgeDivision, ageDivision, ageGroupOf, groupCount } from "../data/labels";
import { computeMetrics } from "../analysis/metrics";
import { ModelOptions, ModelSpec, buildModel, modelSpec, specLosses } from "../models/registry";
import { balancedClassWeights, hasAgeGroups } from "../models/tasks";
import { writeJsonAtomic } from "../core/files";
import { RESULTS_DIR } from "../core/paths";
import { errnoOf, readJsonFile } from "../core/file-errors";
import { loadTrainedModel, predictionRows } from "../inference/predict";
import { ProfileSettings, modelProfileSettings, profileSettings } from "./profile";
import type { AnyRun } from "../analysis/run-figures";
import { EpochRecord, ExperimentProfile, HyperParameters, PredictionRow, RUN_FILES, RunConfig, RunMetrics, RunResult, createRunDir, listRuns, loadRun, portablePath, resolveRunDir, resolveStoredPath } from "../records/runs";
import { permutation, trainTestSplit, validationHoldout } from "../data/splits";
import { TrainOptions, TrainResult, lossAndMetrics, lossesFor, predictOutputs, targetTensors, trainModel } from "./train";
import { saveModel } from "../models/model-files";
import { resumeRecorder } from "./resume-log";
import { claimDir } from "../core/lock";
import { RecordedChange, changedSettingsError, checkpointEpoch, compareSettings, fileListHash, fillFromStored, newestUnfinishedRun, readRunConfig, withRecordedChanges } from "./resume";
import { FineTuneOptions, FineTunePlan, fineTuneOptionsFor, layersToUnfreeze, trainFrozenThenFineTune } from "../models/transfer";

/** Options of `runExperiment`. Anything left out comes from the profile or the model's spec. */
export interface ExperimentConfig {
  /** Model name (lib/models/registry.ts MODELS). */
  model: string;
  /** Folder under results/ (default: the model name). */
  experiment?: string;
  /** Preloaded faces (a notebook loads once); must match the size and colour the run uses. */
  data?: FaceDataset;
  /** UTKFace directory when `data` is not given (default resolveDataDir()). */
  dir?: string;
  size?: number;
  color?: ColorMode;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  /** Fraction held out for the test split (the report: 0.2). */
  testFraction?: number;
  /** Fraction of the training images held back to watch validation loss (default 0.1; 0 = none). */
  validationFraction?: number;
  /** Early stopping patience in epochs (default 0 = off). */
  patience?: number;
  /** Weight each classification output's training loss by balanced class weights from the training faces' counts (default off). */
  classWeights?: boolean;
  /** Keep the epoch with the lowest validation loss instead of the last (needs validation faces; default off). */
  keepBest?: boolean;
  /** Cap on images used (the quick profile caps; the full profile uses all). */
  maxImages?: number;
  dropout?: number;
  /** quick or full; default $EXPERIMENT_PROFILE or quick. */
  profile?: ExperimentProfile;
  /** Extra callbacks (e.g. a notebook's live figure). */
  callbacks?: TrainingCallback[];
  /** Progress display: false for none; default "auto". */
  progress?: false | ProgressOptions["mode"];
  /** Root of the run folders (default results/); tests pass a temporary folder. */
  resultsRoot?: string;
  /** vgg19-pretrained: the tfjs layers model.json converted from Keras VGG19. */
  pretrainedWeights?: string;
  /** Continue this run folder (created by an earlier call) instead of starting a new one. */
  runDir?: string;
  /** Continue the newest unfinished run of this model and experiment. */
  resume?: boolean;
  /**
   * When continuing, accept settings that differ from the run's config.json (the CLI's
   * --accept-changes); config.json then records each change and the epoch it took effect.
   */
  acceptChanges?: boolean;
  /**
   * Transfer learning (lib/models/transfer.ts): epochs of a fine-tune stage after the frozen one
   * (default: the model's spec, facenet-transfer quick 1 / full 3; 0 = frozen stage only).
   */
  fineTuneEpochs?: number;
  /** Learning rate of the fine-tune stage (default: the spec's, facenet-transfer 1e-5; else 1e-4). */
  fineTuneLearningRate?: number;
  /** Frozen layers to unfreeze, counted from the end, or "all" (default: the spec's, else all). */
  fineTuneLayers?: number | "all";
}

/** The report's Adam learning rate (Keras default). */
export const DEFAULT_LEARNING_RATE = 1e-3;
/** Share of the training images watched as validation during a train/test run. */
export const DEFAULT_VALIDATION_FRACTION = 0.1;

/** Everything resolved before training: settings, data, the images used. */
export interface PreparedExperiment {
  spec: ModelSpec;
  settings: ProfileSettings;
  division: AgeDivision;
  data: FaceDataset;
  /** Indices into data.records of the images this run uses (sorted). */
  used: number[];
  droppedByDivision: number;
  hyper: HyperParameters;
  size: number;
  color: ColorMode;
  normalize: Normalization;
  seed: number;
  backend: BackendInfo;
  /** What `buildModel` gets for every model of this run (each K-fold fold builds a fresh one). */
  modelOptions: ModelOptions;
}

/**
 * Resolves profile and model defaults, loads (or checks) the data, drops ages outside the
 * model's division and applies the image cap (a seeded sample, so the cap is repeatable).
 */
export async function prepareExperiment(config: ExperimentConfig, epochs?: number): Promise<PreparedExperiment> {
  const backend = await initBackend();
  const spec = modelSpec(config.model);
  const settings = modelProfileSettings(spec.name, config.profile);
  const division = ageDivision(spec.ageDivision ?? "report20");
  const size = config.size ?? config.data?.size ?? settings.size;
  const color = config.color ?? spec.color;
  if (spec.color === "rgb" && color !== "rgb") throw new Error(`Model ${spec.name} needs RGB inputs; got color "${color}".`);
  const data = config.data ?? (await loadFaces({ dir: config.dir, size, color }));
  // Tiny images, a cache that could not be written: said once, where the user is looking.
  if (!config.data) for (const w of data.report.warnings) process.stderr.write(`warning: ${w}\n`);
  if (data.size !== size) throw new Error(`The preloaded data are ${data.size}x${data.size} but the run asks for size ${size}: load with size ${size} or drop the size option.`);
  if ((color === "rgb" ? 3 : 1) !== data.channels) throw new Error(`The preloaded data have ${data.channels} channel(s) but the run uses color "${color}": load with color "${color}".`);
  const seed = config.seed ?? settings.seed;
  const hasGroups = hasAgeGroups(spec.task);
  const eligible = data.records.map((_, i) => i).filter((i) => !hasGroups || ageGroupOf(data.records[i].age, division) >= 0);
  const droppedByDivision = data.records.length - eligible.length;
  const cap = config.maxImages ?? settings.maxImages;
  const used = cap !== undefined && cap < eligible.length ? permutation(eligible.length, seed).slice(0, cap).map((i) => eligible[i]).sort((a, b) => a - b) : eligible;
  if (used.length < 4) throw new Error(`Only ${used.length} usable image(s) in ${data.dir} for ${spec.name}: need at least 4 (check the directory and the model's age division).`);
  const hyper: HyperParameters = {
    epochs: epochs ?? config.epochs ?? settings.epochs,
    batchSize: config.batchSize ?? settings.batchSize,
    learningRate: config.learningRate ?? settings.learningRate ?? spec.learningRate ?? DEFAULT_LEARNING_RATE,
    optimizer: "adam",
    loss: specLosses(spec),
    dropout: config.dropout ?? 0.25,
    ageDivision: division.name,
    validationFraction: config.validationFraction ?? DEFAULT_VALIDATION_FRACTION,
    patience: config.patience ?? 0,
    ...(config.classWeights ? { classWeights: "balanced" as const } : {}),
    ...(config.keepBest ? { keepBest: true } : {}),
  };
  const factory = modelOptions({ size, color, division, seed, dropout: config.dropout, pretrainedWeights: config.pretrainedWeights });
  return { spec, settings, division, data, used, droppedByDivision, hyper, size, color, normalize: spec.normalize, seed, backend, modelOptions: factory };
}

/**
 * The faces a model's run reads in this profile: at the profile's size with the model's trims
 * (VGG19's quick run is smaller) and in the model's colour. A notebook loads with this and
 * passes the dataset on, so no cell repeats a model's size policy.
 */
export async function loadModelFaces(model: string, options: { dir?: string; profile?: ExperimentProfile } = {}): Promise<FaceDataset> {
  const spec = modelSpec(model);
  return loadFaces({ dir: options.dir, size: modelProfileSettings(spec.name, options.profile).size, color: spec.color });
}

/** The factory options of a run: its input size and colour, its division's group count, its seed. */
export function modelOptions(o: { size: number; color: ColorMode; division: AgeDivision; seed: number; dropout?: number; pretrainedWeights?: string }): ModelOptions {
  return {
    size: o.size,
    channels: o.color === "rgb" ? 3 : 1,
    ageGroups: groupCount(o.division),
    dropout: o.dropout,
    seed: o.seed,
    pretrainedWeights: o.pretrainedWeights,
  };
}

/** The parts of config.json every kind of run shares. */
export function baseRunConfig(p: PreparedExperiment, config: ExperimentConfig, experiment: string, runId: string, kind: RunConfig["kind"]): RunConfig {
  return {
    experiment,
    runId,
    kind,
    model: p.spec.name,
    task: p.spec.task,
    hyper: p.hyper,
    seed: p.seed,
    backend: p.backend,
    data: {
      dir: portablePath(p.data.dir),
      files: p.data.report?.files ?? p.data.records.length,
      usable: p.data.records.length,
      used: p.used.length,
      droppedByDivision: p.droppedByDivision,
      fileList: fileListHash(p.used.map((i) => p.data.records[i].file)),
      ...(config.maxImages ?? p.settings.maxImages ? { maxImages: config.maxImages ?? p.settings.maxImages } : {}),
    },
    size: p.size,
    color: p.color,
    normalize: p.normalize,
    profile: p.settings.profile,
    createdAt: new Date().toISOString(),
  };
}

/** The callbacks of a run: progress (unless off), early stopping (if patience), then the caller's. */
export function runCallbacks(config: ExperimentConfig, hyper: HyperParameters): TrainingCallback[] {
  const cbs: TrainingCallback[] = [];
  if (config.progress !== false) cbs.push(progressCallback({ mode: config.progress ?? "auto" }));
  if (hyper.patience > 0) cbs.push(earlyStopping({ patience: hyper.patience }));
  return [...cbs, ...(config.callbacks ?? [])];
}

/**
 * Predicts held-out samples and computes every figure of the task, including the mean loss.
 */
export async function evaluateHeldOut(o: {
  model: tf.LayersModel;
  p: Pick<PreparedExperiment, "spec" | "data" | "division" | "normalize" | "settings">;
  indices: readonly number[];
  /** The images the model was trained on: their labels give the majority baseline. */
  trainIndices?: readonly number[];
  split: string;
  trainSeconds: number;
  imagesPerSecond: number;
}): Promise<{ metrics: RunMetrics; predictions: PredictionRow[] }> {
  const { spec, data, division, normalize } = o.p;
  const outputs = await predictOutputs(o.model, data, o.indices, normalize);
  const predictions = predictionRows(data.records, o.indices, spec.task, outputs, division);
  const units = outputs.map((a) => a.length / Math.max(o.indices.length, 1));
  const loss = tf.tidy(() => {
    const preds = outputs.map((a, k) => tf.tensor2d(a, [o.indices.length, units[k]]));
    return lossAndMetrics(spec.task, lossesFor(spec.task, o.model), preds, targetTensors(data.records, o.indices, spec.task, division)).loss.dataSync()[0];
  });
  const metrics = computeMetrics(predictions, {
    task: spec.task,
    model: spec.name,
    split: o.split,
    profile: o.p.settings.profile,
    division,
    trainSeconds: o.trainSeconds,
    imagesPerSecond: o.imagesPerSecond,
    loss,
    training: o.trainIndices?.map((i) => data.records[i]),
  });
  return { metrics, predictions };
}

/** The loop options that follow from a run's hyper-parameters: class weights from its training faces, keeping the best epoch. */
export function trainingExtras(p: Pick<PreparedExperiment, "hyper" | "spec" | "data" | "division">, fit: readonly number[]): Pick<TrainOptions, "classWeights" | "keepBest"> {
  return {
    ...(p.hyper.classWeights ? { classWeights: balancedClassWeights(p.spec.task, p.data.records, fit, p.division) } : {}),
    ...(p.hyper.keepBest ? { keepBest: true } : {}),
  };
}

/** Metadata stored in model.json so a bare model folder can still be used by `predictFiles`. */
export function modelMetadata(p: PreparedExperiment) {
  return { model: p.spec.name, task: p.spec.task, size: p.size, color: p.color, normalize: p.normalize, ageDivision: p.division.name };
}

/** Options of `trainAndRecord`. */
export interface TrainAndRecordOptions {
  p: PreparedExperiment;
  /** The run (or fold) folder that receives history, model, predictions and metrics. */
  dir: string;
  /** The loop's options: model, training indices, checkpoint folder, callbacks. */
  train: TrainOptions;
  /** A frozen-then-fine-tune plan (transfer models); absent = one stage. */
  fineTune?: FineTuneOptions;
  /** Held-out images the model is evaluated on (test split or fold validation), never trained on. */
  heldOut: readonly number[];
  /** The images the model was trained on: their labels give the majority baseline. */
  trainIndices: readonly number[];
  split: "test" | "validation";
}

/**
 * The one train-save-evaluate-record step of single runs and of every K-fold fold: trains with
 * the one loop, writes history.json, saves the model, evaluates it on the held-out images and
 * writes predictions.json, then metrics.json last (its presence marks the step finished). The
 * caller keeps the optimizer (K-fold may carry it) and the checkpoint folder.
 */
export async function trainAndRecord(o: TrainAndRecordOptions): Promise<{ trained: TrainResult; metrics: RunMetrics; predictions: PredictionRow[] }> {
  const trained = o.fineTune ? await trainFrozenThenFineTune(o.train, o.fineTune) : await trainModel(o.train);
  writeJsonAtomic(path.join(o.dir, RUN_FILES.history), trained.history);
  await saveModel(o.train.model, path.join(o.dir, RUN_FILES.model), modelMetadata(o.p));
  const { metrics, predictions } = await evaluateHeldOut({ model: o.train.model, p: o.p, indices: o.heldOut, trainIndices: o.trainIndices, split: o.split, trainSeconds: trained.seconds, imagesPerSecond: trained.imagesPerSecond });
  if (trained.bestEpoch !== undefined) metrics.keptEpoch = trained.bestEpoch;
  writeJsonAtomic(path.join(o.dir, RUN_FILES.predictions), predictions);
  writeJsonAtomic(path.join(o.dir, RUN_FILES.metrics), metrics);
  return { trained, metrics, predictions };
}

/**
 * Checks the split fractions before anything is created: a bad one must not leave an empty
 * run folder behind.
 */
export function checkFractions(config: Pick<ExperimentConfig, "testFraction" | "validationFraction">): void {
  const t = config.testFraction;
  if (t !== undefined && !(t > 0 && t < 1)) throw new Error(`testFraction (--test-fraction) must be a share strictly between 0 and 1, e.g. 0.2; got ${t}.`);
  const v = config.validationFraction;
  if (v !== undefined && !(v >= 0 && v < 1)) throw new Error(`validationFraction (--validation-fraction) must be a share in [0, 1), e.g. 0.1 (0 = none); got ${v}: nothing would be left to train on.`);
}

/** The run an ExperimentConfig continues (runDir or resume), with its config.json; undefined for a new run. */
function runToContinue(config: ExperimentConfig): { runDir: string; stored: RunConfig } | undefined {
  if (config.runDir) {
    const runDir = path.resolve(config.runDir);
    if (!fs.existsSync(path.join(runDir, RUN_FILES.config))) {
      throw new Error(`--run ${config.runDir}: no config.json there, so it is not a run folder to continue. Pass a folder under results/<experiment>/, or leave out --run to start a new run.`);
    }
    const stored = readRunConfig(runDir);
    if (stored.kind !== "split") throw new Error(`--run ${config.runDir} is a ${stored.kind === "kfold" ? "K-fold" : "K-fold fold"} run: continue it with npm run cli -- kfold --run <its K-fold folder>.`);
    if (fs.existsSync(path.join(runDir, RUN_FILES.metrics))) throw new Error(`--run ${config.runDir} is already finished (metrics.json exists): there is nothing to continue. Leave out --run to start a new run.`);
    return { runDir, stored };
  }
  if (config.resume) {
    const spec = modelSpec(config.model);
    const experiment = config.experiment ?? spec.name;
    const root = config.resultsRoot ?? RESULTS_DIR;
    const runDir = newestUnfinishedRun(root, experiment, "split", spec.name);
    if (!runDir) throw new Error(`--resume: no unfinished train run of ${spec.name} under ${portablePath(path.join(root, experiment))}. Start one without --resume.`);
    return { runDir, stored: readRunConfig(runDir) };
  }
  return undefined;
}

/**
 * A failed write (disk full, permissions) in words, with where the run stands and the command
 * that continues it. Other errors pass through unchanged.
 */
function interruptedRunError(e: unknown, runDir: string): unknown {
  if (!errnoOf(e)) return e;
  const done = checkpointEpoch(path.join(runDir, RUN_FILES.checkpoint));
  const kept = done > 0 ? `its last complete checkpoint (epoch ${done}) is kept in ${portablePath(path.join(runDir, RUN_FILES.checkpoint))}` : "no epoch had finished yet";
  const err = new Error(
    `${(e as Error).message}\nThe run ${portablePath(runDir)} stopped; ${kept}. Fix the cause (free disk space, check permissions), then continue with:\n  npm run cli -- train --run ${portablePath(runDir)}`,
  );
  (err as NodeJS.ErrnoException).code = errnoOf(e);
  return err;
}

/**
 * Finishes a run whose model was saved but whose evaluation is missing (killed in between):
 * predicts its held-out images, writes predictions.json and metrics.json, removes the
 * checkpoint. Used by `train --resume`/`--run` and by `evaluate`.
 */
export async function finishSavedRun(runDir: string, data?: FaceDataset): Promise<RunResult> {
  const cfg = readRunConfig(runDir);
  const spec = modelSpec(cfg.model);
  const division = ageDivision(cfg.hyper.ageDivision);
  const indices = cfg.kind === "split" ? cfg.split?.test : cfg.kfold?.validation[cfg.fold ?? -1];
  if (!indices) throw new Error(`${portablePath(path.join(runDir, RUN_FILES.config))} names no held-out images (no split or fold): cannot finish its evaluation.`);
  const ds = data ?? (await loadFaces({ dir: resolveStoredPath(cfg.data.dir), size: cfg.size, color: cfg.color }));
  if (cfg.kind === "split" && cfg.split && cfg.data.fileList) {
    const used = [...cfg.split.train, ...cfg.split.test].sort((a, b) => a - b);
    if (used.some((i) => i >= ds.records.length) || fileListHash(used.map((i) => ds.records[i].file)) !== cfg.data.fileList) {
      throw new Error(`The images in ${cfg.data.dir} are not the ones ${portablePath(runDir)} was trained on (files added, removed or renamed): its test split cannot be rebuilt.`);
    }
  }
  const history = fs.existsSync(path.join(runDir, RUN_FILES.history)) ? readJsonFile<EpochRecord[]>(path.join(runDir, RUN_FILES.history), `Delete it and continue the run (npm run cli -- train --run ${portablePath(runDir)}): it is written again from the checkpoint.`) : [];
  const seconds = history.reduce((a, r) => a + r.seconds, 0);
  const tm = await loadTrainedModel(runDir);
  try {
    const { metrics, predictions } = await evaluateHeldOut({
      model: tm.model,
      p: { spec, data: ds, division, normalize: cfg.normalize, settings: profileSettings(cfg.profile) },
      indices,
      trainIndices: cfg.split?.train,
      split: cfg.kind === "fold" ? "validation" : "test",
      trainSeconds: seconds,
      imagesPerSecond: history.reduce((a, r) => a + r.imagesPerSecond * r.seconds, 0) / Math.max(seconds, 1e-9),
    });
    writeJsonAtomic(path.join(runDir, RUN_FILES.predictions), predictions);
    writeJsonAtomic(path.join(runDir, RUN_FILES.metrics), metrics);
    fs.rmSync(path.join(runDir, RUN_FILES.checkpoint), { recursive: true, force: true });
    return { runDir, config: cfg, history, metrics, predictions };
  } finally {
    tm.model.dispose();
  }
}

/**
 * Trains on the train split, evaluates on the held-out test split and writes the run folder
 * (config.json first, so an interrupted run is still identifiable; metrics.json last). With
 * `runDir` or `resume` it continues an interrupted run from its last checkpointed epoch
 * (weights and Adam state), after checking that the settings are the run's own.
 */
export async function runExperiment(config: ExperimentConfig): Promise<RunResult> {
  checkFractions(config);
  const continued = runToContinue(config);
  if (continued) config = fillFromStored(config, continued.stored);
  const p = await prepareExperiment(config);
  const testFraction = config.testFraction ?? 0.2;
  const split = trainTestSplit(p.used.length, { testFraction, seed: p.seed });
  const train = split.train.map((i) => p.used[i]);
  const test = split.test.map((i) => p.used[i]);
  // Validation comes out of the training part, so the test split stays untouched until the end.
  const nVal = validationHoldout(train.length, p.hyper.validationFraction);
  const valOrder = permutation(train.length, p.seed + 1);
  const validation = valOrder.slice(0, nVal).map((i) => train[i]).sort((a, b) => a - b);
  const inVal = new Set(validation);
  const fit = train.filter((i) => !inVal.has(i));

  const experiment = config.experiment ?? p.spec.name;
  const { runId, runDir } = continued ? { runId: continued.stored.runId, runDir: continued.runDir } : createRunDir(experiment, config.resultsRoot);
  const checkpointDir = path.join(runDir, RUN_FILES.checkpoint);
  // One process per run: a second `train --resume` / `--run` while this one trains is refused.
  const claim = claimDir(runDir, `The train run ${portablePath(runDir)}`);
  let model: tf.LayersModel;
  try {
    model = buildModel(p.spec.name, p.modelOptions);
  } catch (e) {
    claim.release();
    throw e;
  }
  const fineTune = fineTuneOptionsFor(p.spec, p.settings.profile, config);
  // The plan goes into config.json before training, so an interrupted run still says what it was doing.
  let plan: FineTunePlan | undefined;
  try {
    plan = fineTune && { epochs: fineTune.epochs, learningRate: fineTune.learningRate!, unfrozen: layersToUnfreeze(model, fineTune.layers ?? "all").map((l) => l.name) };
  } catch (e) {
    model.dispose();
    claim.release();
    throw e;
  }
  let runConfig: RunConfig & { fineTune?: FineTunePlan } = { ...baseRunConfig(p, config, experiment, runId, "split"), split: { testFraction, train, test }, ...(plan ? { fineTune: plan } : {}) };
  let changed = false;
  if (continued) {
    const stored = continued.stored as RunConfig & { changes?: RecordedChange[] };
    const changes = compareSettings(stored, runConfig);
    if (changes.length > 0 && !config.acceptChanges) {
      model.dispose();
      claim.release();
      throw changedSettingsError(runDir, changes);
    }
    changed = changes.length > 0;
    runConfig = changed
      ? withRecordedChanges(runConfig, stored, changes, checkpointEpoch(checkpointDir) + 1)
      : { ...runConfig, createdAt: stored.createdAt, ...(stored.changes ? { changes: stored.changes } : {}) };
  }
  try {
    writeJsonAtomic(path.join(runDir, RUN_FILES.config), runConfig);
  } catch (e) {
    model.dispose();
    claim.release();
    throw interruptedRunError(e, runDir);
  }
  if (continued && !changed && fs.existsSync(path.join(runDir, RUN_FILES.model, "model.json")) && fs.existsSync(path.join(runDir, RUN_FILES.history))) {
    // Killed after the model was saved: only the evaluation is missing.
    model.dispose();
    if (config.progress !== false) process.stderr.write(`continuing run ${portablePath(runDir)}: its model was saved, only its evaluation is missing; evaluating it\n`);
    return finishSavedRun(runDir, p.data).finally(() => claim.release());
  }

  try {
    const trainOptions: TrainOptions = {
      model,
      modelName: p.spec.name,
      task: p.spec.task,
      data: p.data,
      trainIndices: fit,
      validationIndices: validation,
      division: p.division,
      normalize: p.normalize,
      epochs: p.hyper.epochs,
      batchSize: p.hyper.batchSize,
      learningRate: p.hyper.learningRate,
      seed: p.seed,
      callbacks: [...runCallbacks(config, p.hyper), resumeRecorder(runDir, continued && config.progress !== false ? { label: `run ${portablePath(runDir)}`, continued: true } : undefined)],
      checkpointDir,
      ...trainingExtras(p, fit),
    };
    const { trained, metrics, predictions } = await trainAndRecord({ p, dir: runDir, train: trainOptions, fineTune, heldOut: test, trainIndices: train, split: "test" });
    // Adam's moments are tensors of their own: free them, or every run leaks one per weight.
    trained.optimizer.dispose();
    // The final model is saved; the per-epoch checkpoint only served resuming.
    fs.rmSync(checkpointDir, { recursive: true, force: true });
    return { runDir, config: runConfig, history: trained.history, metrics, predictions };
  } catch (e) {
    throw interruptedRunError(e, runDir);
  } finally {
    model.dispose();
    claim.release();
  }
}

/** Options of `evaluateRun`. */
export interface EvaluateOptions {
  /** Images to evaluate on (default: the run's own data folder, test split only). */
  dir?: string;
  /** Preloaded faces instead of `dir`. */
  data?: FaceDataset;
}

/** What `evaluateRun` returns; it also writes evaluations/<time>.json in the run folder. */
export interface Evaluation {
  metrics: RunMetrics;
  predictions: PredictionRow[];
  /** Where the evaluation was written. */
  file: string;
}

/**
 * Evaluates a saved run's model on held-out images. On the run's own data folder it uses the
 * run's test split (never training images); on another folder it uses every usable image but
 * leaves out files whose names were in the run's training split.
 */
export async function evaluateRun(runDir: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  const found = resolveRunDir(runDir);
  if (!fs.existsSync(path.join(found, RUN_FILES.metrics)) && fs.existsSync(path.join(found, RUN_FILES.model, "model.json"))) {
    // A run killed between saving its model and writing metrics.json: finish it first.
    const finished = await finishSavedRun(found, options.dir ? undefined : options.data);
    if (!options.dir && !options.data) return { metrics: finished.metrics, predictions: finished.predictions, file: path.join(found, RUN_FILES.metrics) };
  }
  const run = loadRun(found);
  if (run.kind === "kfold") throw new Error(`${runDir} is a K-fold run: evaluate one fold's folder (e.g. ${path.join(runDir, "fold-01")}).`);
  const tm = await loadTrainedModel(run.runDir);
  const cfg = run.config;
  const ownDir = resolveStoredPath(cfg.data.dir);
  const dir = options.data?.dir ?? (options.dir ? path.resolve(options.dir) : ownDir);
  const data = options.data ?? (await loadFaces({ dir, size: cfg.size, color: cfg.color }));
  const spec = modelSpec(cfg.model);
  const division = ageDivision(cfg.hyper.ageDivision);
  // Held-out files: the run's test (or fold validation) files; the training files never count.
  const heldOut = new Set(run.predictions.map((r) => r.file));
  const sameData = path.resolve(dir) === path.resolve(ownDir);
  const trainedOn = new Set<string>();
  if (!sameData && cfg.split) {
    const own = await loadFaces({ dir: ownDir, size: cfg.size, color: cfg.color }).catch(() => undefined);
    if (own) for (const i of cfg.split.train) if (own.records[i]) trainedOn.add(own.records[i].file);
  }
  const hasGroups = hasAgeGroups(spec.task);
  const indices = data.records
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => (sameData ? heldOut.has(r.file) : !trainedOn.has(r.file)))
    .filter(({ r }) => !hasGroups || ageGroupOf(r.age, division) >= 0)
    .map(({ i }) => i);
  if (indices.length === 0) throw new Error(`No held-out images to evaluate ${runDir} on in ${dir}.`);
  const settings = { ...profileSettings(cfg.profile) };
  const { metrics, predictions } = await evaluateHeldOut({
    model: tm.model,
    p: { spec, data, division, normalize: cfg.normalize, settings },
    indices,
    // The baseline needs the training labels: known by index on the run's own folder (train/test runs).
    trainIndices: sameData ? cfg.split?.train : undefined,
    split: sameData ? (cfg.kind === "fold" ? "validation" : "test") : `held-out:${portablePath(dir)}`,
    trainSeconds: run.metrics.trainSeconds,
    imagesPerSecond: run.metrics.imagesPerSecond,
  });
  tm.model.dispose();
  const stamp = new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15);
  const file = path.join(run.runDir, "evaluations", `${stamp}-${process.pid}.json`);
  writeJsonAtomic(file, { dir: portablePath(dir), metrics, predictions });
  return { metrics, predictions, file };
}

/**
 * The newest finished run of `config.experiment` trained like `config` (same model, profile,
 * data folder and image count, size, colour, seed), or a new run when there is none. This is
 * what lets 06-comparison reuse the runs of 02–04 instead of training every model again.
 */
export async function reuseOrRun(config: ExperimentConfig & { experiment: string; data: FaceDataset }): Promise<AnyRun> {
  const settings = profileSettings(config.profile);
  const seed = config.seed ?? settings.seed;
  const color = config.data.channels === 3 ? "rgb" : "gray";
  const candidates = listRuns(config.experiment).filter((r) => r.finished && r.kind === "split" && r.model === config.model);
  for (const entry of candidates.reverse()) {
    const run = loadRun(entry.runDir);
    const c = run.config;
    if (c.profile === settings.profile && c.size === config.data.size && c.color === color && c.seed === seed && c.data.dir === portablePath(config.data.dir) && c.data.usable === config.data.records.length) {
      console.log(`reusing ${portablePath(run.runDir)} (${config.model}, trained ${c.createdAt})`);
      return run;
    }
  }
  return runExperiment(config);
}
