/**
 * Model factories. `buildModel(name, options)` returns a new, uncompiled tf.LayersModel each
 * call, so every K-fold fold can start from fresh weights. Nothing is built at module load.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { EIGHT_AGE_RANGES, groupCount } from "../data/labels";
import { AGE_GROUP_COUNT, IMAGE_SIZE } from "../core/paths";
import { buildFaceNetTransfer } from "./facenet";
import type { ModelOptions } from "./options";
import { readManifestWeights } from "../core/weights";
import { taskLosses } from "./tasks";
import type { ExperimentProfile, ModelTask } from "../core/kinds";

export type { ModelTask } from "../core/kinds";

export type { ModelOptions } from "./options";

/** What a model may change in a profile's settings. */
export interface ProfileOverrides {
  size?: number;
  epochs?: number;
  maxImages?: number;
  batchSize?: number;
  /** Adam's learning rate in this profile (else the model's own, else the profile's). */
  learningRate?: number;
}

/**
 * The quick profile for the ReLU age model: 10 epochs at batch 32 and Adam 6e-4. At 64x64 and 8
 * epochs its MAE was 58% of the baseline's but its decoded age group (16.8%) still trailed the
 * majority guess (0-4, 18.3%), which a regression toward the mean rarely answers; at 15 it reached
 * 29.0% (issue 21). Batch 32 trains about a quarter faster per face than 16 on 2 cores; at 48x48
 * and 6e-4 it reached MAE 11.9 (54%) and 23.5% in 10 epochs, 12.0 and 24.0% in 12.
 */
const RELU_PROFILES: ModelSpec["profiles"] = { quick: { epochs: 10, batchSize: 32, learningRate: 6e-4 } };

/**
 * The quick profile for the multi-output CNN (notebooks 05 and 06): batch 32 and Adam 6e-4, about
 * a quarter faster per face than batch 16, and as good: at 64x64, 29.8% of age groups, MAE 13.5
 * (61%) and 76.3% of genders in 8 epochs (batch 16 at 3e-4: 27.8%, 15.3, 76.0%). At 48x48, 6
 * epochs give 26.3%, MAE 14.7 (66%) and 74.3% (8 epochs: 27.8%, 14.8, 78.5%); the K-fold keeps
 * its own schedule (the profile's 9, 8 and 7 epochs). The gender model keeps batch 16 and 3e-4:
 * at 32 and 6e-4 it left its plateau only in epoch 7 (65.5%), at 1e-3 never.
 */
const MULTI_PROFILES: ModelSpec["profiles"] = { quick: { epochs: 6, batchSize: 32, learningRate: 6e-4 } };

/**
 * The quick profile for the sigmoid age model: the report's own batch 25 and Adam 1e-3, and 18
 * epochs. Its 20 independent sigmoids sit at their prior for longer than the other heads; at
 * the quick profile's Adam 3e-4 and batch 16 it reached 84% of the baseline's MAE in 15 epochs,
 * at 1e-3 and batch 25 80% in 15 epochs and 77% in 25 (issue 21, docs/notebooks.md).
 */
const SIGMOID_PROFILES: ModelSpec["profiles"] = { quick: { epochs: 18, batchSize: 25, learningRate: 1e-3 } };

/**
 * The quick profile for VGG19 (about 5x the report CNN's work per image at these sizes): 32x32
 * (the smallest input its five poolings allow), the sample's 1,440 training faces, 7 epochs at
 * batch 16 and Adam 3e-4 (its full-profile 1e-4 is for 70x70 and many more steps). From scratch
 * without BatchNorm it needs them: at 1 epoch of 150 faces it answered 0-4 for every face, at 4
 * epochs of 1,440 it reached 25.0% but 83% of the baseline's MAE; 6 epochs gave 74% on one
 * machine and 79.9% on another (the limit is 80%), Adam 5e-4 80.0%, batch 32 at 6e-4 83.9%;
 * 7 epochs 72% (issue 21, docs/notebooks.md).
 */
const VGG19_PROFILES: ModelSpec["profiles"] = { quick: { size: 32, epochs: 7, learningRate: 3e-4 } };

