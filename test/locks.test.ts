/**
 * Issue 18, point 5: a fold or a train run is claimed by one process at a time (a lock file
 * created exclusively, holding the pid). A live holder is refused with the fold (or run) and its
 * pid named; a stale lock (its process is gone, as after kill -9) is taken over. Real faces
 * from data/sample, real runs in a temporary folder.
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { FaceDataset, loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { LOCK_FILE, claimDir } from "../lib/core/lock";
import { runKFold } from "../lib/training/kfold";
import { runExperiment } from "../lib/training/experiment";
import type { TrainingCallback } from "../lib/training/callbacks";

setBackendQuiet(true);
const root = fs.mkdtempSync(path.join(os.tmpdir(), "locks-"));
const sleeper = spawn("sleep", ["120"], { stdio: "ignore" });
after(() => {
  sleeper.kill();
  fs.rmSync(root, { recursive: true, force: true });
});

let data: FaceDataset;
async function faces(): Promise<FaceDataset> {
  await initBackend();
  data ??= await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(root, "cache") });
  return data;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

function writeLock(dir: string, pid: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), since: "2026-01-01T00:00:00.000Z" }));
}

test("the lock helper: exclusive while held, free again after release; a dead owner's lock is taken over", () => {
  const dir = path.join(root, "plain");
  const held = claimDir(dir, "Thing A");
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  assert.throws(() => claimDir(dir, "Thing A"), /Thing A is already claimed by this process/);
  held.release();
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)));
  writeLock(dir, sleeper.pid!);
  assert.throws(() => claimDir(dir, "Thing A"), new RegExp(`Thing A is being trained by process ${sleeper.pid} on ${os.hostname()}`));
  const dead = deadPid();
  writeLock(dir, dead);
  const taken = claimDir(dir, "Thing A");
  assert.equal(taken.tookOver?.pid, dead);
  taken.release();
  // Empty or damaged (its owner died between creating and writing it), and not new: taken over.
  fs.writeFileSync(path.join(dir, LOCK_FILE), "");
  const old = new Date(Date.now() - 10_000);
  fs.utimesSync(path.join(dir, LOCK_FILE), old, old);
  const again = claimDir(dir, "Thing A");
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  again.release();
});

test("kfold: a fold locked by a live process is refused naming the fold and the pid; a stale lock is taken over", async () => {
  const run = path.join(root, "kf");
  const base = { model: "cnn-gender", data: await faces(), folds: 2, firstEpochs: 1, lastEpochs: 1, maxImages: 40, batchSize: 10, progress: false as const, runDir: run };
  writeLock(path.join(run, "fold-02"), sleeper.pid!);
  await assert.rejects(runKFold({ ...base, fold: 1 }), (e: Error) => {
    assert.match(e.message, new RegExp(`Fold 1 \\(fold-02\\) of .*kf is being trained by process ${sleeper.pid}`));
    assert.match(e.message, new RegExp(`kill ${sleeper.pid}`));
    return true;
  });
  assert.ok(!fs.existsSync(path.join(run, "fold-02", "metrics.json")), "nothing trained");
  writeLock(path.join(run, "fold-02"), deadPid());
  const r = await runKFold({ ...base, fold: 1 });
  assert.deepEqual(r.summary.completed, [1]);
  assert.ok(!fs.existsSync(path.join(run, "fold-02", LOCK_FILE)), "freed when the fold is done");
});

test("train --run: a run another live process is training is refused; once that process is gone it continues", async () => {
  const stop: TrainingCallback = { onEpochEnd: (r) => { if (r.epoch === 1) throw new Error("stopped"); } };
  const base = { model: "cnn-gender", data: await faces(), epochs: 2, maxImages: 40, batchSize: 10, resultsRoot: root, progress: false as const, experiment: "tr" };
  await assert.rejects(runExperiment({ ...base, callbacks: [stop] }), /stopped/);
  const [id] = fs.readdirSync(path.join(root, "tr"));
  const dir = path.join(root, "tr", id);
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), "a stopped call frees its claim");
  writeLock(dir, sleeper.pid!);
  await assert.rejects(runExperiment({ ...base, resume: true }), new RegExp(`The train run .*${id} is being trained by process ${sleeper.pid}`));
  writeLock(dir, deadPid());
  const done = await runExperiment({ ...base, resume: true });
  assert.equal(done.history.length, 2);
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)));
});
