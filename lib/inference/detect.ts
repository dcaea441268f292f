/**
 * Face detection on photos, and framing each found face the way UTKFace framed its crops.
 *
 * The detector is face-api's SSD MobileNet v1 (with its 68-point landmark net for the eyes),
 * from @vladmandic/face-api (MIT; weights converted by Vincent Mühler for face-api.js, MIT).
 * Its weights ship in the npm tarball (model/ssd_mobilenetv1_model*, 5.4 MB;
 * model/face_landmark_68_model*, 350 kB), so nothing is downloaded at run time.
 *
 * We run face-api's own detector code rather than re-implementing it: its `node-wasm` build
 * bundles no tfjs of its own, it `require`s "@tensorflow/tfjs" and
 * "@tensorflow/tfjs-backend-wasm", which resolve to this project's instances, so the detector
 * runs on the backend lib/engine/backend.ts chose, in the same engine, and registers no second tfjs
 * (test/detect.test.ts checks that the engine is shared). The tiny face detector of the same
 * package was tried first and dropped: it found no face on a UTKFace crop where SSD MobileNet
 * found one with score 0.95, and recognising a crop is what `--detect auto` needs.
 *
 * Framing: UTKFace's crops are aligned (eyes level) and framed by dlib with a margin around the
 * face. `FRAMING` holds where SSD MobileNet puts its box on those crops, measured once; a face
 * found in a photo is cropped by inverting it (`trainingCrop`), so the model sees a face framed
 * as in training.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../engine/backend";

/** The npm package the detector and its weights come from (MIT). */
export const DETECTOR_PACKAGE = "@vladmandic/face-api";
/** face-api's build that takes this project's tfjs instead of bundling one. */
const DETECTOR_BUILD = `${DETECTOR_PACKAGE}/dist/face-api.node-wasm.js`;

/** An axis-aligned rectangle in pixels of the original image. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One face the detector found. */
export interface DetectedFace {
  /** The detector's box in original pixels. */
  box: Box;
  /** The detector's confidence, 0..1. */
  score: number;
  /** Eye centres (mean of face-api's 6 landmarks per eye) in original pixels, when asked for. */
  eyes?: { left: [number, number]; right: [number, number] };
  /** The second, independent check (face-api's 68-point landmark net on the box), when asked for. */
  check?: FaceCheck;
}

/**
 * Whether the 68 landmarks face-api's landmark net puts in a box look like a face: eyes above
 * the nose above the mouth above the chin, the nose between the eyes, the eyes level within 40
 * degrees, their spacing and the eye-to-mouth height in the range of real faces.
 * `value` is the number of those 6 rules that hold; a face passes all of them (`ok`).
 */
export interface FaceCheck {
  ok: boolean;
  value: number;
  /** The first rule that failed, in words (absent when ok). */
  failed?: string;
}

/** A point. */
interface Pt {
  x: number;
  y: number;
}

/**
 * The landmark check on 68 points relative to their box (0..1 on each side). Thresholds
 * measured on real faces and faceless pictures (docs/photos.md, scripts/measure-trust.ts).
 */
export function checkLandmarks(points: readonly Pt[]): FaceCheck {
  const mean = (a: number, b: number): Pt => {
    const c = centre(points.slice(a, b + 1) as Pt[]);
    return { x: c[0], y: c[1] };
  };
  const le = mean(36, 41);
  const re = mean(42, 47);
  const nose = points[30];
  const mouth = mean(48, 67);
  const chin = points[8];
  const d = Math.hypot(re.x - le.x, re.y - le.y);
  const eyeY = (le.y + re.y) / 2;
  const tilt = (Math.abs(Math.atan2(re.y - le.y, re.x - le.x)) * 180) / Math.PI;
  const rules: [boolean, string][] = [
    [eyeY < nose.y && nose.y < mouth.y && mouth.y < chin.y, "eyes, nose, mouth and chin not in order from top to bottom"],
    [nose.x > Math.min(le.x, re.x) - 0.1 * d && nose.x < Math.max(le.x, re.x) + 0.1 * d, "nose not between the eyes"],
    [tilt < 40, `eyes tilted ${tilt.toFixed(0)} degrees`],
    [d >= LANDMARK_RULES.eyeSpacing[0] && d <= LANDMARK_RULES.eyeSpacing[1], `eye spacing ${d.toFixed(2)} of the box`],
    [(mouth.y - eyeY) / d >= LANDMARK_RULES.mouthHeight[0] && (mouth.y - eyeY) / d <= LANDMARK_RULES.mouthHeight[1], `eye-to-mouth height ${((mouth.y - eyeY) / d).toFixed(2)} eye spacings`],
    [eyeY >= LANDMARK_RULES.eyeLevel[0] && eyeY <= LANDMARK_RULES.eyeLevel[1], `eyes at ${eyeY.toFixed(2)} of the box's height`],
  ];
  const value = rules.filter(([ok]) => ok).length;
  const failed = rules.find(([ok]) => !ok)?.[1];
  return failed === undefined ? { ok: true, value } : { ok: false, value, failed };
}

