/**
 * UTKFace data: labels from file names, decoding (plain JPEGs with the JPEG addon of
 * ./native-jpeg, everything else with sharp; resized by ./resample), a decoded-pixel cache and
 * the load report.
 *
 * Pixels stay uint8 HWC in memory (70x70 gray: 4.9 KB a face, 43 MB for 8,818 faces); float
 * tensors are built per batch by `imagesTensor`, so a full RGB 200x200 set (1 GB of uint8)
 * never exists as float32 (4 GB).
 *
 * Loading needs neither tfjs nor danfo: the CLI's `data --json` and the cache stay fast and quiet.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type * as tf from "@tensorflow/tfjs";
import type { Gender } from "./labels";
import { REPORT_AGE_GROUPS, ageGroupOf } from "./labels";
import { readFileIfReadable, writeFileAtomicWith } from "../core/files";
import { toFrame } from "./resample";
import { nativeJpeg } from "./native-jpeg";
import { checkReadableFile, describeErrno, errnoOf, imageFailureReason, pathInTheWay } from "../core/file-errors";
import { CACHE_DIR, DEFAULT_DATA_DIR, IMAGE_SIZE, MAX_AGE, REPO_ROOT, DATA_DIR_ENV, resolveDataDir } from "../core/paths";

/** Colour mode of decoded images: 1 channel (the report's CNN) or 3 (VGG19). */
export type ColorMode = "gray" | "rgb";
/** Input normalisation: [0,1], or ImageNet mean/std per channel (after scaling to [0,1]). */
export type Normalization = "unit" | "imagenet";

/** One usable face, its labels parsed from `AGE_GENDER_RACE_DATETIME.jpg.chip.jpg`. */
export interface FaceRecord {
  file: string;
  age: number;
  gender: Gender;
  race: number;
  datetime: string;
}

/** A file that was skipped, and why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

/** An image smaller than MIN_IMAGE_SIDE on a side: used, but listed as a warning. */
export interface TinyImage {
  file: string;
  width: number;
  height: number;
}

/**
 * Images with a side under this many pixels are still used but reported: upscaled 2x or more
 * to the model's input, they carry little of a face (UTKFace's crops are 200 px).
 */
export const MIN_IMAGE_SIDE = 32;

/** Counts of one age group by gender. */
export interface GroupCount {
  group: string;
  male: number;
  female: number;
}

/** What a load did: usable images, skipped files with reasons, time, cache use. */
export interface LoadReport {
  /** The data directory, relative to the repository root (portable in configs and logs). */
  dir: string;
  /** Files seen in the directory (images and not). */
  files: number;
  usable: number;
  skipped: SkippedFile[];
  /** Files not considered at all: hidden files and names without an image extension (e.g. README.md). */
  ignored: string[];
  seconds: number;
  cacheUsed: boolean;
  /** Whether this load wrote the cache file (false on a hit, with `cache: false`, or when the write failed). */
  cacheWritten: boolean;
  /** The cache file read or written, relative to the repository root; null with `cache: false`. */
  cacheFile: string | null;
  /** Usable images smaller than MIN_IMAGE_SIDE on a side (used, but worth a look). */
  tiny: TinyImage[];
  /** Things the user should know about this load, in words (tiny images, a cache not written). */
  warnings: string[];
  size: number;
  color: ColorMode;
  countsByGroupGender: GroupCount[];
}

/** Options of `loadFaces`. */
export interface LoadOptions {
  /** UTKFace directory; default `resolveDataDir()` (argument, $UTKFACE_DIR, data/UTKFace, data/sample). */
  dir?: string;
  /** Side in pixels (default IMAGE_SIZE, the report's 70). */
  size?: number;
  color?: ColorMode;
  /** Use and fill the on-disk pixel cache (default true). `false` times a first (uncached) load. */
  cache?: boolean;
  /** Where cache files live (default data/.cache). Tests and benchmarks pass a temporary folder. */
  cacheDir?: string;
  /**
   * Decodes in flight at once (default: 2 per core, at least 4). Each holds one file and one
   * decoded frame, so memory stays bounded; the JPEG addon and sharp run them on libuv's
   * threadpool, which has 4 threads unless UV_THREADPOOL_SIZE is set before node starts.
   */
  concurrency?: number;
}

