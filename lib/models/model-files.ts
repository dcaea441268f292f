/**
 * Trained models on disk, in the tfjs layers format (model.json + weights.bin): saving after a
 * run and loading for evaluation and prediction. Apart from the trainer, so using a model
 * never imports the training loop.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic, writeJsonAtomic } from "../core/files";
import { readManifestWeights } from "../core/weights";
import { readJsonFile } from "../core/file-errors";

/**
 * Saves a model in the tfjs layers format (model.json + weights.bin) into `dir`, replacing
 * what is there; files appear atomically. With `float16`, float32 weights are stored as
 * float16 (tfjs's own "float16" weight quantization, read back by any tfjs loader): half the
 * bytes, for models committed to the repository.
 */
export async function saveModel(model: tf.LayersModel, dir: string, extra: Record<string, unknown> = {}, options: { float16?: boolean } = {}): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.mkdirSync(dir, { recursive: true });
      let weightData: Uint8Array = new Uint8Array(artifacts.weightData as ArrayBuffer);
      let specs = artifacts.weightSpecs ?? [];
      if (options.float16) ({ data: weightData, specs } = toFloat16(weightData, specs));
      writeFileAtomic(path.join(dir, "weights.bin"), weightData);
      writeJsonAtomic(path.join(dir, "model.json"), {
        modelTopology: artifacts.modelTopology,
        format: "layers-model",
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
        userDefinedMetadata: extra,
      });
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
}

/** Loads a model saved by `saveModel` (or any tfjs layers model.json with its weight files). */
export async function loadModelFile(modelJson: string): Promise<tf.LayersModel> {
  if (!fs.existsSync(modelJson)) throw new Error(`${modelJson} does not exist: expected a tfjs layers model.json.`);
  const json = readJsonFile<{ modelTopology?: unknown; weightsManifest?: tf.io.WeightsManifestConfig }>(modelJson, "Save or copy the model again (train writes model/model.json and model/weights.bin).");
  if (!json.modelTopology || !json.weightsManifest) throw new Error(`${modelJson} is not a tfjs layers model (no modelTopology/weightsManifest).`);
  const { specs, data } = readManifestWeights(json.weightsManifest, path.dirname(modelJson), (p) => `${modelJson} names weight file ${p}, which is missing next to it.`);
  // A cut-short weights file would otherwise fail deep inside tfjs without naming the file.
  const bytesPer: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2 };
  const needed = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * (s.quantization ? bytesPer[s.quantization.dtype] ?? 1 : bytesPer[s.dtype] ?? 4), 0);
  if (data.byteLength !== needed) {
    const files = json.weightsManifest.flatMap((g) => g.paths.map((p) => path.join(path.dirname(modelJson), p)));
    throw new Error(
      `${files.join(" + ")} hold(s) ${data.byteLength} bytes but ${modelJson} describes ${needed}: the weights file is ${data.byteLength < needed ? "cut short" : "not the one saved with this model.json"} (an interrupted copy or save). Save or copy the model again.`,
    );
  }
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data }));
}

/** IEEE half-precision bits of a float (round to nearest even; overflow to infinity). */
export function float16Bits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // too small: signed zero
    mant |= 0x800000; // subnormal half: shift the implicit bit in
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // Rounding may carry into the exponent, which is the right result (up to infinity).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** float32 weights -> float16 with tfjs's quantization spec; other dtypes are copied as they are. */
function toFloat16(data: Uint8Array, specs: tf.io.WeightsManifestEntry[]): { data: Uint8Array; specs: tf.io.WeightsManifestEntry[] } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = count * 4; // float32 and int32 alike; layers models hold nothing else
    if (spec.dtype === "float32" && !spec.quantization) {
      const values = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + bytes));
      const half = new Uint16Array(count);
      for (let i = 0; i < count; i++) half[i] = float16Bits(values[i]);
      parts.push(new Uint8Array(half.buffer));
      out.push({ ...spec, quantization: { dtype: "float16" } });
    } else {
      parts.push(data.subarray(offset, offset + bytes));
      out.push(spec);
    }
    offset += bytes;
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const merged = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    merged.set(p, at);
    at += p.length;
  }
  return { data: merged, specs: out };
}
