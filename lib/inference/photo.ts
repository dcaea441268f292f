/**
 * Predicting real photos: find every face, cut each one framed like UTKFace's training crops
 * (from the original pixels, levelled by the eyes), and predict age and gender per face.
 * `--detect auto` (the default) takes an image that is already a face crop as it is.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { disposeBestModel, isBestModelDir, loadBestModel, predictBestFiles } from "../best/model-folder";
import { decodeImageBytes, decodeImageFile } from "../data/dataset";
import { FilePrediction, TrainedModel, loadTrainedModel, predictPixels } from "./predict";
import { writeFileAtomic } from "../core/files";
import { Box, DetectOptions, DetectedFace, FRAMING, FaceCheck, Framing, RgbImage, TRAINING_CROP_SIDE, checkWholeImage, detectFaces, iou, readRgb, trainingCrop } from "./detect";

/** How `predict` treats an image. */
export const DETECT_MODES = ["auto", "always", "never"] as const;
export type DetectMode = (typeof DETECT_MODES)[number];

/** Options of `predictPhotos`. */
export interface PhotoOptions extends DetectOptions {
  /**
   * auto (default): detect faces, but take the whole image as one face crop when it holds
   * exactly one face whose training framing covers most of it (a UTKFace-style crop);
   * always: cut every detected face; never: the whole image is one face (the old behaviour).
   */
  detect?: DetectMode;
  /** Level each face by its eyes before cutting it, as UTKFace's crops are (default true). */
  align?: boolean;
  /** Framing of the cut faces (default: FRAMING, measured on UTKFace's crops). */
  framing?: Framing;
  /**
   * auto mode: the whole image is taken as a crop when one face's training crop overlaps the
   * image with at least this IoU (default 0.6: a UTKFace crop gives ~0.9, a portrait photo
   * with shoulders ~0.3).
   */
  wholeImageIou?: number;
  /**
   * Keep only detections that pass the landmark check (default true): face-api's 68-point net
   * must put eyes, nose and mouth in a face's order and spacing inside the box.
   */
  verify?: boolean;
}

/** Images with a shorter side below this are skipped as too small to hold a face. */
export const MIN_IMAGE_SIDE = 32;
/**
 * Photos are decoded for detection and cutting at most this many pixels on the longer side
 * (sharp shrinks on load), so memory stays bounded however large the file; boxes are reported
 * in the original pixels.
 */
export const MAX_WORKING_SIDE = 4096;
/**
 * An image whose sides differ by less than this ratio is shaped like an aligned face crop
 * (UTKFace's are square, CelebA's aligned ones 178x218 = 1.22); a 4:3 or 5:4 photo is not.
 */
export const CROP_ASPECT = 1.25;
/** Crop-shaped images up to this side are checked whole first, without the detector. */
export const CROP_FAST_SIDE = 512;

/** True when an image is shaped like an aligned face crop (near square). */
export function cropShaped(width: number, height: number): boolean {
  return Math.max(width, height) / Math.max(1, Math.min(width, height)) < CROP_ASPECT;
}

/** One face of a photo and its prediction. */
export interface PhotoFace extends Omit<FilePrediction, "file"> {
  /** 0-based, best detector score first. */
  index: number;
  /** The detector's box, or the whole image when the image was taken as a crop. */
  box: Box;
  /** Detector score; absent with `--detect never`. */
  score?: number;
  /** The square cut for the model (original pixels, may reach past the edges). */
  crop: Box;
  /** Degrees the face was turned to level its eyes (0 when not aligned). */
  angle: number;
  /** The landmark check on the face's box (or the whole image); absent with `--detect never`. */
  check?: FaceCheck;
  /** Said in the CSV's note column (e.g. "whole image: no face detected"). */
  note?: string;
}

/** A photo's faces; `faces` is empty when none was found. */
export interface PhotoPrediction {
  file: string;
  width: number;
  height: number;
  /** "detected": faces were cut from the photo; "whole-image": the image was one face crop. */
  source: "detected" | "whole-image";
  faces: PhotoFace[];
  /** Why the file was not predicted (unreadable, not an image, cut short); absent when it was. */
  skipped?: string;
}

/** Degrees to turn a face so its eyes are level (positive = the right-hand eye is lower). */
function eyeAngle(face: DetectedFace): number {
  if (!face.eyes) return 0;
  const [lx, ly] = face.eyes.left;
  const [rx, ry] = face.eyes.right;
  return (Math.atan2(ry - ly, rx - lx) * 180) / Math.PI;
}

/** A raw sharp pipeline over RGB pixels. */
function sharpRaw(data: Uint8Array, width: number, height: number) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } });
}

