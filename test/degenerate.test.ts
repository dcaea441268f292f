/**
 * Issue 11, finding 8: a model that collapsed to one answer (cnn-gender at a learning rate of
 * 1e6 says "Male" for every face) is flagged in metrics.json, by the CLI and in notebooks.
 */
import { after, mock, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { printMetrics } from "../lib/cli/options";
import { loadFaces } from "../lib/data/dataset";
import { runExperiment } from "../lib/training/experiment";
import { ageGroupOf } from "../lib/data/labels";
import { degenerateWarnings } from "../lib/analysis/metrics";
import { showMetrics } from "../lib/notebook/display";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import type { PredictionRow } from "../lib/records/runs";

setBackendQuiet(true);
const root = fs.mkdtempSync(path.join(os.tmpdir(), "degenerate-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("cnn-gender at --lr 1e6 predicts one gender for every face: metrics.json, the CLI and showMetrics warn", async () => {
  await initBackend();
  const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  const run = await runExperiment({ model: "cnn-gender", data, epochs: 2, maxImages: 120, learningRate: 1e6, resultsRoot: root, progress: false });
  const saved = JSON.parse(fs.readFileSync(path.join(run.runDir, "metrics.json"), "utf8"));
  assert.equal(saved.warnings?.length, 1, JSON.stringify(saved.warnings));
  assert.match(saved.warnings[0], /^gender: predicts (Male|Female) for (9[5-9]|100)% of \d+ held-out faces .*collapsed to one answer.*--lr/);

  const errors: string[] = [];
  const err = mock.method(console, "error", (s: string) => void errors.push(s));
  const log = mock.method(console, "log", () => undefined);
  try {
    printMetrics(run.metrics);
  } finally {
    err.mock.restore();
    log.mock.restore();
  }
  assert.match(errors.join("\n"), /warning: gender: predicts/);

  const shown: string[] = [];
  const out = mock.method(process.stdout, "write", (s: string) => (shown.push(String(s)), true));
  const log2 = mock.method(console, "log", (s: unknown) => void shown.push(String(s)));
  try {
    showMetrics(run);
  } finally {
    out.mock.restore();
    log2.mock.restore();
  }
  assert.match(shown.join("\n"), /Warning:\*\* gender: predicts/);
});

test("predictions that follow the faces raise no warning; a constant age or one age group does", async () => {
  const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  const rows: PredictionRow[] = data.records.slice(0, 100).map((r) => ({ file: r.file, age: r.age, gender: r.gender, trueGroup: ageGroupOf(r.age) }));
  assert.deepEqual(degenerateWarnings(rows.map((r) => ({ ...r, pFemale: r.gender ? 0.8 : 0.2 })), "gender"), []);
  assert.deepEqual(degenerateWarnings(rows.map((r) => ({ ...r, predAge: r.age + 3 })), "age-regression"), []);
  assert.match(degenerateWarnings(rows.map((r) => ({ ...r, predAge: 31.2 })), "age-regression").join(), /predicts about 31\.2 years for every held-out face/);
  assert.match(degenerateWarnings(rows.map((r) => ({ ...r, predGroup: 5, predAge: 27 })), "age-groups").join(), /predicts group 25 - 29 for 100% of 100/);
  assert.deepEqual(degenerateWarnings(rows.map((r) => ({ ...r, predGroup: r.trueGroup, predAge: r.age })), "age-groups"), []);
});
