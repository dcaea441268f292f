/**
 * Transfer learning in two stages through the library's one training loop (trainModel):
 *   1. frozen:    the pretrained layers stay frozen (as the factory built them), the head trains;
 *   2. fine-tune: the last pretrained layers are unfrozen and everything trainable continues at
 *                 a lower learning rate with a fresh Adam (its moments belong to the new set of
 *                 variables).
 * Works with any model whose pretrained layers are built frozen: facenet-transfer (face-api's
 * face-recognition ResNet, lib/models/facenet.ts) and vgg19-pretrained. `runExperiment` calls it when
 * the config (or the model's spec) asks for fine-tune epochs; history.json then holds both
 * stages, each row tagged with its `stage`, epochs numbered on from the frozen stage.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { ModelSpec } from "./registry";
import type { ExperimentProfile } from "../core/kinds";
import type { EpochRecord } from "../records/runs";
import { TrainOptions, TrainResult, trainModel } from "../training/train";

/** Fine-tuning learning rate: ten times below Adam's default, so the pretrained weights move gently. */
export const DEFAULT_FINE_TUNE_LEARNING_RATE = 1e-4;

/** What to unfreeze and how long to fine-tune. */
export interface FineTuneOptions {
  /** Epochs of the fine-tune stage (0 = no fine-tuning). */
  epochs: number;
  /** Adam learning rate of the fine-tune stage (default 1e-4). */
  learningRate?: number;
  /**
   * How many of the frozen pretrained layers to unfreeze, counted from the end ("all" = every
   * one). facenet-transfer's layers are its six stages (stem, 32, 64, 128, 256, descriptor).
   */
  layers?: number | "all";
}

/** The fine-tune plan recorded in config.json. */
export interface FineTunePlan {
  epochs: number;
  learningRate: number;
  /** Names of the layers unfrozen for the fine-tune stage. */
  unfrozen: string[];
}

/** A history row of a two-stage run. */
export type TransferEpochRecord = EpochRecord & { stage: "frozen" | "fine-tune" };

/** Pretrained layers of a model: those with weights that are frozen now, in model order. */
export function frozenLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => !l.trainable && l.weights.length > 0);
}

/**
 * Which layers `unfreeze` would unfreeze: the last `count` frozen layers with weights ("all":
 * every one). A count beyond what is frozen is an error naming both numbers.
 */
export function layersToUnfreeze(model: tf.LayersModel, count: number | "all"): tf.layers.Layer[] {
  const frozen = frozenLayers(model);
  if (frozen.length === 0) throw new Error(`Model ${model.name} has no frozen layers to fine-tune: build it with its pretrained layers frozen (freezePretrained).`);
  if (count === "all") return frozen;
  if (!Number.isInteger(count) || count < 1 || count > frozen.length) {
    throw new Error(`Cannot unfreeze ${count} layer(s) of ${model.name}: it has ${frozen.length} frozen (${frozen.map((l) => l.name).join(", ")}). Use 1..${frozen.length} or "all".`);
  }
  return frozen.slice(frozen.length - count);
}

/** Unfreezes the last `count` frozen layers (see layersToUnfreeze); returns their names. */
export function unfreeze(model: tf.LayersModel, count: number | "all"): string[] {
  const layers = layersToUnfreeze(model, count);
  for (const l of layers) l.trainable = true;
  return layers.map((l) => l.name);
}

/**
 * The fine-tune plan of a run: explicit options win, then the model's spec (per profile);
 * undefined when there is no fine-tune stage.
 */
export function fineTuneOptionsFor(
  spec: ModelSpec,
  profile: ExperimentProfile,
  config: { fineTuneEpochs?: number; fineTuneLearningRate?: number; fineTuneLayers?: number | "all" },
): FineTuneOptions | undefined {
  const epochs = config.fineTuneEpochs ?? spec.fineTune?.epochs[profile] ?? 0;
  if (!Number.isInteger(epochs) || epochs < 0) throw new Error(`fineTuneEpochs must be an integer >= 0, got ${epochs}.`);
  if (epochs === 0) return undefined;
  const learningRate = config.fineTuneLearningRate ?? spec.fineTune?.learningRate ?? DEFAULT_FINE_TUNE_LEARNING_RATE;
  if (!(learningRate > 0)) throw new Error(`fineTuneLearningRate must be > 0, got ${learningRate}.`);
  return { epochs, learningRate, layers: config.fineTuneLayers ?? spec.fineTune?.layers ?? "all" };
}

/**
 * Trains the frozen stage (the options as given), then unfreezes and fine-tunes. With a
 * checkpoint folder each stage checkpoints (the fine-tune stage in its fine-tune/ subfolder),
 * so a killed run resumes in the stage it was in. Returns both stages' history in one list.
 */
export async function trainFrozenThenFineTune(o: TrainOptions, ft: FineTuneOptions): Promise<TrainResult & { history: TransferEpochRecord[]; plan: FineTunePlan }> {
  const frozen = await trainModel(o);
  const unfrozen = unfreeze(o.model, ft.layers ?? "all");
  const learningRate = ft.learningRate ?? DEFAULT_FINE_TUNE_LEARNING_RATE;
  const tuned = await trainModel({
    ...o,
    epochs: ft.epochs,
    learningRate,
    // A different seed, so the fine-tune epochs do not replay the frozen epochs' batch order.
    seed: o.seed + 1,
    optimizer: undefined,
    checkpointDir: o.checkpointDir ? path.join(o.checkpointDir, "fine-tune") : undefined,
  });
  const offset = frozen.history.length;
  const history: TransferEpochRecord[] = [
    ...frozen.history.map((r) => ({ ...r, stage: "frozen" as const })),
    ...tuned.history.map((r) => ({ ...r, epoch: r.epoch + offset, stage: "fine-tune" as const })),
  ];
  const seconds = frozen.seconds + tuned.seconds;
  const images = frozen.imagesPerSecond * frozen.seconds + tuned.imagesPerSecond * tuned.seconds;
  frozen.optimizer.dispose();
  return {
    history,
    seconds,
    imagesPerSecond: images / Math.max(seconds, 1e-9),
    stoppedEarly: tuned.stoppedEarly,
    resumedFrom: frozen.resumedFrom,
    optimizer: tuned.optimizer,
    plan: { epochs: ft.epochs, learningRate, unfrozen },
  };
}