/** Decoded faces: records plus their pixels as one HWC uint8 buffer (n * size * size * channels). */
export interface FaceDataset {
  dir: string;
  records: FaceRecord[];
  size: number;
  channels: 1 | 3;
  pixels: Uint8Array;
  report: LoadReport;
}

/**
 * The one list of image endings the library decodes (sharp reads all of them), for UTKFace
 * folders and for predicting any image files alike; anything else in a folder is ignored.
 */
export const IMAGE_EXTENSIONS: readonly string[] = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff"];

/** Whether a file name has one of IMAGE_EXTENSIONS (any case). */
export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((x) => lower.endsWith(x));
}
/** Race codes documented by UTKFace: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. */
const MAX_RACE = 4;
/** Bumped whenever decoding changes, so older cache files are rebuilt rather than reused. */
// v2: EXIF orientation applied; tiny images recorded.
const CACHE_FORMAT = "utkface-pixels-v2";
// v2 layout: magic, header length (uint32 LE), SHA-256 of header + pixels (32 bytes), header, pixels.
const CACHE_MAGIC = Buffer.from("UTKPX002", "ascii");
const CACHE_PREFIX = 8 + 4 + 32;

const HOW_TO_GET_UTKFACE =
  `Get UTKFace: unpack the official download (https://susanqq.github.io/UTKFace/) or Kaggle's "UTKFace" ` +
  `into ${path.relative(REPO_ROOT, DEFAULT_DATA_DIR)}, or set ${DATA_DIR_ENV} to the folder holding the .jpg.chip.jpg files.`;

/** Parses a UTKFace file name; returns the record or the reason it does not parse. */
export function parseFileName(file: string): FaceRecord | { error: string } {
  const name = path.basename(file);
  // Everything before the first dot: "AGE_GENDER_RACE_DATETIME" of "...jpg.chip.jpg".
  const stem = name.split(".")[0];
  const fields = stem.split("_");
  if (fields.length !== 4) {
    return { error: `expected AGE_GENDER_RACE_DATETIME (4 fields separated by "_"), found ${fields.length} in "${stem}"` };
  }
  const [ageText, genderText, raceText, datetime] = fields;
  const isInt = (s: string) => /^\d+$/.test(s);
  if (!isInt(ageText)) return { error: `age "${ageText}" is not a whole number` };
  const age = Number(ageText);
  if (age > MAX_AGE) return { error: `age ${age} is outside 0..${MAX_AGE}` };
  if (genderText !== "0" && genderText !== "1") return { error: `gender "${genderText}" is not 0 (male) or 1 (female)` };
  if (!isInt(raceText) || Number(raceText) > MAX_RACE) return { error: `race "${raceText}" is not a code 0..${MAX_RACE}` };
  if (!isInt(datetime)) return { error: `date-time "${datetime}" is not a digit string` };
  return { file: name, age, gender: Number(genderText) as Gender, race: Number(raceText), datetime };
}

/** True when a parse result is a record rather than an error. */
export function isFaceRecord(parsed: FaceRecord | { error: string }): parsed is FaceRecord {
  return !("error" in parsed);
}

/** Channels of a colour mode. */
export function channelsOf(color: ColorMode): 1 | 3 {
  if (color !== "gray" && color !== "rgb") throw new Error(`Colour mode "${color}" is not "gray" or "rgb".`);
  return color === "gray" ? 1 : 3;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new Error(`Image size ${size} is not a whole number of pixels in 1..4096 (the report uses ${IMAGE_SIZE}).`);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

let sharpModule: typeof import("sharp") | undefined;
function sharpLib(): typeof import("sharp") {
  // Loaded on first decode: a cache hit never pays for libvips.
  if (!sharpModule) sharpModule = require("sharp") as typeof import("sharp");
  return sharpModule;
}

/** Raw upright pixels of one image (uint8 HWC, 1 to 4 channels) and the decoder that gave them. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
  decoder: "native" | "sharp";
  /** Why the JPEG addon left the image to sharp ("not-jpeg", "exif", "icc", ...); absent when it decoded it or is not used. */
  fallback?: string;
}

