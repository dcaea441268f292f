/**
 * The one training loop, for every model: batches are built one at a time from the uint8
 * pixels (imagesTensor), each step runs inside tf.tidy, the optimizer is Adam, and progress,
 * early stopping and history plug in as callbacks. With a checkpoint folder the loop saves
 * weights, Adam's moments and the epoch after every epoch, and resumes from them, with batch
 * order drawn from a seed per (fold, epoch) so a resumed run repeats an uninterrupted one.
 * Checkpoint files live in ./checkpoints, saved models in lib/models/model-files.ts.
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchEndInfo, TrainBeginInfo, TrainingCallback } from "./callbacks";
import { FaceDataset, FaceRecord, Normalization, imagesTensor } from "../data/dataset";
import { AgeDivision, REPORT_AGE_GROUPS } from "../data/labels";
import type { ModelTask } from "../core/kinds";
import { taskLosses, taskSpecs } from "../models/tasks";
import { BestWeights, loadCheckpoint, readBestWeights, restoreBestWeights, saveBestWeights, saveCheckpoint } from "./checkpoints";
import type { EpochRecord } from "../records/runs";
import { permutation } from "../data/splits";
import { FusedAdamOptimizer } from "./adam";

/** Activation of a model's output layer (undefined when it has none by that name). */
function outputActivation(model: tf.LayersModel, name: string): string | undefined {
  try {
    return (model.getLayer(name).getConfig() as { activation?: string }).activation;
  } catch {
    return undefined;
  }
}

/** Loss name per output ("age", "gender") for a model of a task: the task specs' losses for its heads. */
export function lossesFor(task: ModelTask, model: tf.LayersModel): Record<string, string> {
  return taskLosses(task, (output) => outputActivation(model, output));
}

/**
 * Target tensors of the given samples, one per output: one-hot groups, age / 100, or the gender
 * code (1 = female). A sample outside the division is an error: filter with the division first.
 */
export function targetTensors(records: readonly FaceRecord[], indices: readonly number[], task: ModelTask, division: AgeDivision = REPORT_AGE_GROUPS): tf.Tensor[] {
  return taskSpecs(task).map((spec) => spec.targets(records, indices, division));
}

function lossFn(name: string): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  switch (name) {
    case "binaryCrossentropy":
      return tf.metrics.binaryCrossentropy;
    case "categoricalCrossentropy":
      return tf.metrics.categoricalCrossentropy;
    case "meanSquaredError":
      return tf.metrics.meanSquaredError;
    default:
      throw new Error(`Unknown loss "${name}".`);
  }
}

/**
 * Loss (sum over outputs of each output's mean loss) and metric scalars of predictions against
 * targets. Used for training batches and for validation, so both report the same figures.
 */
export function lossAndMetrics(task: ModelTask, losses: Record<string, string>, preds: tf.Tensor[], ys: tf.Tensor[], classWeights?: Record<string, number[]>): { loss: tf.Scalar; metrics: Record<string, tf.Scalar> } {
  let loss = tf.scalar(0);
  const metrics: Record<string, tf.Scalar> = {};
  taskSpecs(task).forEach((spec, i) => {
    const perSample = lossFn(losses[spec.output])(ys[i], preds[i]);
    const w = classWeights?.[spec.output];
    // Keras's class_weight: each face's loss times its class's weight, then the plain mean.
    loss = tf.add(loss, tf.mean(w ? tf.mul(perSample, sampleWeights(ys[i], w)) : perSample)) as tf.Scalar;
    metrics[spec.metric] = spec.batchMetric(ys[i], preds[i]);
  });
  return { loss, metrics };
}

