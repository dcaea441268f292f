/**
 * Using a `best` model folder (models/best/): its heads (tfjs layers model in heads/) and
 * best.json (which backbones and columns it reads, the feature standardiser, whether it averages
 * mirrored views). The backbones themselves load from their npm packages, so the folder stays
 * small and works on a fresh clone after `npm install`.
 */
import * as fs from "fs";
import * as path from "path";
import { initBackend } from "../engine/backend";
import { decodeAgeGroup, decodeGender, REPORT_AGE_GROUPS, ageGroupOf } from "../data/labels";
import { Backbone, loadBackbone } from "./backbones";
import { extractFeatureSet, FeatureSet } from "./feature-cache";
import { Standardizer } from "./heads";
import { loadModelFile } from "../models/model-files";
import { readJsonFile } from "../core/file-errors";
import { FeaturePart, HeadConfig, HeadOutputs, averageOutputs, fuseFeatures, predictHeads } from "./head-training";
import { modelInputs } from "./fine-tuning";
import { AgeIntervalCalibration, BestCalibration, IntervalInputs, ageInterval, calibratedPFemale, intervalInputs } from "./calibration";
import { BestStack, stackOne } from "./stack-weights";
import type * as tf from "@tensorflow/tfjs";

/**
 * One image's prediction, from any model (predict.ts re-exports it as FilePrediction; it lives
 * here because predict.ts imports this module). Fields the model does not predict are absent.
 */
export interface BestFilePrediction {
  file: string;
  /** Predicted age in years (regression) or the predicted group's mid age. */
  age?: number;
  /** Predicted group label, e.g. "25 - 29". */
  ageGroup?: string;
  /** "Male" or "Female". */
  gender?: string;
  pFemale?: number;
  /**
   * The age interval (years) of a calibrated best model: its distribution's 10th-90th
   * percentiles widened on validation faces to hold 80% of real ages (best.json's
   * calibration.age); absent for other models and older best.json files.
   */
  ageLow?: number;
  ageHigh?: number;
  /** Why the file was not predicted (unreadable, not an image, cut short); absent when it was. */
  skipped?: string;
}

/** The file that marks a best-model folder. */
export const BEST_MODEL_FILE = "best.json";
/** Format tag of best.json, bumped when its meaning changes. */
export const BEST_MODEL_FORMAT = "utkface-best-v3";
/**
 * The format of an ensemble's best.json: v3 plus `ensemble`, the members after the first. A
 * reader of v3 alone would predict with the first member only, so it refuses the file instead.
 */
export const BEST_ENSEMBLE_FORMAT = "utkface-best-v4";
/**
 * The format of a stacked folder's best.json: v4 plus `stack`, the weights combining the members
 * (lib/best/stack.ts) in place of v4's plain average, which a v4 reader would apply instead.
 */
export const BEST_STACK_FORMAT = "utkface-best-v5";
/**
 * Formats this library reads: v1 (frozen features only), v2 (optionally fine-tuned, standardizer
 * may be null), v3 (v2 plus an optional `calibration`: age interval, gender temperature), v4
 * (v3 plus `ensemble`) and v5 (v4 plus `stack`).
 */
const READABLE_FORMATS = ["utkface-best-v1", "utkface-best-v2", BEST_MODEL_FORMAT, BEST_ENSEMBLE_FORMAT, BEST_STACK_FORMAT];

/** The folder of an ensemble member's heads inside a model folder: heads/, heads-2/, heads-3/ ... */
export function headsFolder(member: number): string {
  return member === 0 ? "heads" : `heads-${member + 1}`;
}

/** One model of a best-model folder: its settings, standardiser and (loaded) heads. */
export interface BestMember {
  config: HeadConfig;
  standardizer: Standardizer | null;
  heads: tf.LayersModel;
}

