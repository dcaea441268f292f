/**
 * Throughput of one model on random data with the active backend: training steps
 * (forward, backward, Adam update: tfjs's trainOnBatch, the step model.fit runs) and inference.
 */
import * as tf from "@tensorflow/tfjs";
import { buildModel } from "../models/registry";
import { buildMobileNetV1, MOBILENET_SIZE } from "./mobilenet";
import { FoldedModel, foldBatchNorm } from "../models/fold";
import { buildFineTuneBench, buildPixelFineTuneBench, FINETUNE_PIXELS_SIDE, FINETUNE_SHAPE } from "./finetune";
import { DEFAULT_AUGMENT, augmentBatch } from "../best/augment";
import { mulberry32 } from "../data/splits";
import { newOptimizer } from "../training/train";

/**
 * The benchmark's networks, by their short names, each with the batch it is timed at unless
 * `--batch` says otherwise (the report's 25; MobileNet 8, as its figures have always been taken:
 * a training step at 224x224 and batch 25 outgrows the 4 GB heap of tfjs's wasm runtime).
 */
export const BENCH_MODELS = {
  /** The report's CNN (70x70x1, conv 32..512 + maxpool, dense 512..32, 20 sigmoid outputs). */
  cnn: { model: "cnn-age-sigmoid", channels: 1, size: 70, batch: 25 },
  /** VGG19's 16 convs on 70x70x3, dense 512, dropout 0.5, 20 softmax outputs. */
  vgg19: { model: "vgg19", channels: 3, size: 70, batch: 25 },
  /** MobileNet-v1 on 224x224x3 (depthwise-separable, BN, ReLU6), 20 softmax outputs; see mobilenet.ts. */
  mobilenet: { model: "mobilenet-v1", channels: 3, size: MOBILENET_SIZE, batch: 8 },
  /** The best model's fine-tuning: face-api's stages after stage64 on 17x17x64 maps; see finetune.ts. */
  finetune: { model: "facenet-finetune", channels: FINETUNE_SHAPE[2], size: FINETUNE_SHAPE[0], batch: 25 },
  /**
   * The same tail trained on augmented 150x150 faces through the frozen stem..stage64 (best train
   * --pixels): each step augments the batch in JS, runs the trunk forward, trains the tail.
   */
  "finetune-pixels": { model: "facenet-finetune-pixels", channels: 3, size: FINETUNE_PIXELS_SIDE, batch: 25 },
} as const;
export type BenchModel = keyof typeof BENCH_MODELS;

/**
 * tfjs's wasm runtime reports a failed allocation (its heap stops at 4 GB) as a bare "Aborted()";
 * say which model and batch, and what to try.
 */
