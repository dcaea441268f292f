/**
 * The report's K-fold protocol: 10 shuffled folds (seed 42), batch 25, a decreasing epoch
 * schedule, resumable after a kill, one fold per process if wanted, and a merge step.
 *
 * Layout: results/<experiment>/<run-id>/config.json (the plan), fold-01/ ... fold-10/ (each a
 * run folder of kind "fold", plus checkpoint/ while it trains), and, once merged, the summary
 * files history.json, metrics.json (KFoldSummary) and predictions.json at the top. Processes
 * working on different folds write only inside their own fold folder, so two can run at once.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { baseRunConfig, checkFractions, trainingExtras, evaluateHeldOut, ExperimentConfig, PreparedExperiment, prepareExperiment, runCallbacks, trainAndRecord } from "./experiment";
import { loadModelFile } from "../models/model-files";
import { buildModel, modelSpec } from "../models/registry";
import { RecordedChange, changedSettingsError, checkpointEpoch, compareSettings, fillFromStored, fillKFoldFromStored, newestUnfinishedRun, readRunConfig, withRecordedChanges } from "./resume";
import { RESULTS_DIR } from "../core/paths";
import { writeJsonAtomic, writeJsonExclusive } from "../core/files";
import { KFoldPlan, KFoldResult, RUN_FILES, RunConfig, createRunDir, portablePath } from "../records/runs";
import { epochSchedule, kFold, trainTestSplit } from "../data/splits";
import { loadCheckpoint } from "./checkpoints";
import { FoldStep, foldSteps, readKFold } from "../records/kfold-folders";
import { newOptimizer } from "./train";
import { resumeRecorder } from "./resume-log";
import { profileSettings } from "./profile";
import { claimDir } from "../core/lock";

/** Options of `runKFold` (on top of ExperimentConfig's; testFraction does not apply). */
export interface KFoldConfig extends ExperimentConfig {
  /** Number of folds (profile: quick 3, full 10). */
  folds?: number;
  /** Run this fold only (0-based); others may run in other processes on the same run folder. */
  fold?: number;
  /** Run folder to create or continue (default: a new one, or with `resume` the newest unfinished one). */
  runDir?: string;
  /** Continue the newest unfinished K-fold run of this experiment and model. */
  resume?: boolean;
  /** Epochs of the first fold and of the last (see foldSchedule). */
  firstEpochs?: number;
  lastEpochs?: number;
  /** Start each fold from the previous fold's weights, as the report did (default false: fresh). */
  carryWeights?: boolean;
  /** The report's second pass over the folds with carried weights (implies carryWeights). */
  secondPass?: boolean;
  /**
   * Keep this share of the faces (the 80/20 split's test faces, e.g. 0.2) out of every fold and
   * score each fold's model on them: the folds cut the rest. Default: folds over every face.
   */
  holdOutTest?: number;
  /** Merge the fold folders into the top-level summary when all folds are done (default: when this call ran every fold). */
  merge?: boolean;
}

/**
 * Epochs per fold. The report says "15 epochs, one fewer each fold" and "2 epochs on the last
 * fold", which cannot both hold over 10 folds (15 - 9 = 6). We keep both ends and decrease
 * evenly, by at least one epoch a fold: 10 folds -> 15 14 12 11 9 8 6 5 3 2.
 */
export function foldSchedule(folds: number, firstEpochs = 15, lastEpochs = 2): number[] {
  return epochSchedule(folds, firstEpochs, lastEpochs);
}

/**
 * The existing K-fold run a call continues (--run with a config.json, or --resume), or
 * undefined when the call starts a new one.
 */