/** Cuts an integer square region; parts outside the image are black. */
async function cutRegion(image: RgbImage, left: number, top: number, side: number): Promise<RgbImage> {
  const x0 = Math.max(0, left);
  const y0 = Math.max(0, top);
  const x1 = Math.min(image.width, left + side);
  const y1 = Math.min(image.height, top + side);
  if (x1 <= x0 || y1 <= y0) return { data: new Uint8Array(side * side * 3), width: side, height: side };
  const data = await sharpRaw(image.data, image.width, image.height)
    .extract({ left: x0, top: y0, width: x1 - x0, height: y1 - y0 })
    .extend({ left: x0 - left, top: y0 - top, right: left + side - x1, bottom: top + side - y1, background: { r: 0, g: 0, b: 0 } })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data), width: side, height: side };
}

/**
 * Cuts a face from the original pixels: the square `crop`, turned by `-angle` degrees about its
 * centre (levelling the eyes), resized to UTKFace's 200x200. Returns PNG bytes, which the model
 * path decodes exactly like a training file.
 */
export async function cutFace(image: RgbImage, crop: Box, angle = 0, side = TRAINING_CROP_SIDE): Promise<Buffer> {
  const cx = crop.x + crop.width / 2;
  const cy = crop.y + crop.height / 2;
  const s = Math.max(1, Math.round(crop.width));
  if (Math.abs(angle) < 0.5) {
    const region = await cutRegion(image, Math.round(cx - s / 2), Math.round(cy - s / 2), s);
    return sharpRaw(region.data, s, s).resize(side, side).png().toBuffer();
  }
  // A region 1.5x the crop (more than sqrt 2) still fills the crop after any rotation.
  const big = Math.round(s * 1.5);
  const region = await cutRegion(image, Math.round(cx - big / 2), Math.round(cy - big / 2), big);
  const { data, info } = await sharpRaw(region.data, big, big).rotate(-angle, { background: { r: 0, g: 0, b: 0 } }).raw().toBuffer({ resolveWithObject: true });
  const left = Math.round((info.width - s) / 2);
  const top = Math.round((info.height - s) / 2);
  return sharpRaw(new Uint8Array(data), info.width, info.height).extract({ left, top, width: s, height: s }).resize(side, side).png().toBuffer();
}

/** The faces of one photo, found and framed (no prediction yet). */
export interface FramedFaces {
  image: RgbImage;
  source: "detected" | "whole-image";
  faces: { box: Box; score?: number; crop: Box; angle: number; check?: FaceCheck; note?: string }[];
}

/**
 * Finds and frames the faces of a decoded photo according to the options' mode.
 *
 * auto: a small crop-shaped image (a face crop) is checked whole by the landmark net first and
 * taken whole when it passes, without the detector (measured on 40 crops of crop_part1 on the
 * loaded 2-core machine: the check 8 ms per crop, the detector's two passes 240 ms). Otherwise the detector runs and keeps the faces the landmark check confirms;
 * one face whose training crop covers the image is taken whole; a crop-shaped image where
 * nothing (or only faces much smaller than the image) is confirmed is still taken whole, with
 * the note "whole image: no face detected", so a face crop is never left without an answer.
 */
export async function frameFaces(image: RgbImage, options: PhotoOptions = {}): Promise<FramedFaces> {
  const mode = options.detect ?? "auto";
  if (!DETECT_MODES.includes(mode)) throw new Error(`--detect "${mode}" is not one of ${DETECT_MODES.join(", ")}.`);
  const whole: Box = { x: 0, y: 0, width: image.width, height: image.height };
  if (mode === "never") return { image, source: "whole-image", faces: [{ box: whole, crop: whole, angle: 0 }] };
  const align = options.align ?? true;
  const crop = cropShaped(image.width, image.height);
  let wholeCheck: FaceCheck | undefined;
  if (mode === "auto" && crop && Math.max(image.width, image.height) <= CROP_FAST_SIDE) {
    wholeCheck = await checkWholeImage(image);
    if (wholeCheck.ok) return { image, source: "whole-image", faces: [{ box: whole, crop: whole, angle: 0, check: wholeCheck }] };
  }
  const found = await detectFaces(image, { ...options, landmarks: align, verified: options.verify ?? true });
  const framing = options.framing ?? FRAMING;
  if (mode === "auto" && found.length === 1 && iou(trainingCrop(found[0].box, framing), whole) >= (options.wholeImageIou ?? 0.6)) {
    return { image, source: "whole-image", faces: [{ box: whole, score: found[0].score, crop: whole, angle: 0, check: found[0].check }] };
  }
  // "Much smaller than the image": a face crop's face spans most of it; a face under a third
  // of the shorter side in a crop-shaped picture is a background detail, not the crop's face.
  const large = found.filter((f) => trainingCrop(f.box, framing).width >= Math.min(image.width, image.height) / 3);
  if (mode === "auto" && crop && large.length === 0) {
    wholeCheck ??= await checkWholeImage(image);
    return { image, source: "whole-image", faces: [{ box: whole, crop: whole, angle: 0, check: wholeCheck, note: "whole image: no face detected" }] };
  }
  return { image, source: "detected", faces: found.map((f) => ({ box: f.box, score: f.score, crop: trainingCrop(f.box, framing), angle: align ? eyeAngle(f) : 0, check: f.check })) };
}

