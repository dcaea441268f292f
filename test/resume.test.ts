/**
 * Issue 11, findings 1 and 2: an interrupted `train` run continues from its last checkpointed
 * epoch (weights and Adam state) to the losses of an uninterrupted run; a failed write says
 * what, where and how to go on and keeps the last checkpoint; a run killed after saving its
 * model is finished by `evaluate`; resuming (train and kfold) with a setting that differs from
 * config.json is refused with the list, or accepted and recorded. Real faces from data/sample.
 */
import { after, mock, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import type { TrainingCallback } from "../lib/training/callbacks";
import { FaceDataset, loadFaces } from "../lib/data/dataset";
import { ExperimentConfig, evaluateRun, runExperiment } from "../lib/training/experiment";
import { runKFold } from "../lib/training/kfold";
import { REPO_ROOT, RESULTS_DIR, SAMPLE_DATA_DIR } from "../lib/core/paths";
import { loadRun } from "../lib/records/runs";

setBackendQuiet(true);
const root = fs.mkdtempSync(path.join(os.tmpdir(), "resume-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
// The real module object: the library reads fs through it, so a mock here reaches its writes.
const nodeFs = require("fs") as typeof import("fs");

let data: FaceDataset;
async function faces(): Promise<FaceDataset> {
  await initBackend();
  data ??= await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  return data;
}

/** A callback that stops training (as a kill would) right after the given epoch's checkpoint. */
function stopAfter(epoch: number): TrainingCallback {
  return {
    onEpochEnd(r) {
      if (r.epoch === epoch) throw new Error(`stopped after epoch ${epoch}`);
    },
  };
}

const onlyRun = (experiment: string) => {
  const dirs = fs.readdirSync(path.join(root, experiment));
  assert.equal(dirs.length, 1, `one run folder under ${experiment}`);
  return path.join(root, experiment, dirs[0]);
};
const stateEpoch = (runDir: string) => JSON.parse(fs.readFileSync(path.join(runDir, "checkpoint", "state.json"), "utf8")).epoch as number;

async function base(experiment: string): Promise<ExperimentConfig> {
  return { model: "cnn-gender", data: await faces(), epochs: 3, maxImages: 80, batchSize: 10, resultsRoot: root, progress: false, experiment };
}

let reference: Awaited<ReturnType<typeof runExperiment>>;

test("train: a run stopped after epoch 2 continues with resume to the uninterrupted losses; settings that differ are refused", async () => {
  reference = await runExperiment(await base("ref"));
  await assert.rejects(runExperiment({ ...(await base("cut")), callbacks: [stopAfter(2)] }), /stopped after epoch 2/);
  const cut = onlyRun("cut");
  assert.equal(stateEpoch(cut), 2);
  assert.ok(!fs.existsSync(path.join(cut, "metrics.json")));

  // Continuing with another learning rate and batch size is refused, every difference listed.
  await assert.rejects(runExperiment({ model: "cnn-gender", data, resultsRoot: root, experiment: "cut", resume: true, progress: false, learningRate: 0.01, batchSize: 5 }), (e: Error) => {
    assert.match(e.message, /2 setting\(s\) differ/);
    assert.match(e.message, /--lr: 0\.001 in the run, 0\.01 now/);
    assert.match(e.message, /--batch: 10 in the run, 5 now/);
    assert.match(e.message, /--accept-changes/);
    return true;
  });
  // Options left out are the run's own: resume alone continues it.
  const resumed = await runExperiment({ model: "cnn-gender", data, resultsRoot: root, experiment: "cut", resume: true, progress: false });
  assert.equal(resumed.runDir, cut);
  assert.equal(resumed.history.length, 3);
  resumed.history.forEach((r, i) => assert.ok(Math.abs(r.loss - reference.history[i].loss) < 1e-5, `epoch ${r.epoch}: ${r.loss} vs ${reference.history[i].loss}`));
  assert.ok(Math.abs(resumed.metrics.loss! - reference.metrics.loss!) < 1e-5);
  assert.ok(!fs.existsSync(path.join(cut, "checkpoint")), "checkpoint removed once the run is complete");
  assert.ok(fs.existsSync(path.join(cut, "model", "model.json")), "final model kept");
  await assert.rejects(runExperiment({ model: "cnn-gender", data, resultsRoot: root, experiment: "cut", resume: true, progress: false }), /no unfinished train run of cnn-gender/);
});

test("train: accepted changes are recorded in config.json with the epoch they took effect", async () => {
  await assert.rejects(runExperiment({ ...(await base("changed")), callbacks: [stopAfter(1)] }), /stopped after epoch 1/);
  const dir = onlyRun("changed");
  const r = await runExperiment({ model: "", runDir: dir, data, resultsRoot: root, progress: false, learningRate: 0.002, acceptChanges: true });
  assert.equal(r.history.length, 3);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  assert.equal(cfg.hyper.learningRate, 0.002);
  assert.deepEqual(cfg.changes.map((c: { setting: string; run: number; now: number; atEpoch: number }) => [c.setting, c.run, c.now, c.atEpoch]), [["--lr", 0.001, 0.002, 2]]);
});

test("train: disk full while saving epoch 3 says what, where and how to continue, and keeps the epoch 2 checkpoint", async () => {
  const real = nodeFs.writeFileSync;
  const full = mock.method(nodeFs, "writeFileSync", function (this: unknown, file: fs.PathOrFileDescriptor, ...rest: unknown[]) {
    if (typeof file === "string" && file.includes(`${path.sep}epoch-003${path.sep}`)) {
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
    }
    return (real as (...a: unknown[]) => void).call(nodeFs, file, ...rest);
  });
  try {
    await assert.rejects(runExperiment(await base("full")), (e: Error) => {
      assert.match(e.message, /Could not save the checkpoint of epoch 3/);
      assert.match(e.message, /the disk is full/);
      assert.match(e.message, /last complete checkpoint \(epoch 2\) is kept/);
      assert.match(e.message, /npm run cli -- train --run /);
      return true;
    });
  } finally {
    full.mock.restore();
  }
  const dir = onlyRun("full");
  assert.equal(stateEpoch(dir), 2);
  assert.ok(fs.existsSync(path.join(dir, "checkpoint", "epoch-002", "weights.bin")));
  assert.deepEqual(
    fs.readdirSync(path.join(dir, "checkpoint"), { recursive: true }).filter((f) => String(f).endsWith(".tmp")),
    [],
    "no temporary file left",
  );
  const r = await runExperiment({ model: "cnn-gender", runDir: dir, data, resultsRoot: root, progress: false });
  r.history.forEach((h, i) => assert.ok(Math.abs(h.loss - reference.history[i].loss) < 1e-5, `epoch ${h.epoch}`));
});

test("a run killed after its model was saved is finished by evaluate (and by train --resume)", async () => {
  const dir = reference.runDir;
  for (const f of ["metrics.json", "predictions.json"]) fs.rmSync(path.join(dir, f));
  const ev = await evaluateRun(dir, { data });
  void ev;
  const finished = loadRun(dir);
  assert.ok(Math.abs(finished.metrics.loss! - reference.metrics.loss!) < 1e-5);
  assert.equal(finished.metrics.genderAccuracy, reference.metrics.genderAccuracy);
  assert.equal(finished.predictions.length, reference.predictions.length);

  for (const f of ["metrics.json", "predictions.json"]) fs.rmSync(path.join(dir, f));
  const again = await runExperiment({ model: "cnn-gender", runDir: dir, data, resultsRoot: root, progress: false });
  assert.equal(again.metrics.genderAccuracy, reference.metrics.genderAccuracy);
  assert.ok(fs.existsSync(path.join(dir, "metrics.json")));
});

test("the CLI: train --run with a changed --lr is refused naming the flag; kfold resume refuses changes too", async () => {
  await assert.rejects(runExperiment({ ...(await base("cli")), callbacks: [stopAfter(1)] }), /stopped/);
  const dir = onlyRun("cli");
  const r = spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "lib", "cli", "main.ts"), "train", "--run", dir, "--lr", "0.5"], { cwd: REPO_ROOT, encoding: "utf8" });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /--lr: 0\.001 in the run, 0\.5 now/);
  assert.ok(!fs.existsSync(path.join(dir, "metrics.json")));

  const kbase = { model: "cnn-gender", data, folds: 2, firstEpochs: 2, lastEpochs: 2, maxImages: 60, batchSize: 10, resultsRoot: root, progress: false as const, experiment: "kf" };
  await assert.rejects(runKFold({ ...kbase, callbacks: [stopAfter(1)] }), /stopped after epoch 1/);
  await assert.rejects(runKFold({ ...kbase, resume: true, learningRate: 0.01 }), /--lr: 0\.001 in the run, 0\.01 now/);
  await assert.rejects(runKFold({ ...kbase, resume: true, batchSize: 5 }), /--batch: 10 in the run, 5 now/);
  const done = await runKFold({ model: "cnn-gender", data, resultsRoot: root, progress: false, experiment: "kf", resume: true, learningRate: 0.01, acceptChanges: true });
  assert.deepEqual(done.summary.completed, [0, 1]);
  const cfg = JSON.parse(fs.readFileSync(path.join(done.runDir, "config.json"), "utf8"));
  assert.deepEqual(cfg.changes.map((c: { setting: string; atFold: string; atEpoch: number }) => [c.setting, c.atFold, c.atEpoch]), [["--lr", "fold-01", 2]]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(done.runDir, "fold-02", "config.json"), "utf8")).hyper.learningRate, 0.01);
});