/** Each face's class weight from its target row: one-hot rows pick their class, a 0/1 column (gender) its code. */
function sampleWeights(y: tf.Tensor, weights: number[]): tf.Tensor1D {
  const units = y.shape[y.shape.length - 1] ?? 1;
  if (units === 1) {
    const flat = y.reshape([-1]);
    return tf.add(tf.mul(flat, weights[1]), tf.mul(tf.sub(1, flat), weights[0])) as tf.Tensor1D;
  }
  if (units !== weights.length) throw new Error(`Class weights list ${weights.length} classes but the output has ${units} units.`);
  return tf.matMul(y as tf.Tensor2D, tf.tensor2d(weights, [units, 1])).reshape([-1]) as tf.Tensor1D;
}

/**
 * The optimizer every training of the project uses (HyperParameters.optimizer "adam"): tfjs's
 * Adam with its defaults (beta1 0.9, beta2 0.999, the backend's epsilon), its update fused into
 * one kernel where the engine has it (./adam).
 */
export function newOptimizer(learningRate: number): tf.Optimizer {
  return new FusedAdamOptimizer(learningRate, 0.9, 0.999);
}

/** Options of `trainModel`. */
export interface TrainOptions {
  model: tf.LayersModel;
  /** Name shown by progress callbacks. */
  modelName: string;
  task: ModelTask;
  data: FaceDataset;
  trainIndices: readonly number[];
  /** Watched after each epoch (validation loss and metrics); never trained on. */
  validationIndices?: readonly number[];
  division?: AgeDivision;
  normalize?: Normalization;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seeds the batch order of every epoch (with the fold number). */
  seed: number;
  fold?: number;
  /** An optimizer to continue with (K-fold carrying weights); default a new Adam. */
  optimizer?: tf.Optimizer;
  callbacks?: TrainingCallback[];
  /** Save weights + optimizer state + epoch here after every epoch, and resume from it. */
  checkpointDir?: string;
  /** Per-output class weights of the training loss (balancedClassWeights); validation stays unweighted. */
  classWeights?: Record<string, number[]>;
  /**
   * Keep the epoch with the lowest validation loss: its weights are saved (in checkpointDir/best
   * when checkpointing, so a resume keeps it) and restored into the model when training ends.
   */
  keepBest?: boolean;
}

/** What `trainModel` returns. */
export interface TrainResult {
  history: EpochRecord[];
  /** Seconds spent training in this call plus any resumed epochs' recorded seconds. */
  seconds: number;
  imagesPerSecond: number;
  stoppedEarly: boolean;
  /** Epoch the loop resumed after (0 when it started fresh). */
  resumedFrom: number;
  /** With keepBest: the epoch whose weights the model holds at the end. */
  bestEpoch?: number;
  optimizer: tf.Optimizer;
}

/** Seed of the batch order of one epoch of one fold: distinct, and repeatable after a resume. */
export function epochSeed(seed: number, fold: number | undefined, epoch: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [(fold ?? -1) + 1, epoch]) {
    h = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}

/** Model outputs of a batch as an array (single-output models return one tensor). */
function asArray(t: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(t) ? t : [t];
}

