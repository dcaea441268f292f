/**
 * Frozen pretrained face backbones used as feature extractors (the `best` model family):
 *
 * - "facenet": face-api's recognition ResNet (lib/models/facenet.ts, @vladmandic/face-api, MIT),
 *   150x150 RGB -> 128-d identity descriptor.
 * - "faceres" / "faceres-caffe": human's `faceres` (@vladmandic/human, MIT), a MobileNet-v1 at
 *   224x224 RGB whose base was trained for identity on VGGFace2 (HSE_FaceRec_tf), run as a tfjs
 *   graph model read from the npm package's files. Features: the 1024-d pooled feature followed
 *   by its own 100-bin age distribution and gender score (1125 values). Two preprocessings:
 *   "faceres" feeds RGB 0..255 (what human does); "faceres-caffe" feeds BGR minus the
 *   VGG mean pixel (what the model's original repository does). "faceres-caffe-maps" is the
 *   7x7x1024 map before its last block, which fine-tuning trains (fine-tuning.ts).
 *
 * Never add face-api's ageGenderNet or human's `gear` here: both were trained on UTKFace, so
 * a UTKFace test split would not be held out from them.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { readManifestWeights } from "../core/weights";
import { fuseConvChains } from "../engine/fuse-graph";
import { FACENET_NATIVE_SIZE, FaceNetStageName, buildFaceNetDescriptor, buildFaceNetTrunk, faceNetStageShape } from "../models/facenet";

/** Names of the backbones (one per preprocessing). */
export const BACKBONE_NAMES = ["facenet", "faceres", "faceres-caffe", "facenet-maps", "facenet-maps64", "facenet-maps32", "faceres-caffe-maps"] as const;
export type BackboneName = (typeof BACKBONE_NAMES)[number];

/** What a backbone expects and gives. */
export interface BackboneSpec {
  name: BackboneName;
  /** Side of the RGB square fed to the network. */
  size: number;
  /** Values per face in its feature vector. */
  dim: number;
  /** The npm package its weights come from, and that package's licence. */
  package: string;
  licence: string;
  /** One line on the preprocessing, for model cards. */
  preprocessing: string;
}

/**
 * The trunk-map backbones: the output of a stage of face-api's network, the frozen trunk of
 * fine-tuning (fine-tuning.ts trains the stages after it). "facenet-maps" ends after
 * stage128 (8x8x128 per face: stage256 and the descriptor train), "facenet-maps64" after
 * stage64 (17x17x64: stage128 trains too), "facenet-maps32" after stage32 (35x35x32: stage64
 * trains too; fine-tuning on augmented pixels only needs it for validation and prediction).
 */
export const FACENET_MAPS_STAGES = { "facenet-maps": "facenet_stage128", "facenet-maps64": "facenet_stage64", "facenet-maps32": "facenet_stage32" } as const satisfies Record<string, FaceNetStageName>;
export type FaceNetMapsName = keyof typeof FACENET_MAPS_STAGES;

/** True for the trunk-map backbones. */
export function isFaceNetMaps(name: string): name is FaceNetMapsName {
  return Object.prototype.hasOwnProperty.call(FACENET_MAPS_STAGES, name);
}

/** Where face-api's recognition network comes from (the descriptor and its trunk maps alike). */
const FACENET_SOURCE = {
  package: "@vladmandic/face-api 1.7.15 (face_recognition_model)",
  licence: "MIT (package); weights by Davis King (dlib), converted by Vincent Mühler (face-api.js)",
};

/** True for backbones whose features end with their own age bins and gender score (faceres). */
export function hasOwnOutputs(name: BackboneName): boolean {
  return BACKBONES[name].dim === FACERES_POOLED + FACERES_AGE_BINS + 1;
}

function mapsSpec(name: FaceNetMapsName): BackboneSpec {
  const stage = FACENET_MAPS_STAGES[name];
  const shape = faceNetStageShape(stage);
  return {
    name,
    size: FACENET_NATIVE_SIZE,
    dim: shape[0] * shape[1] * shape[2],
    ...FACENET_SOURCE,
    preprocessing: `as facenet; the ${shape.join("x")} feature map after ${stage.slice("facenet_".length)} (the input of the fine-tuned stages)`,
  };
}

/** The package holding human's faceres graph model (models/faceres.json + .bin). */
export const HUMAN_PACKAGE = "@vladmandic/human";
/** faceres's pooled identity feature length. */
export const FACERES_POOLED = 1024;
/** faceres's own age output: softmax over ages 0..99 in one-year bins. */
export const FACERES_AGE_BINS = 100;
/** The VGGFace2/caffe mean pixel in BGR order, subtracted by the model's original repository. */
export const CAFFE_MEAN_BGR: readonly number[] = [103.939, 116.779, 123.68];
const FACERES_OUTPUTS = ["global_pooling/Mean", "age_pred/Softmax", "gender_pred/Sigmoid"];
/**
 * The faceres map fine-tuning starts from: conv_pw_12's output after its ReLU6 (a node of the
 * fused graph, lib/engine/fuse-graph.ts), the input of the network's last block (conv_dw_13 +
 * conv_pw_13), which trains with the heads (fine-tuning.ts).
 */
