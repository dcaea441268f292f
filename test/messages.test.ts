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
import { RunResult } from "../lib/training/runs";
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
