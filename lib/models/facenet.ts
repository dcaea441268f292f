/**
 * A pretrained face backbone that installs offline from npm: the FaceRecognitionNet of
 * @vladmandic/face-api (MIT), a ResNet-34-like network trained by Davis King (dlib) for face
 * identity, converted to tfjs by Vincent Mühler (face-api.js). Its weights ship in the npm
 * tarball (model/face_recognition_model*, 6.4 MB), so nothing is downloaded at run time.
 *
 * The network is re-implemented here as tfjs layers (`FaceNetStage`, registered for
 * serialisation) holding the weights as layer weights, so it trains, freezes, saves and loads
 * like any other layer and goes through the library's one training loop. The forward pass is
 * face-api's own (FaceRecognitionNet.forwardInput): mean-RGB subtraction and /255, a strided 7x7
 * conv, 3x3 max pooling, residual blocks whose convs are each followed by a per-channel scale
 * (dlib's affine layer), down-sampling blocks with an average-pooled, zero-padded shortcut,
 * global average pooling and a 256 -> 128 fully connected layer (the face descriptor).
 * test/transfer.test.ts checks the descriptor against face-api's on real faces.
 *
 * Do not swap in face-api's ageGenderNet as a backbone for UTKFace: it was trained on UTKFace,
 * so a test split of UTKFace would not be held out from it.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { ModelOptions } from "./options";
import { readManifestWeights } from "../core/weights";
import { AGE_GROUP_COUNT } from "../core/paths";

/** The npm package the weights come from, and its licence (see docs/transfer.md). */
export const FACENET_PACKAGE = "@vladmandic/face-api";
/** Base name of the weight files in the package's model/ folder. */
export const FACENET_WEIGHTS = "face_recognition_model";
/** Input side the network was trained at (face-api resizes every face to 150x150). */
export const FACENET_NATIVE_SIZE = 150;
/** Length of the face descriptor. */
export const FACENET_DESCRIPTOR_SIZE = 128;
/**
 * face-api's mean RGB (0..255), subtracted before dividing by 255. Our inputs are already /255
 * ("unit" normalisation), so the stem subtracts MEAN/255, which is the same arithmetic.
 */
export const FACENET_MEAN_RGB: readonly number[] = [122.782, 117.001, 104.298];

/** Stages whose per-channel scales are folded into their filters (see FaceNetStage.conv). */
const FOLDED_STAGES: ReadonlySet<string> = new Set(["facenet_stem", "facenet_stage32", "facenet_stage64"]);

/** The backbone's layers in order; fine-tuning unfreezes from the end of this list. */
export const FACENET_STAGES = ["facenet_stem", "facenet_stage32", "facenet_stage64", "facenet_stage128", "facenet_stage256", "facenet_descriptor"] as const;
export type FaceNetStageName = (typeof FACENET_STAGES)[number];

/** A stage's id in layer configs: its layer name without the "facenet_" prefix. */
function stageId(stage: FaceNetStageName): string {
  return stage.slice("facenet_".length);
}

/** One conv of the network: filters + bias, then the per-channel scale (weights, biases). */
interface ConvSpec {
  /** Weight name prefix in face-api's manifest, e.g. "conv64_down/conv1". */
  prefix: string;
  kernel: number;
  inChannels: number;
  outChannels: number;
}

/** A block: the stem conv, a residual block, a down-sampling residual block, or the fc layer. */
type Block =
  | { kind: "stem"; conv: ConvSpec }
  | { kind: "residual" | "residualDown"; name: string; conv1: ConvSpec; conv2: ConvSpec }
  | { kind: "descriptor" };

function residual(name: string, inC: number, outC: number, down: boolean): Block {
  return {
    kind: down ? "residualDown" : "residual",
    name,
    conv1: { prefix: `${name}/conv1`, kernel: 3, inChannels: inC, outChannels: outC },
    conv2: { prefix: `${name}/conv2`, kernel: 3, inChannels: outC, outChannels: outC },
  };
}

