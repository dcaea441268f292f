/**
 * One benchmark "fold" in its own process: trains a benchmark model for a fixed number of
 * steps and prints one JSON line. `main.ts --parallel` starts one, then two at once, to measure
 * what K-fold gains from running folds in separate processes on a multi-core machine.
 *
 *   node --import tsx lib/bench/fold-worker.ts --model cnn --batch 25 --steps 20
 */
import { initBackend, setBackendQuiet } from "../engine/backend";
import { BenchModel, BENCH_MODELS, measureThroughput } from "./throughput";

async function main(argv: string[]): Promise<number> {
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
  };
  const model = arg("model", "cnn") as BenchModel;
  if (!(model in BENCH_MODELS)) throw new Error(`--model ${model}: use one of ${Object.keys(BENCH_MODELS).join(", ")}`);
  const batch = Number(arg("batch", "25"));
  const steps = Number(arg("steps", "20"));
  setBackendQuiet(true);
  const backend = await initBackend();
  const r = await measureThroughput({ model, batch, seconds: 0, steps, trainOnly: true });
  // Wall-clock span of the timed loop (after the warm-up step), so the parent can tell how
  // much the workers' loops overlapped.
  const endMs = Date.now();
  const seconds = (r.train_steps * batch) / r.train_img_s;
  console.log(JSON.stringify({ pid: process.pid, backend: backend.name, threads: backend.threads, steps: r.train_steps, batch, seconds, start_ms: endMs - seconds * 1000, end_ms: endMs, train_img_s: r.train_img_s }));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error((e as Error).message);
    process.exit(1);
  },
);
