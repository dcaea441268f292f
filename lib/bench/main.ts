/**
 * `npm run bench -- [options]`: how fast this machine trains and runs the report's networks
 * with the chosen tfjs backend, against PyTorch on the same CPU. Speed targets live here, not
 * in tests. Prints one JSON line per measurement, then (without --json) a markdown table.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../engine/backend";
import { REPO_ROOT, resolveDataDir } from "../core/paths";
import { benchDetect } from "./detect";
import { measureParallel } from "./parallel";
import { profileKernels } from "./profile";
import { findTorchPython, resolveReferenceScript, runReference, ReferenceResult, TORCH_PYTHON_ENV, TORCH_REFERENCE_ENV } from "./reference";
import { BenchModel, BENCH_MODELS, measureThroughput, round1, wasmAbortHint } from "./throughput";
import { MATH_ENV, MATH_MODES, MathMode } from "../engine/onednn/engine";

/** The speed issue's targets, as ratios to PyTorch CPU (or to one process) in one back-to-back run. */
export const TARGETS = { cnnTrain: 1.5, cnnInfer: 1.2, vgg19Train: 1.0, vgg19Infer: 1.2, mobilenetTrain: 0.9, mobilenetInfer: 1.2, parallel: 1.8 } as const;

/** The train and inference targets of one bench model ("-" where none is set). */
function targetsOf(model: unknown): [string, string] {
  const t: Record<string, [number, number]> = {
    cnn: [TARGETS.cnnTrain, TARGETS.cnnInfer],
    vgg19: [TARGETS.vgg19Train, TARGETS.vgg19Infer],
    mobilenet: [TARGETS.mobilenetTrain, TARGETS.mobilenetInfer],
  };
  const pair = t[String(model)];
  return pair ? [`>= ${pair[0]}`, `>= ${pair[1]}`] : ["-", "-"];
}

/** The PyTorch side of the MobileNet benchmark lives in the project (the shared script has no MobileNet). */
const TORCH_MOBILENET = path.join(REPO_ROOT, "bench", "torch_mobilenet.py");
/** The PyTorch twin of the fine-tuning bench (face-api's stages after stage64). */
const TORCH_FINETUNE = path.join(REPO_ROOT, "bench", "torch_finetune.py");

export const HELP = `Usage: npm run bench -- [options]

  --model cnn|vgg19|mobilenet|finetune|finetune-pixels|all|none
                          networks to measure (default cnn and vgg19; all adds MobileNet-v1
                          224x224x3, finetune, the best model's fine-tuning path: face-api's
                          stages after stage64 on 17x17x64 maps, and finetune-pixels, the same
                          tail on augmented 150x150 faces through the frozen stem..stage64;
                          none: only the extras below)
  --batch N               batch size (default 25, the report's; MobileNet-v1 8)
  --seconds S             seconds of training per model; inference gets S/2 (default 20)
  --rounds R              split each measurement into R alternating rounds (ours, PyTorch, ours, ...)
                          and keep each side's best round: load from other processes only ever
                          slows a round down, so best-of is the least noisy figure (default 3)
  --reference             also run the PyTorch reference back to back and print ratios
  --reference-script F    reference script (default $${TORCH_REFERENCE_ENV}; npm run bench sets it to the shared torch_reference.py unless you do)
  --reference-threads N   torch threads for the reference (default: the engine's thread count)
  --python P              python with torch (default $${TORCH_PYTHON_ENV}, else python3, else /usr/bin/python3)
  --data                  also time loading UTKFace: first decode and cached (uses --dir)
  --dir D                 UTKFace directory for --data (default: $UTKFACE_DIR, data/UTKFace, data/sample)
  --parallel              also compare 2 fold processes with 1 (report CNN, fixed steps)
  --steps N               training steps per fold process for --parallel (default 30)
  --detect                faces/s of the photo path: detect faces in a 1280x720 group photo,
                          cut and predict each (uses --seconds)
  --math f32|bf16         arithmetic of our convolutions and matrix products (sets UTKFACE_MATH;
                          default f32). With bf16 the reference runs under PyTorch's CPU
                          autocast to bfloat16 (bench/torch_autocast.py), so both sides round
                          the same operands
  --profile               after each model, time 3 training steps by tfjs kernel (share of the step)
  --all                   --reference --data --parallel --detect
  --json                  JSON lines only

Backend: as the library picks it (TFJS_BACKEND=wasm|cpu|tensorflow forces one). Under wasm the
engine is oneDNN when its addon is built (UTKFACE_ENGINE=onednn|wasm forces one) with
UTKFACE_THREADS threads (default: all cores); the reference runs at the same thread count.`;

