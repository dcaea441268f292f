/**
 * Fine-tuning the last stages of a backbone with the best-model heads: face-api's recognition
 * network (from one of its stage maps), or faceres's last block ("faceres-caffe-maps", the
 * 7x7x1024 map before conv_dw_13, under heads on faceres-caffe's features).
 *
 * The network's early stages stay frozen, so their output for every face (and its mirror
 * image) is computed once and cached like any feature ("facenet-maps", the map after stage128,
 * or "facenet-maps64", after stage64). The stages after it and the heads then train together
 * on those maps:
 *
 * 1. heads are trained on the frozen 128-d descriptors as usual (trainHeads);
 * 2. their input standardiser is folded into the first dense layer of each head
 *    (W' = W / std, b' = b - (mean / std) W), so the network and the heads form one model that
 *    reads the maps as they are and starts exactly where the frozen model ended;
 * 3. that model trains with Adam and a cosine-decayed learning rate through `fitRows`, the same
 *    loop as the heads.
 *
 * The result is a `TrainedHeads` whose model reads the maps' rows with no standardiser, so
 * scoring, saving and `predict` treat it like any other heads.
 *
 * `fineTuneOnPixels` trains the same model on augmented faces instead of cached maps: the maps
 * of a face change with every augmentation, so the frozen trunk runs on each batch (forward only)
 * and only the stages after it learn. The trained model reads the same un-augmented maps, so
 * it is saved, scored and used exactly like the cached-maps one.
 */
import * as tf from "@tensorflow/tfjs";
import { FACENET_MAPS_STAGES, FACERES_AGE_BINS, FACERES_MAPS, FACERES_MAPS_SHAPE, FaceNetMapsName, FineTuneMapsName, backboneSpec, isFaceNetMaps, loadFaceresArtifacts } from "./backbones";
import { buildFaceNetTrunk, faceNetStageShape, faceNetTail, loadFaceNetWeights } from "../models/facenet";
import { headOutputs } from "./heads";
import { augmentBatch } from "./augment";
import { mulberry32 } from "../data/splits";
import { BatchSource, FeaturePart, HeadConfig, HeadTrainingData, HeadValidationData, TrainedHeads, fitRows, validationPoint, withMirroredRows } from "./head-training";

/** The cached trunk output fine-tuning trains on by default. */
export const FINETUNE_BACKBONE: FaceNetMapsName = "facenet-maps";

/** The trunk maps a fine-tuning config trains on. */
export function fineTuneMaps(config: HeadConfig): FineTuneMapsName {
  return config.fineTune?.maps ?? FINETUNE_BACKBONE;
}

/** The features a model of `config` reads at prediction time: the trunk maps once fine-tuned. */
export function modelInputs(config: HeadConfig): FeaturePart[] {
  return config.fineTune ? [{ backbone: fineTuneMaps(config) }] : config.features;
}

/**
 * One model: trunk maps (flat rows) -> the backbone's layers after the trunk (pretrained
 * weights) -> the trained heads, with their standardiser folded into their first layer. The
 * heads must read the backbone's features alone: face-api's descriptor ([facenet]) for its
 * stage maps, faceres-caffe's 1,125 features for "faceres-caffe-maps".
 */
export async function buildFineTuneModel(heads: TrainedHeads): Promise<tf.LayersModel> {
  const { config, standardizer } = heads;
  const mapsName = fineTuneMaps(config);
  const wanted = mapsName === FACERES_MAPS ? "faceres-caffe" : "facenet";
  const f = config.features;
  if (f.length !== 1 || f[0].backbone !== wanted || (f[0].columns ?? "all") !== "all" || !standardizer) {
    throw new Error(`Fine-tuning on ${mapsName} continues heads trained on ${wanted}'s features alone (features [${wanted}], all columns), got ${f.map((p) => p.backbone + (p.columns ? ` (${p.columns})` : "")).join(" + ")}.`);
  }
  const input = tf.input({ shape: [backboneSpec(mapsName).dim], name: "maps" });
  const options = { hidden: config.hidden, dropout: config.dropout, seed: config.seed };
  if (mapsName === FACERES_MAPS) {
    const tail = faceresTail(input);
    const model = tf.model({ inputs: input, outputs: headOutputs(tail.features, options), name: "best_finetuned" });
    await tail.loadWeights();
    copyHeadsFolded(heads, model);
    return model;
  }
  const stage = FACENET_MAPS_STAGES[mapsName];
  const maps = tf.layers.reshape({ targetShape: faceNetStageShape(stage), name: "maps_shape" }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: headOutputs(faceNetTail(maps, stage), options), name: "best_finetuned" });
  loadFaceNetWeights(model);
  copyHeadsFolded(heads, model);
  return model;
}

