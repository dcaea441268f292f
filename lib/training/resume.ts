/**
 * Continuing interrupted runs (train and kfold): finding the run to continue, filling the
 * options the user did not repeat from its config.json, and refusing to continue with a
 * setting that would change the result unless the user accepts it, in which case config.json
 * records what changed at which epoch. A resumed run that silently trained fold 2 at another
 * learning rate than its config.json says is worse than a refused one.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { RUN_FILES, RunConfig, portablePath, resolveStoredPath } from "../records/runs";

/** One setting that differs between a run's config.json and the options of the call continuing it. */
export interface SettingChange {
  /** The option as the user types it, e.g. "--lr". */
  setting: string;
  /** Value in the run's config.json. */
  run: unknown;
  /** Value the continuing call asks for. */
  now: unknown;
}

/** A change accepted with --accept-changes, as config.json records it. */
export interface RecordedChange extends SettingChange {
  /** First epoch trained with the new value (1-based; in K-fold runs, of `fold`). */
  atEpoch: number;
  /** K-fold: the fold folder the change took effect in (e.g. "fold-02"). */
  atFold?: string;
  /** ISO time the change was accepted. */
  acceptedAt: string;
}

/** config.json of a run that was continued with accepted changes. */
export type ResumableRunConfig = RunConfig & { changes?: RecordedChange[] };

/**
 * The run options `fillFromStored` fills (a subset of ExperimentConfig, declared here so this
 * module does not import the experiment module that uses it).
 */
export interface ResumableOptions {
  model: string;
  experiment?: string;
  data?: unknown;
  dir?: string;
  size?: number;
  color?: RunConfig["color"];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  dropout?: number;
  profile?: RunConfig["profile"];
  maxImages?: number;
  testFraction?: number;
  validationFraction?: number;
  patience?: number;
  classWeights?: boolean;
  keepBest?: boolean;
  fineTuneEpochs?: number;
  fineTuneLearningRate?: number;
}

/** The flag that accepts changed settings when continuing a run. */
export const ACCEPT_CHANGES_FLAG = "--accept-changes";

const FILE_LIST = "image files of --dir";

/** Hash of the image files a run used (names in record order): a changed folder changes it. */
export function fileListHash(files: readonly string[]): string {
  const h = crypto.createHash("sha256");
  for (const f of files) h.update(f + "\n");
  return h.digest("hex").slice(0, 16);
}

/**
 * The settings that shape a run's result, keyed by the flag that sets them. Anything that
 * changes the weights, the images or the split is here; the backend and timings are not.
 */
export function resultSettings(cfg: RunConfig): Record<string, unknown> {
  const c = cfg as RunConfig & { fineTune?: { epochs: number; learningRate: number; unfrozen: string[] }; data: RunConfig["data"] & { fileList?: string } };
  const s: Record<string, unknown> = {
    "--model": c.model,
    "--size": c.size,
    "--color": c.color,
    "--lr": c.hyper.learningRate,
    "--batch": c.hyper.batchSize,
    "--seed": c.seed,
    "--dir": c.data.dir,
    "--max-images": c.data.maxImages ?? "all",
    "images used": c.data.used,
    "dropout": c.hyper.dropout,
    "age division": c.hyper.ageDivision,
    "normalisation": c.normalize,
    "--class-weights": Boolean(c.hyper.classWeights),
  };
  // Older runs have no file-list hash; the count above still catches most changes.
  if (c.data.fileList) s[FILE_LIST] = c.data.fileList;
  if (c.kind === "split") {
    s["--epochs"] = c.hyper.epochs;
    s["--test-fraction"] = c.split?.testFraction;
    s["--validation-fraction"] = c.hyper.validationFraction;
    s["--patience"] = c.hyper.patience;
    s["--keep-best"] = Boolean(c.hyper.keepBest);
    if (c.fineTune) {
      s["--fine-tune-epochs"] = c.fineTune.epochs;
      s["--fine-tune-lr"] = c.fineTune.learningRate;
      s["--fine-tune-layers"] = c.fineTune.unfrozen.join(",");
    }
  } else if (c.kfold) {
    s["--folds"] = c.kfold.k;
    s["epoch schedule (--first-epochs .. --last-epochs)"] = c.kfold.schedule.join(" ");
    s["--carry-weights"] = c.kfold.carryWeights;
    s["--second-pass"] = c.kfold.secondPass;
    if (c.kfold.heldOutTest) s["--hold-out-test"] = c.kfold.heldOutTest.testFraction;
  }
  return s;
}

/** The settings that differ between a stored config and a fresh one (same kind of run). */
export function compareSettings(stored: RunConfig, fresh: RunConfig): SettingChange[] {
  const a = resultSettings(stored);
  const b = resultSettings(fresh);
  // Runs saved before the file-list hash existed are compared on the image count alone.
  if (!(FILE_LIST in a)) delete b[FILE_LIST];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => ({ setting: k, run: a[k], now: b[k] }));
}

/** The refusal to continue a run with changed settings: every difference, and the two ways on. */
export function changedSettingsError(runDir: string, changes: readonly SettingChange[]): Error {
  const list = changes.map((c) => `  ${c.setting}: ${JSON.stringify(c.run)} in the run, ${JSON.stringify(c.now)} now`).join("\n");
  return new Error(
    `Will not continue ${portablePath(runDir)}: ${changes.length} setting(s) differ from its config.json:\n${list}\n` +
      `Repeat the run's settings (or leave those options out: they are taken from config.json), ` +
      `or pass ${ACCEPT_CHANGES_FLAG} to continue with the new values (config.json then records what changed at which epoch).`,
  );
}