interface Options {
  models: BenchModel[];
  /** --batch; each model's own (BENCH_MODELS) when not given. */
  batch?: number;
  seconds: number;
  rounds: number;
  reference: boolean;
  referenceScript?: string;
  referenceThreads?: number;
  python?: string;
  data: boolean;
  dir?: string;
  parallel: boolean;
  detect: boolean;
  steps: number;
  json: boolean;
  profile: boolean;
  math?: MathMode;
}

function parse(argv: string[]): Options | "help" {
  const o: Options = { models: ["cnn", "vgg19"], seconds: 20, rounds: 3, reference: false, data: false, parallel: false, detect: false, steps: 30, json: false, profile: false };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value. See npm run bench -- --help.`);
    return v;
  };
  const positive = (v: string, flag: string) => {
    const n = Number(v);
    if (!(n > 0)) throw new Error(`${flag} ${v}: expected a positive number.`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--help":
      case "-h":
        return "help";
      case "--model": {
        const m = value(i++, a);
        if (m === "all") o.models = ["cnn", "vgg19", "mobilenet", "finetune", "finetune-pixels"];
        else if (m === "none") o.models = [];
        else if (m in BENCH_MODELS) o.models = [m as BenchModel];
        else throw new Error(`--model ${m}: use cnn, vgg19, mobilenet, finetune, finetune-pixels, all or none.`);
        break;
      }
      case "--batch":
        o.batch = Math.round(positive(value(i++, a), a));
        break;
      case "--seconds":
        o.seconds = positive(value(i++, a), a);
        break;
      case "--rounds":
        o.rounds = Math.round(positive(value(i++, a), a));
        break;
      case "--steps":
        o.steps = Math.round(positive(value(i++, a), a));
        break;
      case "--reference":
        o.reference = true;
        break;
      case "--reference-script":
        o.referenceScript = value(i++, a);
        o.reference = true;
        break;
      case "--reference-threads":
        o.referenceThreads = Math.round(positive(value(i++, a), a));
        o.reference = true;
        break;
      case "--python":
        o.python = value(i++, a);
        break;
      case "--data":
        o.data = true;
        break;
      case "--dir":
        o.dir = value(i++, a);
        break;
      case "--parallel":
        o.parallel = true;
        break;
      case "--detect":
        o.detect = true;
        break;
      case "--all":
        o.reference = o.data = o.parallel = o.detect = true;
        break;
      case "--json":
        o.json = true;
        break;
      case "--profile":
        o.profile = true;
        break;
      case "--math": {
        const m = value(i++, a);
        if (!(MATH_MODES as readonly string[]).includes(m)) throw new Error(`--math ${m}: use f32 or bf16.`);
        o.math = m as MathMode;
        break;
      }
      default:
        throw new Error(`Unknown option ${a}. See npm run bench -- --help.`);
    }
  }
  return o;
}

type Row = Record<string, unknown>;

/** ours / theirs to 2 decimals; undefined where PyTorch gave no figure. */
function ratio(ours: number, theirs: number): number | undefined {
  return theirs > 0 ? Math.round((ours / theirs) * 100) / 100 : undefined;
}

/** Times loadFaces on `dir` into a throwaway cache folder: a first (decoding) load, then a cached one. */
async function benchData(dir: string): Promise<Row> {
  const { loadFaces } = await import("../data/dataset");
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-bench-cache-"));
  try {
    const first = await loadFaces({ dir, cacheDir, cache: true });
    const cached = await loadFaces({ dir, cacheDir, cache: true });
    const n = first.report.usable;
    return {
      bench: "data",
      dir: path.relative(process.cwd(), dir) || ".",
      images: n,
      first_s: Math.round(first.report.seconds * 100) / 100,
      first_img_s: Math.round(n / first.report.seconds),
      cached_s: Math.round(cached.report.seconds * 1000) / 1000,
      cached_img_s: Math.round(n / cached.report.seconds),
      cache_used: cached.report.cacheUsed,
    };
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

function table(rows: Row[]): string {
  const lines = ["| measurement | ours | PyTorch | ratio | target |", "|---|---|---|---|---|"];
  for (const r of rows) {
    if (r.bench === "model") {
      const t = r.torch as ReferenceResult | undefined;
      const [tgtTrain, tgtInfer] = targetsOf(r.model);
      const theirs = !t ? "-" : t.train_error ? `none (${t.train_error})` : `${t.train_img_s} (${t.threads} thr${r.math === "bf16" ? ", autocast bf16" : ""})`;
      lines.push(`| ${r.model} train img/s (${r.engine}, batch ${r.batch}) | ${r.train_img_s} | ${theirs} | ${r.train_ratio ?? "-"} | ${tgtTrain} |`);
      lines.push(`| ${r.model} inference img/s | ${r.infer_img_s} | ${t ? t.infer_img_s : "-"} | ${r.infer_ratio ?? "-"} | ${tgtInfer} |`);
    } else if (r.bench === "parallel") {
      lines.push(`| report CNN, ${r.processes} fold processes vs 1 (train img/s) | ${r.total_img_s} vs ${r.single_img_s} | - | ${r.speedup} | >= ${TARGETS.parallel} |`);
    } else if (r.bench === "data") {
      lines.push(`| load ${r.images} faces, first (decode) | ${r.first_s} s (${r.first_img_s} img/s) | - | - | - |`);
      lines.push(`| load ${r.images} faces, cached | ${r.cached_s} s (${r.cached_img_s} img/s) | - | - | - |`);
    } else if (r.bench === "detect") {
      lines.push(`| photo path: detect + cut + predict, faces/s (${r.photo}) | ${r.faces_s} (${r.total_ms} ms/photo, detection ${r.detect_ms} ms) | - | - | - |`);
    }
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (o === "help") {
    console.log(HELP);
    return 0;
  }
  setBackendQuiet(o.json);
  if (o.math) process.env[MATH_ENV] = o.math;
  const math: MathMode = (process.env[MATH_ENV]?.trim() as MathMode) || "f32";
  const backend = await initBackend();
  const script = o.reference ? resolveReferenceScript(o.referenceScript) : undefined;
  const python = o.reference ? findTorchPython(o.python) : undefined;
  const rows: Row[] = [];
  const emit = (row: Row) => {
    rows.push(row);
    console.log(JSON.stringify(row));
  };
  for (const model of o.models) {
    const batch = o.batch ?? BENCH_MODELS[model].batch;
    const seconds = o.seconds / o.rounds;
    let ours = { train_img_s: 0, infer_img_s: 0 };
    let torch: ReferenceResult | undefined;
    const oursRounds: number[] = [];
    const torchRounds: number[] = [];
    let profile: ReturnType<ReturnType<typeof profileKernels>> | undefined;
    for (let round = 0; round < o.rounds; round++) {
      const inspect =
        o.profile && round === 0
          ? async (trainStep: () => Promise<void>) => {
              const stop = profileKernels(backend.name);
              for (let i = 0; i < 3; i++) await trainStep();
              profile = stop();
            }
          : undefined;
      const r = await measureThroughput({ model, batch, seconds, inspect }).catch((e: Error) => {
        throw wasmAbortHint(e, model, batch);
      });
      oursRounds.push(r.train_img_s);
      ours = { train_img_s: Math.max(ours.train_img_s, r.train_img_s), infer_img_s: Math.max(ours.infer_img_s, r.infer_img_s) };
      if (script && python) {
        const t = runReference({ script: model === "mobilenet" ? TORCH_MOBILENET : model === "finetune" || model === "finetune-pixels" ? TORCH_FINETUNE : script, python, model, batch, seconds, threads: o.referenceThreads ?? (backend.threads || undefined), autocast: math === "bf16" });
        torchRounds.push(t.train_img_s);
        torch = torch ? { ...t, train_img_s: Math.max(torch.train_img_s, t.train_img_s), infer_img_s: Math.max(torch.infer_img_s, t.infer_img_s) } : t;
      }
    }
    const engine = backend.engine ?? backend.name;
    const row: Row = { bench: "model", model, backend: backend.name, engine, math, threads: backend.threads, batch, train_img_s: ours.train_img_s, infer_img_s: ours.infer_img_s, train_rounds: oursRounds };
    if (torch) {
      Object.assign(row, { torch, torch_train_rounds: torchRounds, train_ratio: ratio(ours.train_img_s, torch.train_img_s), infer_ratio: ratio(ours.infer_img_s, torch.infer_img_s) });
    }
    emit(row);
    // Kernels under 1% of the step are left out of the line: they are not where time goes.
    if (profile) emit({ bench: "profile", model, engine, steps: 3, kernels: profile.filter((k) => k.share >= 1) });
  }
  if (o.parallel) {
    const batch = o.batch ?? BENCH_MODELS.cnn.batch;
    const p = await measureParallel({ model: "cnn", batch, steps: o.steps, processes: 2 });
    emit({ bench: "parallel", model: "cnn", backend: backend.name, batch, steps: o.steps, ...p });
  }
  if (o.data) emit(await benchData(resolveDataDir(o.dir)));
  if (o.detect) emit({ ...(await benchDetect(o.seconds)), backend: backend.name, threads: backend.threads });
  if (!o.json) console.log(`\nload average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} on ${os.cpus().length} cores\n\n${table(rows)}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(1);
  },
);
