/**
 * The faces the `best` model family trains and is scored on: the same records, order and seeded
 * 80/20 split as `npm run cli -- train` (lib/training/experiment.ts: trainTestSplit with seed 42
 * over the loaded records), so its held-out figures compare with the report's models on the same faces.
 * Validation is carved from the training part only; the test part is for the final score.
 */
import * as path from "path";
import { FaceRecord, loadFaces } from "../data/dataset";
import { DEFAULT_VALIDATION_FRACTION } from "../training/experiment";
import { SEED } from "../core/paths";
import { permutation, trainTestSplit } from "../data/splits";

/** Records of a UTKFace folder and the three disjoint index sets of the best-model protocol. */
export interface BestSplit {
  dir: string;
  records: FaceRecord[];
  /** Absolute paths of the records' files, in record order. */
  files: string[];
  /** The training split in its seeded order (fit + validation, interleaved). */
  train: number[];
  /** Training faces minus validation: what heads are fitted on while choosing. */
  fit: number[];
  /** Chosen from the training faces (seed + 1), for every choice. */
  validation: number[];
  /** The held-out faces (fit + validation together are `train`'s training split). */
  test: number[];
  seed: number;
  testFraction: number;
  validationFraction: number;
}

/** Options of `loadBestSplit`. */
export interface BestSplitOptions {
  /** UTKFace folder (default: $UTKFACE_DIR, data/UTKFace, data/sample). */
  dir?: string;
  seed?: number;
  testFraction?: number;
  validationFraction?: number;
}

/**
 * Loads the records (through the pixel cache at the report's 70 px gray, so the record list is
 * exactly `train`'s) and splits them as `train` does.
 */
export async function loadBestSplit(options: BestSplitOptions = {}): Promise<BestSplit> {
  const seed = options.seed ?? SEED;
  const testFraction = options.testFraction ?? 0.2;
  const validationFraction = options.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  const data = await loadFaces({ dir: options.dir });
  const n = data.records.length;
  const split = trainTestSplit(n, { testFraction, seed });
  const nVal = Math.max(1, Math.round(split.train.length * validationFraction));
  const inVal = new Set(permutation(split.train.length, seed + 1).slice(0, nVal).map((i) => split.train[i]));
  return {
    dir: data.dir,
    records: data.records,
    files: data.records.map((r) => path.join(data.dir, r.file)),
    train: split.train,
    fit: split.train.filter((i) => !inVal.has(i)),
    validation: split.train.filter((i) => inVal.has(i)),
    test: split.test,
    seed,
    testFraction,
    validationFraction,
  };
}

/**
 * Record indices whose features a run needs: every face, or with `trainFaces` only the first
 * `trainFaces` training faces of the seeded order (fit and validation alike) plus every test
 * face. Slow backbones are extracted for this subset; the test split stays whole.
 */
export function featureRows(split: BestSplit, trainFaces?: number): number[] {
  if (trainFaces === undefined || trainFaces >= split.train.length) return split.records.map((_, i) => i);
  return [...split.train.slice(0, trainFaces), ...split.test];
}
