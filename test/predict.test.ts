import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { loadFaces } from "../lib/data/dataset";
import { runExperiment } from "../lib/training/experiment";
import { REPO_ROOT, resolveDataDir } from "../lib/core/paths";
import { predictFiles, predictionsCsv } from "../lib/inference/predict";

setBackendQuiet(true);

test("predict works on an image not named in UTKFace form, leaving absent outputs empty", async () => {
  await initBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "predict-"));
  try {
    const data = await loadFaces({ dir: resolveDataDir(), size: 32, color: "gray" });
    const face = path.join(tmp, "face.jpg");
    fs.copyFileSync(path.join(data.dir, data.records[0].file), face);
    const age = await runExperiment({ model: "cnn-age-sigmoid", data, epochs: 1, maxImages: 60, resultsRoot: tmp, progress: false });
    const rows = await predictFiles(age.runDir, [face]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].file, face);
    assert.match(rows[0].ageGroup!, /^\d+ - \d+$|^\d+\+$/);
    assert.equal(rows[0].gender, undefined);
    const csv = predictionsCsv(rows).trim().split("\n");
    assert.equal(csv[0], "file,age,age_group,gender,p_female,skipped");
    assert.match(csv[1], /^.*face\.jpg,\d+(\.\d)?,[^,]+,,,$/);

    // The CLI on the same file, with a gender model: age columns empty; a UTKFace crop is one
    // face taken whole (--detect auto), its box the whole image.
    const gender = await runExperiment({ model: "cnn-gender", data, epochs: 1, maxImages: 60, resultsRoot: tmp, progress: false });
    const out = path.join(tmp, "out.csv");
    const r = spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "lib", "cli", "main.ts"), "predict", "--model", gender.runDir, face, "--out", out], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = fs.readFileSync(out, "utf8").trim().split("\n");
    // Taken whole without the detector (no score), the landmark check's verdict in its own column.
    assert.match(lines[1], /face\.jpg,0,0,0,200,200,,face,,+(Male|Female),0\.\d{4},whole image$/);

    await assert.rejects(predictFiles(path.join(tmp, "missing"), [face]), /No trained model at/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("predictPhotos predicts a folder's faces a chunk of images at a time, in the files' order, as models/best predicts each file alone", async () => {
  await initBackend();
  setBackendQuiet(true);
  const { predictPhotos } = await import("../lib/inference/photo");
  const { predictBestFiles } = await import("../lib/best/model-folder");
  const dir = path.join(REPO_ROOT, "data", "sample");
  // 40 crops: more than one chunk of faces, plus a file that is no image in the middle of them.
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".jpg")).sort().filter((_, i) => i % 50 === 7).slice(0, 40).map((f) => path.join(dir, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "photo-chunks-"));
  const bad = path.join(tmp, "not-an-image.jpg");
  fs.writeFileSync(bad, "plain text, not a JPEG");
  const all = [...files.slice(0, 20), bad, ...files.slice(20)];
  try {
    const photos = await predictPhotos(path.join(REPO_ROOT, "models", "best"), all, { detect: "never" });
    assert.deepEqual(photos.map((p) => p.file), all);
    assert.ok(photos[20].skipped && photos[20].faces.length === 0, JSON.stringify(photos[20]));
    const alone = [];
    for (const f of files) alone.push(...(await predictBestFiles(path.join(REPO_ROOT, "models", "best"), [f])));
    photos.filter((p) => p.file !== bad).forEach((p, i) => {
      assert.equal(p.faces.length, 1, p.file);
      assert.ok(Math.abs(p.faces[0].age! - alone[i].age!) < 0.01 && Math.abs(p.faces[0].pFemale! - alone[i].pFemale!) < 1e-3, `${p.file}: ${p.faces[0].age} ${p.faces[0].pFemale} alone ${alone[i].age} ${alone[i].pFemale}`);
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