/** Ranges of the landmark rules (relative to the box; eye spacing units for the mouth). */
export const LANDMARK_RULES = { eyeSpacing: [0.2, 0.65] as [number, number], mouthHeight: [0.5, 1.8] as [number, number], eyeLevel: [0.15, 0.6] as [number, number] };

/** Raw landmark features of 68 relative points, for measuring (docs/photos.md). */
export function landmarkFeatures(points: readonly Pt[]): Record<string, number> {
  const c = (a: number, b: number) => centre(points.slice(a, b + 1) as Pt[]);
  const [lx, ly] = c(36, 41);
  const [rx, ry] = c(42, 47);
  const [mx, my] = c(48, 67);
  const d = Math.hypot(rx - lx, ry - ly);
  return { eyeSpacing: d, mouthHeight: (my - (ly + ry) / 2) / d, eyeLevel: (ly + ry) / 2, noseY: points[30].y, mouthX: mx, chinY: points[8].y };
}

/** How to detect. */
export interface DetectOptions {
  /** Lowest detector score kept (default 0.3: below face-api's 0.5, since the landmark check now rejects what is not a face; faces pasted into photos scored down to 0.46). */
  minScore?: number;
  /**
   * Photos with a longer side are downscaled to this before detection (default 1024): SSD
   * MobileNet sees every input at 512x512 anyway, so more pixels only cost decoding time.
   * Boxes are scaled back to the original pixels.
   */
  maxDetectSide?: number;
  /** Also locate the eyes with the 68-point landmark net (for alignment; default false). */
  landmarks?: boolean;
}

/** Defaults of DetectOptions. */
export const DETECT_DEFAULTS: Required<DetectOptions> = { minScore: 0.3, maxDetectSide: 1024, landmarks: false };

// face-api's module, typed loosely: its own .d.ts pulls in DOM types this project does not load.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FaceApi = any;
let faceApi: Promise<FaceApi> | undefined;

/** The folder of face-api's weight files inside the installed package. */
export function detectorModelDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve(`${DETECTOR_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${DETECTOR_PACKAGE} is not installed: run npm install (it is a dependency of this project; its tarball ships the detector weights).`);
  }
  return path.join(path.dirname(pkg), "model");
}

/**
 * Loads face-api (on this project's tfjs and backend) and the SSD MobileNet v1 and 68-point
 * landmark weights, once per process.
 */
export function loadDetector(): Promise<FaceApi> {
  faceApi ??= (async () => {
    await initBackend();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require(DETECTOR_BUILD);
    const dir = detectorModelDir();
    for (const f of ["ssd_mobilenetv1_model-weights_manifest.json", "face_landmark_68_model-weights_manifest.json"]) {
      if (!fs.existsSync(path.join(dir, f))) throw new Error(`${path.join(dir, f)} does not exist: reinstall ${DETECTOR_PACKAGE} (npm ci).`);
    }
    await api.nets.ssdMobilenetv1.loadFromDisk(dir);
    await api.nets.faceLandmark68Net.loadFromDisk(dir);
    return api;
  })();
  return faceApi;
}

/** True when face-api computes in this project's tfjs engine (no second tfjs was loaded). */
export async function detectorSharesEngine(): Promise<boolean> {
  const api = await loadDetector();
  return api.tf.engine() === tf.engine();
}

