/**
 * Using trained models: decode raw outputs to ages, groups and genders, load a saved model
 * (from a run folder or a model folder), predict any image files (no UTKFace name needed), and
 * write the predictions as CSV.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../engine/backend";
import { ColorMode, FaceRecord, Normalization, decodeImageFile, isImageFile, normalizePixels } from "../data/dataset";
import { AgeDivision, REPORT_AGE_GROUPS, ageDivision, ageGroupOf, decodeAgeGroup, decodeGender } from "../data/labels";
import type { ModelTask } from "../core/kinds";
import { DecodedPrediction, taskSpecs } from "../models/tasks";
import { writeFileAtomic } from "../core/files";
import { readJsonFile } from "../core/file-errors";
import { PredictionRow, RUN_FILES, RunConfig } from "../records/runs";
import { loadModelFile } from "../models/model-files";
import { inferenceModel } from "../models/fold";
import { BestFilePrediction, isBestModelDir, predictBestFiles } from "../best/model-folder";
// Registers the FaceNetStage layer class, so saved facenet-transfer models deserialise.
import "../models/facenet";

export type { DecodedPrediction } from "../models/tasks";

/**
 * Decodes row `i` of raw outputs (one Float32Array per output, as `predictOutputs` returns),
 * each by its task spec: group models -> most likely group and its mid age; regression -> age
 * (output * 100) and its group; gender -> P(female).
 */
export function decodeOutputs(task: ModelTask, outputs: readonly Float32Array[], i: number, division: AgeDivision = REPORT_AGE_GROUPS): DecodedPrediction {
  return Object.assign({}, ...taskSpecs(task).map((spec, k) => spec.decode(outputs[k], i, division))) as DecodedPrediction;
}

/** Prediction rows (real labels from the records + decoded outputs) of held-out samples. */
export function predictionRows(records: readonly FaceRecord[], indices: readonly number[], task: ModelTask, outputs: readonly Float32Array[], division: AgeDivision = REPORT_AGE_GROUPS): PredictionRow[] {
  return indices.map((idx, i) => {
    const r = records[idx];
    return { file: r.file, age: r.age, gender: r.gender, trueGroup: ageGroupOf(r.age, division), ...decodeOutputs(task, outputs, i, division) };
  });
}

/** What a saved model needs to be used: its task and input format. */
export interface ModelInfo {
  model: string;
  task: ModelTask;
  size: number;
  color: ColorMode;
  normalize: Normalization;
  ageDivision: string;
}

/** A loaded model with what it expects; `config` when loaded from a run folder. */
export interface TrainedModel {
  model: tf.LayersModel;
  info: ModelInfo;
  /** The folder holding model.json. */
  modelDir: string;
  config?: RunConfig;
}

/**
 * Loads a trained model from a run folder (results/<experiment>/<run-id>/, or a K-fold fold
 * folder), a model folder, or a model.json path.
 */
export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  await initBackend();
  const abs = path.resolve(dir);
  // Paths built from `dir` as the user typed it, so messages name the file the way they know it.
  const candidates = abs.endsWith(".json") ? [dir] : [path.join(dir, RUN_FILES.model, "model.json"), path.join(dir, "model.json")];
  const modelJson = candidates.find((c) => fs.existsSync(c));
  if (!modelJson) {
    const hint = fs.existsSync(path.join(abs, RUN_FILES.config)) && fs.existsSync(path.join(abs, "fold-01")) ? " This is a K-fold run: pass one fold's folder, e.g. .../fold-01." : "";
    throw new Error(`No trained model at "${dir}": expected a run folder with model/model.json, a model folder or a model.json.${hint}`);
  }
  const json = readJsonFile<{ userDefinedMetadata?: Partial<ModelInfo> }>(modelJson, "Save or copy the model again (train writes model/model.json and model/weights.bin).");
  const meta = (json.userDefinedMetadata ?? {}) as Partial<ModelInfo>;
  const runDir = path.basename(path.dirname(modelJson)) === RUN_FILES.model ? path.dirname(path.dirname(modelJson)) : undefined;
  const config = runDir && fs.existsSync(path.join(runDir, RUN_FILES.config)) ? readJsonFile<RunConfig>(path.join(runDir, RUN_FILES.config), "Repair it, or remove it: model/model.json also says what the model predicts.") : undefined;
  const info: Partial<ModelInfo> = config
    ? { model: config.model, task: config.task, size: config.size, color: config.color, normalize: config.normalize, ageDivision: config.hyper.ageDivision }
    : meta;
  if (!info.task || !info.size || !info.color) {
    throw new Error(`${modelJson} does not say what it predicts (no run config.json beside it and no userDefinedMetadata): it was not saved by this library.`);
  }
  const model = await loadModelFile(modelJson);
  return { model, info: { normalize: "unit", ageDivision: "report20", model: "unknown", ...info } as ModelInfo, modelDir: path.resolve(path.dirname(modelJson)), config };
}

