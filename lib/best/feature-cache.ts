/**
 * On-disk cache of frozen backbone features, like the pixel cache of lib/data/dataset.ts: one file per
 * backbone and list of image files, holding every face's features as it is and mirrored left to
 * right. Extracting 8,818 faces takes minutes to tens of minutes on CPU, training heads on the
 * cache takes seconds, so the extraction runs once, in chunks that survive an interruption
 * (rerunning picks up at the first missing chunk; every chunk file carries the sha256 of its
 * floats, checked before it is used, so a damaged one is extracted again), and the finished file is written atomically
 * with a checksum; a damaged or stale file is rebuilt, never used.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { decodeImageFile } from "../data/dataset";
import { CACHE_DIR } from "../core/paths";
import { writeFileAtomic, writeFileAtomicWith } from "../core/files";
import { Backbone, BackboneName, backboneSpec, loadBackbone } from "./backbones";

/** Bumped whenever extraction changes (decoding, preprocessing, layout), so old files are rebuilt. */
// v2: face-api's per-channel scales folded into the filters of its early stages (rounding changes).
export const FEATURE_CACHE_FORMAT = "utkface-features-v2";
const MAGIC = Buffer.from("UTKFT001", "ascii");
/** Faces per resumable chunk: about a minute of faceres on one core. */
const CHUNK_FACES = 512;
/** Faces per forward pass: large enough for efficient matmuls, small enough for memory. */
const BATCH_FACES = 16;

/** Features of a list of faces, plain and mirrored. */
export interface FeatureSet {
  backbone: BackboneName;
  /** Base names of the image files, in row order. */
  files: string[];
  /** Values per face. */
  dim: number;
  /** files.length * dim values: features of the faces as they are. */
  plain: Float32Array;
  /**
   * files.length * dim values: features of the faces mirrored left to right; undefined when
   * extracted without mirrored copies (half the time, for slow backbones).
   */
  flipped?: Float32Array;
  /** The cache file read or written; null when the cache was not used. */
  cacheFile: string | null;
  /** True when read from the cache without extracting anything. */
  cacheHit: boolean;
}

/** Progress of an extraction, reported after every batch. */
export interface ExtractionProgress {
  backbone: BackboneName;
  done: number;
  total: number;
  /** Faces per second since this call started (plain + mirrored count as one face). */
  rate: number;
}

/** Options of `extractFeatureSet`. */
export interface FeatureCacheOptions {
  /** Where cache files live (default data/.cache/features). */
  cacheDir?: string;
  /** false: extract without reading or writing any cache (tests, one-off predictions). */
  cache?: boolean;
  /** Called after each batch. */
  onProgress?: (p: ExtractionProgress) => void;
  /** An already loaded backbone (disposed by the caller); default: load it here. */
  loaded?: Backbone;
  /** Also extract the mirrored faces (default true). */
  mirrored?: boolean;
  /** Faces per resumable chunk (default 512; tests use a few). */
  chunkFaces?: number;
  /**
   * Bytes per read, write and hash update of the sealed cache file (default 1 GiB, under the
   * 2 GiB that one call takes); tests pass a few hundred to exercise the slicing on small files.
   */
  sliceBytes?: number;
  /** Told when a chunk file on disk is damaged and extracted again (default: a warning on stderr). */
  onWarning?: (message: string) => void;
}

interface CacheHeader {
  format: string;
  key: string;
  backbone: string;
  dim: number;
  mirrored: boolean;
  files: string[];
  /** sha256 of the float payload (plain then flipped). */
  sha256: string;
}

/** The cache key: format, backbone, mirrored or not, and every file's base name and byte size, in order. */
export function featureCacheKey(files: readonly string[], backbone: BackboneName, mirrored = true): string {
  const h = crypto.createHash("sha256");
  h.update(`${FEATURE_CACHE_FORMAT}\n${backbone}\n${mirrored ? "" : "plain-only\n"}`);
  for (const f of files) {
    let size = -1;
    try {
      size = fs.statSync(f).size;
    } catch {
      // A missing file changes the key; extraction then names it.
    }
    h.update(`${path.basename(f)}\t${size}\n`);
  }
  return h.digest("hex");
}

/** The cache file for a file list and backbone. */
export function featureCacheFile(files: readonly string[], backbone: BackboneName, cacheDir = path.join(CACHE_DIR, "features"), mirrored = true): string {
  return path.join(cacheDir, `${backbone}-${files.length}${mirrored ? "" : "-plain"}-${featureCacheKey(files, backbone, mirrored).slice(0, 16)}.bin`);
}

