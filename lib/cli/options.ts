/** Option parsing shared by the CLI commands: numbers and choices with errors naming the value. */
import type { ColorMode } from "../data";
import type { RunMetrics } from "../runs";

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
  ].filter(Boolean);
  console.log(parts.join("  "));
}