/** Trains a model with the one loop; returns the history. See the module comment. */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const division = o.division ?? REPORT_AGE_GROUPS;
  const normalize = o.normalize ?? "unit";
  const callbacks = o.callbacks ?? [];
  const losses = lossesFor(o.task, o.model);
  const n = o.trainIndices.length;
  if (n === 0) throw new Error(`No training images for ${o.modelName}: the split left the training set empty.`);
  if (!(o.batchSize >= 1)) throw new Error(`Batch size must be at least 1, got ${o.batchSize}.`);
  const optimizer = o.optimizer ?? newOptimizer(o.learningRate);
  const batches = Math.ceil(n / o.batchSize);
  const vars = o.model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());

  let history: EpochRecord[] = [];
  let startEpoch = 1;
  if (o.checkpointDir) {
    const resumed = await loadCheckpoint(o.checkpointDir, o.model, optimizer);
    if (resumed) {
      history = resumed.history;
      startEpoch = resumed.epoch + 1;
    }
  }
  if (o.keepBest && !(o.validationIndices && o.validationIndices.length > 0)) {
    throw new Error(`keepBest (--keep-best) picks the epoch by validation loss, but ${o.modelName} has no validation faces: set a validation fraction (--validation-fraction).`);
  }
  let best = o.keepBest ? readBestWeights(o.checkpointDir) : undefined;
  const info: TrainBeginInfo = { fold: o.fold, startEpoch, epochs: o.epochs, batchesPerEpoch: batches, trainImages: n, model: o.modelName };
  for (const cb of callbacks) await cb.onTrainBegin?.(info);

  let stoppedEarly = false;
  for (let epoch = startEpoch; epoch <= o.epochs && !stoppedEarly; epoch++) {
    for (const cb of callbacks) await cb.onEpochBegin?.(epoch, info);
    const order = permutation(n, epochSeed(o.seed, o.fold, epoch)).map((i) => o.trainIndices[i]);
    const t0 = Date.now();
    let lossSum = 0;
    const metricSums: Record<string, number> = {};
    let seen = 0;
    for (let b = 0; b < batches; b++) {
      const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
      let batchMetrics: Record<string, tf.Scalar> = {};
      const cost = tf.tidy(() => {
        const x = imagesTensor(o.data, idx, normalize);
        const ys = targetTensors(o.data.records, idx, o.task, division);
        return optimizer.minimize(
          () => {
            const preds = asArray(o.model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[]);
            const { loss, metrics } = lossAndMetrics(o.task, losses, preds, ys, o.classWeights);
            batchMetrics = metrics;
            Object.values(metrics).forEach((m) => tf.keep(m));
            // Regularisers (seed 000's L2) add their penalties to the loss, as Keras does.
            const penalties = o.model.calculateLosses();
            return penalties.length ? (tf.addN([loss, ...penalties]) as tf.Scalar) : loss;
          },
          true,
          vars,
        ) as tf.Scalar;
      });
      const lossValue = (await cost.data())[0];
      cost.dispose();
      const values: Record<string, number> = {};
      for (const [k, t] of Object.entries(batchMetrics)) {
        values[k] = (await t.data())[0];
        t.dispose();
      }
      if (!Number.isFinite(lossValue)) {
        throw new Error(
          `Training ${o.modelName}${o.fold !== undefined ? ` fold ${o.fold + 1}` : ""} stopped: loss became ${lossValue} at epoch ${epoch}, batch ${b + 1}/${batches}. ` +
            `Lower the learning rate (now ${o.learningRate}) or check the inputs' normalisation.`,
        );
      }
      lossSum += lossValue * idx.length;
      for (const [k, v] of Object.entries(values)) metricSums[k] = (metricSums[k] ?? 0) + v * idx.length;
      seen += idx.length;
      const seconds = (Date.now() - t0) / 1000;
      const bi: BatchEndInfo = {
        fold: o.fold,
        epoch,
        batch: b + 1,
        batchesPerEpoch: batches,
        loss: lossSum / seen,
        metrics: Object.fromEntries(Object.entries(metricSums).map(([k, v]) => [k, v / seen])),
        imagesPerSecond: seen / Math.max(seconds, 1e-9),
        seconds,
      };
      for (const cb of callbacks) await cb.onBatchEnd?.(bi);
    }
    const seconds = (Date.now() - t0) / 1000;
    const record: EpochRecord = {
      ...(o.fold !== undefined ? { fold: o.fold } : {}),
      epoch,
      loss: lossSum / seen,
      metrics: Object.fromEntries(Object.entries(metricSums).map(([k, v]) => [k, v / seen])),
      seconds,
      imagesPerSecond: seen / Math.max(seconds, 1e-9),
    };
    if (o.validationIndices && o.validationIndices.length > 0) {
      const v = await evaluateLoss({ ...o, indices: o.validationIndices, division, normalize, losses });
      record.valLoss = v.loss;
      record.valMetrics = v.metrics;
    }
    history.push(record);
    if (o.keepBest && record.valLoss !== undefined && (!best || record.valLoss < best.valLoss)) {
      best = await saveBestWeights(o.model, epoch, record.valLoss, o.checkpointDir, best);
    }
    if (o.checkpointDir) {
      try {
        await saveCheckpoint(o.checkpointDir, o.model, optimizer, epoch, history);
      } catch (e) {
        // Say which save failed; saveCheckpoint leaves the previous complete checkpoint in place.
        const err = new Error(`Could not save the checkpoint of epoch ${epoch} in ${o.checkpointDir}: ${(e as Error).message}`);
        (err as NodeJS.ErrnoException).code = (e as NodeJS.ErrnoException).code;
        throw err;
      }
    }
    for (const cb of callbacks) {
      const action = await cb.onEpochEnd?.(record, info);
      if (action && action.stop) stoppedEarly = true;
    }
  }
  if (best) restoreBestWeights(o.model, best);
  for (const cb of callbacks) await cb.onTrainEnd?.(history, info);
  const seconds = history.reduce((a, r) => a + r.seconds, 0);
  const images = history.length * n;
  return { history, seconds, imagesPerSecond: images / Math.max(seconds, 1e-9), stoppedEarly, resumedFrom: startEpoch - 1, optimizer, ...(best ? { bestEpoch: best.epoch } : {}) };
}