/**
 * Bytes per hash update, read and write: OpenSSL and fs calls take at most 2 GiB at once, and
 * fs.readFileSync no file over 2 GiB (face-api's stage32 maps of 8,818 faces and their mirror
 * images are 2.8 GB).
 */
const SLICE_BYTES = 1 << 30;

/** sha256 of `data` in slices. */
function sha256(data: Uint8Array, slice = SLICE_BYTES): string {
  const h = crypto.createHash("sha256");
  for (let o = 0; o < data.length; o += slice) h.update(data.subarray(o, Math.min(data.length, o + slice)));
  return h.digest("hex");
}

/** Writes all of `data` at the file position, in slices. */
function writeAll(fd: number, data: Uint8Array, slice = SLICE_BYTES): void {
  for (let o = 0; o < data.length; ) o += fs.writeSync(fd, data, o, Math.min(slice, data.length - o));
}

/** Reads exactly `out.length` bytes from `position`, in slices; false when the file ends first. */
function readExactly(fd: number, out: Uint8Array, position: number, slice = SLICE_BYTES): boolean {
  for (let o = 0; o < out.length; ) {
    const n = fs.readSync(fd, out, o, Math.min(slice, out.length - o), position + o);
    if (n === 0) return false;
    o += n;
  }
  return true;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Reads a cache file; anything stale or damaged gives undefined (the caller rebuilds). */
function readFeatureCache(file: string, key: string, slice = SLICE_BYTES): { header: CacheHeader; payload: Float32Array } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    // Read piece by piece: the file can pass the 2 GiB that fs.readFileSync refuses.
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(12);
    if (size < 12 || !readExactly(fd, prefix, 0) || !prefix.subarray(0, 8).equals(MAGIC)) return undefined;
    const headerLength = prefix.readUInt32LE(8);
    const json = Buffer.alloc(headerLength);
    if (12 + headerLength > size || !readExactly(fd, json, 12)) return undefined;
    const header = JSON.parse(json.toString("utf8")) as CacheHeader;
    if (header.format !== FEATURE_CACHE_FORMAT || header.key !== key) return undefined;
    const length = (header.mirrored === false ? 1 : 2) * header.files.length * header.dim * 4;
    if (size - 12 - headerLength !== length) return undefined;
    // Straight into an aligned float array (a Float32Array view needs a multiple-of-4 offset).
    const payload = new Float32Array(length / 4);
    if (!readExactly(fd, bytesOf(payload), 12 + headerLength, slice) || sha256(bytesOf(payload), slice) !== header.sha256) return undefined;
    return { header, payload };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A chunk file ("part") of an extraction in progress: magic, the sha256 of the floats, the
 * floats. The checksum is what makes a part trustworthy: a part zeroed or cut by a crash, a
 * full disk or a copy has the right size but not the right sum.
 */
const PART_MAGIC = Buffer.from("UTKFP001", "ascii");
const PART_HEADER = PART_MAGIC.length + 32;

function writePart(file: string, chunk: Float32Array): void {
  const bytes = bytesOf(chunk);
  writeFileAtomic(file, Buffer.concat([PART_MAGIC, crypto.createHash("sha256").update(bytes).digest(), bytes]));
}

/** A part's floats when the file is whole and its checksum matches; else why not (or undefined: no such file). */
function readPart(file: string, values: number): Float32Array | string | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  if (buf.length !== PART_HEADER + values * 4) return `it holds ${buf.length} bytes, not ${PART_HEADER + values * 4}`;
  if (!buf.subarray(0, PART_MAGIC.length).equals(PART_MAGIC)) return "it does not start with this cache's part header (an older format, or overwritten)";
  const bytes = buf.subarray(PART_HEADER);
  if (!crypto.createHash("sha256").update(bytes).digest().equals(buf.subarray(PART_MAGIC.length, PART_HEADER))) return "its checksum does not match its content (changed or damaged on disk)";
  const chunk = new Float32Array(values);
  bytesOf(chunk).set(bytes);
  return chunk;
}

function writeFeatureCache(file: string, header: Omit<CacheHeader, "sha256">, payload: Float32Array, slice = SLICE_BYTES): void {
  const bytes = bytesOf(payload);
  const json = Buffer.from(JSON.stringify({ ...header, sha256: sha256(bytes, slice) }), "utf8");
  const prefix = Buffer.alloc(12);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(json.length, 8);
  writeFileAtomicWith(file, (fd) => {
    writeAll(fd, prefix);
    writeAll(fd, json);
    writeAll(fd, bytes, slice);
  });
}