/** Contents of best.json. */
export interface BestModelFile {
  format: string;
  config: HeadConfig;
  /** z-scores of the fused features; null when the model reads its inputs as they are (fine-tuned). */
  standardizer: Standardizer | null;
  /** The backbones read, with their packages, licences and preprocessing (for people reading the file). */
  backbones?: { backbone: string; columns?: string; package: string; licence: string; preprocessing: string }[];
  /** Per backbone: whether its mirrored features were used (false: plain features stand in). */
  mirrored?: Record<string, boolean>;
  /** How sure it is (issue 19): fitted on validation faces; absent in older files (no interval, raw P(female)). */
  calibration?: BestCalibration;
  /** An ensemble's members after the first (format v4): their heads folder and settings; the outputs of all are averaged. */
  ensemble?: { heads: string; config: HeadConfig; standardizer: Standardizer | null }[];
  /** A stacked folder's weights (format v5): the members are combined by these instead of averaged. */
  stack?: BestStack;
  /** Anything else worth keeping beside the model (metrics summary, data, dates). */
  [key: string]: unknown;
}

/** A loaded best model. */
export interface BestModel {
  dir: string;
  file: BestModelFile;
  /** The first member's heads (the only ones of a single model). */
  heads: tf.LayersModel;
  /** Every member, the first included; their outputs are averaged. */
  members: BestMember[];
  backbones: Map<string, Backbone>;
}

/** True when `dir` is a best-model folder (holds best.json). */
export function isBestModelDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, BEST_MODEL_FILE));
}

/** What to do about a damaged best-model file, for the messages that name it. */
const BEST_FIX = "Restore the folder from where it came (models/best: git checkout -- models/best) or retrain it (npm run cli -- best train --out <dir>).";

/** Reads best.json: a damaged file, or one without the parts the predictor reads, is an error naming it. */
function readBestModelJson(file: string): BestModelFile {
  const json = readJsonFile<BestModelFile>(file, BEST_FIX);
  const missing = !json || typeof json !== "object" ? "any settings" : typeof json.config !== "object" || json.config === null ? '"config" (the heads\' settings)' : !("standardizer" in json) ? '"standardizer"' : undefined;
  if (missing) throw new Error(`${file} is damaged: it has no ${missing}. ${BEST_FIX}`);
  return json;
}

/** Loads a best-model folder: best.json, heads/model.json and the backbones it names. */
export async function loadBestModel(dir: string): Promise<BestModel> {
  await initBackend();
  const file = path.join(dir, BEST_MODEL_FILE);
  if (!fs.existsSync(file)) throw new Error(`${dir} is not a best-model folder: ${BEST_MODEL_FILE} is missing (train one with npm run cli -- best train).`);
  const json = readBestModelJson(file);
  if (!READABLE_FORMATS.includes(json.format)) throw new Error(`${file} has format "${json.format}", this library reads ${READABLE_FORMATS.map((f) => `"${f}"`).join(" and ")}: retrain it (npm run cli -- best train).`);
  const specs = [{ heads: headsFolder(0), config: json.config, standardizer: json.standardizer }, ...(json.ensemble ?? [])];
  if (json.ensemble !== undefined && (!Array.isArray(json.ensemble) || json.ensemble.some((e) => typeof e?.heads !== "string" || typeof e.config !== "object" || e.config === null))) {
    throw new Error(`${file} is damaged: its "ensemble" is not a list of heads folders with their settings. ${BEST_FIX}`);
  }
  const st = json.stack;
  if (st !== undefined && (!Array.isArray(st?.ageWeights) || st.ageWeights.length !== specs.length || !Array.isArray(st.gender?.weights) || st.gender.weights.length !== specs.length || typeof st.gender.intercept !== "number")) {
    throw new Error(`${file} is damaged: its "stack" does not hold an age weight and a gender weight for each of its ${specs.length} members. ${BEST_FIX}`);
  }
  const members: BestMember[] = [];
  const backbones = new Map<string, Backbone>();
  try {
    for (const m of specs) members.push({ config: m.config, standardizer: m.standardizer ?? null, heads: await loadModelFile(path.join(dir, m.heads, "model.json")) });
    for (const m of members) for (const part of modelInputs(m.config)) if (!backbones.has(part.backbone)) backbones.set(part.backbone, await loadBackbone(part.backbone));
  } catch (e) {
    members.forEach((m) => m.heads.dispose());
    backbones.forEach((b) => b.dispose());
    throw e;
  }
  return { dir, file: json, heads: members[0].heads, members, backbones };
}