/**
 * Options of a continuing call: what the user did not pass is taken from the run's config.json,
 * so `train --resume` alone continues exactly the run that was interrupted.
 */
export function fillFromStored<T extends ResumableOptions>(config: T, stored: RunConfig): T {
  const c = stored as ResumableRunConfig & { fineTune?: { epochs: number; learningRate: number } };
  const filled: ResumableOptions = {
    ...config,
    model: config.model || c.model,
    experiment: config.experiment ?? c.experiment,
    size: config.size ?? c.size,
    color: config.color ?? c.color,
    batchSize: config.batchSize ?? c.hyper.batchSize,
    learningRate: config.learningRate ?? c.hyper.learningRate,
    seed: config.seed ?? c.seed,
    dropout: config.dropout ?? c.hyper.dropout,
    profile: config.profile ?? c.profile,
    maxImages: config.maxImages ?? c.data.maxImages,
    classWeights: config.classWeights ?? Boolean(c.hyper.classWeights),
  };
  if (!config.dir && !config.data) filled.dir = resolveStoredPath(c.data.dir);
  if (c.kind === "split") {
    filled.epochs = config.epochs ?? c.hyper.epochs;
    filled.testFraction = config.testFraction ?? c.split?.testFraction;
    filled.validationFraction = config.validationFraction ?? c.hyper.validationFraction;
    filled.keepBest = config.keepBest ?? Boolean(c.hyper.keepBest);
    filled.patience = config.patience ?? c.hyper.patience;
    if (c.fineTune) {
      filled.fineTuneEpochs = config.fineTuneEpochs ?? c.fineTune.epochs;
      filled.fineTuneLearningRate = config.fineTuneLearningRate ?? c.fineTune.learningRate;
    }
  }
  return filled as T;
}

/** The K-fold options a continuing call did not pass, from the run's plan. */
export function fillKFoldFromStored<T extends { folds?: number; firstEpochs?: number; lastEpochs?: number; carryWeights?: boolean; secondPass?: boolean; holdOutTest?: number }>(config: T, stored: RunConfig): T {
  const plan = stored.kfold;
  if (!plan) return config;
  return {
    ...config,
    folds: config.folds ?? plan.k,
    firstEpochs: config.firstEpochs ?? plan.schedule[0],
    lastEpochs: config.lastEpochs ?? plan.schedule[plan.schedule.length - 1],
    carryWeights: config.carryWeights ?? plan.carryWeights,
    secondPass: config.secondPass ?? plan.secondPass,
    holdOutTest: config.holdOutTest ?? plan.heldOutTest?.testFraction,
  };
}

/** Reads a run's config.json, with an error naming the file when it is damaged. */
export function readRunConfig(runDir: string): ResumableRunConfig {
  const file = path.join(runDir, RUN_FILES.config);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`${portablePath(file)} does not exist: ${portablePath(runDir)} is not a run folder (pass the folder that holds config.json).`);
  }
  try {
    return JSON.parse(text) as ResumableRunConfig;
  } catch (e) {
    throw new Error(`${portablePath(file)} is not valid JSON (${(e as Error).message}): the run cannot be continued; start a new one.`);
  }
}

/**
 * The newest unfinished run (no metrics.json) of a model and kind under `root/experiment`,
 * or undefined. Shared by `train --resume` and `kfold --resume`.
 */
export function newestUnfinishedRun(root: string, experiment: string, kind: RunConfig["kind"], model: string): string | undefined {
  const expDir = path.join(root, experiment);
  if (!fs.existsSync(expDir)) return undefined;
  const found: { dir: string; createdAt: string }[] = [];
  for (const id of fs.readdirSync(expDir)) {
    const dir = path.join(expDir, id);
    if (fs.existsSync(path.join(dir, RUN_FILES.metrics))) continue;
    let cfg: RunConfig;
    try {
      cfg = JSON.parse(fs.readFileSync(path.join(dir, RUN_FILES.config), "utf8"));
    } catch {
      continue;
    }
    if (cfg.kind === kind && cfg.model === model) found.push({ dir, createdAt: cfg.createdAt ?? "" });
  }
  found.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.dir.localeCompare(b.dir)));
  return found.length ? found[found.length - 1].dir : undefined;
}

/** Last epoch saved in a checkpoint folder (0 when none); the fine-tune stage counts on from the frozen one. */
export function checkpointEpoch(checkpointDir: string): number {
  const read = (f: string) => {
    try {
      return (JSON.parse(fs.readFileSync(f, "utf8")) as { epoch: number }).epoch;
    } catch {
      return 0;
    }
  };
  return read(path.join(checkpointDir, "state.json")) + read(path.join(checkpointDir, "fine-tune", "state.json"));
}

/** Appends accepted changes to a config, marked with the first epoch they apply to. */
export function withRecordedChanges<T extends RunConfig>(fresh: T, stored: ResumableRunConfig, changes: readonly SettingChange[], atEpoch: number, atFold?: string): T & { changes: RecordedChange[] } {
  const acceptedAt = new Date().toISOString();
  return {
    ...fresh,
    runId: stored.runId,
    createdAt: stored.createdAt,
    changes: [...(stored.changes ?? []), ...changes.map((c) => ({ ...c, atEpoch, ...(atFold ? { atFold } : {}), acceptedAt }))],
  };
}