export const FACERES_MAPS_NODE = "conv_pw_12_relu/clip_by_value";
/** Height, width and channels of FACERES_MAPS_NODE for a 224x224 face. */
export const FACERES_MAPS_SHAPE: readonly [number, number, number] = [7, 7, 1024];
/** The backbone of faceres's trunk maps (faceres-caffe's preprocessing). */
export const FACERES_MAPS = "faceres-caffe-maps";
/** The cached trunk maps fine-tuning can start from: face-api's stages, or faceres's last block. */
export type FineTuneMapsName = FaceNetMapsName | typeof FACERES_MAPS;

/** One network, two preprocessings: what faceres and faceres-caffe share. */
const FACERES = {
  size: 224,
  dim: FACERES_POOLED + FACERES_AGE_BINS + 1,
  package: `${HUMAN_PACKAGE} 3.3.6 (models/faceres)`,
  licence: "MIT (package); MobileNet trained by A. Savchenko (HSE_FaceRec_tf) on VGGFace2 + age/gender data, not UTKFace",
};

/** Every backbone's spec, by name. */
export const BACKBONES: Readonly<Record<BackboneName, BackboneSpec>> = {
  facenet: {
    name: "facenet",
    size: FACENET_NATIVE_SIZE,
    dim: 128,
    ...FACENET_SOURCE,
    preprocessing: "RGB 150x150 (area-averaged from 200x200), minus mean RGB (122.782, 117.001, 104.298), divided by 255",
  },
  "facenet-maps": mapsSpec("facenet-maps"),
  "facenet-maps64": mapsSpec("facenet-maps64"),
  "facenet-maps32": mapsSpec("facenet-maps32"),
  faceres: { name: "faceres", ...FACERES, preprocessing: "RGB 224x224 (bilinear from 200x200), values 0..255" },
  "faceres-caffe": {
    name: "faceres-caffe",
    ...FACERES,
    preprocessing: "BGR 224x224 (bilinear from 200x200), 0..255 minus the mean pixel (103.939, 116.779, 123.68)",
  },
  "faceres-caffe-maps": {
    name: "faceres-caffe-maps",
    ...FACERES,
    dim: FACERES_MAPS_SHAPE[0] * FACERES_MAPS_SHAPE[1] * FACERES_MAPS_SHAPE[2],
    preprocessing: `as faceres-caffe; the ${FACERES_MAPS_SHAPE.join("x")} feature map after conv_pw_12 (the input of the fine-tuned last block)`,
  },
};

/** The spec of a backbone; an unknown name is an error listing the known ones. */
export function backboneSpec(name: string): BackboneSpec {
  const spec = (BACKBONES as Record<string, BackboneSpec>)[name];
  if (!spec) throw new Error(`Unknown backbone "${name}". Known backbones: ${BACKBONE_NAMES.join(", ")}.`);
  return spec;
}

/** A loaded backbone: uint8 RGB faces at spec.size in, one feature row per face out. */
export interface Backbone {
  spec: BackboneSpec;
  /**
   * Features of `n` faces given as uint8 HWC RGB pixels (n * size * size * 3), mirrored left to
   * right first when `flip` is set. Returns n * spec.dim floats.
   */
  extract(pixels: Uint8Array, n: number, flip?: boolean): Float32Array;
  dispose(): void;
}

/** The folder of human's model files inside node_modules (resolved, never hard-coded). */
export function humanModelDir(): string {
  // The package's "exports" map hides package.json from require.resolve, so look for the folder
  // along Node's own module search paths.
  for (const base of require.resolve.paths(HUMAN_PACKAGE) ?? []) {
    const dir = path.join(base, HUMAN_PACKAGE, "models");
    if (fs.existsSync(path.join(dir, "faceres.json"))) return dir;
  }
  throw new Error(`${HUMAN_PACKAGE} is not installed: run npm install (it is a dependency of this project; its tarball ships models/faceres).`);
}

/**
 * An IO handler that reads a tfjs graph model (model.json + weight files) from disk: pure tfjs
 * in Node has no file:// loader, and tfjs-node is not always installed.
 */
export function fileModelHandler(modelJson: string): tf.io.IOHandler {
  return {
    load: async () => {
      if (!fs.existsSync(modelJson)) throw new Error(`Model file ${modelJson} does not exist.`);
      const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
      const weights = readManifestWeights(json.weightsManifest as tf.io.WeightsManifestConfig, path.dirname(modelJson), (p) => `${modelJson} lists weight file ${p}, missing next to it: reinstall the package it came from.`);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer,
        weightSpecs: weights.specs,
        weightData: weights.data,
      };
    },
  };
}