function kfoldRunToContinue(config: KFoldConfig): { runDir: string; stored: RunConfig } | undefined {
  if (config.runDir) {
    const runDir = path.resolve(config.runDir);
    if (!fs.existsSync(path.join(runDir, RUN_FILES.config))) return undefined;
    const stored = readRunConfig(runDir);
    if (stored.kind !== "kfold") throw new Error(`--run ${config.runDir} is a ${stored.kind === "split" ? "train" : "fold"} run folder, not a K-fold run: continue it with npm run cli -- ${stored.kind === "split" ? "train" : "kfold"} --run <dir>.`);
    return { runDir, stored };
  }
  if (config.resume) {
    const spec = modelSpec(config.model);
    const experiment = config.experiment ?? `${spec.name}-kfold`;
    const root = config.resultsRoot ?? RESULTS_DIR;
    const runDir = newestUnfinishedRun(root, experiment, "kfold", spec.name);
    if (!runDir) throw new Error(`--resume: no unfinished K-fold run of ${spec.name} under ${portablePath(path.join(root, experiment))}. Start one without --resume.`);
    return { runDir, stored: readRunConfig(runDir) };
  }
  return undefined;
}

/** Finds or creates the run folder of a K-fold call. */
function resolveKFoldDir(config: KFoldConfig, experiment: string, continued: { runDir: string } | undefined): { runDir: string; runId: string } {
  if (continued) return { runDir: continued.runDir, runId: path.basename(continued.runDir) };
  if (config.runDir) {
    const runDir = path.resolve(config.runDir);
    fs.mkdirSync(runDir, { recursive: true });
    return { runDir, runId: path.basename(runDir) };
  }
  return createRunDir(experiment, config.resultsRoot);
}

/** Whether a fold folder holds finished results. */
function foldDone(runDir: string, step: FoldStep): boolean {
  return fs.existsSync(path.join(runDir, step.dir, RUN_FILES.metrics));
}

/**
 * Runs the K-fold protocol (or one fold of it). Finished folds are skipped; an interrupted fold
 * continues from its last checkpointed epoch, with the same batches, weights and Adam state as
 * an uninterrupted run.
 */