export function wasmAbortHint(e: Error, model: BenchModel, batch: number): Error {
  if (!/^Aborted\(/.test(e.message)) return e;
  return new Error(`tfjs's wasm runtime aborted while timing ${model} at batch ${batch} (${e.message}); most often its 4 GB heap ran out: try a smaller --batch (${model}'s own is ${BENCH_MODELS[model].batch}).`);
}

/** Options of measureThroughput. */
export interface ThroughputOptions {
  model: BenchModel;
  batch: number;
  /** Seconds of training to time; inference gets half, as in the PyTorch reference. */
  seconds: number;
  /** Train for exactly this many steps instead of `seconds` (the fold worker's fixed workload). */
  steps?: number;
  /** Skip the inference measurement. */
  trainOnly?: boolean;
  /** Called after warm-up with the training step, e.g. to profile a few steps (bench --profile). */
  inspect?: (trainStep: () => Promise<void>) => Promise<void>;
}

/** Images per second measured by measureThroughput. */
export interface Throughput {
  train_img_s: number;
  infer_img_s: number;
  train_steps: number;
}

/** Runs `step` once to warm up (kernel setup, XNNPACK packing), then for `seconds` or `steps`. */
async function rate(step: () => Promise<void>, batch: number, seconds: number, steps?: number): Promise<{ imgS: number; n: number }> {
  await step();
  let n = 0;
  const t0 = performance.now();
  while (steps !== undefined ? n < steps : performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  return { imgS: (n * batch) / ((performance.now() - t0) / 1000), n };
}

/**
 * Times `trainStep` for options.seconds (or options.steps), lets options.inspect look at it,
 * then `predict` (its output read back and freed) for half the seconds unless options.trainOnly.
 */
async function timeSteps(options: ThroughputOptions, trainStep: () => Promise<void>, predict: () => tf.Tensor): Promise<Throughput> {
  const train = await rate(trainStep, options.batch, options.seconds, options.steps);
  if (options.inspect) await options.inspect(trainStep);
  let infer = { imgS: 0, n: 0 };
  if (!options.trainOnly) {
    infer = await rate(
      async () => {
        const out = predict();
        await out.data();
        out.dispose();
      },
      options.batch,
      options.seconds / 2,
    );
  }
  return { train_img_s: round1(train.imgS), infer_img_s: round1(infer.imgS), train_steps: train.n };
}

/**
 * Trains and infers one benchmark model on random inputs and one-hot labels. Loss: adam with
 * categorical cross-entropy, matching the PyTorch reference's CrossEntropyLoss (for the sigmoid
 * CNN this is a speed benchmark, not the report's loss; the cost is the same).
 */
export async function measureThroughput(options: ThroughputOptions): Promise<Throughput> {
  if (options.model === "finetune-pixels") return measurePixelFineTune(options);
  const spec = BENCH_MODELS[options.model];
  const model =
    options.model === "mobilenet" ? buildMobileNetV1({ classes: 20 }) : options.model === "finetune" ? buildFineTuneBench({ classes: 20 }) : buildModel(spec.model, { channels: spec.channels });
  // The project's Adam (lib/training/adam.ts), as every training uses it.
  model.compile({ optimizer: newOptimizer(1e-3), loss: "categoricalCrossentropy" });
  const x = tf.randomNormal([options.batch, spec.size, spec.size, spec.channels], 0, 1, "float32", 1);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([options.batch], 0, 20, "int32", 2), 20).toFloat());
  // Inference runs as predict runs a trained model: on its batch-norm fold (lib/models/fold.ts),
  // made from the trained weights at the first, untimed, inference step.
  let folded: FoldedModel | undefined;
  const predict = () => {
    folded ??= foldBatchNorm(model);
    return folded.model.predict(x) as tf.Tensor;
  };
  try {
    return await timeSteps(options, async () => void (await model.trainOnBatch(x, y)), predict);
  } finally {
    tf.dispose([x, y]);
    folded?.dispose();
    model.dispose();
  }
}

/**
 * The pixel fine-tuning path: random uint8 faces, augmented afresh for every step (augment.ts),
 * the frozen trunk forward, then a training step of the tail; inference runs un-augmented faces
 * through trunk and tail.
 */
async function measurePixelFineTune(options: ThroughputOptions): Promise<Throughput> {
  const side = FINETUNE_PIXELS_SIDE;
  const { trunk, tail } = buildPixelFineTuneBench({ classes: 20 });
  tail.compile({ optimizer: newOptimizer(1e-3), loss: "categoricalCrossentropy" });
  const rng = mulberry32(3);
  const pixels = Uint8Array.from({ length: options.batch * side * side * 3 }, () => Math.floor(rng() * 256));
  const rows = Uint32Array.from({ length: options.batch }, (_, i) => i);
  const shape: [number, number, number, number] = [options.batch, side, side, 3];
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([options.batch], 0, 20, "int32", 2), 20).toFloat());
  const plain = tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(pixels), shape), 255));
  try {
    const trainStep = async () => {
      const maps = tf.tidy(() => trunk.predict(tf.tensor4d(augmentBatch(pixels, side, rows, DEFAULT_AUGMENT, rng), shape)) as tf.Tensor);
      await tail.trainOnBatch(maps, y);
      maps.dispose();
    };
    return await timeSteps(options, trainStep, () => tf.tidy(() => tail.predict(trunk.predict(plain) as tf.Tensor) as tf.Tensor));
  } finally {
    tf.dispose([y, plain]);
    trunk.dispose();
    tail.dispose();
  }
}

/** One decimal, as the reference prints. */
export function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
