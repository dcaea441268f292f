/**
 * The best model's fine-tuning path for the benchmark: face-api's stages after stage64 (stage128,
 * stage256 and the descriptor: seven residual blocks, three of them down-sampling) on the
 * cached 17x17x64 trunk maps, then a 20-way softmax head, as lib/best/fine-tuning.ts trains
 * them (there with the DLDL/gender heads and face-api's weights; weights do not change the
 * arithmetic). bench/torch_finetune.py is the same blocks in PyTorch.
 */
import * as tf from "@tensorflow/tfjs";
import { faceNetStageShape, faceNetTail } from "../models/facenet";

/** The trunk stage whose cached maps fine-tuning reads ("facenet-maps64"). */
export const FINETUNE_STAGE = "facenet_stage64" as const;

/** [h, w, c] of the maps the fine-tuning bench trains on: 17x17x64. */
export const FINETUNE_SHAPE = faceNetStageShape(FINETUNE_STAGE);

/** maps -> face-api's stages after stage64 -> dense `classes` softmax (seeded). */
export function buildFineTuneBench(options: { classes: number; seed?: number }): tf.LayersModel {
  const input = tf.input({ shape: FINETUNE_SHAPE, name: "maps" });
  const descriptor = faceNetTail(input, FINETUNE_STAGE);
  const out = tf.layers.dense({ units: options.classes, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed ?? 1 }) }).apply(descriptor) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "finetune_bench" });
}