export async function runKFold(config: KFoldConfig): Promise<KFoldResult> {
  const continued = kfoldRunToContinue(config);
  // Options not repeated on the command line are the run's own.
  if (continued) config = fillKFoldFromStored(fillFromStored(config, continued.stored), continued.stored);
  else if (!config.model) throw new Error(`--model is required to start a K-fold run${config.runDir ? ` (${config.runDir} holds no config.json yet to take it from)` : ""}.`);
  const settings0 = profileSettings(config.profile);
  const k = config.folds ?? settings0.folds;
  const schedule = foldSchedule(k, config.firstEpochs ?? settings0.firstEpochs, config.lastEpochs ?? settings0.minEpochs);
  const p = await prepareExperiment({ ...config, validationFraction: 0 }, schedule[0]);
  const experiment = config.experiment ?? `${p.spec.name}-kfold`;
  const secondPass = Boolean(config.secondPass);
  const carry = Boolean(config.carryWeights) || secondPass;
  if (config.fold !== undefined && (!Number.isInteger(config.fold) || config.fold < 0 || config.fold >= k)) {
    throw new Error(`Fold ${config.fold} does not exist: folds are numbered 0..${k - 1} (k=${k}).`);
  }
  // With a held-out test split the folds cut the split's training faces only.
  let pool = p.used;
  let heldOutTest: KFoldPlan["heldOutTest"];
  if (config.holdOutTest !== undefined) {
    checkFractions({ testFraction: config.holdOutTest });
    const split = trainTestSplit(p.used.length, { testFraction: config.holdOutTest, seed: p.seed });
    pool = split.train.map((i) => p.used[i]);
    heldOutTest = { testFraction: config.holdOutTest, indices: split.test.map((i) => p.used[i]) };
  }
  const folds = kFold(pool.length, k, p.seed).map((f) => ({ fold: f.fold, train: f.train.map((i) => pool[i]), validation: f.validation.map((i) => pool[i]) }));
  const { runDir, runId } = resolveKFoldDir(config, experiment, continued);
  const plan: KFoldPlan = { k, seed: p.seed, schedule, carryWeights: carry, secondPass, validation: folds.map((f) => f.validation), ...(heldOutTest ? { heldOutTest } : {}) };
  const runConfig: RunConfig = { ...baseRunConfig(p, config, experiment, runId, "kfold"), kfold: plan };
  const cfgFile = path.join(runDir, RUN_FILES.config);
  const steps = foldSteps(k, secondPass);
  let accepted: RecordedChange[] | undefined;
  if (!writeJsonExclusive(cfgFile, runConfig)) {
    // Another process (or an earlier call) created the run: continue it only with the same
    // settings, or with changes the user accepted and config.json records.
    const existing = readRunConfig(runDir);
    const changes = compareSettings(existing, runConfig);
    if (changes.length > 0) {
      if (!config.acceptChanges) throw changedSettingsError(runDir, changes);
      const next = steps.find((s) => !foldDone(runDir, s)) ?? steps[steps.length - 1];
      const updated = withRecordedChanges(runConfig, existing, changes, checkpointEpoch(path.join(runDir, next.dir, RUN_FILES.checkpoint)) + 1, next.dir);
      writeJsonAtomic(cfgFile, updated);
      accepted = updated.changes;
    }
  }

  const todo = config.fold !== undefined ? steps.filter((s) => s.fold === config.fold) : steps;
  if (continued && config.progress !== false) {
    const done = steps.filter((s) => foldDone(runDir, s)).map((s) => s.dir);
    process.stderr.write(`continuing K-fold run ${portablePath(runDir)}: ${done.length} of ${steps.length} fold(s) done${done.length ? ` (${done.join(", ")})` : ""}\n`);
  }
  let carried: { model: tf.LayersModel; optimizer: tf.Optimizer } | undefined;
  for (const step of todo) {
    if (foldDone(runDir, step)) {
      // Killed between a fold's metrics and its test scoring: score the saved model now.
      if (heldOutTest && !fs.existsSync(path.join(runDir, step.dir, RUN_FILES.testMetrics))) {
        const saved = await loadModelFile(path.join(runDir, step.dir, RUN_FILES.model, "model.json"));
        await scoreHeldOutTest(p, saved, path.join(runDir, step.dir), heldOutTest.indices, folds[step.fold].train);
        saved.dispose();
      }
      continue;
    }
    const foldDir = path.join(runDir, step.dir);
    // One process per fold: a second one on the same fold is refused, naming the first.
    const claim = claimDir(foldDir, `Fold ${step.fold} (${step.dir}) of ${portablePath(runDir)}`);
    try {
      if (foldDone(runDir, step)) continue; // finished by another process while this one loaded
      carried = await trainStep(step);
    } finally {
      claim.release();
    }
  }
  if (carried) {
    carried.model.dispose();
    carried.optimizer.dispose();
  }
  const allDone = steps.every((s) => foldDone(runDir, s));
  if (allDone && (config.merge ?? config.fold === undefined)) return mergeKFold(runDir);
  return readKFold(runDir);

  /** Trains one fold of the plan (claimed by this process); returns the carried model and optimizer, if carrying. */
  async function trainStep(step: FoldStep): Promise<typeof carried> {
    const stepIndex = steps.indexOf(step);
    const previous = stepIndex > 0 ? steps[stepIndex - 1] : undefined;
    const foldDir = path.join(runDir, step.dir);
    const f = folds[step.fold];
    const epochs = schedule[step.fold];
    fs.mkdirSync(foldDir, { recursive: true });
    const foldConfig: RunConfig = { ...runConfig, kind: "fold", fold: step.fold, hyper: { ...runConfig.hyper, epochs }, createdAt: new Date().toISOString() };
    if (accepted) writeJsonAtomic(path.join(foldDir, RUN_FILES.config), { ...foldConfig, changes: accepted });
    else writeJsonExclusive(path.join(foldDir, RUN_FILES.config), foldConfig);

    let model: tf.LayersModel;
    let optimizer: tf.Optimizer | undefined;
    const checkpointDir = path.join(foldDir, RUN_FILES.checkpoint);
    if (carry && carried) {
      ({ model, optimizer } = carried);
    } else {
      model = buildModel(p.spec.name, p.modelOptions);
      optimizer = newOptimizer(p.hyper.learningRate);
      if (carry && previous && !fs.existsSync(path.join(checkpointDir, "state.json"))) {
        // Carrying weights across processes or a resume: start from the previous fold's final state.
        const prevCheckpoint = path.join(runDir, previous.dir, RUN_FILES.checkpoint);
        if (!foldDone(runDir, previous) || !(await loadCheckpoint(prevCheckpoint, model, optimizer))) {
          throw new Error(`Fold ${step.dir} carries the weights of ${previous.dir}, which is not finished yet: run the folds in order (or without --carry-weights).`);
        }
      }
    }
    const { trained } = await trainAndRecord({
      p,
      dir: foldDir,
      train: {
        model,
        modelName: p.spec.name,
        task: p.spec.task,
        data: p.data,
        trainIndices: f.train,
        division: p.division,
        normalize: p.normalize,
        epochs,
        batchSize: p.hyper.batchSize,
        learningRate: p.hyper.learningRate,
        seed: p.seed + (step.pass - 1) * 1000,
        fold: step.fold,
        optimizer,
        callbacks: [...runCallbacks(config, p.hyper), resumeRecorder(foldDir, config.progress !== false ? { label: `fold ${step.fold + 1} (${step.dir}) of ${portablePath(runDir)}` } : undefined)],
        checkpointDir,
        ...trainingExtras(p, f.train),
      },
      heldOut: f.validation,
      trainIndices: f.train,
      split: "validation",
    });
    if (heldOutTest) await scoreHeldOutTest(p, model, foldDir, heldOutTest.indices, f.train);
    if (carry) return { model, optimizer: trained.optimizer };
    // The next fold starts fresh; the saved model/ is what remains of this one.
    fs.rmSync(checkpointDir, { recursive: true, force: true });
    model.dispose();
    trained.optimizer.dispose();
    return undefined;
  }
}

