/**
 * Paths and constants in one place. Every path is resolved from the repository root,
 * so the library behaves the same from the CLI, the tests and a notebook in notebooks/.
 */
import * as fs from "fs";
import * as path from "path";

/** The repository root: the folder holding package.json above this module (lib/ or dist/lib/). */
export const REPO_ROOT: string = findRepoRoot(__dirname);

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "lib"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(start, "..");
    dir = up;
  }
}

/** Where users unpack the official or Kaggle UTKFace download. */
export const DEFAULT_DATA_DIR = path.join(REPO_ROOT, "data", "UTKFace");
/** The small sample shipped with the project (about 400 faces). */
export const SAMPLE_DATA_DIR = path.join(REPO_ROOT, "data", "sample");
/** Decoded-pixel cache; safe to delete at any time. */
export const CACHE_DIR = path.join(REPO_ROOT, "data", ".cache");
/** Every run writes below results/<experiment>/<run-id>/. */
export const RESULTS_DIR = path.join(REPO_ROOT, "results");
/** Figures exported from saved runs. */
export const FIGURES_DIR = path.join(RESULTS_DIR, "figures");

/** Environment variable naming the UTKFace directory. */
export const DATA_DIR_ENV = "UTKFACE_DIR";

/** The report's input: 70x70 pixels. */
export const IMAGE_SIZE = 70;
/** Width of one age group in the report's division (0-4, 5-9, ...). */
export const AGE_GROUP_WIDTH = 5;
/** The report's number of age groups: 0-4 ... 90-94 and 95+. */
export const AGE_GROUP_COUNT = 20;
/** Oldest age accepted from a file name (UTKFace's documented range is 0..116). */
export const MAX_AGE = 116;
/** The report's batch size. */
export const BATCH_SIZE = 25;
/** The report's K-fold seed (sklearn's random_state=42). */
export const SEED = 42;

/**
 * Resolves the UTKFace directory: explicit argument, then $UTKFACE_DIR, then data/UTKFace
 * (if it exists), then the shipped sample.
 */
export function resolveDataDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const env = process.env[DATA_DIR_ENV];
  if (env) return path.resolve(env);
  if (fs.existsSync(DEFAULT_DATA_DIR)) return DEFAULT_DATA_DIR;
  return SAMPLE_DATA_DIR;
}
