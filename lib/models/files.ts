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
  const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  if (!json.modelTopology || !json.weightsManifest) throw new Error(`${modelJson} is not a tfjs layers model (no modelTopology/weightsManifest).`);
  const { specs, data } = readManifestWeights(json.weightsManifest, path.dirname(modelJson), (p) => `${modelJson} names weight file ${p}, which is missing next to it.`);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data }));
}