/**
 * Decodes one image (path or bytes) to raw upright pixels; throws a plain reason on failure.
 * A plain JPEG (no EXIF rotation, no ICC profile, not CMYK, no libjpeg warning) goes through
 * the JPEG addon (./native-jpeg: libjpeg-turbo on the threadpool, the same pixels as sharp's,
 * a fraction of its per-image cost); everything else, and everything when the addon is not
 * built or `decoder` is "sharp" (or UTKFACE_DECODER=sharp), through sharp. There `.rotate()`
 * with no angle applies the EXIF orientation, so a phone photo stored sideways (orientation 6)
 * is decoded the way it is shown; sharp turns CMYK into sRGB and applies an embedded profile.
 */
export async function decodeRaw(input: string | Buffer, decoder: "auto" | "sharp" = "auto"): Promise<RawImage> {
  return decodeWith(input, decoder);
}

/** decodeRaw, the JPEG addon writing into `scratch` when the pixels fit (then `data` is a view of it). */
async function decodeWith(input: string | Buffer, decoder: "auto" | "sharp", scratch?: Uint8Array): Promise<RawImage> {
  const native = decoder === "sharp" ? undefined : nativeJpeg();
  let fallback: string | undefined;
  if (native && (typeof input === "string" || Buffer.isBuffer(input))) {
    try {
      const r = await native.decode(input, scratch);
      if (r.fallback === undefined) return { data: r.data, width: r.width, height: r.height, channels: r.channels, decoder: "native" };
      fallback = r.fallback;
    } catch {
      // The addon refused its arguments: sharp decodes it, as it always did.
      fallback = "error";
    }
  }
  const { data, info } = await sharpDecode(input);
  return { data, width: info.width, height: info.height, channels: info.channels, decoder: "sharp", fallback };
}

/** The tail of the failed sharp decodes retried so far: each retry waits for the one before. */
let sharpRetries: Promise<unknown> = Promise.resolve();

/**
 * sharp's decode of `input`, upright. libvips keeps one error buffer for all its threads, so
 * when decodes fail at the same moment a failure can carry another file's message (seen in a
 * folder load: a truncated JPEG reported with a text file's "is not a known file format", which
 * named the other path). So a failed decode is tried again, after every other file's retries,
 * until two attempts give the same message; the reason given is that message. Failures are rare,
 * so this costs one or two more decodes per bad file.
 */
async function sharpDecode(input: string | Buffer): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }> {
  const decode = () => sharpLib()(input).rotate().raw().toBuffer({ resolveWithObject: true });
  let first: unknown;
  try {
    return await decode();
  } catch (e) {
    first = e;
  }
  // Decoded again until two attempts in a row fail with the same message (three at most): a
  // first decode of another bad file may still fail while this one is retried.
  const retry = sharpRetries.then(async () => {
    let last = first;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return await decode();
      } catch (e) {
        const same = String((e as Error)?.message) === String((last as Error)?.message);
        last = e;
        if (same) break;
      }
    }
    throw last;
  });
  sharpRetries = retry.catch(() => undefined);
  return await retry;
}

/** Pixels of a 200x200 RGB face, UTKFace's crop: a decode scratch starts at this size. */
const SCRATCH_BYTES = 200 * 200 * 3;
/** A scratch grows to fit larger images up to this size (bounded memory per decode in flight). */
const MAX_SCRATCH_BYTES = 16 << 20;

