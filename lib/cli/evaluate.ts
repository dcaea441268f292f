/** `npm run cli -- evaluate`: evaluate a saved run's model on held-out images. */
import { parseArgs } from "util";
import { evaluateRun } from "../training/experiment";
import { portablePath } from "../records/runs";
import { printMetrics } from "./options";

export const help = `Usage: npm run cli -- evaluate --run <run-dir> [--dir D]

Evaluates the model of a run folder (a train/test run, or one fold folder of a K-fold run) on
held-out images: on the run's own data folder, its test split (fold: validation split); on
another folder (--dir), every usable image not in the run's training split. Writes
<run-dir>/evaluations/<time>.json and prints the figures.`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { run: { type: "string" }, dir: { type: "string" } }, strict: true });
  if (!values.run) throw new Error("--run <run-dir> is required (a folder under results/ holding config.json and model/).");
  const ev = await evaluateRun(values.run, { dir: values.dir });
  printMetrics(ev.metrics);
  console.log(`written: ${portablePath(ev.file)}`);
  return 0;
}
