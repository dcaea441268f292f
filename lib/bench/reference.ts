/**
 * The PyTorch CPU reference (same networks, same batch, Adam, cross-entropy) run back to back
 * with our measurement, so ratios come from one sitting on one machine.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../core/paths";
import type { BenchModel } from "./throughput";

/** Environment variable naming the reference script. */
export const TORCH_REFERENCE_ENV = "TORCH_REFERENCE";
/** Environment variable naming a python interpreter that has torch. */
export const TORCH_PYTHON_ENV = "TORCH_PYTHON";

/** What the reference prints. */
export interface ReferenceResult {
  model: string;
  batch: number;
  threads: number;
  train_img_s: number;
  infer_img_s: number;
  /** Why PyTorch gave no training figure (train_img_s 0), e.g. a gradient its bf16 autocast lacks. */
  train_error?: string;
}

/**
 * The script path: explicit option, then $TORCH_REFERENCE (which `npm run bench` defaults to the
 * project's shared folder), resolved from the repo root.
 */
export function resolveReferenceScript(explicit?: string): string {
  const given = explicit ?? process.env[TORCH_REFERENCE_ENV];
  if (!given) throw new Error(`No PyTorch reference script: pass --reference-script <file> or set ${TORCH_REFERENCE_ENV}.`);
  const script = path.resolve(REPO_ROOT, given);
  if (!fs.existsSync(script)) {
    throw new Error(`PyTorch reference script not found: ${script}. Pass --reference-script <file> or set ${TORCH_REFERENCE_ENV}.`);
  }
  return script;
}

/**
 * A python that imports torch: $TORCH_PYTHON, else `python3` on PATH, else Debian's system
 * python3 (where apt's python3-torch installs) when a pyenv/venv python3 shadows it.
 */
export function findTorchPython(explicit?: string): string {
  const candidates = explicit ? [explicit] : process.env[TORCH_PYTHON_ENV] ? [process.env[TORCH_PYTHON_ENV]!] : ["python3", "/usr/bin/python3"];
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  throw new Error(`No python with torch found (tried ${candidates.join(", ")}). Install python3-torch (Debian) or torch (pip), or set ${TORCH_PYTHON_ENV}.`);
}

/** Runs a twin under PyTorch's CPU autocast to bfloat16 (the comparison for UTKFACE_MATH=bf16). */
export const TORCH_AUTOCAST = path.join(REPO_ROOT, "bench", "torch_autocast.py");

/** Runs the reference for one model (under bf16 autocast with `autocast`); throws with its stderr if it fails. */
export function runReference(options: { script: string; python: string; model: BenchModel; batch: number; seconds: number; threads?: number; autocast?: boolean }): ReferenceResult {
  const args = [...(options.autocast ? [TORCH_AUTOCAST] : []), options.script, "--model", options.model, "--batch", String(options.batch), "--seconds", String(options.seconds)];
  // Without --threads the script keeps torch's default (1 on the 2-core dev machine: OpenMP reports 1).
  if (options.threads) args.push("--threads", String(options.threads));
  const r = spawnSync(options.python, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`PyTorch reference failed (${options.python} ${options.script}): ${r.stderr || r.error?.message}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ReferenceResult;
  } catch {
    throw new Error(`PyTorch reference printed no JSON line: ${r.stdout.slice(0, 300)}`);
  }
}