/** face-api's FaceRecognitionNet, block by block, grouped into the stages above. */
const STAGE_BLOCKS: Record<FaceNetStageName, Block[]> = {
  facenet_stem: [{ kind: "stem", conv: { prefix: "conv32_down", kernel: 7, inChannels: 3, outChannels: 32 } }],
  facenet_stage32: [residual("conv32_1", 32, 32, false), residual("conv32_2", 32, 32, false), residual("conv32_3", 32, 32, false)],
  facenet_stage64: [residual("conv64_down", 32, 64, true), residual("conv64_1", 64, 64, false), residual("conv64_2", 64, 64, false), residual("conv64_3", 64, 64, false)],
  facenet_stage128: [residual("conv128_down", 64, 128, true), residual("conv128_1", 128, 128, false), residual("conv128_2", 128, 128, false)],
  facenet_stage256: [
    residual("conv256_down", 128, 256, true),
    residual("conv256_1", 256, 256, false),
    residual("conv256_2", 256, 256, false),
    residual("conv256_down_out", 256, 256, true),
  ],
  facenet_descriptor: [{ kind: "descriptor" }],
};

/** Weight names (face-api's manifest names) and shapes of a block, in the layer's weight order. */
function blockWeights(b: Block): { name: string; shape: number[] }[] {
  const conv = (c: ConvSpec) => [
    { name: `${c.prefix}/conv/filters`, shape: [c.kernel, c.kernel, c.inChannels, c.outChannels] },
    { name: `${c.prefix}/conv/bias`, shape: [c.outChannels] },
    { name: `${c.prefix}/scale/weights`, shape: [c.outChannels] },
    { name: `${c.prefix}/scale/biases`, shape: [c.outChannels] },
  ];
  if (b.kind === "stem") return conv(b.conv);
  if (b.kind === "descriptor") return [{ name: "fc", shape: [256, FACENET_DESCRIPTOR_SIZE] }];
  return [...conv(b.conv1), ...conv(b.conv2)];
}

/** Spatial side after a block, as face-api's ops compute it ('valid' convs and pools). */
function sideAfter(b: Block, n: number): number {
  if (b.kind === "stem") {
    const conv = Math.floor((n - 7) / 2) + 1;
    return Math.floor((conv - 3) / 2) + 1;
  }
  // The strided 3x3 'valid' conv gives floor((n-1)/2), the 2x2 average pool floor(n/2); face-api
  // pads the conv branch with a zero row and column when they differ, so the pool's side wins.
  if (b.kind === "residualDown") return Math.floor(n / 2);
  return n;
}

/**
 * Smallest input side the backbone accepts: every down-sampling block's 3x3 'valid' conv needs
 * at least 3 pixels. Computed from the architecture rather than written down.
 */
export const FACENET_MIN_SIZE: number = (() => {
  const ok = (s: number) => {
    let n = s;
    for (const stage of FACENET_STAGES) {
      for (const b of STAGE_BLOCKS[stage]) {
        if ((b.kind === "stem" && n < 7) || (b.kind === "residualDown" && n < 3)) return false;
        n = sideAfter(b, n);
      }
    }
    return n >= 1;
  };
  let s = 7;
  while (!ok(s)) s++;
  return s;
})();

/**
 * Config of a FaceNetStage layer: which stage it computes, by the stage's name without the
 * "facenet_" prefix ("stem", "stage32", ...). tfjs turns snake_case string values of a saved
 * config into camelCase on loading, so the config value must not contain underscores.
 */
export interface FaceNetStageConfig {
  stage: string;
  name?: string;
  trainable?: boolean;
}

/**
 * One stage of face-api's FaceRecognitionNet as a tfjs layer. Weights start at zero; load the
 * pretrained values with `loadFaceNetWeights(model)` (a saved model loads its own weights).
 */
export class FaceNetStage extends tf.layers.Layer {
  static className = "FaceNetStage";
  readonly stage: FaceNetStageName;
  private readonly blocks: Block[];
  private params = new Map<string, tf.LayerVariable>();

  constructor(config: FaceNetStageConfig) {
    const stage = `facenet_${config.stage}` as FaceNetStageName;
    super({ name: config.name ?? stage, trainable: config.trainable });
    if (!STAGE_BLOCKS[stage]) throw new Error(`Unknown FaceNetStage "${config.stage}": expected one of ${FACENET_STAGES.map(stageId).join(", ")}.`);
    this.stage = stage;
    this.blocks = STAGE_BLOCKS[stage];
  }

  /** face-api's weight names this layer holds, in weight order. */
  weightNames(): string[] {
    return this.blocks.flatMap(blockWeights).map((w) => w.name);
  }