/**
 * faceres's layers after FACERES_MAPS_NODE as tfjs layers: its last block (conv_dw_13 and
 * conv_pw_13, batch norm folded as the graph runs it, each with ReLU6), the global mean, and its
 * own age and gender layers; `features` is [pooled 1024, age bins 100, gender 1], faceres-caffe's
 * features. `loadWeights` sets the layers to the shipped model's weights (once the model that
 * holds them is built).
 */
export function faceresTail(input: tf.SymbolicTensor): { features: tf.SymbolicTensor; loadWeights: () => Promise<void> } {
  const relu6 = (x: tf.SymbolicTensor, name: string) => tf.layers.reLU({ maxValue: 6, name }).apply(x) as tf.SymbolicTensor;
  const channels = FACERES_MAPS_SHAPE[2];
  const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", name: "conv_dw_13" });
  const pw = tf.layers.conv2d({ filters: channels, kernelSize: 1, name: "conv_pw_13" });
  const feats = tf.layers.dense({ units: 256, activation: "relu", name: "feats" });
  const ownAge = tf.layers.dense({ units: FACERES_AGE_BINS, activation: "softmax", name: "age_pred" });
  const ownGender = tf.layers.dense({ units: 1, activation: "sigmoid", name: "gender_pred" });
  const maps = tf.layers.reshape({ targetShape: [...FACERES_MAPS_SHAPE], name: "maps_shape" }).apply(input) as tf.SymbolicTensor;
  const block = relu6(pw.apply(relu6(dw.apply(maps) as tf.SymbolicTensor, "conv_dw_13_relu")) as tf.SymbolicTensor, "conv_pw_13_relu");
  const pooled = tf.layers.globalAveragePooling2d({ name: "global_pooling" }).apply(block) as tf.SymbolicTensor;
  const f = feats.apply(pooled) as tf.SymbolicTensor;
  const features = tf.layers.concatenate({ name: "faceres_features" }).apply([pooled, ownAge.apply(f) as tf.SymbolicTensor, ownGender.apply(f) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const loadWeights = async () => {
    const shipped = await loadFaceresArtifacts();
    const w = tf.io.decodeWeights(shipped.weightData!, shipped.weightSpecs!);
    try {
      const depthwise = tf.tidy(() => tf.mul(w["conv_dw_13/depthwise_kernel"], tf.reshape(w["conv_dw_13_bn/batchnorm_1/mul"], [1, 1, channels, 1])));
      dw.setWeights([depthwise, w["conv_dw_13_bn/batchnorm_1/sub"]]);
      depthwise.dispose();
      pw.setWeights([w["conv_pw_13/convolution/merged_input"], w["conv_pw_13_bn/batchnorm_1/sub"]]);
      feats.setWeights([w["feats/kernel"], w["feats/bias"]]);
      ownAge.setWeights([w["age_pred/kernel"], w["age_pred/bias"]]);
      ownGender.setWeights([w["gender_pred/kernel"], w["gender_pred/bias"]]);
    } finally {
      tf.dispose(Object.values(w));
    }
  };
  return { features, loadWeights };
}

/**
 * Copies trained heads' weights into `model` by layer name, folding their input standardiser
 * into the first dense layer of each head (the hidden layer, or the output layer of linear
 * heads): W' = W / std, b' = b - sum(W' * mean), so `model` reads raw features and starts where
 * the heads ended.
 */
export function copyHeadsFolded(heads: Pick<TrainedHeads, "model" | "standardizer" | "config">, model: tf.LayersModel): void {
  if (!heads.standardizer) throw new Error(`Heads "${heads.config.name}" have no standardiser to fold.`);
  const { mean, std } = heads.standardizer;
  for (const layer of heads.model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const target = model.getLayer(layer.name);
    const first = layer.name.endsWith("_hidden") || (heads.config.hidden <= 0 && (layer.name === "age" || layer.name === "gender"));
    if (!first) {
      target.setWeights(weights);
      continue;
    }
    const folded = tf.tidy(() => {
      const [kernel, bias] = weights;
      const s = tf.tensor2d(std, [std.length, 1]);
      const m = tf.tensor2d(mean, [mean.length, 1]);
      const k = tf.div(kernel, s);
      const b = tf.sub(bias, tf.sum(tf.mul(k, m), 0));
      return [k, b];
    });
    target.setWeights(folded);
    tf.dispose(folded);
  }
}

/**
 * Fine-tunes trained heads with the backbone's last stages on trunk maps (`train` and
 * `validation` hold rows of the config's `fineTune.maps`). `heads.model` is disposed; the
 * returned heads read the maps. With `validation`, the curve holds the validation figures
 * after every epoch.
 */
export async function fineTuneHeads(heads: TrainedHeads, train: HeadTrainingData, validation?: HeadValidationData, onEpoch?: (line: string) => void): Promise<TrainedHeads> {
  const config = heads.config;
  if (!config.fineTune) throw new Error(`Head config "${config.name}" has no fineTune settings.`);
  const dim = backboneSpec(fineTuneMaps(config)).dim;
  const model = await buildFineTuneModel(heads);
  heads.model.dispose();
  const rows = withMirroredRows(config, train);
  return fitFineTune(config, model, rows.plain, dim, rows, validation, onEpoch, "rows");
}

/**
 * The fine-tuning loop both paths share: Adam with a warm-up and a cosine decay over the
 * fineTune epochs, the validation figures after every epoch in the curve, one progress line
 * each ("rows" or "faces" per second; the pixel path says so).
 */
async function fitFineTune(
  config: HeadConfig,
  model: tf.LayersModel,
  x: Float32Array | BatchSource,
  dim: number,
  labels: { ages: number[]; genders: number[] },
  validation: HeadValidationData | undefined,
  onEpoch: ((line: string) => void) | undefined,
  unit: "rows" | "faces",
): Promise<TrainedHeads> {
  const ft = config.fineTune!;
  const tuned: TrainedHeads = { config, model, standardizer: null, curve: [] };
  const started = Date.now();
  await fitRows(model, x, dim, labels.ages, labels.genders, {
    ...config,
    epochs: ft.epochs,
    learningRate: ft.learningRate,
    batchSize: ft.batchSize,
    schedule: "cosine",
    onEpoch: (epoch, loss) => {
      const point = validation ? validationPoint(tuned, validation, epoch) : undefined;
      if (point) tuned.curve.push(point);
      const rate = (labels.ages.length * epoch) / ((Date.now() - started) / 1000);
      onEpoch?.(`[fine-tune] ${config.name} epoch ${epoch}/${ft.epochs}${unit === "faces" ? " (augmented pixels)" : ""}: loss ${loss.toFixed(3)}${point ? `, validation MAE ${point.mae.toFixed(2)}, gender ${(point.genderAccuracy * 100).toFixed(1)}%` : ""}, ${rate.toFixed(0)} ${unit}/s`);
    },
  });
  return tuned;
}

/** Training faces as pixels: n x side x side x 3 uint8 (HWC RGB, the backbone's input size). */
export interface PixelTrainingData {
  pixels: Uint8Array;
  side: number;
  ages: number[];
  genders: number[];
}

/**
 * Fine-tunes trained heads with face-api's stages after the cached trunk on augmented faces
 * (`config.fineTune.augment`): each batch is augmented afresh (seeded), run through the frozen
 * trunk, and the stages after it train with the heads. `validation` holds the un-augmented
 * cached maps, as for `fineTuneHeads`. `heads.model` is disposed.
 */
export async function fineTuneOnPixels(heads: TrainedHeads, train: PixelTrainingData, validation?: HeadValidationData, onEpoch?: (line: string) => void): Promise<TrainedHeads> {
  const config = heads.config;
  const augment = config.fineTune?.augment;
  if (!config.fineTune || !augment) throw new Error(`Head config "${config.name}" has no fineTune.augment settings: fine-tune it on cached maps (fineTuneHeads).`);
  const per = train.side * train.side * 3;
  if (train.pixels.length !== train.ages.length * per) throw new Error(`Pixel training data hold ${train.pixels.length / per} faces of ${train.side}x${train.side} RGB, labels ${train.ages.length}.`);
  const mapsName = fineTuneMaps(config);
  if (!isFaceNetMaps(mapsName)) throw new Error(`Fine-tuning on augmented pixels runs face-api's trunk; ${mapsName} fine-tunes on cached maps only (drop fineTune.augment).`);
  const spec = backboneSpec(mapsName);
  if (train.side !== spec.size) throw new Error(`${mapsName} reads ${spec.size}x${spec.size} faces, the pixels are ${train.side}x${train.side}.`);
  const trunk = buildFaceNetTrunk(FACENET_MAPS_STAGES[mapsName], spec.size);
  const model = await buildFineTuneModel(heads);
  heads.model.dispose();
  const rng = mulberry32(config.seed + 101);
  const side = train.side;
  const batch = (idx: Uint32Array) =>
    tf.tidy(() => {
      const x = tf.tensor4d(augmentBatch(train.pixels, side, idx, augment, rng), [idx.length, side, side, 3]);
      return tf.reshape(trunk.predict(x) as tf.Tensor, [idx.length, spec.dim]);
    });
  try {
    return await fitFineTune(config, model, batch, spec.dim, train, validation, onEpoch, "faces");
  } finally {
    trunk.dispose();
  }
}