/** One image's prediction; fields the model does not predict are absent. */
export type FilePrediction = BestFilePrediction;

/** Image files of a directory (sorted), or the file itself; a clear error when there are none. */
export function listImageFiles(fileOrDir: string): string[] {
  if (!fs.existsSync(fileOrDir)) throw new Error(`"${fileOrDir}" does not exist: pass an image file or a folder of images.`);
  if (fs.statSync(fileOrDir).isFile()) return [fileOrDir];
  const files = fs.readdirSync(fileOrDir).filter(isImageFile).sort().map((f) => path.join(fileOrDir, f));
  if (files.length === 0) throw new Error(`"${fileOrDir}" holds no image files (.jpg, .png, ...).`);
  return files;
}

/**
 * Predicts age and/or gender of image files (any names), with a model from a run folder, a
 * model folder or an already loaded TrainedModel. Images are decoded to the model's size and
 * colour and fed in small batches. A file that cannot be used (unreadable, not an image, cut
 * short) does not stop the others: its row carries `skipped` with the reason instead.
 */
export async function predictFiles(modelOrDir: string | TrainedModel, files: readonly string[], batchSize = 32): Promise<FilePrediction[]> {
  // A best-model folder (models/best: frozen backbones + heads) has its own predictor.
  if (typeof modelOrDir === "string" && isBestModelDir(modelOrDir)) return predictBestFiles(modelOrDir, files, batchSize);
  const tm = typeof modelOrDir === "string" ? await loadTrainedModel(modelOrDir) : modelOrDir;
  const { info } = tm;
  const out: FilePrediction[] = [];
  for (let s = 0; s < files.length; s += batchSize) {
    const chunk = files.slice(s, s + batchSize);
    const decoded = await Promise.all(
      chunk.map(async (f) => {
        try {
          return await decodeImageFile(f, info.size, info.color);
        } catch (e) {
          return { reason: (e as { reason?: string }).reason ?? (e as Error).message };
        }
      }),
    );
    const usable = decoded.filter((p): p is Uint8Array => p instanceof Uint8Array);
    const predicted = usable.length > 0 ? await predictPixels(tm, usable) : [];
    let k = 0;
    chunk.forEach((file, i) => {
      const p = decoded[i];
      out.push(p instanceof Uint8Array ? { file, ...predicted[k++] } : { file, skipped: p.reason });
    });
  }
  return out;
}

/**
 * Predicts faces already decoded to the model's size and colour (uint8 HWC, as
 * `decodeImageFile` returns them), in one batch; fields the model does not predict are absent.
 */
export async function predictPixels(tm: TrainedModel, pixels: readonly Uint8Array[]): Promise<Omit<FilePrediction, "file">[]> {
  const { info } = tm;
  const division = ageDivision(info.ageDivision);
  const channels = info.color === "rgb" ? 3 : 1;
  const per = info.size * info.size * channels;
  const flat = new Float32Array(pixels.length * per);
  pixels.forEach((p, i) => flat.set(normalizePixels(p, channels as 1 | 3, info.normalize), i * per));
  const outs = tf.tidy(() => {
    // Batch norm folded into the convolutions before it (lib/models/fold.ts): the same outputs, fewer passes.
    const y = inferenceModel(tm.model).predict(tf.tensor4d(flat, [pixels.length, info.size, info.size, channels]));
    return Array.isArray(y) ? y : [y];
  });
  const arrays = await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array));
  outs.forEach((t) => t.dispose());
  return pixels.map((_, i) => {
    const d = decodeOutputs(info.task, arrays, i, division);
    const row: Omit<FilePrediction, "file"> = {};
    if (d.predAge !== undefined) row.age = d.predAge;
    if (d.predGroup !== undefined && d.predGroup >= 0) row.ageGroup = decodeAgeGroup(d.predGroup, division);
    if (d.pFemale !== undefined) {
      row.pFemale = d.pFemale;
      row.gender = decodeGender(d.pFemale);
    }
    return row;
  });
}

function csvField(v: string | number | undefined): string {
  if (v === undefined) return "";
  const s = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV with columns file, age, age_group, gender, p_female, skipped (empty where the model has
 * no output; `skipped` holds the reason a file was not predicted).
 */
export function predictionsCsv(rows: readonly FilePrediction[]): string {
  const lines = ["file,age,age_group,gender,p_female,skipped"];
  for (const r of rows) lines.push([r.file, r.age === undefined ? undefined : r.age.toFixed(1), r.ageGroup, r.gender, r.pFemale, r.skipped].map(csvField).join(","));
  return lines.join("\n") + "\n";
}

/** Writes predictions as CSV (atomically). */
export function writePredictionsCsv(file: string, rows: readonly FilePrediction[]): void {
  writeFileAtomic(file, predictionsCsv(rows));
}