/** An RGB image in memory: uint8 HWC pixels. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Mean of landmark points. */
function centre(points: { x: number; y: number }[]): [number, number] {
  let x = 0;
  let y = 0;
  for (const p of points) {
    x += p.x;
    y += p.y;
  }
  return [x / points.length, y / points.length];
}

/** Nearest-neighbour-free downscale with sharp (area-averaging), keeping the aspect ratio. */
async function downscale(image: RgbImage, maxSide: number): Promise<{ image: RgbImage; scale: number }> {
  const side = Math.max(image.width, image.height);
  if (side <= maxSide) return { image, scale: 1 };
  const scale = maxSide / side;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const data = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: "fill" })
    .raw()
    .toBuffer();
  return { image: { data: new Uint8Array(data), width, height }, scale: image.width / width };
}

/**
 * Grey border added around the whole image for the second detector pass, as a share of its
 * longer side. SSD MobileNet misses faces that fill the frame: on 400 of UTKFace's 200x200
 * crops it found 168 as they are, and 34 of 40 with a border of half the side (see
 * docs/photos.md). A border that large shrinks small faces out of reach, so the plain pass
 * stays for them.
 */
export const BORDER_PASS = 0.5;

/**
 * One detector pass on `image` (already at most maxDetectSide), framed by a grey border of
 * `border` px and scaled to at most maxDetectSide again; results in `image`'s pixels, each with
 * its eyes and the landmark check (face-api's 68-point net on the box).
 */
async function detectPass(api: FaceApi, image: RgbImage, border: number, opts: Required<DetectOptions>): Promise<DetectedFace[]> {
  let input = image;
  if (border > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sharp = require("sharp");
    const data = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } })
      .extend({ top: border, bottom: border, left: border, right: border, background: { r: 128, g: 128, b: 128 } })
      .raw()
      .toBuffer();
    input = { data: new Uint8Array(data), width: image.width + 2 * border, height: image.height + 2 * border };
  }
  const { image: small, scale } = await downscale(input, opts.maxDetectSide);
  const tensor = tf.tensor3d(small.data, [small.height, small.width, 3], "int32");
  try {
    const ssd = new api.SsdMobilenetv1Options({ minConfidence: opts.minScore });
    const found = await api.detectAllFaces(tensor, ssd).withFaceLandmarks();
    const at = (x: number, y: number): [number, number] => [x * scale - border, y * scale - border];
    return found.map((f: FaceApi) => {
      const b = f.detection.box;
      const [x, y] = at(b.x, b.y);
      const face: DetectedFace = { box: { x, y, width: b.width * scale, height: b.height * scale }, score: f.detection.score };
      face.eyes = { left: at(...centre(f.landmarks.getLeftEye())), right: at(...centre(f.landmarks.getRightEye())) };
      face.check = checkLandmarks(f.landmarks.relativePositions);
      return face;
    });
  } finally {
    tensor.dispose();
  }
}

/**
 * Finds every face in an RGB image, best score first. Two detector passes: the image as it is
 * (small faces) and the image inside a grey border (faces that fill the frame, such as a
 * UTKFace crop); a face found by both keeps its better-scored box. The image is downscaled to
 * at most maxDetectSide before either pass (the border is added to the small copy, so memory
 * stays bounded however large the photo); boxes and eyes are returned in the original
 * image's pixels. Every face carries its landmark check; with `verified` only faces that pass
 * it are returned.
 */
