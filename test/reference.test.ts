/**
 * Reference runs: a run interrupted and continued records its resume; the copier commits its
 * records without weights and adds its README line; a K-fold run with some folds finished is
 * shown as such; the loader returns the newest run of each experiment.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { runExperiment } from "../lib/training/experiment";
import { runKFold } from "../lib/training/kfold";
import { README_TABLE_MARKERS, addReferenceRun, figuresOf, referenceComparisonRows, referenceFigures, referenceRun, referenceRuns, referenceTable, updateReadmeTable } from "../lib/analysis/reference";
import { readResumes } from "../lib/records/runs";
import type { TrainingCallback } from "../lib/training/callbacks";

setBackendQuiet(true);
const SIZE = 32;

/** A callback that kills the training (throws) after the first epoch of the given fold, once. */
function interruptAfterFirstEpoch(fold?: number): TrainingCallback & { fired: boolean } {
  const cb = {
    fired: false,
    onEpochEnd(record: { epoch: number; fold?: number }) {
      if (!cb.fired && record.epoch === 1 && record.fold === fold) {
        cb.fired = true;
        throw new Error("interrupted on purpose");
      }
    },
  };
  return cb;
}

/** Every file under a folder, relative, sorted. */
function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

test("a train run continued in its folder records the resume; the copier keeps records, drops weights, adds its line", async () => {
  await initBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "reference-"));
  try {
    const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: SIZE, color: "gray" });
    const common = { model: "cnn-gender", data, size: SIZE, epochs: 2, maxImages: 80, batchSize: 20, progress: false as const, profile: "quick" as const };
    const cut = interruptAfterFirstEpoch(undefined);
    await assert.rejects(runExperiment({ ...common, resultsRoot: path.join(tmp, "runs"), callbacks: [cut] }), /interrupted on purpose/);
    const [runId] = fs.readdirSync(path.join(tmp, "runs", "cnn-gender"));
    const runDir = path.join(tmp, "runs", "cnn-gender", runId);
    assert.ok(fs.existsSync(path.join(runDir, "checkpoint", "state.json")), "the first epoch was checkpointed");
    const run = await runExperiment({ ...common, runDir });
    assert.equal(run.history.length, 2);
    const resumes = readResumes(runDir);
    assert.equal(resumes.length, 1);
    assert.equal(resumes[0].afterEpoch, 1);
    assert.equal(resumes[0].epochs, 2);
    assert.ok(fs.existsSync(path.join(runDir, "model", "model.json")));

    const root = path.join(tmp, "reference");
    const added = addReferenceRun(runDir, { root, command: "npm run cli -- train --model cnn-gender --run X" });
    const copied = filesUnder(added.dest);
    assert.deepEqual(copied, ["config.json", "history.json", "metrics.json", "predictions.json", "resumes.json"]);
    const original = JSON.parse(fs.readFileSync(path.join(runDir, "metrics.json"), "utf8"));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(added.dest, "metrics.json"), "utf8")), original);
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const rows = readme.split("\n").filter((l) => l.startsWith("| cnn-gender |"));
    assert.equal(rows.length, 1);
    for (const part of [runId, "quick", "80", "`npm run cli -- train --model cnn-gender --run X`", run.config.backend.name, "(80/20 split)"]) {
      assert.ok(rows[0].includes(part), `README line ${rows[0]} lacks ${part}`);
    }
    const loaded = referenceRun("cnn-gender", root)!;
    assert.equal(loaded.kind, "split");
    assert.equal(loaded.predictions.length, run.predictions.length);
    assert.match(loaded.reference.label, /^quick profile, 80\/20 split, 80 faces, reference run of \d{4}-\d\d-\d\d$/);
    const figures = referenceFigures(loaded);
    assert.ok(figures.length > 0 && figures.every((f) => f.name.startsWith("reference-")));
    assert.ok(figures.every((f) => String((f.figure.layout.title as { text: string }).text).includes("reference run of")));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("a K-fold run with some folds finished is committed and read as k of K folds, then replaced when complete", async () => {
  await initBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "reference-kfold-"));
  try {
    const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: SIZE, color: "gray" });
    const runDir = path.join(tmp, "runs", "cnn-gender-kfold", "20260102-000000-kf");
    const common = { model: "cnn-gender", data, size: SIZE, folds: 3, firstEpochs: 2, lastEpochs: 1, maxImages: 60, batchSize: 20, progress: false as const, runDir, profile: "quick" as const };
    // Fold 2 (index 1) is interrupted after its first epoch and continued later.
    await runKFold({ ...common, fold: 0 });
    const cut = interruptAfterFirstEpoch(1);
    await assert.rejects(runKFold({ ...common, fold: 1, callbacks: [cut] }), /interrupted on purpose/);

    const root = path.join(tmp, "reference");
    const partial = addReferenceRun(runDir, { root });
    assert.equal(partial.run.reference.foldsDone, 1);
    assert.equal(partial.run.reference.folds, 3);
    assert.match(partial.run.reference.label, /1 of 3 folds done/);
    assert.match(partial.line, /\| 1 of 3 \|/);
    const files = filesUnder(partial.dest);
    assert.ok(!files.some((f) => /(^|\/)(model|checkpoint)\//.test(f)), `weights copied: ${files.join(", ")}`);
    assert.ok(files.includes("fold-01/predictions.json"));
    assert.ok(!files.some((f) => f.startsWith("fold-02/")), `the fold still training is not copied: ${files.join(", ")}`);
    const copiedConfig = JSON.parse(fs.readFileSync(path.join(partial.dest, "config.json"), "utf8")) as { data: { dir: string } };
    assert.ok(!path.isAbsolute(copiedConfig.data.dir), `data folder from the repository root: ${copiedConfig.data.dir}`);

    await runKFold({ ...common, fold: 1 });
    await runKFold({ ...common, fold: 2, merge: true });
    const full = addReferenceRun(runDir, { root });
    assert.equal(full.run.reference.foldsDone, 3);
    assert.match(full.run.reference.label, /^quick profile, 3 folds, 60 faces/);
    assert.equal(full.run.predictions.length, 60, "every face once over the validation folds");
    assert.deepEqual(full.run.kind === "kfold" && full.run.summary.resumed?.map((r) => [r.fold, r.afterEpoch]), [[1, 1]]);
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const rows = readme.split("\n").filter((l) => l.includes("20260102-000000-kf"));
    assert.equal(rows.length, 1, "the complete run's line replaced the partial one");
    assert.match(rows[0], /\| 3 of 3 \|/);
    // Merged copies at the top are not committed: the loader recomputes them from the folds.
    assert.ok(!fs.existsSync(path.join(full.dest, "predictions.json")));

    // The loader: newest run per experiment, across experiments.
    const older = path.join(root, "cnn-gender-kfold", "20250101-000000-old");
    fs.cpSync(full.dest, older, { recursive: true });
    const olderConfig = JSON.parse(fs.readFileSync(path.join(older, "config.json"), "utf8"));
    fs.writeFileSync(path.join(older, "config.json"), JSON.stringify({ ...olderConfig, runId: "20250101-000000-old", createdAt: "2025-01-01T00:00:00.000Z" }));
    assert.equal(referenceRun("cnn-gender-kfold", root)!.runDir, full.dest);
    assert.deepEqual(referenceRuns(root).map((r) => r.reference.experiment), ["cnn-gender-kfold"]);
    assert.equal(referenceRun("no-such-experiment", root), undefined);
    // Without an 80/20 reference run, a K-fold row is every face, each by its validation fold.
    const [row] = referenceComparisonRows(referenceRuns(root));
    assert.equal(row.images, 60);
    assert.equal(row.heldOut, "every face, by its validation fold");
    assert.ok(row.genderAccuracy! > 0 && row.genderAccuracy! < 1);
    // On a subset, the figures follow the metrics' definitions: here one right, one wrong.
    const two = full.run.predictions.slice(0, 2).map((p, i) => ({ ...p, pFemale: i === 0 ? p.gender : 1 - p.gender }));
    assert.equal(figuresOf(two).genderAccuracy, 0.5);
    // The README's table is generated from the same rows, between its markers.
    const table = referenceTable(referenceRuns(root));
    assert.match(table, /\| `cnn-gender` \| quick profile, 3 folds, 60 faces, reference run of [-\d]+ \| every face, by its validation fold \| 60 \|/);
    const fakeReadme = `# x\n${README_TABLE_MARKERS[0]}\nSTALE TABLE\n${README_TABLE_MARKERS[1]}\nafter\n`;
    const updated = updateReadmeTable(fakeReadme, table);
    assert.ok(updated.includes(table) && !updated.includes("STALE TABLE") && updated.endsWith(`${README_TABLE_MARKERS[1]}\nafter\n`));
    assert.throws(() => updateReadmeTable("# no markers\n", table), /no reference table block/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("the copier refuses what is not a finished run, naming the folder", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "reference-bad-"));
  try {
    assert.throws(() => addReferenceRun(tmp, { root: path.join(tmp, "ref") }), /is not a run folder \(no config\.json\)/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("committed references: a K-fold row on the 80/20 test faces names the folds that hold them, and the table adds every face's figure", { skip: !referenceRuns().some((r) => r.kind === "split") && "no 80/20 reference run committed" }, () => {
  const runs = referenceRuns();
  const split = runs.find((r) => r.kind === "split")!;
  const testFiles = new Set(split.predictions.map((p) => p.file));
  const rows = referenceComparisonRows(runs);
  const table = referenceTable(runs);
  runs.forEach((run, i) => {
    if (run.kind !== "kfold") return;
    const onTest = run.predictions.filter((p) => testFiles.has(p.file));
    assert.equal(rows[i].images, onTest.length, "the K-fold row is scored on the test faces only");
    const folds = [...new Set(onTest.map((p) => (p as { fold: number }).fold + 1))].sort((a, b) => a - b);
    if (folds.length < run.summary.folds.length) {
      assert.match(rows[i].heldOut, new RegExp(`folds? ${folds.join(", ")} of ${run.summary.folds.length}$`));
      // The whole protocol's figure (every face, every fold) is given beside it.
      assert.equal(rows[i].everyFace!.images, run.predictions.length);
      const every = rows[i].everyFace!;
      const shown = every.ageAccuracy !== undefined ? every.ageAccuracy : every.genderAccuracy!;
      assert.ok(table.includes(`\`${run.config.model}\` ${(shown * 100).toFixed(1)}%`), `table lacks ${run.config.model}'s every-face figure`);
    } else {
      assert.match(rows[i].heldOut, /held it out$/);
    }
  });
});