/** Scales a box by `k` (working pixels to original pixels). */
function scaleBox(b: Box, k: number): Box {
  return k === 1 ? b : { x: b.x * k, y: b.y * k, width: b.width * k, height: b.height * k };
}

/**
 * Predicts every face of each photo with a trained model (run folder, model folder, models/best
 * or a loaded model). Photos are read upright (EXIF), large ones downscaled for the detector,
 * and faces cut from the original pixels.
 */
export async function predictPhotos(modelOrDir: string | TrainedModel, files: readonly string[], options: PhotoOptions = {}): Promise<PhotoPrediction[]> {
  const faces = typeof modelOrDir === "string" && isBestModelDir(modelOrDir) ? await bestFacePredictor(modelOrDir) : await trainedFacePredictor(modelOrDir);
  const out: PhotoPrediction[] = [];
  // Images are read and framed one by one, and their faces predicted together a chunk of images
  // at a time: the networks run far faster on a batch than on one face after another.
  type Framed = { slot: number; file: string; size: { width: number; height: number }; k: number; framed: Awaited<ReturnType<typeof frameFaces>>; inputs: FaceInput[] };
  const pending: Framed[] = [];
  const flush = async () => {
    const all = pending.flatMap((x) => x.inputs);
    let preds: FaceAnswer[][];
    try {
      const flat = all.length ? await faces.predict(all) : [];
      let at = 0;
      preds = pending.map((x) => flat.slice(at, (at += x.inputs.length)));
    } catch {
      // One image that fails (out of memory in the model, a decoder error on a later read)
      // does not stop the others: the chunk again, image by image.
      preds = [];
      for (const x of pending) {
        try {
          preds.push(x.inputs.length ? await faces.predict(x.inputs) : []);
        } catch (e) {
          out[x.slot] = { file: x.file, ...x.size, source: "detected", faces: [], skipped: `could not be predicted: ${(e as Error).message}` };
          preds.push([]);
        }
      }
    }
    pending.forEach((x, j) => {
      if (out[x.slot]) return;
      out[x.slot] = {
        file: x.file,
        ...x.size,
        source: x.framed.source,
        faces: x.framed.faces.map((f, index) => ({ index, ...f, box: scaleBox(f.box, x.k), crop: scaleBox(f.crop, x.k), ...preds[j][index] })),
      };
    });
    pending.length = 0;
  };
  try {
    for (const [slot, file] of files.entries()) {
      // The training decoder first: it names what is wrong with a bad file in words (cut short,
      // not an image, unreadable), and a bad file must not stop the others.
      let image: RgbImage;
      let size: { width: number; height: number };
      try {
        // Size first, from the header: a too small image is named as such, and a huge one is
        // decoded shrunk, never at full size.
        size = await imageSize(file);
        if (Math.min(size.width, size.height) < MIN_IMAGE_SIDE) {
          out[slot] = { file, ...size, source: "detected", faces: [], skipped: `too small: ${size.width}x${size.height} px, a face needs at least ${MIN_IMAGE_SIDE}x${MIN_IMAGE_SIDE} px` };
          continue;
        }
        await faces.check(file);
        image = await readRgb(file, MAX_WORKING_SIDE);
      } catch (e) {
        out[slot] = { file, width: 0, height: 0, source: "detected", faces: [], skipped: (e as { reason?: string }).reason ?? (e as Error).message };
        continue;
      }
      // Boxes in the original pixels: the working image may be a shrunk copy.
      const k = size.width / image.width;
      try {
        const framed = await frameFaces(image, options);
        // A whole image goes in as its own file, byte for byte the old path; a found face is cut.
        const inputs = await Promise.all(framed.faces.map(async (f) => (framed.source === "whole-image" ? { file } : { bytes: await cutFace(image, f.crop, f.angle) })));
        pending.push({ slot, file, size, k, framed, inputs });
      } catch (e) {
        out[slot] = { file, ...size, source: "detected", faces: [], skipped: `could not be predicted: ${(e as Error).message}` };
      }
      if (pending.reduce((n, x) => n + x.inputs.length, 0) >= PHOTO_BATCH_FACES) await flush();
    }
    await flush();
  } finally {
    faces.dispose();
  }
  return out;
}

/** Faces predicted together in one call of the model (a chunk of images' faces). */
const PHOTO_BATCH_FACES = 32;