export async function detectFaces(image: RgbImage, options: DetectOptions & { verified?: boolean } = {}): Promise<DetectedFace[]> {
  const opts: Required<DetectOptions> = {
    minScore: options.minScore ?? DETECT_DEFAULTS.minScore,
    maxDetectSide: options.maxDetectSide ?? DETECT_DEFAULTS.maxDetectSide,
    landmarks: options.landmarks ?? DETECT_DEFAULTS.landmarks,
  };
  const api = await loadDetector();
  const long = Math.max(image.width, image.height);
  const short = Math.min(image.width, image.height);
  if (long > PANORAMA_RATIO * short && short >= 16) {
    // A panorama: SSD MobileNet sees its input squashed into 512x512, where a face of a
    // 12000x2000 picture would be a few pixels. Square tiles of the shorter side, overlapping
    // by a quarter, each detected on its own, then merged.
    const step = Math.round(short * 0.75);
    const all: DetectedFace[] = [];
    for (let at = 0; ; at += step) {
      const start = Math.min(at, long - short);
      const horizontal = image.width >= image.height;
      const tile = await extractRgb(image, horizontal ? start : 0, horizontal ? 0 : start, short, short);
      const shift = (x: number, y: number): [number, number] => (horizontal ? [x + start, y] : [x, y + start]);
      for (const f of await detectFaces(tile, options)) {
        const [x, y] = shift(f.box.x, f.box.y);
        all.push({ ...f, box: { ...f.box, x, y }, eyes: f.eyes ? { left: shift(...f.eyes.left), right: shift(...f.eyes.right) } : undefined });
      }
      if (start >= long - short) break;
    }
    const merged: DetectedFace[] = [];
    for (const f of all.sort((a, b) => b.score - a.score)) if (merged.every((k) => iou(k.box, f.box) < 0.4)) merged.push(f);
    return merged;
  }
  const { image: small, scale } = await downscale(image, opts.maxDetectSide);
  const plain = await detectPass(api, small, 0, opts);
  const bordered = await detectPass(api, small, Math.round(BORDER_PASS * Math.max(small.width, small.height)), opts);
  // Greedy non-maximum suppression over both passes (IoU 0.4: one face's two boxes overlap more).
  const kept: DetectedFace[] = [];
  for (const f of [...plain, ...bordered].sort((a, b) => b.score - a.score)) {
    if (options.verified && !f.check?.ok) continue;
    if (kept.every((k) => iou(k.box, f.box) < 0.4)) kept.push(f);
  }
  const up = (p: [number, number]): [number, number] => [p[0] * scale, p[1] * scale];
  return kept.map((f) => ({
    ...f,
    box: { x: f.box.x * scale, y: f.box.y * scale, width: f.box.width * scale, height: f.box.height * scale },
    eyes: opts.landmarks && f.eyes ? { left: up(f.eyes.left), right: up(f.eyes.right) } : undefined,
  }));
}

/** Images longer than this many times their shorter side are detected in square tiles. */
export const PANORAMA_RATIO = 2;

/** A rectangle of an RGB image. */
async function extractRgb(image: RgbImage, left: number, top: number, width: number, height: number): Promise<RgbImage> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const data = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract({ left, top, width, height })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data), width, height };
}

/**
 * The landmark check on a whole image taken as one face (a crop): face-api's 68-point net on
 * the whole image, without the detector. Images are downscaled first (the net sees 112x112).
 */
