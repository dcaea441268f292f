/**
 * Two folds in two processes against one: total training throughput of 2 concurrent fold
 * workers divided by that of one worker alone. This is how K-fold uses a second core when the
 * wasm backend computes on one thread.
 */
import { spawn } from "child_process";
import * as path from "path";
import { REPO_ROOT } from "../core/paths";
import type { BenchModel } from "./throughput";

/** What one fold worker printed. */
export interface WorkerResult {
  pid: number;
  backend: string;
  threads: number;
  steps: number;
  batch: number;
  seconds: number;
  start_ms: number;
  end_ms: number;
  train_img_s: number;
}

/** Result of comparing one process with several. */
export interface ParallelResult {
  processes: number;
  single_img_s: number;
  total_img_s: number;
  speedup: number;
  workers: WorkerResult[];
}

/** Starts one fold worker (same node, tsx loader) and resolves to its JSON line. */
export function runWorker(options: { model: BenchModel; batch: number; steps: number; env?: NodeJS.ProcessEnv }): Promise<WorkerResult> {
  const script = path.join(__dirname, "fold-worker.ts");
  const args = ["--import", "tsx", script, "--model", options.model, "--batch", String(options.batch), "--steps", String(options.steps)];
  return new Promise((resolve, reject) => {
    // From the repo root, where node resolves "--import tsx" to this project's tsx.
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) return reject(new Error(`fold worker exited with ${code}: ${err.trim().slice(0, 500)}`));
      try {
        resolve(JSON.parse(line) as WorkerResult);
      } catch {
        reject(new Error(`fold worker printed no JSON line: ${out.slice(0, 300)}`));
      }
    });
  });
}

/**
 * Runs one worker alone, then `processes` workers at once, each training `steps` steps.
 * Total throughput = all images trained / wall time from the first timed loop's start to the
 * last one's end: start-up is excluded, and any stretch where a worker ran alone (loops that
 * did not fully overlap) counts against the result, never for it.
 */
export async function measureParallel(options: { model: BenchModel; batch: number; steps: number; processes: number }): Promise<ParallelResult> {
  const single = await runWorker(options);
  const workers = await Promise.all(Array.from({ length: options.processes }, () => runWorker(options)));
  const images = workers.reduce((s, w) => s + w.steps * w.batch, 0);
  const span = (Math.max(...workers.map((w) => w.end_ms)) - Math.min(...workers.map((w) => w.start_ms))) / 1000;
  const total = images / span;
  return {
    processes: options.processes,
    single_img_s: single.train_img_s,
    total_img_s: Math.round(total * 10) / 10,
    speedup: Math.round((total / single.train_img_s) * 100) / 100,
    workers,
  };
}
