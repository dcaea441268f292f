/**
 * Heads of the `best` model family, trained on cached frozen face features (feature-cache.ts):
 * a small MLP per output on z-scored features.
 *
 * Age is a distribution over whole years (AGE_BINS bins, 0 .. AGE_BINS-1, the last one holding
 * every older face) trained with DLDL (label distribution learning: cross-entropy against a
 * Gaussian around the true age) and read out as its expected value, which is what MAE rewards.
 * Gender is one logistic output, P(female). Both read the same standardised feature vector.
 */
import * as tf from "@tensorflow/tfjs";

/** Age bins of the age head: 0..100 years, one bin each (ages over 100 go to the last bin). */
export const AGE_BINS = 101;

/** How the age head is trained. */
export type AgeLoss = "dldl" | "dldl-l1";

/** Options of `buildHeadModel`. */
export interface HeadOptions {
  /** Length of the (fused) feature vector. */
  inputDim: number;
  /** Units of each head's hidden layer; 0 = linear heads (FINDINGS: MLP 256 beats linear). */
  hidden?: number;
  /** Dropout after the hidden layer. */
  dropout?: number;
  /** Seed of the initialisers, so a run can be repeated. */
  seed?: number;
}

/**
 * A new, uncompiled two-output model: features -> "age" (softmax over AGE_BINS years) and
 * "gender" (sigmoid, P(female)), each through its own hidden layer.
 */
export function buildHeadModel(options: HeadOptions): tf.LayersModel {
  const { inputDim } = options;
  if (!Number.isInteger(inputDim) || inputDim < 1) throw new Error(`Head input size must be a positive integer, got ${inputDim}.`);
  const input = tf.input({ shape: [inputDim], name: "features" });
  return tf.model({ inputs: input, outputs: headOutputs(input, options), name: "best_heads" });
}

/**
 * The two heads applied to a symbolic feature vector: [age, gender]. Layer names are fixed
 * ("age_hidden", "age", "gender_hidden", "gender"), so weights copy between models by name.
 */
export function headOutputs(input: tf.SymbolicTensor, options: Omit<HeadOptions, "inputDim">): [tf.SymbolicTensor, tf.SymbolicTensor] {
  const { hidden = 256, dropout = 0.3, seed = 42 } = options;
  const branch = (name: string, k: number): tf.SymbolicTensor => {
    if (hidden <= 0) return tf.layers.dropout({ rate: dropout, seed: seed + k, name: `${name}_dropout` }).apply(input) as tf.SymbolicTensor;
    const h = tf.layers.dense({ units: hidden, activation: "relu", kernelInitializer: tf.initializers.heNormal({ seed: seed + 10 + k }), name: `${name}_hidden` }).apply(input);
    return tf.layers.dropout({ rate: dropout, seed: seed + k, name: `${name}_dropout` }).apply(h) as tf.SymbolicTensor;
  };
  const age = tf.layers.dense({ units: AGE_BINS, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 20 }), name: "age" }).apply(branch("age", 0)) as tf.SymbolicTensor;
  const gender = tf.layers.dense({ units: 1, activation: "sigmoid", kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 21 }), name: "gender" }).apply(branch("gender", 1)) as tf.SymbolicTensor;
  return [age, gender];
}

/** DLDL targets: for each age a Gaussian over the bins (sd `sigma` years), summing to 1. */
export function ageDistributionTargets(ages: readonly number[], sigma = 2): Float32Array {
  if (!(sigma > 0)) throw new Error(`The age label spread sigma must be > 0, got ${sigma}.`);
  const out = new Float32Array(ages.length * AGE_BINS);
  ages.forEach((age, i) => {
    const a = Math.min(AGE_BINS - 1, Math.max(0, age));
    let sum = 0;
    for (let k = 0; k < AGE_BINS; k++) {
      const v = Math.exp(-((k - a) ** 2) / (2 * sigma * sigma));
      out[i * AGE_BINS + k] = v;
      sum += v;
    }
    for (let k = 0; k < AGE_BINS; k++) out[i * AGE_BINS + k] /= sum;
  });
  return out;
}

/** Expected age (years) of each row of an [n, AGE_BINS] probability array. */
export function expectedAges(probabilities: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let e = 0;
    for (let k = 0; k < AGE_BINS; k++) e += k * probabilities[i * AGE_BINS + k];
    out[i] = e;
  }
  return out;
}

/**
 * The `q`-quantile (0..1) of each row's age distribution, in years, treating each one-year bin k
 * as spread evenly over [k - 0.5, k + 0.5] (so quantiles are continuous, not whole bins), at
 * least 0.
 */
export function ageQuantiles(probabilities: Float32Array, n: number, q: number): Float32Array {
  if (!(q >= 0 && q <= 1)) throw new Error(`A quantile must lie in 0..1, got ${q}.`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let k = 0; k < AGE_BINS; k++) total += probabilities[i * AGE_BINS + k];
    const target = q * total;
    let cum = 0;
    let value = AGE_BINS - 0.5;
    for (let k = 0; k < AGE_BINS; k++) {
      const p = probabilities[i * AGE_BINS + k];
      if (p > 0 && cum + p >= target) {
        value = k - 0.5 + (target - cum) / p;
        break;
      }
      cum += p;
    }
    out[i] = Math.max(0, value);
  }
  return out;
}

/**
 * The age loss: DLDL's cross-entropy with the label distribution, plus (for "dldl-l1") the
 * absolute error of the expected age in decades (DLDL-v2), which pulls the readout itself
 * towards the truth.
 */
export function ageLossFn(kind: AgeLoss): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const bins = tf.range(0, AGE_BINS, 1, "float32");
      const p = tf.clipByValue(yPred, 1e-7, 1);
      const ce = tf.neg(tf.mean(tf.sum(tf.mul(yTrue, tf.log(p)), -1)));
      if (kind === "dldl") return ce;
      const trueAge = tf.sum(tf.mul(yTrue, bins), -1);
      const predAge = tf.sum(tf.mul(yPred, bins), -1);
      return tf.add(ce, tf.mean(tf.abs(tf.sub(trueAge, predAge))).div(10));
    });
}

/** Per-feature mean and standard deviation, fitted on training rows. */
export interface Standardizer {
  mean: number[];
  std: number[];
}

/** Fits a standardiser on `rows` x `dim` values (a constant feature gets std 1). */
export function fitStandardizer(values: Float32Array, rows: number, dim: number): Standardizer {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < dim; j++) {
      const v = values[i * dim + j];
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  const m: number[] = [];
  const s: number[] = [];
  for (let j = 0; j < dim; j++) {
    const mu = mean[j] / rows;
    const variance = Math.max(0, sq[j] / rows - mu * mu);
    m.push(mu);
    s.push(variance > 1e-12 ? Math.sqrt(variance) : 1);
  }
  return { mean: m, std: s };
}

/** A standardiser as best.json stores it: every mean and sd to 7 significant digits (null stays null). */
export function roundedStandardizer(z: Standardizer | null): Standardizer | null {
  return z && { mean: z.mean.map((v) => Number(v.toPrecision(7))), std: z.std.map((v) => Number(v.toPrecision(7))) };
}

/** Applies a standardiser (a new array). */
export function standardize(values: Float32Array, s: Standardizer): Float32Array {
  const dim = s.mean.length;
  if (values.length % dim !== 0) throw new Error(`${values.length} values are not whole rows of ${dim} features.`);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i += dim) for (let j = 0; j < dim; j++) out[i + j] = (values[i + j] - s.mean[j]) / s.std[j];
  return out;
}
