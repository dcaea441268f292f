/**
 * The best model's fine-tuning path for the benchmark: face-api's stages after stage64 (stage128,
 * stage256 and the descriptor: seven residual blocks, three of them down-sampling) on the
 * cached 17x17x64 trunk maps, then a 20-way softmax head, as lib/best/fine-tuning.ts trains
 * them (there with the DLDL/gender heads and face-api's weights; weights do not change the
 * arithmetic). bench/torch_finetune.py is the same blocks in PyTorch.
 */
import * as tf from "@tensorflow/tfjs";
import { FACENET_NATIVE_SIZE, buildFaceNetTrunk, faceNetStageShape, faceNetTail } from "../models/facenet";

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

/** Side of the faces the pixel fine-tuning bench reads: face-api's input, 150x150 RGB. */
export const FINETUNE_PIXELS_SIDE = FACENET_NATIVE_SIZE;

/**
 * The best model's fine-tuning on augmented pixels (best train --pixels): the frozen trunk (stem
 * to stage64, face-api's weights, forward only) under the trainable tail of `buildFineTuneBench`.
 * bench/torch_finetune.py --model finetune-pixels is the same in PyTorch.
 */
export function buildPixelFineTuneBench(options: { classes: number; seed?: number }): { trunk: tf.LayersModel; tail: tf.LayersModel } {
  return { trunk: buildFaceNetTrunk(FINETUNE_STAGE, FINETUNE_PIXELS_SIDE), tail: buildFineTuneBench(options) };
}