/** An image's upright size (EXIF orientation applied) from its header, without decoding it. */
async function imageSize(file: string): Promise<{ width: number; height: number }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  let meta: { width?: number; height?: number; orientation?: number };
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch {
    // Not readable as an image: the decoder's check names the reason in words.
    return { width: MIN_IMAGE_SIDE, height: MIN_IMAGE_SIDE };
  }
  const [w, h] = [meta.width ?? 0, meta.height ?? 0];
  return (meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h };
}

/** One face for a model: the image file itself (taken whole) or the encoded pixels of a cut face. */
type FaceInput = { file: string } | { bytes: Buffer };
type FaceAnswer = Omit<FilePrediction, "file" | "skipped">;

/** What predictPhotos needs of a model: a check that a file is usable, a batch prediction, cleanup. */
interface FacePredictor {
  check(file: string): Promise<void>;
  predict(faces: readonly FaceInput[]): Promise<FaceAnswer[]>;
  dispose(): void;
}

/** A trained model of the project (run folder, model folder or loaded model). */
async function trainedFacePredictor(modelOrDir: string | TrainedModel): Promise<FacePredictor> {
  const tm = typeof modelOrDir === "string" ? await loadTrainedModel(modelOrDir) : modelOrDir;
  const { size, color } = tm.info;
  return {
    check: async (file) => void (await decodeImageFile(file, size, color)),
    predict: async (faces) => {
      const pixels = await Promise.all(faces.map((f) => ("file" in f ? decodeImageFile(f.file, size, color) : decodeImageBytes(f.bytes, size, color))));
      return (await predictPixels(tm, pixels)).map(({ skipped: _s, ...answer }) => answer);
    },
    // A model this call loaded is freed; one handed in stays the caller's.
    dispose: () => {
      if (typeof modelOrDir === "string") tm.model.dispose();
    },
  };
}

/**
 * models/best (frozen backbones + heads), whose predictor reads files: cut faces go through a
 * temporary folder, removed afterwards.
 */
async function bestFacePredictor(dir: string): Promise<FacePredictor> {
  const model = await loadBestModel(dir);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-faces-"));
  let count = 0;
  return {
    check: async (file) => void (await decodeImageFile(file, 32, "gray")),
    predict: async (faces) => {
      const paths = faces.map((f) => {
        if ("file" in f) return f.file;
        const p = path.join(tmp, `face-${count++}.png`);
        fs.writeFileSync(p, f.bytes);
        return p;
      });
      const preds = await predictBestFiles(model, paths);
      for (const p of paths) if (p.startsWith(tmp)) fs.rmSync(p, { force: true });
      return preds.map(({ file: _f, skipped: _s, ...answer }) => answer);
    },
    dispose: () => {
      disposeBestModel(model);
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

function csvField(v: string | number | undefined): string {
  if (v === undefined) return "";
  const s = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Header of the per-face CSV. */
export const PHOTO_CSV_COLUMNS = ["file", "face", "x", "y", "width", "height", "score", "check", "age", "age_low", "age_high", "age_group", "gender", "p_female", "note"] as const;

/**
 * CSV with one row per face: file, face index, box (x, y, width, height in original pixels,
 * rounded), detector score (empty where the detector did not run), check (the landmark check:
 * "face", or "not a face: <rule that failed>"; empty with --detect never), age, age_group, gender, p_female, and a note ("whole image" when
 * the image was taken as a crop, "no face found" on the one row of a photo without a face,
 * "skipped: <reason>" on the one row of a file that could not be used).
 */
export function photoPredictionsCsv(rows: readonly PhotoPrediction[]): string {
  const lines = [PHOTO_CSV_COLUMNS.join(",")];
  for (const p of rows) {
    if (p.faces.length === 0) {
      lines.push([p.file, ...Array(PHOTO_CSV_COLUMNS.length - 2).fill(undefined), p.skipped !== undefined ? `skipped: ${p.skipped}` : "no face found"].map(csvField).join(","));
      continue;
    }
    for (const f of p.faces) {
      const b = [f.box.x, f.box.y, f.box.width, f.box.height].map((v) => Math.round(v));
      // One decimal for every age ("95.0", "1.7"), not "95" beside "1.7000".
      const age = f.age === undefined ? undefined : f.age.toFixed(1);
      const note = f.note ?? (p.source === "whole-image" ? "whole image" : undefined);
      const check = f.check === undefined ? undefined : f.check.ok ? "face" : `not a face: ${f.check.failed}`;
      lines.push([p.file, f.index, ...b, f.score?.toFixed(3), check, age, f.ageLow?.toFixed(1), f.ageHigh?.toFixed(1), f.ageGroup, f.gender, f.pFemale, note].map(csvField).join(","));
    }
  }
  return lines.join("\n") + "\n";
}

/** Writes the per-face CSV atomically. */
export function writePhotoPredictionsCsv(file: string, rows: readonly PhotoPrediction[]): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, photoPredictionsCsv(rows));
}
