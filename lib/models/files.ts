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
 * what is there; files appear atomically.
 */
export async function saveModel(model: tf.LayersModel, dir: string, extra: Record<string, unknown> = {}): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.mkdirSync(dir, { recursive: true });
      const weightData = artifacts.weightData as ArrayBuffer;
      writeFileAtomic(path.join(dir, "weights.bin"), new Uint8Array(weightData));
      writeJsonAtomic(path.join(dir, "model.json"), {
        modelTopology: artifacts.modelTopology,
        format: "layers-model",
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
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