/** A registered model: its factory and what it expects. */
export interface ModelSpec {
  name: string;
  task: ModelTask;
  /** Colour mode its inputs use by default. */
  color: "gray" | "rgb";
  /** Input normalisation: [0,1] or ImageNet mean/std. */
  normalize: "unit" | "imagenet";
  description: string;
  /** Age division of its age-group output (lib/data/labels.ts AGE_DIVISIONS); default "report20". */
  ageDivision?: string;
  /** Whether the factory needs `pretrainedWeights`. */
  needsPretrained?: boolean;
  /**
   * This model's trims of a profile's settings (lib/training/profile.ts modelProfileSettings),
   * applied the same way by the CLI and notebooks; explicit options still win.
   */
  profiles?: Partial<Record<ExperimentProfile, ProfileOverrides>>;
  /** Default Adam learning rate when it differs from the project's 1e-3; options and flags win. */
  learningRate?: number;
  /** Default fine-tune stage after the frozen one (lib/models/transfer.ts); options and flags win. */
  fineTune?: { epochs: Record<ExperimentProfile, number>; learningRate?: number; layers?: number | "all" };
  /**
   * Activation of an output layer where the loss follows from it (an age-group head of
   * independent sigmoids trains with binary cross-entropy); absent = softmax groups.
   */
  heads?: Partial<Record<"age" | "gender", string>>;
  build: (options?: ModelOptions) => tf.LayersModel;
}

interface Resolved {
  size: number;
  channels: number;
  ageGroups: number;
  dropout: number;
  seed: number;
}

/** Five 2x2 poolings halve the side five times: below 32 pixels the last feature map is empty. */
export const MIN_INPUT_SIZE = 32;

function resolve(o: ModelOptions | undefined, channels: number): Resolved {
  const size = o?.size ?? IMAGE_SIZE;
  if (!Number.isInteger(size) || size < MIN_INPUT_SIZE) {
    throw new Error(`Input size ${size} is too small: these models pool five times, so use an integer size >= ${MIN_INPUT_SIZE} (the report uses ${IMAGE_SIZE}).`);
  }
  return {
    size,
    channels: o?.channels ?? channels,
    ageGroups: o?.ageGroups ?? AGE_GROUP_COUNT,
    dropout: o?.dropout ?? 0.25,
    seed: o?.seed ?? 42,
  };
}

/** Seeded initialisers: a counter per model so each layer gets its own stream. */
function initialisers(seed: number) {
  let n = 0;
  return {
    kernel: () => tf.initializers.glorotUniform({ seed: seed + n++ }),
    heNormal: () => tf.initializers.heNormal({ seed: seed + n++ }),
  };
}

/**
 * The report's trunk: five 3x3 'same' ReLU conv layers with 32, 64, 128, 256 and 512 filters,
 * each followed by 2x2 max pooling, then dropout and flatten. 70x70 -> 2x2x512.
 */
