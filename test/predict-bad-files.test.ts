/**
 * Issue 11, finding 6: `predict` on a folder predicts every readable image, lists the skipped
 * ones with reasons in the CSV and on stderr, and exits non-zero only when nothing could be
 * predicted (or with --strict). Real faces from data/sample plus the bad files.
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { loadFaces } from "../lib/data/dataset";
import { runExperiment } from "../lib/training/experiment";
import { REPO_ROOT, SAMPLE_DATA_DIR } from "../lib/core/paths";

setBackendQuiet(true);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "predict-bad-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function predict(...args: string[]) {
  return spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "lib", "cli", "main.ts"), "predict", ...args], { cwd: REPO_ROOT, encoding: "utf8" });
}

test("predict on a folder with 13 faces, a truncated JPEG and a text file named .jpg predicts the 13 and lists the 2", async () => {
  await initBackend();
  const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(tmp, "cache") });
  const run = await runExperiment({ model: "cnn-gender", data, epochs: 1, maxImages: 60, resultsRoot: tmp, progress: false });
  const photos = path.join(tmp, "photos");
  fs.mkdirSync(photos);
  data.records.slice(0, 13).forEach((r, i) => fs.copyFileSync(path.join(SAMPLE_DATA_DIR, r.file), path.join(photos, `face-${String(i).padStart(2, "0")}.jpg`)));
  const jpeg = fs.readFileSync(path.join(SAMPLE_DATA_DIR, data.records[20].file));
  fs.writeFileSync(path.join(photos, "broken.jpg"), jpeg.subarray(0, 2500));
  fs.writeFileSync(path.join(photos, "notes.jpg"), "this is text, not a photo\n");

  // --detect never: this test is about bad files; finding faces is test/detect.test.ts's.
  const out = path.join(tmp, "out.csv");
  const r = predict("--model", run.runDir, "--detect", "never", photos, "--out", out);
  assert.equal(r.status, 0, r.stderr);
  const lines = fs.readFileSync(out, "utf8").trim().split("\n");
  assert.equal(lines.length, 1 + 15);
  const predicted = lines.filter((l) => /,(Male|Female),0\.\d{4},whole image$/.test(l));
  assert.equal(predicted.length, 13);
  const broken = lines.find((l) => l.includes("broken.jpg"))!;
  assert.match(broken, /,,,,,"?skipped: the file is cut short or damaged/);
  assert.match(lines.find((l) => l.includes("notes.jpg"))!, /not an image/);
  assert.match(r.stderr, /skipped 2 of 15 file\(s\)/);
  assert.match(r.stderr, /broken\.jpg: the file is cut short/);
  assert.match(r.stdout, /13 face\(s\) in 13 image\(s\) written .* 2 file\(s\) skipped/);

  const strict = predict("--model", run.runDir, "--detect", "never", photos, "--strict");
  assert.equal(strict.status, 1, "--strict fails when a file was skipped");
  assert.equal(strict.stdout.trim().split("\n").filter((l) => /^.*\.jpg,/.test(l)).length, 15, `--strict still prints every row:\n${strict.stdout}`);

  const bad = path.join(tmp, "only-bad");
  fs.mkdirSync(bad);
  fs.copyFileSync(path.join(photos, "notes.jpg"), path.join(bad, "notes.jpg"));
  const none = predict("--model", run.runDir, bad);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no image could be predicted/);
});