/** Scores a fold's model on the run's held-out test faces: test-metrics.json and test-predictions.json in its folder. */
async function scoreHeldOutTest(p: PreparedExperiment, model: tf.LayersModel, foldDir: string, test: readonly number[], trainIndices: readonly number[]): Promise<void> {
  const { metrics, predictions } = await evaluateHeldOut({ model, p, indices: test, trainIndices, split: "test", trainSeconds: 0, imagesPerSecond: 0 });
  writeJsonAtomic(path.join(foldDir, RUN_FILES.testPredictions), predictions);
  writeJsonAtomic(path.join(foldDir, RUN_FILES.testMetrics), metrics);
}

/**
 * Gathers the fold folders into the run's top-level history.json, predictions.json and
 * metrics.json (KFoldSummary). Safe to call again; call it once the folds run separately are done.
 */
export function mergeKFold(runDir: string): KFoldResult {
  const abs = path.resolve(runDir);
  const result = readKFold(abs);
  const missing = foldSteps(result.config.kfold!.k, result.config.kfold!.secondPass).filter((s) => !foldDone(abs, s));
  if (missing.length > 0) throw new Error(`Cannot merge ${portablePath(abs)}: ${missing.map((s) => s.dir).join(", ")} not finished yet. Run them (kfold --run <dir> --fold k) first.`);
  writeJsonAtomic(path.join(abs, RUN_FILES.history), result.history);
  writeJsonAtomic(path.join(abs, RUN_FILES.predictions), result.predictions);
  writeJsonAtomic(path.join(abs, RUN_FILES.metrics), result.summary);
  return result;
}
