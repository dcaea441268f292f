/**
 * UTKFace data: labels from file names, decoding with sharp, a decoded-pixel cache and the
 * load report. (Interface fixed; implementation in progress.)
 */
import * as tf from "@tensorflow/tfjs";
import type { Gender } from "./labels";

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

/** Counts of one age group by gender. */
export interface GroupCount {
  group: string;
  male: number;
  female: number;
}

/** What a load did: usable images, skipped files with reasons, time, cache use. */
export interface LoadReport {
  dir: string;
  /** Files seen in the directory (images and not). */
  files: number;
  usable: number;
  skipped: SkippedFile[];
  seconds: number;
  cacheUsed: boolean;
  size: number;
  color: ColorMode;
  countsByGroupGender: GroupCount[];
}

/** Options of `loadFaces`. */
export interface LoadOptions {
  /** UTKFace directory; default `resolveDataDir()` (argument, $UTKFACE_DIR, data/UTKFace, data/sample). */
  dir?: string;
  /** Side in pixels (default 70). */
  size?: number;
  color?: ColorMode;
  /** Use and fill the on-disk pixel cache (default true). */
  cache?: boolean;
  /** Parallel decodes (default: number of cores). */
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

/** Parses a UTKFace file name; returns the record or the reason it does not parse. */
export declare function parseFileName(file: string): FaceRecord | { error: string };

/** Loads, decodes and caches every usable face of a directory. */
export declare function loadFaces(options?: LoadOptions): Promise<FaceDataset>;

/** A float tensor [n, size, size, channels] of the given samples, normalised. */
export declare function imagesTensor(ds: FaceDataset, indices: readonly number[], normalize?: Normalization): tf.Tensor4D;

/** Decodes any image file (any name) to uint8 HWC pixels at the given size and colour mode. */
export declare function decodeImageFile(file: string, size: number, color: ColorMode): Promise<Uint8Array>;

/** Scales uint8 pixels to floats: [0,1], or ImageNet mean/std (RGB only). */
export declare function normalizePixels(pixels: Uint8Array, channels: 1 | 3, normalize?: Normalization): Float32Array;
