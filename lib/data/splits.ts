/**
 * Seeded, reproducible splits: shuffled train/test (optionally stratified) and K-fold indices.
 * The generator is mulberry32, so fold membership is deterministic for a seed but is not the
 * same as scikit-learn's KFold(random_state=42), which draws from NumPy's Mersenne Twister.
 */

/** A seeded pseudo-random generator returning floats in [0, 1). */
export type Rng = () => number;

/** mulberry32: small, fast, good enough for shuffling and weight seeds. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): number[] {
  const rng = mulberry32(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Indices of a train/test split. */
export interface Split {
  train: number[];
  test: number[];
}

/** Options of `trainTestSplit`. */
export interface SplitOptions {
  /** Fraction of samples held out for testing (the report: 0.2). */
  testFraction?: number;
  seed?: number;
  /** A class per sample (e.g. its age group): each class is split in the same proportion. */
  stratify?: readonly number[];
}

/**
 * How many of `trainSize` training images are held back to watch validation loss: at least
 * one when the fraction is positive. The images actually fitted are the rest; the progress
 * line and the training-curves figure both count those.
 */
export function validationHoldout(trainSize: number, fraction: number): number {
  return fraction > 0 ? Math.max(1, Math.round(trainSize * fraction)) : 0;
}

/** A seeded, shuffled train/test split; with `stratify`, every class keeps the test fraction. */
export function trainTestSplit(n: number, options: SplitOptions = {}): Split {
  const { testFraction = 0.2, seed = 42, stratify } = options;
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`testFraction must be in (0, 1), got ${testFraction}.`);
  if (n < 2) throw new Error(`Cannot split ${n} sample(s): need at least 2.`);
  if (stratify && stratify.length !== n) throw new Error(`stratify has ${stratify.length} labels for ${n} samples.`);
  const order = permutation(n, seed);
  let test: number[] = [];
  if (!stratify) {
    test = order.slice(0, Math.max(1, Math.round(n * testFraction)));
  } else {
    const byClass = new Map<number, number[]>();
    for (const i of order) {
      const c = stratify[i];
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(i);
    }
    for (const members of byClass.values()) test.push(...members.slice(0, Math.round(members.length * testFraction)));
    if (test.length === 0) test = order.slice(0, 1);
  }
  const inTest = new Set(test);
  return { train: order.filter((i) => !inTest.has(i)), test: order.filter((i) => inTest.has(i)) };
}

/** One fold of K-fold cross-validation. */
export interface Fold {
  /** 0-based fold number. */
  fold: number;
  train: number[];
  validation: number[];
}

/**
 * K-fold indices as scikit-learn's KFold(n_splits=k, shuffle=True) lays them out: a seeded
 * permutation cut into k contiguous parts, the first n % k parts one sample larger.
 */
export function kFold(n: number, k = 10, seed = 42): Fold[] {
  if (!Number.isInteger(k) || k < 2) throw new Error(`K-fold needs k >= 2, got ${k}.`);
  if (n < k) throw new Error(`K-fold with k=${k} needs at least ${k} samples, got ${n}.`);
  const order = permutation(n, seed);
  const folds: Fold[] = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = Math.floor(n / k) + (f < n % k ? 1 : 0);
    const validation = order.slice(start, start + size);
    const train = [...order.slice(0, start), ...order.slice(start + size)];
    folds.push({ fold: f, train, validation });
    start += size;
  }
  return folds;
}

/**
 * The report's epoch schedule: `firstEpochs` on the first fold down to `lastEpochs` on the last,
 * decreasing evenly and by at least one epoch a fold (then held at `lastEpochs`). The report's
 * "15, one fewer each fold" and "2 on the last fold" cannot both hold over 10 folds; this keeps
 * both ends: 10 folds -> [15, 14, 12, 11, 9, 8, 6, 5, 3, 2].
 */
export function epochSchedule(folds: number, firstEpochs = 15, lastEpochs = 2): number[] {
  if (!Number.isInteger(folds) || folds < 1) throw new Error(`epochSchedule needs at least one fold, got ${folds}.`);
  if (!(firstEpochs >= lastEpochs && lastEpochs >= 1)) throw new Error(`epochSchedule needs firstEpochs >= lastEpochs >= 1, got ${firstEpochs} and ${lastEpochs}.`);
  const step = folds > 1 ? Math.max(1, (firstEpochs - lastEpochs) / (folds - 1)) : 0;
  return Array.from({ length: folds }, (_, f) => Math.max(lastEpochs, Math.round(firstEpochs - f * step)));
}