/** A reusable decode buffer of one decode in flight (toFrame reads it before the next decode). */
class Scratch {
  buffer = new Uint8Array(SCRATCH_BYTES);
  /** After a decode: grows for next time when the image did not fit (and is not huge). */
  fit(raw: RawImage): void {
    const bytes = raw.width * raw.height * raw.channels;
    if (raw.decoder === "native" && bytes > this.buffer.length && bytes <= MAX_SCRATCH_BYTES) this.buffer = new Uint8Array(bytes);
  }
}

/**
 * Decodes one image (path or bytes) into `out` at `offset` and returns its upright size;
 * throws a plain reason on failure.
 */
async function decodeInto(input: string | Buffer, size: number, color: ColorMode, out: Uint8Array, offset: number, scratch?: Scratch): Promise<{ width: number; height: number }> {
  const raw = await decodeWith(input, "auto", scratch?.buffer);
  // An alpha channel (RGBA, gray+alpha) is dropped by toFrame. It runs before the scratch is reused.
  toFrame(raw.data, raw.width, raw.height, raw.channels, size, channelsOf(color), out, offset);
  scratch?.fit(raw);
  return { width: raw.width, height: raw.height };
}

/** Decodes any image file (any name) to uint8 HWC pixels at the given size and colour mode. */
export async function decodeImageFile(file: string, size: number, color: ColorMode): Promise<Uint8Array> {
  checkSize(size);
  const out = new Uint8Array(size * size * channelsOf(color));
  try {
    checkReadableFile(file);
    await decodeInto(file, size, color, out, 0);
  } catch (e) {
    // `reason` without the file name, for lists that name the file already (predict's skipped column).
    const reason = imageFailureReason(e);
    throw Object.assign(new Error(`Cannot use image ${file}: ${reason}.`), { reason });
  }
  return out;
}

/**
 * Decodes image bytes (a face cut from a photo) exactly as training decodes its files: the same
 * resampling to the model's size and colour mode.
 */
export async function decodeImageBytes(bytes: Buffer, size: number, color: ColorMode): Promise<Uint8Array> {
  checkSize(size);
  const out = new Uint8Array(size * size * channelsOf(color));
  await decodeInto(bytes, size, color, out, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalisation and tensors

/** ImageNet per-channel mean of [0,1] RGB pixels (torchvision, Keras "torch" mode). */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** ImageNet per-channel standard deviation of [0,1] RGB pixels. */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** Scales uint8 pixels to floats: [0,1], or ImageNet mean/std (RGB only). */
export function normalizePixels(pixels: Uint8Array, channels: 1 | 3, normalize: Normalization = "unit"): Float32Array {
  const out = new Float32Array(pixels.length);
  if (normalize === "unit") {
    for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 255;
    return out;
  }
  if (normalize !== "imagenet") throw new Error(`Normalisation "${normalize}" is not "unit" or "imagenet".`);
  if (channels !== 3) {
    throw new Error(`ImageNet normalisation needs RGB pixels (3 channels), got ${channels}. Load with color "rgb" or use "unit".`);
  }
  if (pixels.length % 3 !== 0) throw new Error(`RGB pixel buffer length ${pixels.length} is not a multiple of 3.`);
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = (pixels[i + c] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
  }
  return out;
}

/** A float tensor [n, size, size, channels] of the given samples, normalised. */
export function imagesTensor(ds: FaceDataset, indices: readonly number[], normalize: Normalization = "unit"): tf.Tensor4D {
  const frame = ds.size * ds.size * ds.channels;
  const n = ds.records.length;
  const batch = new Uint8Array(indices.length * frame);
  indices.forEach((i, k) => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`Sample index ${i} (position ${k}) is outside 0..${n - 1} of ${ds.report.dir}.`);
    batch.set(ds.pixels.subarray(i * frame, (i + 1) * frame), k * frame);
  });
  // Required here, not at the top: loading data must not pull in tfjs.
  const tfjs = require("@tensorflow/tfjs") as typeof tf;
  return tfjs.tensor4d(normalizePixels(batch, ds.channels, normalize), [indices.length, ds.size, ds.size, ds.channels]);
}

// ---------------------------------------------------------------------------------------------
// Counts