/**
 * Raw model outputs for samples, computed in batches (bounded memory): one Float32Array per
 * output, row-major (n * units).
 */
export async function predictOutputs(model: tf.LayersModel, data: FaceDataset, indices: readonly number[], normalize: Normalization = "unit", batchSize = 64): Promise<Float32Array[]> {
  const parts: Float32Array[][] = [];
  for (let s = 0; s < indices.length; s += batchSize) {
    const idx = indices.slice(s, s + batchSize);
    const outs = tf.tidy(() => asArray(model.predict(imagesTensor(data, idx, normalize)) as tf.Tensor | tf.Tensor[]));
    parts.push(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array)));
    outs.forEach((t) => t.dispose());
  }
  const outputs = model.outputs.length;
  return Array.from({ length: outputs }, (_, k) => {
    const total = parts.reduce((a, p) => a + p[k].length, 0);
    const out = new Float32Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p[k], off);
      off += p[k].length;
    }
    return out;
  });
}

/** Mean loss and metrics of a model on samples (no training), in batches. */
export async function evaluateLoss(o: {
  model: tf.LayersModel;
  task: ModelTask;
  data: FaceDataset;
  indices: readonly number[];
  division?: AgeDivision;
  normalize?: Normalization;
  losses?: Record<string, string>;
  batchSize?: number;
}): Promise<{ loss: number; metrics: Record<string, number> }> {
  const losses = o.losses ?? lossesFor(o.task, o.model);
  const bs = Math.max(o.batchSize ?? 64, 1);
  let lossSum = 0;
  const sums: Record<string, number> = {};
  for (let s = 0; s < o.indices.length; s += bs) {
    const idx = o.indices.slice(s, s + bs);
    const figures = tf.tidy(() => {
      const preds = asArray(o.model.predict(imagesTensor(o.data, idx, o.normalize ?? "unit")) as tf.Tensor | tf.Tensor[]);
      const { loss, metrics } = lossAndMetrics(o.task, losses, preds, targetTensors(o.data.records, idx, o.task, o.division));
      return [loss, ...Object.values(metrics)];
    });
    const names = ["loss", ...taskSpecs(o.task).map((spec) => spec.metric)];
    const values = await Promise.all(figures.map(async (t) => (await t.data())[0]));
    figures.forEach((t) => t.dispose());
    values.forEach((v, k) => {
      if (k === 0) lossSum += v * idx.length;
      else sums[names[k]] = (sums[names[k]] ?? 0) + v * idx.length;
    });
  }
  const n = Math.max(o.indices.length, 1);
  return { loss: lossSum / n, metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])) };
}
