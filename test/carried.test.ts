/**
 * The report's own procedures (issue 20): the carried-weight K-fold with its test faces kept
 * out and its leak measured, class-weighted losses, and keeping the best epoch by validation.
 * All on real faces of the shipped sample.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { REPO_ROOT } from "../lib/core/paths";
import { imagesTensor, loadFaces } from "../lib/data/dataset";
import { REPORT_AGE_GROUPS, ageGroupOf } from "../lib/data/labels";
import { balancedClassWeights } from "../lib/models/tasks";
import { buildModel } from "../lib/models/registry";
import { evaluateLoss, lossAndMetrics, lossesFor, targetTensors, trainModel } from "../lib/training/train";
import { measureLeak, leakSentence } from "../lib/analysis/leak";
import { initBackend } from "../lib/engine/backend";
import type { KFoldSummary, RunConfig, RunMetrics } from "../lib/records/runs";

const CLI = path.join(REPO_ROOT, "lib", "cli", "main.ts");
const TSX = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
const SAMPLE = path.join(REPO_ROOT, "data", "sample");

function cli(args: string[]): string {
  const r = spawnSync(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, EXPERIMENT_PROFILE: "quick", UTKFACE_DIR: SAMPLE } });
  assert.equal(r.status, 0, `${args.join(" ")}\n${r.stderr}`);
  return r.stdout;
}

const read = <T>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8")) as T;

test("a carried K-fold with --hold-out-test never trains on its test faces, scores every fold on them, and its leak is measured", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "carried-"));
  try {
    const common = ["kfold", "--model", "cnn-gender", "--folds", "3", "--first-epochs", "1", "--last-epochs", "1", "--max-images", "90", "--size", "32", "--batch", "15", "--hold-out-test", "0.2"];
    const carried = path.join(tmp, "carried");
    cli([...common, "--carry-weights", "--run", carried]);
    const config = read<RunConfig>(path.join(carried, "config.json"));
    const plan = config.kfold!;
    assert.equal(plan.carryWeights, true);
    const test = plan.heldOutTest!.indices;
    assert.equal(test.length, 18, "20% of 90 faces");
    const folded = plan.validation.flat();
    assert.equal(folded.length + test.length, 90);
    assert.ok(test.every((i) => !folded.includes(i)), "no test face is in any fold");
    for (let f = 0; f < 3; f++) {
      const dir = path.join(carried, `fold-0${f + 1}`);
      const m = read<RunMetrics>(path.join(dir, "test-metrics.json"));
      assert.equal(m.split, "test");
      assert.equal(m.images, 18);
      assert.equal(read<unknown[]>(path.join(dir, "test-predictions.json")).length, 18);
    }
    const summary = read<KFoldSummary>(path.join(carried, "metrics.json"));
    assert.equal(summary.heldOutTest?.length, 3);

    const leak = measureLeak(carried);
    assert.deepEqual(leak.folds.map((f) => f.share), [0, 1, 1], "from fold 2 on every validation face was trained on by fold 1");
    assert.equal(leak.folds[0].accuracySeen, undefined);
    assert.equal(leak.folds[1].accuracyUnseen, undefined);
    assert.equal(leak.finalTest?.faces, 18);
    assert.equal(leak.finalTest?.accuracy, summary.heldOutTest![2].metrics.genderAccuracy);
    assert.match(leakSentence(leak), /on its validation folds .* on 18 faces it never saw/);

    // The same plan with fresh folds: the same faces, no leak.
    const fresh = path.join(tmp, "fresh");
    cli([...common, "--run", fresh]);
    assert.deepEqual(read<RunConfig>(path.join(fresh, "config.json")).kfold!.validation, plan.validation);
    assert.deepEqual(measureLeak(fresh).folds.map((f) => f.share), [0, 0, 0]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("balanced class weights average 1 over the training faces and weight each face's loss by its class", async () => {
  await initBackend();
  const faces = await loadFaces({ dir: SAMPLE, size: 32, color: "gray" });
  const idx = faces.records.map((_, i) => i).filter((i) => ageGroupOf(faces.records[i].age, REPORT_AGE_GROUPS) >= 0);
  const w = balancedClassWeights("age-gender", faces.records, idx, REPORT_AGE_GROUPS);
  const groups = idx.map((i) => ageGroupOf(faces.records[i].age, REPORT_AGE_GROUPS));
  const meanWeight = groups.reduce((a, g) => a + w.age[g], 0) / groups.length;
  assert.ok(Math.abs(meanWeight - 1) < 1e-9, `mean age weight ${meanWeight}`);
  const counts = new Map<number, number>();
  groups.forEach((g) => counts.set(g, (counts.get(g) ?? 0) + 1));
  const [common] = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const [rare] = [...counts.entries()].sort((a, b) => a[1] - b[1]);
  assert.ok(w.age[rare[0]] > w.age[common[0]], "a rare group weighs more than the most common one");
  assert.equal(w.gender.length, 2);

  // The weighted loss is the mean of each face's loss times its class weight.
  const model = buildModel("cnn-gender", { size: 32, channels: 1 });
  try {
    const some = idx.slice(0, 40);
    const gw = balancedClassWeights("gender", faces.records, some, REPORT_AGE_GROUPS);
    const [plain, weighted, manual] = tf.tidy(() => {
      const pred = model.predict(imagesTensor(faces, some, "unit")) as tf.Tensor;
      const ys = targetTensors(faces.records, some, "gender");
      const losses = lossesFor("gender", model);
      const per = tf.metrics.binaryCrossentropy(ys[0], pred).arraySync() as number[];
      const byFace = some.map((i, j) => per[j] * gw.gender[faces.records[i].gender]);
      return [lossAndMetrics("gender", losses, [pred], ys).loss.dataSync()[0], lossAndMetrics("gender", losses, [pred], ys, gw).loss.dataSync()[0], byFace.reduce((a, b) => a + b, 0) / byFace.length];
    });
    assert.ok(Math.abs(weighted - manual) < 1e-5, `weighted ${weighted} vs by hand ${manual}`);
    const balanced = some.filter((i) => faces.records[i].gender === 0).length === some.length / 2;
    if (!balanced) assert.notEqual(weighted.toFixed(6), plain.toFixed(6));
  } finally {
    model.dispose();
  }
});

test("keepBest leaves the model with the weights of the epoch with the lowest validation loss", async () => {
  await initBackend();
  const faces = await loadFaces({ dir: SAMPLE, size: 32, color: "gray" });
  const all = faces.records.map((_, i) => i);
  const train = all.slice(0, 120);
  const validation = all.slice(120, 170);
  for (const keepBest of [true, false]) {
    const model = buildModel("cnn-gender", { size: 32, channels: 1, seed: 3 });
    try {
      // A high rate makes the validation loss move around, so the best epoch is often not the last.
      const r = await trainModel({ model, modelName: "cnn-gender", task: "gender", data: faces, trainIndices: train, validationIndices: validation, epochs: 4, batchSize: 20, learningRate: 3e-3, seed: 1, keepBest });
      const losses = r.history.map((h) => h.valLoss!);
      const chosen = keepBest ? losses.indexOf(Math.min(...losses)) : losses.length - 1;
      if (keepBest) assert.equal(r.bestEpoch, chosen + 1);
      const now = await evaluateLoss({ model, data: faces, indices: validation, task: "gender" });
      assert.ok(Math.abs(now.loss - losses[chosen]) < 1e-4, `keepBest=${keepBest}: model's validation loss ${now.loss}, epoch ${chosen + 1}'s ${losses[chosen]} (all: ${losses.join(", ")})`);
      r.optimizer.dispose();
    } finally {
      model.dispose();
    }
  }
  await assert.rejects(
    trainModel({ model: buildModel("cnn-gender", { size: 32, channels: 1 }), modelName: "cnn-gender", task: "gender", data: faces, trainIndices: train, epochs: 1, batchSize: 20, learningRate: 1e-3, seed: 1, keepBest: true }),
    /no validation faces: set a validation fraction/,
  );
});