export function reportTrunk(input: tf.SymbolicTensor, r: Resolved, prefix = "trunk"): tf.SymbolicTensor {
  const init = initialisers(r.seed);
  let x = input;
  [32, 64, 128, 256, 512].forEach((filters, i) => {
    x = tf.layers
      .conv2d({ filters, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: init.kernel(), name: `${prefix}_conv${i + 1}` })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `${prefix}_pool${i + 1}` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.dropout({ rate: r.dropout, seed: r.seed, name: `${prefix}_dropout` }).apply(x) as tf.SymbolicTensor;
  return tf.layers.flatten({ name: `${prefix}_flatten` }).apply(x) as tf.SymbolicTensor;
}

/** A stack of ReLU dense layers, each followed by dropout (the report's heads). */
function denseHead(x: tf.SymbolicTensor, units: number[], r: Resolved, prefix: string): tf.SymbolicTensor {
  const init = initialisers(r.seed + 1000);
  units.forEach((u, i) => {
    x = tf.layers.dense({ units: u, activation: "relu", kernelInitializer: init.kernel(), name: `${prefix}_dense${i + 1}` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: r.dropout, seed: r.seed + i, name: `${prefix}_dropout${i + 1}` }).apply(x) as tf.SymbolicTensor;
  });
  return x;
}

/** Seeded initialiser of an output layer: without it the last layer would differ run to run. */
function outputInit(r: Resolved, k = 0) {
  return tf.initializers.glorotUniform({ seed: r.seed + 2000 + k });
}

function inputOf(r: Resolved): tf.SymbolicTensor {
  return tf.input({ shape: [r.size, r.size, r.channels], name: "image" });
}

/** The report's age model: trunk, dense 512..32, then one sigmoid per age group. */
export function buildCnnAgeSigmoid(options?: ModelOptions): tf.LayersModel {
  const r = resolve(options, 1);
  const input = inputOf(r);
  const x = denseHead(reportTrunk(input, r), [512, 256, 128, 64, 32], r, "age");
  const out = tf.layers.dense({ units: r.ageGroups, activation: "sigmoid", kernelInitializer: outputInit(r), name: "age" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "cnn_age_sigmoid" });
}

/** The report's regression variant: the same network with one ReLU output (age / 100). */
export function buildCnnAgeRelu(options?: ModelOptions): tf.LayersModel {
  const r = resolve(options, 1);
  const input = inputOf(r);
  const x = denseHead(reportTrunk(input, r), [512, 256, 128, 64, 32], r, "age");
  const out = tf.layers.dense({ units: 1, activation: "relu", kernelInitializer: outputInit(r), name: "age" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "cnn_age_relu" });
}

/** The report's gender model: trunk, dense 128..8, then one sigmoid (P(female)). */
export function buildCnnGender(options?: ModelOptions): tf.LayersModel {
  const r = resolve(options, 1);
  const input = inputOf(r);
  const x = denseHead(reportTrunk(input, r), [128, 64, 32, 16, 8], r, "gender");
  const out = tf.layers.dense({ units: 1, activation: "sigmoid", kernelInitializer: outputInit(r, 1), name: "gender" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "cnn_gender" });
}

/**
 * The sibling write-ups' multi-output CNN: one shared trunk, an age-group branch (softmax) and
 * a gender branch (sigmoid). Outputs are named "age" and "gender".
 */
export function buildMultiOutput(options?: ModelOptions): tf.LayersModel {
  const r = resolve(options, 1);
  const input = inputOf(r);
  const trunk = reportTrunk(input, r);
  const age = tf.layers
    .dense({ units: r.ageGroups, activation: "softmax", kernelInitializer: outputInit(r), name: "age" })
    .apply(denseHead(trunk, [256, 128], r, "age")) as tf.SymbolicTensor;
  const gender = tf.layers
    .dense({ units: 1, activation: "sigmoid", kernelInitializer: outputInit(r, 1), name: "gender" })
    .apply(denseHead(trunk, [128, 64], r, "gender")) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: [age, gender], name: "cnn_multi_output" });
}

/** VGG19's 16 conv layers: two blocks of 2 convs, three blocks of 4, each block then max pooling. */
const VGG19_BLOCKS: ReadonlyArray<readonly [filters: number, convs: number]> = [
  [64, 2],
  [128, 2],
  [256, 4],
  [512, 4],
  [512, 4],
];

/**
 * VGG19 on 70x70x3 (ImageNet-normalised inputs): the 16 conv layers named as Keras names them
 * (block1_conv1 ...), so converted Keras weights load by name, then dense 512, dropout 0.5 and
 * the age-group outputs (softmax).
 */
export function buildVgg19(options?: ModelOptions): tf.LayersModel {
  const r = resolve(options, 3);
  const init = initialisers(r.seed);
  const input = inputOf(r);
  let x = input;
  VGG19_BLOCKS.forEach(([filters, convs], b) => {
    for (let c = 0; c < convs; c++) {
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: init.heNormal(), name: `block${b + 1}_conv${c + 1}` })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: "flatten" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 512, activation: "relu", kernelInitializer: init.kernel(), name: "fc1" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.5, seed: r.seed, name: "fc1_dropout" }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: r.ageGroups, activation: "softmax", kernelInitializer: outputInit(r), name: "age" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "vgg19" });
}

/** L2 factor of seed 000's conv and dense kernels. */
const SEED000_L2 = 1e-4;

/**
 * The seed 000 write-up's variant: four blocks of two stacked 3x3 convs, each conv followed by
 * BatchNorm and ReLU, then 2x2 max pooling; L2 on every kernel; dense 256, dropout and a
 * softmax over its eight age ranges (EIGHT_AGE_RANGES: ages outside 8..80 are dropped).
 */
