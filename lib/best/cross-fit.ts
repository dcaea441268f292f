/**
 * Cross-fitting (issue 19's honest intervals): the recipe of a best-model folder trained K times,
 * each time on the training faces minus one fold, predicting that fold. Every training face gets
 * a prediction from a model that never saw it: K x fold size faces to calibrate the age interval
 * and the gender temperature on, instead of the 705 validation faces alone, whose chance
 * easiness narrowed the interval of the model before.
 *
 * The test split is never read. Each fold's predictions are written as soon as that fold is done
 * (data/.cache/crossfit/<key>/fold-k.json), so an interrupted run resumes at the first missing
 * fold; the key covers the recipe, the fold count and the training faces, so a changed recipe
 * starts afresh. The whole set is written to the model folder as out-of-fold-predictions.json,
 * which `best calibrate --from <folder> --out-of-fold` fits on.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { readJsonFile } from "../core/file-errors";
import { writeJsonAtomic } from "../core/files";
import { REPO_ROOT } from "../core/paths";
import { permutation } from "../data/splits";
import { initBackend } from "../engine/backend";
import { BackboneName } from "./backbones";
import { BEST_MODEL_FILE, BestModelFile } from "./model-folder";
import type { FeatureSet } from "./feature-cache";
import { BestSplit, loadBestSplit } from "./faces";
import { HeadConfig, HeadOutputs, averageOutputs, predictHeads } from "./head-training";
import { modelInputs } from "./fine-tuning";
import { fitConfig, inputsOf, loadFeatureSets, validationPredictions } from "./run";
import type { ValidationPrediction } from "./calibration";

/** The model folder's file of out-of-fold predictions of every training face. */
export const OUT_OF_FOLD_FILE = "out-of-fold-predictions.json";

/** out-of-fold-predictions.json. */
export interface OutOfFoldFile {
  /** The recipe's name (an ensemble's members joined by " + "). */
  model: string;
  /** A hash of the recipe (every member's config): calibrate refuses a folder whose recipe has changed since. */
  recipe: string;
  folds: number;
  /** Training faces each fold's model was fitted on (the smallest and largest fold's). */
  fitFaces: { min: number; max: number };
  /** Each fold's MAE on its own faces: how much a split of that size moves the figure. */
  foldMae: number[];
  /** One per training face, in the split's training order. */
  predictions: ValidationPrediction[];
  /** A stacked folder's members' own rows (same faces, same order), each with its recipe's hash: `predictions` is their stack. */
  members?: { model: string; recipe: string; predictions: ValidationPrediction[] }[];
}

/** Options of `crossFitBest`. */
export interface CrossFitOptions {
  /** The model folder whose best.json gives the recipe (its config, and its ensemble's). */
  modelDir: string;
  /** Number of folds (2..20; 5 by default). */
  folds?: number;
  /** UTKFace folder (default $UTKFACE_DIR, data/UTKFace, data/sample). */
  dir?: string;
  /** Feature cache folder (default data/.cache/features). */
  cacheDir?: string;
  /** Where the per-fold files go (default data/.cache/crossfit). */
  workDir?: string;
  log?: (line: string) => void;
}

/**
 * The K folds of the training faces (record indices): a seeded shuffle of `split.train`
 * (seed + 2: neither the test split's nor the validation's), dealt round-robin, so fold sizes
 * differ by one at most. Together they are the training split exactly, each face in one fold.
 */
export function crossFitFolds(split: BestSplit, folds: number): number[][] {
  if (!Number.isInteger(folds) || folds < 2 || folds > 20) throw new Error(`The number of folds must be a whole number from 2 to 20, got ${folds}.`);
  if (split.train.length < folds) throw new Error(`${split.train.length} training faces cannot be dealt into ${folds} folds.`);
  const out: number[][] = Array.from({ length: folds }, () => []);
  permutation(split.train.length, split.seed + 2).forEach((p, k) => out[k % folds].push(split.train[p]));
  return out.map((f) => f.sort((a, b) => a - b));
}

/** The recipe of a model folder: its configs (more than one for an ensemble). */
export function folderRecipe(modelDir: string): HeadConfig[] {
  const file = readJsonFile<BestModelFile>(path.join(modelDir, BEST_MODEL_FILE), "Is it a best-model folder (npm run cli -- best train)?");
  if (!file.config || typeof file.config !== "object") throw new Error(`${path.join(modelDir, BEST_MODEL_FILE)} has no "config": retrain the folder with npm run cli -- best train.`);
  return [file.config, ...(file.ensemble ?? []).map((e) => e.config)];
}

