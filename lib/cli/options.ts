/** Option parsing shared by the CLI commands: numbers and choices with errors naming the value. */
import type { ColorMode } from "../data/dataset";
import type { ExperimentConfig } from "../training/experiment";
import { MODELS } from "../models/registry";
import type { RunMetrics } from "../records/runs";

/** An integer option (undefined when absent); a clear error names the flag and the value. */
export function intOption(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer >= ${min}, got "${value}".`);
  return n;
}

/** A positive (or >= min) number option. */
export function numberOption(flag: string, value: string | undefined, min = Number.MIN_VALUE): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number${min > 0 ? " > 0" : ` >= ${min}`}, got "${value}".`);
  return n;
}

/** --color gray|rgb. */
export function colorOption(value: string | undefined): ColorMode | undefined {
  if (value === undefined) return undefined;
  if (value !== "gray" && value !== "rgb") throw new Error(`--color must be gray or rgb, got "${value}".`);
  return value;
}

/** Prints the headline figures of a metrics object. */
export function printMetrics(m: RunMetrics): void {
  const f = (v: number | undefined, pct = true) => (v === undefined ? undefined : pct ? `${(v * 100).toFixed(1)}%` : v.toFixed(2));
  const parts = [
    `${m.split}: ${m.images} images`,
    m.loss !== undefined ? `loss ${m.loss.toFixed(4)}` : undefined,
    m.ageAccuracy !== undefined ? `age accuracy ${f(m.ageAccuracy)} (±1 group ${f(m.ageAccuracyWithin1)})` : undefined,
    m.mae !== undefined ? `MAE ${f(m.mae, false)} years` : undefined,
    m.genderAccuracy !== undefined ? `gender accuracy ${f(m.genderAccuracy)}` : undefined,
    `trained ${m.trainSeconds.toFixed(1)} s at ${m.imagesPerSecond.toFixed(1)} img/s`,
    m.keptEpoch !== undefined ? `weights of epoch ${m.keptEpoch} (lowest validation loss)` : undefined,
  ].filter(Boolean);
  console.log(parts.join("  "));
  const b = m.baseline;
  if (b) {
    const base = [
      b.ageAccuracy !== undefined ? `age accuracy ${f(b.ageAccuracy)} (±1 group ${f(b.ageAccuracyWithin1)})` : undefined,
      b.mae !== undefined ? `MAE ${f(b.mae, false)} years` : undefined,
      b.genderAccuracy !== undefined ? `gender accuracy ${f(b.genderAccuracy)}` : undefined,
    ].filter(Boolean);
    console.log(`majority baseline on the same images (training split's most common answer): ${base.join("  ")}`);
  }
  for (const w of m.warnings ?? []) console.error(`warning: ${w}`);
}

/** parseArgs specs of the options that `train` and `kfold` share. */
export const COMMON_RUN_OPTIONS = {
  model: { type: "string" },
  size: { type: "string" },
  color: { type: "string" },
  dir: { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  seed: { type: "string" },
  "max-images": { type: "string" },
  experiment: { type: "string" },
  profile: { type: "string" },
  "class-weights": { type: "boolean" },
} as const;

/** Parsed values of COMMON_RUN_OPTIONS. */
export type CommonRunValues = { [K in Exclude<keyof typeof COMMON_RUN_OPTIONS, "class-weights">]?: string } & { "class-weights"?: boolean };

/** A share strictly between 0 and 1 (or [0, 1) with allowZero); the error names the flag as typed. */
export function fractionOption(flag: string, value: string | undefined, allowZero = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n >= 1 || (allowZero ? n < 0 : n <= 0)) {
    throw new Error(`--${flag} must be a share ${allowZero ? "from 0 up to (not including) 1" : "strictly between 0 and 1"}, e.g. 0.2; got "${value}".`);
  }
  return n;
}

/**
 * The ExperimentConfig fields the shared options set; --model is required unless the command
 * continues a given run folder (its config.json names the model).
 */
export function commonRunConfig(values: CommonRunValues, modelFromRun = false): ExperimentConfig {
  if (!values.model && !modelFromRun) throw new Error(`--model is required. Known models: ${Object.keys(MODELS).join(", ")}.`);
  if (values.profile !== undefined && values.profile !== "quick" && values.profile !== "full") {
    throw new Error(`--profile must be quick or full, got "${values.profile}".`);
  }
  return {
    model: values.model ?? "",
    size: intOption("size", values.size),
    color: colorOption(values.color),
    dir: values.dir,
    batchSize: intOption("batch", values.batch),
    learningRate: numberOption("lr", values.lr),
    seed: intOption("seed", values.seed, 0),
    maxImages: intOption("max-images", values["max-images"]),
    experiment: values.experiment,
    profile: values.profile as ExperimentConfig["profile"],
    ...(values["class-weights"] ? { classWeights: true } : {}),
  };
}