/** uint8 HWC faces -> float NHWC tensor, mirrored when asked (inside the caller's tidy). */
function facesTensor(pixels: Uint8Array, n: number, size: number, flip: boolean): tf.Tensor4D {
  const expected = n * size * size * 3;
  if (pixels.length !== expected) throw new Error(`Expected ${n} RGB faces of ${size}x${size} (${expected} bytes), got ${pixels.length} bytes.`);
  const x = tf.tensor4d(Float32Array.from(pixels), [n, size, size, 3]);
  return flip ? (tf.reverse(x, 2) as tf.Tensor4D) : x;
}

/**
 * faceres's input tensor: RGB 0..255, or for "faceres-caffe" BGR minus the VGG mean pixel (what
 * the original repository feeds from OpenCV), mirrored when asked; built in one pass here
 * rather than as Reverse and Sub passes over the batch.
 */
export function faceresInput(pixels: Uint8Array, n: number, size: number, flip: boolean, caffe: boolean): tf.Tensor4D {
  const expected = n * size * size * 3;
  if (pixels.length !== expected) throw new Error(`Expected ${n} RGB faces of ${size}x${size} (${expected} bytes), got ${pixels.length} bytes.`);
  const out = new Float32Array(expected);
  const [m0, m1, m2] = caffe ? CAFFE_MEAN_BGR : [0, 0, 0];
  for (let row = 0; row < n * size; row++) {
    for (let x = 0; x < size; x++) {
      const src = (row * size + (flip ? size - 1 - x : x)) * 3;
      const dst = (row * size + x) * 3;
      if (caffe) {
        out[dst] = pixels[src + 2] - m0;
        out[dst + 1] = pixels[src + 1] - m1;
        out[dst + 2] = pixels[src] - m2;
      } else {
        out[dst] = pixels[src];
        out[dst + 1] = pixels[src + 1];
        out[dst + 2] = pixels[src + 2];
      }
    }
  }
  return tf.tensor4d(out, [n, size, size, 3]);
}

/** Options of `loadBackbone`. */
export interface LoadBackboneOptions {
  /**
   * Fuse faceres's convolution, batch-norm and ReLU6 nodes into fused convolutions at load
   * (lib/engine/fuse-graph.ts; default true): the same outputs to float rounding, about 6x
   * faster on the oneDNN engine. false runs the graph as the package ships it.
   */
  fuse?: boolean;
}

/** human's faceres graph model as its package ships it (topology and weights). */
export async function loadFaceresArtifacts(): Promise<tf.io.ModelArtifacts> {
  return fileModelHandler(path.join(humanModelDir(), "faceres.json")).load!();
}

async function loadFaceres(spec: BackboneSpec, options: LoadBackboneOptions): Promise<Backbone> {
  const shipped = await loadFaceresArtifacts();
  const artifacts = options.fuse === false ? shipped : (await fuseConvChains(shipped)).artifacts;
  const model = await tf.loadGraphModel({ load: async () => artifacts });
  const caffe = spec.name === "faceres-caffe" || spec.name === FACERES_MAPS;
  return {
    spec,
    extract(pixels, n, flip = false) {
      const out = tf.tidy(() => {
        const x = faceresInput(pixels, n, spec.size, flip, caffe);
        if (spec.name === FACERES_MAPS) return tf.reshape(model.execute(x, FACERES_MAPS_NODE) as tf.Tensor, [n, spec.dim]);
        const [pooled, age, gender] = model.execute(x, FACERES_OUTPUTS) as tf.Tensor[];
        return tf.concat([pooled.reshape([n, FACERES_POOLED]), age.reshape([n, FACERES_AGE_BINS]), gender.reshape([n, 1])], 1);
      });
      const data = out.dataSync() as Float32Array;
      out.dispose();
      return data;
    },
    dispose: () => model.dispose(),
  };
}

async function loadFaceNet(spec: BackboneSpec): Promise<Backbone> {
  const model = isFaceNetMaps(spec.name) ? buildFaceNetTrunk(FACENET_MAPS_STAGES[spec.name], spec.size) : buildFaceNetDescriptor(spec.size);
  return {
    spec,
    extract(pixels, n, flip = false) {
      // buildFaceNetDescriptor takes [0,1] RGB and applies face-api's mean subtraction itself.
      const out = tf.tidy(() => model.predict(tf.div(facesTensor(pixels, n, spec.size, flip), 255)) as tf.Tensor);
      const data = out.dataSync() as Float32Array;
      out.dispose();
      return data;
    },
    dispose: () => model.dispose(),
  };
}

/** Loads a backbone by name from its npm package (nothing is downloaded). */
export async function loadBackbone(name: BackboneName | string, options: LoadBackboneOptions = {}): Promise<Backbone> {
  const spec = backboneSpec(name);
  return spec.name === "facenet" || isFaceNetMaps(spec.name) ? loadFaceNet(spec) : loadFaceres(spec, options);
}