  build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const expected = this.stage === "facenet_descriptor" ? 256 : this.firstInChannels();
    if (shape[shape.length - 1] !== expected) {
      throw new Error(`${this.name} expects ${expected} input channels, got shape [${shape}]. facenet-transfer needs RGB inputs.`);
    }
    for (const w of this.blocks.flatMap(blockWeights)) {
      this.params.set(w.name, this.addWeight(w.name, w.shape, "float32", tf.initializers.zeros()));
    }
    this.built = true;
  }

  private firstInChannels(): number {
    const b = this.blocks[0];
    return b.kind === "stem" ? b.conv.inChannels : b.kind === "descriptor" ? 256 : b.conv1.inChannels;
  }

  computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (this.stage === "facenet_descriptor") return [shape[0], FACENET_DESCRIPTOR_SIZE];
    let h = shape[1];
    let w = shape[2];
    let c = shape[3];
    for (const b of this.blocks) {
      if (h !== null) h = sideAfter(b, h);
      if (w !== null) w = sideAfter(b, w);
      c = b.kind === "stem" ? b.conv.outChannels : b.kind === "descriptor" ? c : b.conv2.outChannels;
    }
    return [shape[0], h, w, c];
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      for (const b of this.blocks) x = this.block(b, x) as tf.Tensor4D;
      return x;
    });
  }

  private read(name: string): tf.Tensor {
    return this.params.get(name)!.read();
  }

  /**
   * conv + bias, then dlib's per-channel scale, optionally ReLU (face-api convLayer). In the
   * stages whose maps are large (FOLDED_STAGES) the scale is folded into the filter:
   * conv(x, W) * s + (bias * s + b) = conv(x, W * s) + (bias * s + b), one fused convolution
   * with its bias (and ReLU where tfjs fuses it: inference) instead of a convolution and three
   * or four passes over the activations; the folding itself is one pass over the filter, which is
   * small there. In stage128 and stage256 the filters outweigh the 8x8 and 4x4 maps, so the
   * scale stays a pass over the output. Both forms are the same arithmetic up to rounding
   * (test/transfer.test.ts: the descriptor stays within 1e-4 of face-api's own).
   */
  private conv(x: tf.Tensor4D, c: ConvSpec, stride: 1 | 2, relu: boolean, padding: "same" | "valid"): tf.Tensor4D {
    const filters = this.read(`${c.prefix}/conv/filters`) as tf.Tensor4D;
    const scale = this.read(`${c.prefix}/scale/weights`);
    const shift = this.read(`${c.prefix}/scale/biases`);
    const bias = this.read(`${c.prefix}/conv/bias`);
    if (FOLDED_STAGES.has(this.stage)) {
      return tf.fused.conv2d({ x, filter: tf.mul(filters, scale) as tf.Tensor4D, strides: stride, pad: padding, bias: tf.add(tf.mul(bias, scale), shift), activation: relu ? "relu" : "linear" });
    }
    const out = tf.add(tf.mul(tf.fused.conv2d({ x, filter: filters, strides: stride, pad: padding, bias }), scale), shift) as tf.Tensor4D;
    return relu ? tf.relu(out) : out;
  }

  private block(b: Block, x: tf.Tensor4D): tf.Tensor {
    switch (b.kind) {
      case "stem": {
        const mean = tf.tensor1d(FACENET_MEAN_RGB.map((m) => m / 255));
        const out = this.conv(tf.sub(x, mean), b.conv, 2, true, "valid");
        return tf.maxPool(out, 3, 2, "valid");
      }
      case "residual": {
        let out = this.conv(x, b.conv1, 1, true, "same");
        out = this.conv(out, b.conv2, 1, false, "same");
        return tf.relu(tf.add(out, x));
      }
      case "residualDown": {
        let out = this.conv(x, b.conv1, 2, true, "valid");
        out = this.conv(out, b.conv2, 1, false, "same");
        let pooled = tf.avgPool(x, 2, 2, "valid") as tf.Tensor4D;
        if (pooled.shape[1] !== out.shape[1] || pooled.shape[2] !== out.shape[2]) {
          // face-api appends one zero row and one zero column to the conv branch.
          out = tf.pad(out, [[0, 0], [0, pooled.shape[1] - out.shape[1]], [0, pooled.shape[2] - out.shape[2]], [0, 0]]);
        }
        if (pooled.shape[3] !== out.shape[3]) {
          // The shortcut doubles its channels with zeros (face-api concatenates a zero tensor).
          pooled = tf.pad(pooled, [[0, 0], [0, 0], [0, 0], [0, out.shape[3] - pooled.shape[3]]]);
        }
        return tf.relu(tf.add(pooled, out));
      }
      case "descriptor":
        return tf.matMul(tf.mean(x, [1, 2]) as tf.Tensor2D, this.read("fc") as tf.Tensor2D);
    }
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), stage: stageId(this.stage) };
  }
}
tf.serialization.registerClass(FaceNetStage);

