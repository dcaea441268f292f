/**
 * Issue 11, finding 7: every message names the file or flag as the user typed it and says what
 * to do: a damaged model.json or a cut-short weights.bin, a pixel cache that could not be
 * written, bad results/ and --out paths (and no .tmp left), --test-fraction 5 and
 * --validation-fraction 1 (refused before a run folder exists), and `npm run figures` going on
 * past one corrupt metrics.json. Unreadable vs. not-an-image, truncated JPEGs and 1x1 images
 * are in data-robust.test.ts.
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { formatReport } from "../lib/cli/data";
import { REPO_ROOT, RESULTS_DIR, SAMPLE_DATA_DIR } from "../lib/core/paths";
import { FaceDataset, loadFaces } from "../lib/data/dataset";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { predictFiles, writePredictionsCsv } from "../lib/inference/predict";
import { RunResult } from "../lib/records/runs";
import { runExperiment } from "../lib/training/experiment";
import { latestRunFigures } from "../scripts/figures";

setBackendQuiet(true);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "messages-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpFiles = (dir: string) => fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(".tmp"));

let data: FaceDataset;
let run: RunResult;
async function trained(): Promise<RunResult> {
  await initBackend();
  data ??= await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(tmp, "cache") });
  run ??= await runExperiment({ model: "cnn-gender", data, epochs: 1, maxImages: 60, resultsRoot: path.join(tmp, "runs"), progress: false });
  return run;
}

function cli(...args: string[]) {
  return spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "lib", "cli", "main.ts"), ...args], { cwd: REPO_ROOT, encoding: "utf8" });
}

test("a damaged model.json and a cut-short weights.bin are named, with what to do", async () => {
  const r = await trained();
  const face = path.join(SAMPLE_DATA_DIR, data.records[0].file);
  const copy = path.join(tmp, "copy");
  fs.cpSync(path.join(r.runDir, "model"), copy, { recursive: true });
  const weights = fs.readFileSync(path.join(copy, "weights.bin"));
  fs.writeFileSync(path.join(copy, "weights.bin"), weights.subarray(0, weights.length - 1000));
  await assert.rejects(predictFiles(copy, [face]), /copy\/weights\.bin hold\(s\) \d+ bytes but .*copy\/model\.json describes \d+: the weights file is cut short.*Save or copy the model again/);
  fs.writeFileSync(path.join(copy, "model.json"), fs.readFileSync(path.join(r.runDir, "model", "model.json"), "utf8").slice(0, 500));
  await assert.rejects(predictFiles(copy, [face]), /copy\/model\.json is damaged: not valid JSON .*Save or copy the model again/);
});

test("'cache written' is said only when it was; a cache folder in the way is a warning in words", async () => {
  const dir = path.join(tmp, "faces");
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).slice(0, 5)) fs.copyFileSync(path.join(SAMPLE_DATA_DIR, f), path.join(dir, f));
  const blocker = path.join(tmp, "not-a-folder");
  fs.writeFileSync(blocker, "a file where the cache folder should be");
  const ds = await loadFaces({ dir, cacheDir: blocker });
  assert.equal(ds.report.cacheWritten, false);
  assert.match(ds.report.warnings.join("\n"), /pixel cache not written: \S*not-a-folder is a file in the way where a folder is needed/);
  const text = formatReport(ds.report);
  assert.match(text, /decoded, cache NOT written/);
  assert.doesNotMatch(text, /decoded, cache written/);
  const ok = await loadFaces({ dir, cacheDir: path.join(tmp, "cache-ok") });
  assert.match(formatReport(ok.report), /decoded, cache written/);
});

test("bad --out and results/ paths are said in words, with no .tmp left", async () => {
  const outDir = path.join(tmp, "out-is-a-folder");
  fs.mkdirSync(outDir);
  assert.throws(() => writePredictionsCsv(outDir, [{ file: "a.jpg", age: 30 }]), /Could not write .*out-is-a-folder: .*out-is-a-folder is a folder where a file is needed/);
  assert.deepEqual(tmpFiles(tmp).filter((f) => f.includes("out-is-a-folder")), []);
  const afile = path.join(tmp, "afile");
  fs.writeFileSync(afile, "x");
  assert.throws(() => writePredictionsCsv(path.join(afile, "p.csv"), []), /afile (is a file in the way where a folder is needed|has a part of its path that is a file)/);

  await trained();
  await assert.rejects(runExperiment({ model: "cnn-gender", data, epochs: 1, maxImages: 60, resultsRoot: afile, progress: false }), /Cannot create the run folder under .*afile\/cnn-gender: .*afile (is a file in the way|has a part of its path that is a file)/);
});

test("--test-fraction 5 and --validation-fraction 1 are refused by flag, before any run folder exists", async () => {
  const exp = `zz-messages-${process.pid}`;
  const t = cli("train", "--model", "cnn-gender", "--test-fraction", "5", "--experiment", exp);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /--test-fraction must be a share strictly between 0 and 1, e\.g\. 0\.2; got "5"/);
  const v = cli("train", "--model", "cnn-gender", "--validation-fraction", "1", "--experiment", exp);
  assert.equal(v.status, 1);
  assert.match(v.stderr, /--validation-fraction must be a share from 0 up to \(not including\) 1/);
  assert.ok(!fs.existsSync(path.join(RESULTS_DIR, exp)), "no run folder created");
  // The library refuses before creating anything too.
  await trained();
  const root = path.join(tmp, "vf");
  await assert.rejects(runExperiment({ model: "cnn-gender", data, validationFraction: 1, resultsRoot: root, progress: false }), /validationFraction \(--validation-fraction\) must be a share in \[0, 1\)/);
  assert.ok(!fs.existsSync(root));
});

test("one corrupt metrics.json does not stop the figures of the other experiments", async () => {
  const r = await trained();
  const good = `zz-figures-ok-${process.pid}`;
  const bad = `zz-figures-bad-${process.pid}`;
  try {
    fs.cpSync(r.runDir, path.join(RESULTS_DIR, good, r.config.runId), { recursive: true });
    fs.cpSync(r.runDir, path.join(RESULTS_DIR, bad, r.config.runId), { recursive: true });
    fs.writeFileSync(path.join(RESULTS_DIR, bad, r.config.runId, "metrics.json"), '{"split": "test", "ima');
    const out = latestRunFigures([bad, good]);
    assert.equal(out.latest.length, 1);
    assert.ok(out.figures.length > 0);
    assert.equal(out.skipped.length, 1);
    assert.equal(out.skipped[0].experiment, bad);
    assert.match(out.skipped[0].reason, /metrics\.json is not valid JSON/);
  } finally {
    fs.rmSync(path.join(RESULTS_DIR, good), { recursive: true, force: true });
    fs.rmSync(path.join(RESULTS_DIR, bad), { recursive: true, force: true });
  }
});

// Issue 18, point 7.
const BEST_DIR = path.join(REPO_ROOT, "models", "best");
const hasBest = fs.existsSync(path.join(BEST_DIR, "best.json"));

test("a damaged best.json or run.json is named, with what to do (not a bare JSON or property error)", { skip: !hasBest && "models/best is not trained yet" }, async () => {
  const { loadBestModel } = await import("../lib/best/model-folder");
  const { rewriteModelCard } = await import("../lib/best/run");
  const dir = path.join(tmp, "best-copy");
  fs.cpSync(BEST_DIR, dir, { recursive: true });
  const bestFile = path.join(dir, "best.json");
  const text = fs.readFileSync(bestFile, "utf8");
  // Damaged in the middle, as a bad edit or copy leaves it.
  fs.writeFileSync(bestFile, text.slice(0, 500) + "}{,\n" + text.slice(500));
  await assert.rejects(loadBestModel(dir), (e: Error) => {
    assert.ok(e.message.startsWith(bestFile), e.message);
    assert.match(e.message, /is damaged: not valid JSON/);
    assert.match(e.message, /git checkout -- models\/best|best train/);
    return true;
  });
  // Valid JSON without the heads' settings.
  fs.writeFileSync(bestFile, JSON.stringify({ format: JSON.parse(text).format }));
  await assert.rejects(loadBestModel(dir), (e: Error) => {
    assert.doesNotMatch(e.message, /Cannot read properties/);
    assert.match(e.message, new RegExp(`${bestFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is damaged: it has no "config"`));
    return true;
  });
  const runFile = path.join(dir, "run.json");
  const runText = fs.readFileSync(runFile, "utf8");
  fs.writeFileSync(runFile, runText.slice(0, 500));
  assert.throws(() => rewriteModelCard(dir), (e: Error) => e.message.startsWith(runFile) && /not valid JSON/.test(e.message) && /best train/.test(e.message));
  fs.writeFileSync(runFile, "{}");
  assert.throws(() => rewriteModelCard(dir), new RegExp(`run\\.json is damaged: it has no "chosen"`));
});

test("predict --out or --annotate under a file is refused before predicting, naming the path", () => {
  const blocker = path.join(tmp, "a-file");
  fs.writeFileSync(blocker, "not a folder");
  const face = path.join(SAMPLE_DATA_DIR, fs.readdirSync(SAMPLE_DATA_DIR).find((f) => f.endsWith(".jpg"))!);
  for (const [flag, value] of [["--out", path.join(blocker, "p.csv")], ["--annotate", path.join(blocker, "pics")], ["--annotate", blocker]] as const) {
    const r = cli("predict", "--model", BEST_DIR, face, flag, value);
    assert.equal(r.status, 1, r.stdout);
    assert.doesNotMatch(r.stderr, /EEXIST|ENOTDIR/);
    assert.match(r.stderr, new RegExp(`${flag} .*${blocker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is a file, not a folder`));
    assert.match(r.stderr, /choose another path, or move that file away/);
  }
});

test("disk full while writing --annotate images keeps the CSV of the faces predicted; ages have one decimal", { skip: !hasBest && "models/best is not trained yet" }, async () => {
  const { run: predictCli } = await import("../lib/cli/predict");
  const nodeFs = require("fs") as typeof import("fs");
  const faces = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().slice(0, 3).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const out = path.join(tmp, "full", "predictions.csv");
  const pics = path.join(tmp, "full", "annotated");
  const real = nodeFs.writeFileSync;
  const full = test.mock.method(nodeFs, "writeFileSync", function (this: unknown, file: fs.PathOrFileDescriptor, ...rest: unknown[]) {
    if (typeof file === "string" && file.startsWith(pics)) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
    return (real as (...a: unknown[]) => void).call(nodeFs, file, ...rest);
  });
  try {
    await assert.rejects(predictCli(["--model", BEST_DIR, ...faces, "--out", out, "--annotate", pics]), (e: Error) => {
      assert.match(e.message, /--annotate .*the disk is full/);
      assert.match(e.message, new RegExp(`predictions are complete in ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      return true;
    });
  } finally {
    full.mock.restore();
  }
  const lines = fs.readFileSync(out, "utf8").trim().split("\n");
  assert.equal(lines.length, 1 + faces.length, "a row per face, written before the failure");
  const header = lines[0].split(",");
  const ages = lines.slice(1).map((l) => l.split(",")[header.indexOf("age")]);
  for (const a of ages) assert.match(a, /^\d+\.\d$/, `age "${a}" has one decimal`);
});

test("UTKFACE_THREADS above the machine's cores is clamped with a warning that says so", () => {
  const script = path.join(tmp, "threads.ts");
  fs.writeFileSync(script, `import { initBackend } from ${JSON.stringify(path.join(REPO_ROOT, "lib", "engine", "backend"))};\ninitBackend().then((i) => console.log("INFO " + JSON.stringify(i)));\n`);
  const r = spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [script], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, UTKFACE_THREADS: "999", TFJS_BACKEND: "wasm" } });
  assert.equal(r.status, 0, r.stderr);
  const cores = os.availableParallelism();
  assert.match(r.stderr, new RegExp(`UTKFACE_THREADS=999 asks for more threads than this machine's ${cores} core\\(s\\): using ${cores}`));
  const info = JSON.parse(/INFO (.*)/.exec(r.stdout)![1]);
  if (/oneDNN/.test(info.engine ?? "")) assert.equal(info.threads, cores, info.engine);
});