/** Frees the heads and backbones of a loaded best model. */
export function disposeBestModel(m: BestModel): void {
  m.members.forEach((x) => x.heads.dispose());
  m.backbones.forEach((b) => b.dispose());
}

/**
 * Each face's expected age, its distribution's percentiles (the calibration's levels, else the
 * 10th and 90th) and raw P(female), from the members' head outputs: their average (one model, an
 * averaged ensemble) or, for a stacked folder, their stack (lib/best/stack.ts).
 */
export function combinedSummaries(outs: readonly HeadOutputs[], stack: BestStack | undefined, levels?: Pick<AgeIntervalCalibration, "lowQuantile" | "highQuantile">): (IntervalInputs & { pFemale: number })[] {
  if (!stack) {
    const pred = averageOutputs(outs);
    return intervalInputs(pred.ageProbabilities, pred.n, levels).map((x, i) => ({ ...x, pFemale: pred.pFemale[i] }));
  }
  const each = outs.map((o) => intervalInputs(o.ageProbabilities, o.n, levels).map((x, i) => ({ ...x, pFemale: o.pFemale[i] })));
  return each[0].map((_, i) => stackOne(stack, each.map((e) => e[i])));
}

/**
 * Predicts image files (any names) with a best model: each backbone's features of the faces as
 * they are and mirrored, fused, standardised, through the heads, views averaged. Files go in
 * batches of `batchSize`; `onBatch` reports progress. A file that cannot be used gets a row
 * with `skipped` (the reason) instead of a prediction.
 */
export async function predictBestFiles(modelOrDir: string | BestModel, files: readonly string[], batchSize = 32, onBatch?: (done: number, total: number) => void): Promise<BestFilePrediction[]> {
  const m = typeof modelOrDir === "string" ? await loadBestModel(modelOrDir) : modelOrDir;
  const out: BestFilePrediction[] = [];
  try {
    const predictChunk = async (chunk: readonly string[]): Promise<BestFilePrediction[]> => {
      const sets = new Map<string, FeatureSet>();
      for (const [name, backbone] of m.backbones) sets.set(name, await extractFeatureSet(chunk, name, { cache: false, loaded: backbone, mirrored: m.file.mirrored?.[name] ?? true }));
      const rows = chunk.map((_, i) => i);
      const outs = m.members.map((x) => {
        const parts: FeaturePart[] = modelInputs(x.config);
        return predictHeads({ model: x.heads, standardizer: x.standardizer, config: x.config }, fuseFeatures(sets, parts, rows, "plain"), fuseFeatures(sets, parts, rows, "flipped"));
      });
      const cal = m.file.calibration;
      const summaries = combinedSummaries(outs, m.file.stack, cal?.age);
      return chunk.map((file, i) => {
        const x = summaries[i];
        const pFemale = cal?.gender ? calibratedPFemale(x.pFemale, cal.gender.temperature) : x.pFemale;
        const range = cal?.age && ageInterval(x, cal.age);
        return { file, age: x.predAge, ageGroup: decodeAgeGroup(ageGroupOf(x.predAge, REPORT_AGE_GROUPS), REPORT_AGE_GROUPS), gender: decodeGender(pFemale), pFemale, ...(range && { ageLow: range.low, ageHigh: range.high }) };
      });
    };
    for (let s = 0; s < files.length; s += batchSize) {
      const chunk = files.slice(s, s + batchSize);
      try {
        out.push(...(await predictChunk(chunk)));
      } catch {
        // A file that cannot be used does not stop the others: redo the batch one file at a
        // time and list the bad ones with their reason, as predictFiles does.
        for (const file of chunk) {
          try {
            out.push(...(await predictChunk([file])));
          } catch (e) {
            out.push({ file, skipped: (e as { reason?: string }).reason ?? (e as Error).message });
          }
        }
      }
      onBatch?.(Math.min(files.length, s + batchSize), files.length);
    }
  } finally {
    if (typeof modelOrDir === "string") disposeBestModel(m);
  }
  return out;
}
