/**
 * An ensemble in the best-model run (issue 19's "ensembles if they pay for their time"): an
 * ablation step that averages two heads steps' validation outputs, chosen when its MAE is the
 * lowest, trains both members in the final run, stores them as heads/ and heads-2/ under a
 * best.json that a v3-only reader refuses, and predicts the average of its members. On the
 * sample faces with frozen face-api features, so the whole run takes about a minute.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { AblationStep, defaultAblation, runBest } from "../lib/best/run";
import { DEFAULT_HEAD_CONFIG, HeadConfig } from "../lib/best/head-training";
import { BEST_ENSEMBLE_FORMAT, BestModelFile, disposeBestModel, loadBestModel, predictBestFiles } from "../lib/best/model-folder";

setBackendQuiet(true);
let tmp: string;

before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ensemble-"));
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("--ensemble adds one step averaging the two pixel steps (or the two cached-maps steps with --deeper alone)", () => {
  const names = (steps: AblationStep[]) => steps.filter((s) => s.kind === "ensemble").map((s) => (s.kind === "ensemble" ? s.of : []));
  assert.deepEqual(names(defaultAblation(["facenet"], 30, { deeper: true, pixels: true, ensemble: true })), [["facenet fine-tune pixels", "facenet fine-tune pixels deeper"]]);
  assert.deepEqual(names(defaultAblation(["facenet"], 30, { deeper: true, ensemble: true })), [["facenet fine-tune", "facenet fine-tune deeper"]]);
  assert.deepEqual(names(defaultAblation(["facenet"], 30, { deeper: true, pixels: true })), []);
});

test("an ensemble chosen on validation trains both members, stores them as heads/ and heads-2/, and predicts their average", async () => {
  const cfg = (name: string, c: Partial<HeadConfig>): HeadConfig => ({ ...DEFAULT_HEAD_CONFIG, name, epochs: 10, ...c });
  const a = cfg("mlp 256", { epochs: 20 });
  const b = cfg("mlp 128", { hidden: 128, epochs: 20, seed: 7 });
  const steps: AblationStep[] = [
    { kind: "heads", description: "MLP 256", config: a },
    { kind: "heads", description: "MLP 128, another seed", config: b },
    { kind: "ensemble", name: "both", of: ["mlp 256", "mlp 128"], description: "both averaged" },
  ];
  await assert.rejects(runBest({ dir: SAMPLE_DATA_DIR, outDir: path.join(tmp, "bad"), cacheDir: path.join(tmp, "cache"), steps: [steps[2], ...steps.slice(0, 2)], log: () => {} }), /"both" averages "mlp 256", which has not run before it/);
  const outDir = path.join(tmp, "best");
  const lines: string[] = [];
  const run = await runBest({ dir: SAMPLE_DATA_DIR, outDir, cacheDir: path.join(tmp, "cache"), steps, log: (l) => lines.push(l), speedFaces: 4 });
  assert.ok(run);
  const [ra, rb, rboth] = run.ablation;
  assert.equal(rboth.name, "both");
  assert.equal(rboth.seconds, ra.seconds + rb.seconds);
  // Averaging two different models helps here; the test is about what happens when it is chosen.
  assert.ok(rboth.mae < Math.min(ra.mae, rb.mae), `ensemble ${rboth.mae} vs members ${ra.mae}, ${rb.mae}`);
  assert.deepEqual(run.members?.map((m) => m.name), ["mlp 256", "mlp 128"]);
  assert.equal(lines.filter((l) => /\[final\] .* \(ensemble member \d of 2\)/.test(l)).length, 2, lines.join("\n"));
  const file = JSON.parse(fs.readFileSync(path.join(outDir, "best.json"), "utf8")) as BestModelFile;
  assert.equal(file.format, BEST_ENSEMBLE_FORMAT);
  assert.equal(file.config.name, "mlp 256");
  assert.deepEqual(file.ensemble?.map((e) => [e.heads, e.config.name]), [["heads-2", "mlp 128"]]);
  assert.ok(fs.existsSync(path.join(outDir, "heads-2", "model.json")));
  assert.match(fs.readFileSync(path.join(outDir, "MODEL_CARD.md"), "utf8"), /\| both \| both averaged \|/);

  // The folder predicts the mean of its members: each member alone, as a one-model folder.
  const files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().slice(0, 12).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const alone = async (k: 0 | 1) => {
    const dir = path.join(tmp, `member-${k}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(outDir, k === 0 ? "heads" : "heads-2"), path.join(dir, "heads"), { recursive: true });
    const member = k === 0 ? file : { ...file, config: file.ensemble![0].config, standardizer: file.ensemble![0].standardizer };
    fs.writeFileSync(path.join(dir, "best.json"), JSON.stringify({ ...member, format: "utkface-best-v3", ensemble: undefined, calibration: undefined }));
    return predictBestFiles(dir, files);
  };
  const [p0, p1] = [await alone(0), await alone(1)];
  const model = await loadBestModel(outDir);
  assert.equal(model.members.length, 2);
  const both = await predictBestFiles(model, files);
  disposeBestModel(model);
  both.forEach((p, i) => {
    assert.ok(Math.abs(p.pFemale! - (p0[i].pFemale! + p1[i].pFemale!) / 2) < 1e-6, `P(female) of ${p.file}`);
    assert.ok(Math.abs(p.age! - (p0[i].age! + p1[i].age!) / 2) < 1e-4, `age of ${p.file}: ${p.age} vs ${p0[i].age}, ${p1[i].age}`);
  });
  assert.ok(both.some((p, i) => Math.abs(p.age! - p0[i].age!) > 0.1), "the second member changes the predictions");

  // A reader that knows v3 only must not predict with the first member alone.
  fs.writeFileSync(path.join(outDir, "best.json"), JSON.stringify({ ...file, format: "utkface-best-v9" }));
  await assert.rejects(loadBestModel(outDir), /format "utkface-best-v9"/);
  fs.writeFileSync(path.join(outDir, "best.json"), JSON.stringify({ ...file, ensemble: [{ heads: 3 }] }));
  await assert.rejects(loadBestModel(outDir), /is damaged: its "ensemble" is not a list/);
});