export function buildCnnSeed000(options?: ModelOptions): tf.LayersModel {
  const r = resolve({ ageGroups: groupCount(EIGHT_AGE_RANGES), ...options }, 1);
  const init = initialisers(r.seed);
  const l2 = () => tf.regularizers.l2({ l2: SEED000_L2 });
  const input = inputOf(r);
  let x = input;
  [32, 64, 128, 256].forEach((filters, b) => {
    for (let c = 0; c < 2; c++) {
      const name = `block${b + 1}_conv${c + 1}`;
      x = tf.layers.conv2d({ filters, kernelSize: 3, padding: "same", useBias: false, kernelInitializer: init.heNormal(), kernelRegularizer: l2(), name }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.batchNormalization({ name: `${name}_bn` }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.activation({ activation: "relu", name: `${name}_relu` }).apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 256, activation: "relu", kernelInitializer: init.kernel(), kernelRegularizer: l2(), name: "fc1" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: r.dropout, seed: r.seed, name: "fc1_dropout" }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: r.ageGroups, activation: "softmax", kernelInitializer: init.kernel(), name: "age" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "cnn_seed000" });
}

/** Reads a tfjs layers model.json and its weight files into tensors keyed by weight name. */
export function readLayersWeights(modelJson: string): Map<string, tf.Tensor> {
  if (!fs.existsSync(modelJson)) {
    throw new Error(`Pretrained weights ${modelJson} do not exist. Convert Keras VGG19 with tensorflowjs_converter --input_format keras and pass its model.json.`);
  }
  let json: { weightsManifest?: tf.io.WeightsManifestConfig };
  try {
    json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  } catch (e) {
    throw new Error(`${modelJson} is not JSON (${(e as Error).message}); expected a tfjs layers model.json.`);
  }
  if (!Array.isArray(json.weightsManifest)) throw new Error(`${modelJson} has no weightsManifest: expected a tfjs layers model.json with weight files.`);
  const { specs, data } = readManifestWeights(json.weightsManifest, path.dirname(modelJson), (p) => `${modelJson} lists weight file ${p}, missing next to it.`);
  const map = tf.io.decodeWeights(data, specs);
  return new Map(Object.entries(map));
}

/**
 * Copies weights into the layers of `model` that have the same name as in the file (Keras
 * names: "block1_conv1/kernel", "block1_conv1/bias", in the layer's weight order). Every layer in `layers`
 * must be found with the right shapes; otherwise a clear error names the layer and both shapes.
 */
export function loadWeightsByLayerName(model: tf.LayersModel, weights: Map<string, tf.Tensor>, layers: readonly string[], source: string): void {
  const byLayer = new Map<string, tf.Tensor[]>();
  for (const [name, t] of weights) {
    const [layer, ...rest] = name.split("/");
    if (rest.length === 0) continue;
    if (!byLayer.has(layer)) byLayer.set(layer, []);
    byLayer.get(layer)!.push(t);
  }
  for (const layerName of layers) {
    const layer = model.getLayer(layerName);
    const found = byLayer.get(layerName);
    if (!found) throw new Error(`${source} has no weights for layer "${layerName}" (found: ${[...byLayer.keys()].slice(0, 8).join(", ")}...). Is it a converted Keras VGG19?`);
    const expected = layer.getWeights();
    if (found.length !== expected.length) throw new Error(`${source}: layer "${layerName}" has ${found.length} weight tensors, the model expects ${expected.length}.`);
    expected.forEach((e, i) => {
      if (e.shape.join("x") !== found[i].shape.join("x")) {
        throw new Error(`${source}: layer "${layerName}" weight ${i} has shape [${found[i].shape}], the model expects [${e.shape}]. Were the weights converted from a different network or channel count?`);
      }
    });
    layer.setWeights(found);
  }
}

/**
 * VGG19 with the 16 conv layers loaded from user-supplied converted Keras weights
 * (options.pretrainedWeights); the conv layers are frozen unless freezePretrained is false.
 */
export function buildVgg19Pretrained(options?: ModelOptions): tf.LayersModel {
  if (!options?.pretrainedWeights) {
    throw new Error("vgg19-pretrained needs pretrainedWeights: the model.json of Keras VGG19 converted to tfjs layers (tensorflowjs_converter --input_format keras).");
  }
  const model = buildVgg19(options);
  const weights = readLayersWeights(options.pretrainedWeights);
  const convs = model.layers.filter((l) => /^block\d+_conv\d+$/.test(l.name)).map((l) => l.name);
  try {
    loadWeightsByLayerName(model, weights, convs, options.pretrainedWeights);
  } finally {
    weights.forEach((t) => t.dispose());
  }
  if (options.freezePretrained ?? true) for (const name of convs) model.getLayer(name).trainable = false;
  return model;
}

/** Every known model, by name. Experiments add entries here (one place to list them). */
export const MODELS: Record<string, ModelSpec> = {
  "cnn-age-sigmoid": { name: "cnn-age-sigmoid", task: "age-groups", color: "gray", normalize: "unit", description: "report CNN, 20 age groups, sigmoid outputs", heads: { age: "sigmoid" }, profiles: SIGMOID_PROFILES, build: buildCnnAgeSigmoid },
  "cnn-age-relu": { name: "cnn-age-relu", task: "age-regression", color: "gray", normalize: "unit", description: "report CNN, one ReLU output (age/100)", profiles: RELU_PROFILES, build: buildCnnAgeRelu },
  "cnn-gender": { name: "cnn-gender", task: "gender", color: "gray", normalize: "unit", description: "report CNN, gender sigmoid (1 = female)", build: buildCnnGender },
  "cnn-multi": { name: "cnn-multi", task: "age-gender", color: "gray", normalize: "unit", description: "shared trunk, age-group and gender outputs", profiles: MULTI_PROFILES, build: buildMultiOutput },
  // From scratch at Adam 1e-3, VGG19 (no BatchNorm) collapsed in its first full-profile epoch
  // to one group for every face (loss 12.5); at 1e-4 it learns (docs/reference.md).
  vgg19: { name: "vgg19", task: "age-groups", color: "rgb", normalize: "imagenet", description: "VGG19 (16 conv) on RGB, ImageNet normalisation", profiles: VGG19_PROFILES, learningRate: 1e-4, build: buildVgg19 },
  "vgg19-pretrained": { name: "vgg19-pretrained", task: "age-groups", color: "rgb", normalize: "imagenet", description: "VGG19 with user-supplied Keras ImageNet weights, conv layers frozen", needsPretrained: true, profiles: VGG19_PROFILES, build: buildVgg19Pretrained },
  "facenet-transfer": {
    name: "facenet-transfer",
    task: "age-gender",
    color: "rgb",
    normalize: "unit",
    description: "face-api's pretrained face-recognition ResNet (npm, MIT), frozen then fine-tuned; age-group and gender heads",
    // 112 is about 1.5x faster than the native 150 on CPU; the backbone needs >= 103.
    profiles: { quick: { size: 112 }, full: { size: 150 } },
    // Unfreezing the last two stages (stage256 + descriptor, 80% of the backbone's weights) trains
    // about 4x faster than unfreezing all six on wasm (see docs/transfer.md).
    // 1e-5, not the usual 1e-4: Adam moves every weight by about the learning rate per step, and
    // this network's weights are small (filters ~0.05); at 1e-4 one quick fine-tune epoch dropped
    // validation gender accuracy from 0.72 to 0.53, at 1e-5 it rose to 0.81.
    fineTune: { epochs: { quick: 1, full: 3 }, learningRate: 1e-5, layers: 2 },
    build: buildFaceNetTransfer,
  },
  "cnn-seed000": { name: "cnn-seed000", task: "age-groups", color: "gray", normalize: "unit", description: "seed 000: stacked convs, BatchNorm, L2, eight age ranges", ageDivision: "ranges8", build: buildCnnSeed000 },
};

/** Looks a model up by name; an unknown name is an error listing the known ones. */
export function modelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (!spec) throw new Error(`Unknown model "${name}". Known models: ${Object.keys(MODELS).join(", ")}.`);
  return spec;
}

/** Loss name per output of a registered model, from its task and declared heads (no model is built). */
export function specLosses(spec: ModelSpec): Record<string, string> {
  return taskLosses(spec.task, (output) => spec.heads?.[output as "age" | "gender"]);
}

/** Builds a new, uncompiled model by name. */
export function buildModel(name: string, options?: ModelOptions): tf.LayersModel {
  return modelSpec(name).build(options);
}