test("resume refuses a data folder whose images changed since the run started", async () => {
  const dir = path.join(root, "faces-copy");
  fs.cpSync(SAMPLE_DATA_DIR, dir, { recursive: true });
  const before = await loadFaces({ dir, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  await assert.rejects(runExperiment({ ...(await base("files")), data: before, callbacks: [stopAfter(1)] }), /stopped/);
  // One face removed: same folder, same count after the cap, but other images in the run.
  fs.rmSync(path.join(dir, before.records[5].file));
  const after = await loadFaces({ dir, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  await assert.rejects(runExperiment({ model: "cnn-gender", data: after, resultsRoot: root, experiment: "files", resume: true, progress: false }), (e: Error) => {
    assert.match(e.message, /image files of --dir: "[0-9a-f]{16}" in the run, "[0-9a-f]{16}" now/);
    assert.doesNotMatch(e.message, /^\s+--dir:/m, "same folder");
    return true;
  });
});

test("the CLI: train killed with SIGKILL after an epoch, then train --resume, finishes the same run", async () => {
  const exp = `zz-kill-${process.pid}`;
  const expDir = path.join(RESULTS_DIR, exp);
  const tsx = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
  const cliPath = path.join(REPO_ROOT, "lib", "cli", "main.ts");
  const args = ["train", "--model", "cnn-gender", "--size", "32", "--max-images", "80", "--batch", "10", "--epochs", "3", "--experiment", exp, "--dir", SAMPLE_DATA_DIR];
  try {
    const child = spawn(tsx, [cliPath, ...args], { cwd: REPO_ROOT, stdio: "ignore", detached: true });
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        const runs = fs.existsSync(expDir) ? fs.readdirSync(expDir) : [];
        const state = runs.length ? path.join(expDir, runs[0], "checkpoint", "state.json") : "";
        if (state && fs.existsSync(state)) {
          clearInterval(timer);
          process.kill(-child.pid!, "SIGKILL");
          resolve(JSON.parse(fs.readFileSync(state, "utf8")).epoch);
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(timer);
        reject(new Error("the run finished before it could be killed"));
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(killedAt < 3, `killed after epoch ${killedAt} of 3`);
    const [runId] = fs.readdirSync(expDir);
    assert.ok(!fs.existsSync(path.join(expDir, runId, "metrics.json")));
    const r = spawnSync(tsx, [cliPath, "train", "--model", "cnn-gender", "--resume", "--experiment", exp], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`epochs ${killedAt + 1}\\.\\.3`), "continued after the killed epoch");
    // Issue 18, point 3: it says which run it continues and from which epoch.
    assert.match(r.stderr, new RegExp(`continuing run results/${exp}/${runId} from epoch ${killedAt + 1} of 3 \\(epochs 1\\.\\.${killedAt} restored from its checkpoint\\)`));
    assert.deepEqual(fs.readdirSync(expDir), [runId], "the same run folder, no new one");
    const history = JSON.parse(fs.readFileSync(path.join(expDir, runId, "history.json"), "utf8"));
    assert.deepEqual(history.map((h: { epoch: number }) => h.epoch), [1, 2, 3]);
    assert.ok(fs.existsSync(path.join(expDir, runId, "metrics.json")));
    assert.ok(!fs.existsSync(path.join(expDir, runId, "checkpoint")));
  } finally {
    fs.rmSync(expDir, { recursive: true, force: true });
  }
});