/** Faces per report age group (0-4 ... 95+) and gender, every group listed even when empty. */
export function countByGroupGender(records: readonly FaceRecord[]): GroupCount[] {
  const counts = REPORT_AGE_GROUPS.labels.map((group) => ({ group, male: 0, female: 0 }));
  for (const r of records) {
    const g = ageGroupOf(r.age);
    if (r.gender === 0) counts[g].male++;
    else counts[g].female++;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Directory listing and cache

interface Listing {
  /** Image files, sorted by name, with size and mtime for the cache key. */
  images: { name: string; size: number; mtimeMs: number }[];
  /** Image names that cannot even be looked at (link loop, dangling link), with the reason. */
  unreadable: SkippedFile[];
  ignored: string[];
  files: number;
}

function listDirectory(dir: string): Listing {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "does not exist" : code === "ENOTDIR" ? "is not a directory" : `cannot be read (${code})`;
    throw new Error(`UTKFace directory ${dir} ${what}. ${HOW_TO_GET_UTKFACE}`);
  }
  const images: Listing["images"] = [];
  const unreadable: SkippedFile[] = [];
  const ignored: string[] = [];
  let files = 0;
  for (const e of entries) {
    if (e.isDirectory()) continue;
    files++;
    if (e.name.startsWith(".") || !isImageFile(e.name)) {
      ignored.push(e.name);
      continue;
    }
    let st: fs.Stats;
    try {
      // Follows symbolic links: a loop (ELOOP) or a link to nothing (ENOENT) is skipped, not fatal.
      st = fs.statSync(path.join(dir, e.name));
    } catch (err) {
      unreadable.push({ file: e.name, reason: `cannot read: the file ${describeErrno(errnoOf(err)) ?? (err as Error).message}` });
      continue;
    }
    if (!st.isFile()) {
      ignored.push(e.name);
      continue;
    }
    images.push({ name: e.name, size: st.size, mtimeMs: st.mtimeMs });
  }
  images.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  ignored.sort();
  return { images, unreadable, ignored, files };
}

interface CacheHeader {
  format: string;
  fingerprint: string;
  size: number;
  channels: number;
  records: FaceRecord[];
  skipped: SkippedFile[];
  tiny: TinyImage[];
  pixelBytes: number;
}

/** The cache key: every image's name, size and mtime, plus size and colour mode and the format. */
function fingerprintOf(listing: Listing, size: number, color: ColorMode): string {
  const h = crypto.createHash("sha256");
  h.update(`${CACHE_FORMAT}\n${size}\n${color}\n`);
  for (const f of listing.images) h.update(`${f.name}\t${f.size}\t${f.mtimeMs}\n`);
  for (const f of listing.unreadable) h.update(`!${f.file}\n`);
  return h.digest("hex");
}

/** One cache slot per directory, size and colour mode: a changed directory overwrites its slot. */
function cacheFileFor(cacheDir: string, dir: string, size: number, color: ColorMode): string {
  const dirHash = crypto.createHash("sha256").update(dir).digest("hex").slice(0, 16);
  return path.join(cacheDir, `${path.basename(dir).replace(/[^\w.-]/g, "_")}-${dirHash}-${size}-${color}.bin`);
}

/** SHA-256 of the whole cache content: names, labels, sizes and pixels alike. */
function cacheDigest(header: Uint8Array, pixels: Uint8Array): Buffer {
  return crypto.createHash("sha256").update(header).update(pixels).digest();
}

/**
 * Reads a cache file; any mismatch or damage returns undefined (the caller rebuilds). The
 * digest covers the header too: a flipped byte in a label (an age 26 read as 66) is damage.
 */
function readCache(file: string, fingerprint: string, size: number, channels: number): { header: CacheHeader; pixels: Uint8Array } | undefined {
  const buf = readFileIfReadable(file);
  if (!buf) return undefined;
  try {
    if (buf.length < CACHE_PREFIX || !buf.subarray(0, 8).equals(CACHE_MAGIC)) return undefined;
    const headerLength = buf.readUInt32LE(8);
    if (CACHE_PREFIX + headerLength > buf.length) return undefined;
    const headerBytes = buf.subarray(CACHE_PREFIX, CACHE_PREFIX + headerLength);
    const pixelBytes = buf.subarray(CACHE_PREFIX + headerLength);
    if (!cacheDigest(headerBytes, pixelBytes).equals(buf.subarray(12, CACHE_PREFIX))) return undefined;
    const header = JSON.parse(headerBytes.toString("utf8")) as CacheHeader;
    if (header.format !== CACHE_FORMAT || header.fingerprint !== fingerprint || header.size !== size || header.channels !== channels) return undefined;
    if (!Array.isArray(header.records) || !Array.isArray(header.skipped) || !Array.isArray(header.tiny)) return undefined;
    if (header.pixelBytes !== header.records.length * size * size * channels || pixelBytes.length !== header.pixelBytes) return undefined;
    const pixels = new Uint8Array(buf.buffer, buf.byteOffset + CACHE_PREFIX + headerLength, header.pixelBytes);
    return { header, pixels };
  } catch {
    return undefined;
  }
}

/** Writes header and pixels to a temporary file, then renames: readers never see half a cache. */
function writeCache(file: string, header: CacheHeader, pixels: Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(CACHE_PREFIX);
  CACHE_MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(json.length, 8);
  cacheDigest(json, pixels).copy(prefix, 12);
  writeFileAtomicWith(file, (fd) => {
    fs.writeSync(fd, prefix);
    fs.writeSync(fd, json);
    // writeSync may write less than asked for very large buffers; loop until done.
    for (let done = 0; done < pixels.length; ) done += fs.writeSync(fd, pixels, done, pixels.length - done);
  });
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Loads, decodes and caches every usable face of a directory. */
export async function loadFaces(options: LoadOptions = {}): Promise<FaceDataset> {
  const started = process.hrtime.bigint();
  const dir = resolveDataDir(options.dir);
  const size = options.size ?? IMAGE_SIZE;
  const color = options.color ?? "gray";
  const useCache = options.cache ?? true;
  const cacheDir = path.resolve(options.cacheDir ?? CACHE_DIR);
  const concurrency = options.concurrency ?? Math.max(4, 2 * os.availableParallelism());
  checkSize(size);
  const channels = channelsOf(color);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a whole number >= 1, got ${concurrency}.`);

  const listing = listDirectory(dir);
  const fingerprint = fingerprintOf(listing, size, color);
  const cacheFile = useCache ? cacheFileFor(cacheDir, dir, size, color) : null;

  let records: FaceRecord[];
  let skipped: SkippedFile[];
  let tiny: TinyImage[];
  let pixels: Uint8Array;
  let cacheUsed = false;
  let cacheWritten = false;
  const warnings: string[] = [];
  const rel = (p: string) => path.relative(REPO_ROOT, p).split(path.sep).join("/") || ".";
  const cached = cacheFile ? readCache(cacheFile, fingerprint, size, channels) : undefined;
  if (cached) {
    ({ records, skipped, tiny } = cached.header);
    pixels = cached.pixels;
    cacheUsed = true;
  } else {
    ({ records, skipped, tiny, pixels } = await decodeDirectory(dir, listing, size, color, concurrency));
    if (cacheFile && records.length > 0) {
      try {
        writeCache(cacheFile, { format: CACHE_FORMAT, fingerprint, size, channels, records, skipped, tiny, pixelBytes: pixels.length }, pixels);
        cacheWritten = true;
      } catch (e) {
        // A read-only checkout still loads; it just decodes again next time.
        const code = errnoOf(e);
        const where = code === "EEXIST" || code === "ENOTDIR" ? pathInTheWay(path.dirname(cacheFile)) : cacheFile;
        const why = describeErrno(code) ?? `failed (${(e as Error).message})`;
        warnings.push(`pixel cache not written: ${rel(where)} ${why}; images will be decoded again next time (fix that, or load with --no-cache).`);
      }
    }
  }
  if (tiny.length > 0) {
    const list = tiny.slice(0, 5).map((t) => `${t.file} (${t.width}x${t.height})`).join(", ");
    warnings.push(`${tiny.length} image(s) smaller than ${MIN_IMAGE_SIDE} px on a side, used but upscaled to ${size}x${size}: ${list}${tiny.length > 5 ? ", ..." : ""}. Check them, or remove them from the folder.`);
  }

  if (records.length === 0) {
    const why = listing.images.length === 0 && listing.unreadable.length === 0 ? "has no .jpg/.jpeg/.png files" : `has no usable image (${skipped.length} skipped, e.g. ${skipped[0].file}: ${skipped[0].reason})`;
    throw new Error(`UTKFace directory ${dir} ${why}. ${HOW_TO_GET_UTKFACE}`);
  }
  const report: LoadReport = {
    dir: rel(dir),
    files: listing.files,
    usable: records.length,
    skipped,
    ignored: listing.ignored,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    cacheUsed,
    cacheWritten,
    cacheFile: cacheFile ? rel(cacheFile) : null,
    tiny,
    warnings,
    size,
    color,
    countsByGroupGender: countByGroupGender(records),
  };
  return { dir, records, size, channels, pixels, report };
}

/** Parses names, then decodes the parseable files with bounded concurrency, in name order. */
async function decodeDirectory(
  dir: string,
  listing: Listing,
  size: number,
  color: ColorMode,
  concurrency: number,
): Promise<{ records: FaceRecord[]; skipped: SkippedFile[]; tiny: TinyImage[]; pixels: Uint8Array }> {
  const frame = size * size * channelsOf(color);
  const candidates: FaceRecord[] = [];
  const problems = new Map<string, string>();
  for (const u of listing.unreadable) problems.set(u.file, u.reason);
  for (const f of listing.images) {
    const parsed = parseFileName(f.name);
    if (!isFaceRecord(parsed)) problems.set(f.name, `file name does not parse: ${parsed.error}`);
    else if (f.size === 0) problems.set(f.name, "empty file (0 bytes)");
    else candidates.push(parsed);
  }
  // Each candidate owns slot i, so the order does not depend on which decode finishes first.
  const pixels = new Uint8Array(candidates.length * frame);
  const ok = new Uint8Array(candidates.length);
  const dims: ({ width: number; height: number } | undefined)[] = new Array(candidates.length);
  let next = 0;
  const worker = async () => {
    const scratch = new Scratch();
    for (let i = next++; i < candidates.length; i = next++) {
      try {
        const file = path.join(dir, candidates[i].file);
        // A permission problem is named as such, not as "unsupported image format" by the decoder.
        fs.accessSync(file, fs.constants.R_OK);
        dims[i] = await decodeInto(file, size, color, pixels, i * frame, scratch);
        ok[i] = 1;
      } catch (e) {
        problems.set(candidates[i].file, `${errnoOf(e) ? "unreadable" : "cannot decode image"}: ${imageFailureReason(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, candidates.length)) }, worker));

  // Compact the usable frames in place (no second full-size buffer).
  const records: FaceRecord[] = [];
  const tiny: TinyImage[] = [];
  for (let i = 0; i < candidates.length; i++) {
    if (!ok[i]) continue;
    const d = dims[i]!;
    if (d.width < MIN_IMAGE_SIDE || d.height < MIN_IMAGE_SIDE) tiny.push({ file: candidates[i].file, ...d });
    if (records.length !== i) pixels.copyWithin(records.length * frame, i * frame, (i + 1) * frame);
    records.push(candidates[i]);
  }
  const names = [...listing.images.map((f) => f.name), ...listing.unreadable.map((u) => u.file)].sort();
  const skipped = names.filter((f) => problems.has(f)).map((f) => ({ file: f, reason: problems.get(f)! }));
  return { records, skipped, tiny, pixels: records.length === candidates.length ? pixels : pixels.subarray(0, records.length * frame) };
}