/**
 * Features of image files (any names) with a backbone, both as they are and mirrored: from the
 * cache when it matches the file list, otherwise extracted in resumable chunks and cached.
 * A file that cannot be decoded is an error naming it.
 */
export async function extractFeatureSet(files: readonly string[], backboneName: BackboneName | string, options: FeatureCacheOptions = {}): Promise<FeatureSet> {
  const spec = backboneSpec(backboneName);
  if (files.length === 0) throw new Error("extractFeatureSet needs at least one image file.");
  const useCache = options.cache ?? true;
  const cacheDir = options.cacheDir ?? path.join(CACHE_DIR, "features");
  const mirrored = options.mirrored ?? true;
  const views = mirrored ? 2 : 1;
  const key = featureCacheKey(files, spec.name, mirrored);
  const cacheFile = useCache ? featureCacheFile(files, spec.name, cacheDir, mirrored) : null;
  const names = files.map((f) => path.basename(f));
  const n = files.length;
  const dim = spec.dim;
  if (cacheFile) {
    const hit = readFeatureCache(cacheFile, key, options.sliceBytes);
    if (hit) {
      return { backbone: spec.name, files: names, dim, plain: hit.payload.subarray(0, n * dim), flipped: mirrored ? hit.payload.subarray(n * dim) : undefined, cacheFile, cacheHit: true };
    }
  }
  const backbone = options.loaded ?? (await loadBackbone(spec.name));
  const payload = new Float32Array(views * n * dim);
  const partsDir = cacheFile ? `${cacheFile}.parts` : null;
  const started = Date.now();
  let extracted = 0;
  try {
    const chunkFaces = options.chunkFaces ?? CHUNK_FACES;
    for (let c0 = 0; c0 < n; c0 += chunkFaces) {
      const c1 = Math.min(n, c0 + chunkFaces);
      const part = partsDir ? path.join(partsDir, `${key.slice(0, 16)}-${c0}-${c1}.part`) : null;
      const saved = part ? readPart(part, views * (c1 - c0) * dim) : undefined;
      if (saved instanceof Float32Array) {
        payload.set(saved.subarray(0, (c1 - c0) * dim), c0 * dim);
        if (mirrored) payload.set(saved.subarray((c1 - c0) * dim), (n + c0) * dim);
        continue;
      }
      if (typeof saved === "string") {
        (options.onWarning ?? ((m) => process.stderr.write(`warning: ${m}\n`)))(`feature cache part ${part} (faces ${c0 + 1}-${c1} of ${n}) is not used: ${saved}; extracting those faces again.`);
      }
      const chunk = new Float32Array(views * (c1 - c0) * dim);
      for (let b0 = c0; b0 < c1; b0 += BATCH_FACES) {
        const b1 = Math.min(c1, b0 + BATCH_FACES);
        const per = spec.size * spec.size * 3;
        const pixels = new Uint8Array((b1 - b0) * per);
        const decoded = await Promise.all(files.slice(b0, b1).map((f) => decodeImageFile(f, spec.size, "rgb")));
        decoded.forEach((p, i) => pixels.set(p, i * per));
        chunk.set(backbone.extract(pixels, b1 - b0, false), (b0 - c0) * dim);
        if (mirrored) chunk.set(backbone.extract(pixels, b1 - b0, true), (c1 - c0 + b0 - c0) * dim);
        extracted += b1 - b0;
        options.onProgress?.({ backbone: spec.name, done: b1, total: n, rate: extracted / Math.max(1e-3, (Date.now() - started) / 1000) });
      }
      if (part) writePart(part, chunk);
      payload.set(chunk.subarray(0, (c1 - c0) * dim), c0 * dim);
      if (mirrored) payload.set(chunk.subarray((c1 - c0) * dim), (n + c0) * dim);
    }
  } finally {
    if (!options.loaded) backbone.dispose();
  }
  if (cacheFile) {
    writeFeatureCache(cacheFile, { format: FEATURE_CACHE_FORMAT, key, backbone: spec.name, dim, mirrored, files: names }, payload, options.sliceBytes);
    if (partsDir) fs.rmSync(partsDir, { recursive: true, force: true });
  }
  return { backbone: spec.name, files: names, dim, plain: payload.subarray(0, n * dim), flipped: mirrored ? payload.subarray(n * dim) : undefined, cacheFile, cacheHit: false };
}