/** The folder of face-api's weight files inside node_modules (resolved, never hard-coded). */
export function faceNetModelDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve(`${FACENET_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${FACENET_PACKAGE} is not installed: run npm install (it is a dependency of this project; its tarball ships the weights).`);
  }
  return path.join(path.dirname(pkg), "model");
}

/**
 * Reads face-api's FaceRecognitionNet weights from disk (weights manifest + .bin, uint8
 * quantised; tf.io.decodeWeights dequantises them exactly as face-api's loader does).
 * The caller disposes the tensors.
 */
export function readFaceNetWeights(dir: string = faceNetModelDir()): Map<string, tf.Tensor> {
  const manifestFile = path.join(dir, `${FACENET_WEIGHTS}-weights_manifest.json`);
  if (!fs.existsSync(manifestFile)) {
    throw new Error(`${manifestFile} does not exist: expected face-api's model folder (${FACENET_PACKAGE}/model) with ${FACENET_WEIGHTS}-weights_manifest.json and ${FACENET_WEIGHTS}.bin.`);
  }
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as tf.io.WeightsManifestConfig;
  const { specs, data } = readManifestWeights(manifest, dir, (p) => `${manifestFile} lists ${p}, missing next to it: reinstall ${FACENET_PACKAGE}.`);
  return new Map(Object.entries(tf.io.decodeWeights(data, specs)));
}

/** The FaceNetStage layers of a model, in network order. */
export function faceNetLayers(model: tf.LayersModel): FaceNetStage[] {
  return model.layers.filter((l): l is FaceNetStage => l instanceof FaceNetStage);
}

/**
 * Copies face-api's pretrained weights into every FaceNetStage layer of `model`. A missing
 * weight or a shape mismatch is an error naming both.
 */
export function loadFaceNetWeights(model: tf.LayersModel, dir?: string): void {
  const layers = faceNetLayers(model);
  if (layers.length === 0) throw new Error(`Model ${model.name} has no FaceNetStage layers to load face-api weights into.`);
  const weights = readFaceNetWeights(dir);
  try {
    for (const layer of layers) {
      const values = layer.weightNames().map((name, i) => {
        const t = weights.get(name);
        if (!t) throw new Error(`face-api's ${FACENET_WEIGHTS} has no weight "${name}" (layer ${layer.name}); is ${FACENET_PACKAGE} the expected 1.7.x?`);
        const want = layer.weights[i].shape;
        if (t.shape.join("x") !== want.join("x")) throw new Error(`face-api weight "${name}" has shape [${t.shape}], layer ${layer.name} expects [${want}].`);
        return t;
      });
      layer.setWeights(values);
    }
  } finally {
    weights.forEach((t) => t.dispose());
  }
}

/**
 * Applies the backbone to a unit-normalised ([0,1]) RGB image input and returns the
 * 128-d face descriptor (symbolic).
 */
export function faceNetBackbone(input: tf.SymbolicTensor, trainable = true): tf.SymbolicTensor {
  let x = input;
  for (const stage of FACENET_STAGES) x = new FaceNetStage({ stage: stageId(stage), trainable }).apply(x) as tf.SymbolicTensor;
  return x;
}

/**
 * The stages of the backbone up to and including `last`, as a model with face-api's weights:
 * [n, size, size, 3] unit RGB -> that stage's feature map (or the descriptor for the last stage).
 * The frozen trunk of fine-tuning: its output is cached once, the stages after it train.
 */