/** 16 hex digits of the SHA-256 of a value's JSON. */
function shortHash(value: unknown): string {
  return crypto.createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

/** A short hash of a recipe's configs. */
export function recipeKey(configs: readonly HeadConfig[]): string {
  return shortHash(configs);
}

/**
 * Out-of-fold rows of a recipe on the given folds of the training faces (record indices): per
 * fold, the recipe fitted on the other folds' faces predicts that fold (an ensemble's members
 * averaged). Each fold's rows are written as soon as it is done, under a key of the recipe, the
 * folds and the training faces, and read back on a rerun.
 */
export async function outOfFoldRows(
  configs: readonly HeadConfig[],
  split: BestSplit,
  sets: ReadonlyMap<string, FeatureSet>,
  parts: readonly number[][],
  workDir: string | undefined,
  log: (line: string) => void,
): Promise<{ predictions: ValidationPrediction[]; sizes: number[]; foldMae: number[] }> {
  const folds = parts.length;
  const key = shortHash({ configs, folds, train: split.train.map((i) => split.records[i].file) });
  const work = path.join(workDir ?? path.join(REPO_ROOT, "data", ".cache", "crossfit"), key);
  fs.mkdirSync(work, { recursive: true });
  const model = configs.map((c) => c.name).join(" + ");
  const predictions = new Map<string, ValidationPrediction>();
  const sizes: number[] = [];
  const foldMae: number[] = [];
  for (const [k, held] of parts.entries()) {
    const heldSet = new Set(held);
    const fit = split.train.filter((i) => !heldSet.has(i));
    sizes.push(fit.length);
    const file = path.join(work, `fold-${k + 1}.json`);
    let rows: ValidationPrediction[];
    if (fs.existsSync(file)) {
      rows = readJsonFile<{ predictions: ValidationPrediction[] }>(file, `Delete it and rerun: that fold is trained again.`).predictions;
      log(`[cross-fit] fold ${k + 1} of ${folds}: done before (${path.relative(process.cwd(), file)})`);
    } else {
      const t = Date.now();
      const outs: HeadOutputs[] = [];
      for (const cfg of configs) {
        log(`[cross-fit] fold ${k + 1} of ${folds}: ${cfg.name} on ${fit.length} training faces, predicting the other ${held.length}`);
        const heads = await fitConfig(cfg, split, sets, fit, undefined, log);
        const x = inputsOf(cfg, split, sets, held);
        outs.push(predictHeads(heads, x.plain, x.flipped));
        heads.model.dispose();
      }
      rows = validationPredictions(split, held, averageOutputs(outs));
      writeJsonAtomic(file, { model, fold: k + 1, folds, fitFaces: fit.length, predictions: rows });
      log(`[cross-fit] fold ${k + 1} of ${folds}: MAE ${maeOf(rows).toFixed(2)} on its ${rows.length} faces, ${((Date.now() - t) / 60000).toFixed(1)} min`);
    }
    if (rows.length !== held.length || rows.some((r, j) => r.file !== split.records[held[j]].file)) throw new Error(`${file} does not hold fold ${k + 1}'s faces: delete it and rerun.`);
    for (const r of rows) predictions.set(r.file, r);
    foldMae.push(Number(maeOf(rows).toFixed(4)));
  }
  return { predictions: split.train.map((i) => predictions.get(split.records[i].file)!), sizes, foldMae };
}

const maeOf = (rows: readonly ValidationPrediction[]) => rows.reduce((sum, r) => sum + Math.abs(r.predAge - r.age), 0) / rows.length;

/** Trains the folder's recipe once per fold and writes every training face's out-of-fold prediction. */
export async function crossFitBest(o: CrossFitOptions): Promise<OutOfFoldFile> {
  const log = o.log ?? console.log;
  const folds = o.folds ?? 5;
  await initBackend();
  const bestFile = readJsonFile<BestModelFile>(path.join(o.modelDir, BEST_MODEL_FILE), "Is it a best-model folder (npm run cli -- best train)?");
  if (bestFile.stack) throw new Error(`${path.join(o.modelDir, BEST_MODEL_FILE)} is stacked: its out-of-fold predictions are written by npm run cli -- best stack --from ${o.modelDir} (which reuses the first member's cross-fit).`);
  const configs = folderRecipe(o.modelDir);
  const all = await loadBestSplit({ dir: o.dir });
  const parts = crossFitFolds(all, folds);
  const backbones = new Set<BackboneName>();
  for (const c of configs) [...c.features, ...modelInputs(c)].forEach((f) => backbones.add(f.backbone));
  const { split, sets } = await loadFeatureSets(all, [...backbones], { cacheDir: o.cacheDir, log });
  if (split.records.length !== all.records.length) throw new Error("Cross-fitting needs features of every face: extract them with npm run cli -- best features.");
  const { predictions, sizes, foldMae } = await outOfFoldRows(configs, split, sets, parts, o.workDir, log);
  const model = configs.map((c) => c.name).join(" + ");
  const result: OutOfFoldFile = {
    model,
    recipe: recipeKey(configs),
    folds,
    fitFaces: { min: Math.min(...sizes), max: Math.max(...sizes) },
    foldMae,
    predictions,
  };
  writeJsonAtomic(path.join(o.modelDir, OUT_OF_FOLD_FILE), result);
  log(`[cross-fit] ${result.predictions.length} training faces predicted out of fold: MAE ${maeOf(result.predictions).toFixed(2)} (folds ${foldMae.map((m) => m.toFixed(2)).join(", ")}); ${path.join(o.modelDir, OUT_OF_FOLD_FILE)} written`);
  return result;
}