export async function checkWholeImage(image: RgbImage): Promise<FaceCheck> {
  const api = await loadDetector();
  const { image: small } = await downscale(image, 256);
  const tensor = tf.tensor3d(small.data, [small.height, small.width, 3], "int32");
  try {
    const lm = await api.nets.faceLandmark68Net.detectLandmarks(tensor);
    return checkLandmarks(lm.relativePositions);
  } finally {
    tensor.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Framing

/**
 * Where UTKFace's crop lies relative to the detector's box, in units of the box's scale
 * s = sqrt(width * height): the crop is a square of side `side * s` centred at the box centre
 * plus (`dx * s`, `dy * s`).
 */
export interface Framing {
  side: number;
  dx: number;
  dy: number;
}

/**
 * Measured with `UTKFACE_DIR=<crop_part1> npx tsx scripts/measure-framing.ts --count 300`: 300
 * of UTKFace's 200x200 aligned crops (crop_part1, every 29th file by name, so all ages), with
 * `detectFaces` as it runs (both passes, min score 0.5): one face on 269, none on 31; medians
 * over the 269. Quartiles: side 1.05..1.135, dx -0.011..0.044, dy 0.035..0.076. The crop is
 * about 9% wider than the detector's box and centred 5% of the box lower (UTKFace keeps the
 * chin, the box stops above it).
 */
export const FRAMING: Framing = { side: 1.09, dx: 0.014, dy: 0.052 };

/** UTKFace's crops are 200x200: faces are cut at this side before the model's own resize. */
export const TRAINING_CROP_SIDE = 200;

/** Box centre and scale s = sqrt(width * height). */
function boxScale(b: Box): { cx: number; cy: number; s: number } {
  return { cx: b.x + b.width / 2, cy: b.y + b.height / 2, s: Math.sqrt(b.width * b.height) };
}

/** Where the detector's box lies on one training crop of side `cropSide` (the inverse of `trainingCrop`). */
export function framingOf(box: Box, cropSide: number): Framing {
  const { cx, cy, s } = boxScale(box);
  return { side: cropSide / s, dx: (cropSide / 2 - cx) / s, dy: (cropSide / 2 - cy) / s };
}

/**
 * The square region (original pixels; may reach past the image's edges) to crop around a
 * detected face so that it is framed like UTKFace's training crops.
 */
export function trainingCrop(box: Box, framing: Framing = FRAMING): Box {
  const { cx, cy, s } = boxScale(box);
  const side = framing.side * s;
  return { x: cx + framing.dx * s - side / 2, y: cy + framing.dy * s - side / 2, width: side, height: side };
}

/** Median of numbers. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Intersection over union of two boxes. */
export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/**
 * Decodes an image file (or bytes) to RGB pixels, turned upright by its EXIF orientation (phone
 * photos store it there), at most `maxSide` pixels on the longer side when given; a clear error names the file when it is not an image.
 */
export async function readRgb(input: string | Buffer, maxSide?: number): Promise<RgbImage> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const name = typeof input === "string" ? input : "image bytes";
  if (typeof input === "string" && !fs.existsSync(input)) throw new Error(`Image file ${input} does not exist.`);
  try {
    // With maxSide, a larger image is shrunk while it is decoded (sharp shrinks JPEGs on load),
    // so a huge file never sits in memory at full size.
    let img = sharp(input, maxSide ? { limitInputPixels: false } : {}).rotate();
    if (maxSide) img = img.resize({ width: maxSide, height: maxSide, fit: "inside", withoutEnlargement: true });
    const { data, info } = await img.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`Cannot decode ${name} as an image (${(e as Error).message}). Is it a JPEG or PNG?`);
  }
}

/** The result of measuring the framing on training crops. */
export interface FramingMeasurement {
  /** Median framing over the crops with exactly one face. */
  framing: Framing;
  /** Lower and upper quartiles of each framing number. */
  quartiles: { side: [number, number]; dx: [number, number]; dy: [number, number] };
  /** Crops looked at, with exactly one face, with none, with more than one. */
  crops: number;
  oneFace: number;
  noFace: number;
  severalFaces: number;
}

/** Quantile q (0..1) of values, linear between neighbours. */
function quantile(values: readonly number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const p = (v.length - 1) * q;
  const lo = Math.floor(p);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (p - lo);
}

/**
 * Measures where the detector puts its box on square training crops (UTKFace's 200x200 crops):
 * detects on each crop and takes the median of `framingOf` over crops with exactly one face.
 */
export async function measureFraming(files: readonly string[], options: DetectOptions = {}): Promise<FramingMeasurement> {
  const samples: Framing[] = [];
  let noFace = 0;
  let severalFaces = 0;
  for (const f of files) {
    const image = await readRgb(f);
    const faces = await detectFaces(image, options);
    if (faces.length === 0) noFace++;
    else if (faces.length > 1) severalFaces++;
    else samples.push(framingOf(faces[0].box, Math.min(image.width, image.height)));
  }
  if (samples.length === 0) throw new Error(`No face found on any of the ${files.length} crops: are they face crops?`);
  const pick = (k: keyof Framing) => samples.map((s) => s[k]);
  const q = (k: keyof Framing): [number, number] => [quantile(pick(k), 0.25), quantile(pick(k), 0.75)];
  return {
    framing: { side: median(pick("side")), dx: median(pick("dx")), dy: median(pick("dy")) },
    quartiles: { side: q("side"), dx: q("dx"), dy: q("dy") },
    crops: files.length,
    oneFace: samples.length,
    noFace,
    severalFaces,
  };
}