export function buildFaceNetTrunk(last: FaceNetStageName, size = FACENET_NATIVE_SIZE): tf.LayersModel {
  checkFaceNetSize(size);
  const input = tf.input({ shape: [size, size, 3], name: "image" });
  let x: tf.SymbolicTensor = input;
  for (const stage of FACENET_STAGES.slice(0, FACENET_STAGES.indexOf(last) + 1)) x = new FaceNetStage({ stage: stageId(stage) }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x, name: `facenet_trunk_${stageId(last)}` });
  loadFaceNetWeights(model);
  return model;
}

/**
 * The stages after `after`, applied to a symbolic feature map of that stage (the trunk's
 * output), ending in the 128-d descriptor; weights are loaded by `loadFaceNetWeights` on the
 * model that holds them.
 */
export function faceNetTail(input: tf.SymbolicTensor, after: FaceNetStageName, trainable = true): tf.SymbolicTensor {
  let x = input;
  for (const stage of FACENET_STAGES.slice(FACENET_STAGES.indexOf(after) + 1)) x = new FaceNetStage({ stage: stageId(stage), trainable }).apply(x) as tf.SymbolicTensor;
  return x;
}

/** Output shape [h, w, c] of a stage for a square input of `size` (the cached map's shape). */
export function faceNetStageShape(stage: FaceNetStageName, size = FACENET_NATIVE_SIZE): [number, number, number] {
  let n = size;
  let c = 3;
  for (const s of FACENET_STAGES.slice(0, FACENET_STAGES.indexOf(stage) + 1)) {
    for (const b of STAGE_BLOCKS[s]) {
      n = sideAfter(b, n);
      c = b.kind === "stem" ? b.conv.outChannels : b.kind === "descriptor" ? FACENET_DESCRIPTOR_SIZE : b.conv2.outChannels;
    }
  }
  return [n, n, c];
}

/**
 * The backbone alone as a model: [n, size, size, 3] unit RGB -> [n, 128] descriptors, with
 * face-api's pretrained weights. At 150x150 it computes face-api's descriptor.
 */
export function buildFaceNetDescriptor(size = FACENET_NATIVE_SIZE): tf.LayersModel {
  checkFaceNetSize(size);
  const input = tf.input({ shape: [size, size, 3], name: "image" });
  const model = tf.model({ inputs: input, outputs: faceNetBackbone(input), name: "facenet_descriptor_model" });
  loadFaceNetWeights(model);
  return model;
}

function checkFaceNetSize(size: number): void {
  if (!Number.isInteger(size) || size < FACENET_MIN_SIZE) {
    throw new Error(`Input size ${size} is too small for the face-api backbone: its down-sampling blocks need an integer size >= ${FACENET_MIN_SIZE} (it was trained at ${FACENET_NATIVE_SIZE}; 112 is faster).`);
  }
}

/**
 * Transfer-learning model "facenet-transfer": unit RGB faces -> face-api's pretrained backbone
 * (frozen unless options.freezePretrained is false) -> 128-d descriptor -> two dense heads, the
 * 20 age groups (softmax, output "age") and gender (sigmoid, output "gender"), as cnn-multi.
 */
export function buildFaceNetTransfer(options?: ModelOptions): tf.LayersModel {
  const size = options?.size ?? FACENET_NATIVE_SIZE;
  checkFaceNetSize(size);
  if ((options?.channels ?? 3) !== 3) throw new Error(`facenet-transfer needs RGB inputs (3 channels), got ${options?.channels}. Use color "rgb".`);
  const seed = options?.seed ?? 42;
  const dropout = options?.dropout ?? 0.25;
  const ageGroups = options?.ageGroups ?? AGE_GROUP_COUNT;
  const input = tf.input({ shape: [size, size, 3], name: "image" });
  const descriptor = faceNetBackbone(input, !(options?.freezePretrained ?? true));
  const head = (units: number, k: number, prefix: string) => {
    let x = tf.layers.dense({ units, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1000 + k }), name: `${prefix}_dense1` }).apply(descriptor) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: dropout, seed: seed + k, name: `${prefix}_dropout1` }).apply(x) as tf.SymbolicTensor;
    return x;
  };
  const age = tf.layers
    .dense({ units: ageGroups, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2000 }), name: "age" })
    .apply(head(128, 0, "age")) as tf.SymbolicTensor;
  const gender = tf.layers
    .dense({ units: 1, activation: "sigmoid", kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2001 }), name: "gender" })
    .apply(head(64, 1, "gender")) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [age, gender], name: "facenet_transfer" });
  loadFaceNetWeights(model);
  return model;
}
