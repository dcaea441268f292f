import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { foldSchedule } from "../lib/training/kfold";
import { REPO_ROOT } from "../lib/core/paths";
import type { EpochRecord, KFoldSummary } from "../lib/records/runs";

test("the fold schedule keeps the report's ends and falls by at least one epoch a fold", () => {
  assert.deepEqual(foldSchedule(10, 15, 2), [15, 14, 12, 11, 9, 8, 6, 5, 3, 2]);
  assert.deepEqual(foldSchedule(3, 2, 1), [2, 1, 1]);
  const long = foldSchedule(20, 15, 2);
  assert.deepEqual(long.slice(0, 14), [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
  assert.ok(long.slice(14).every((e) => e === 2));
  assert.throws(() => foldSchedule(3, 1, 2), /firstEpochs >= lastEpochs/);
});

const CLI = path.join(REPO_ROOT, "lib", "cli", "main.ts");
const TSX = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
// Tiny on purpose: 2 folds of 3 epochs on 80 faces at 32x32, so the whole test runs in seconds.
const ARGS = ["kfold", "--model", "cnn-gender", "--folds", "2", "--first-epochs", "3", "--last-epochs", "3", "--max-images", "80", "--size", "32", "--batch", "10"];

function cli(args: string[]) {
  const r = spawnSync(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, EXPERIMENT_PROFILE: "quick" } });
  assert.equal(r.status, 0, `${args.join(" ")}\n${r.stderr}`);
  return r.stdout;
}

function readRun(dir: string): { history: EpochRecord[]; metrics: KFoldSummary } {
  return { history: JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8")), metrics: JSON.parse(fs.readFileSync(path.join(dir, "metrics.json"), "utf8")) };
}

test("a K-fold run killed after an epoch resumes to the same results; folds run in parallel and merge", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kfold-"));
  try {
    // Reference: the two folds in two processes at once on one run folder, then merged.
    const ref = path.join(tmp, "ref");
    const both = [0, 1].map(
      (k) =>
        new Promise<number>((resolve) => {
          const child = spawn(TSX, [CLI, ...ARGS, "--run", ref, "--fold", String(k)], { cwd: REPO_ROOT, stdio: "ignore" });
          child.on("exit", (code) => resolve(code ?? -1));
        }),
    );
    assert.deepEqual(await Promise.all(both), [0, 0]);
    assert.ok(!fs.existsSync(path.join(ref, "metrics.json")), "single-fold processes do not merge");
    cli(["kfold", "--merge", ref]);
    const expected = readRun(ref);
    assert.deepEqual(expected.metrics.completed, [0, 1]);

    // Interrupted: SIGKILL as soon as fold 1's first epoch checkpoint appears, then --resume.
    const cut = path.join(tmp, "cut");
    const state = path.join(cut, "fold-01", "checkpoint", "state.json");
    const child = spawn(TSX, [CLI, ...ARGS, "--run", cut], { cwd: REPO_ROOT, stdio: "ignore", detached: true });
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        if (fs.existsSync(state)) {
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
    assert.ok(!fs.existsSync(path.join(cut, "fold-01", "metrics.json")));
    const again = spawnSync(TSX, [CLI, ...ARGS, "--run", cut, "--resume"], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, EXPERIMENT_PROFILE: "quick" } });
    assert.equal(again.status, 0, again.stderr);
    // It says which run and fold it continues, and from which epoch (issue 18, point 3).
    assert.match(again.stderr, /continuing K-fold run .*cut: 0 of 2 fold\(s\) done/);
    assert.match(again.stderr, new RegExp(`continuing fold 1 \\(fold-01\\) of .*cut from epoch ${killedAt + 1} of 3 \\(epochs 1\\.\\.${killedAt} restored from its checkpoint\\)`));
    const resumed = readRun(cut);
    assert.equal(resumed.history.length, expected.history.length);
    resumed.history.forEach((r, i) => {
      assert.equal(r.fold, expected.history[i].fold);
      assert.equal(r.epoch, expected.history[i].epoch);
      assert.ok(Math.abs(r.loss - expected.history[i].loss) < 1e-5, `epoch ${r.epoch} fold ${r.fold}: ${r.loss} vs ${expected.history[i].loss}`);
    });
    for (const key of ["loss", "genderAccuracy"]) {
      assert.ok(Math.abs(resumed.metrics.summary[key].mean - expected.metrics.summary[key].mean) < 1e-5, key);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("one process per fold, as a Kubernetes Indexed Job or a Slurm array runs them: 3 processes on one run folder, then merge", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kfold3-"));
  try {
    const run = path.join(tmp, "shared-run");
    // Tiny: 3 folds of 1 epoch on 60 faces at 32x32. Each process plays one pod / array task,
    // given only its index, the same options and the shared folder (docs/scale.md).
    const args = ["kfold", "--model", "cnn-gender", "--folds", "3", "--first-epochs", "1", "--last-epochs", "1", "--max-images", "60", "--size", "32", "--batch", "20", "--run", run];
    const codes = await Promise.all(
      [0, 1, 2].map(
        (index) =>
          new Promise<number>((resolve) => {
            // The pod's command line, as in docs/scale.md: the shell expands the index Kubernetes sets.
            const line = [TSX, CLI, ...args].map((a) => `'${a}'`).join(" ") + ' --fold "$JOB_COMPLETION_INDEX"';
            const child = spawn("sh", ["-c", line], { cwd: REPO_ROOT, stdio: "ignore", env: { ...process.env, EXPERIMENT_PROFILE: "quick", JOB_COMPLETION_INDEX: String(index) } });
            child.on("exit", (code) => resolve(code ?? -1));
          }),
      ),
    );
    assert.deepEqual(codes, [0, 0, 0]);
    assert.deepEqual(fs.readdirSync(run).filter((f) => f.startsWith("fold-")).sort(), ["fold-01", "fold-02", "fold-03"]);
    cli(["kfold", "--merge", run]);
    const merged = readRun(run);
    assert.deepEqual(merged.metrics.completed, [0, 1, 2]);
    const predictions = JSON.parse(fs.readFileSync(path.join(run, "predictions.json"), "utf8")) as { file: string; fold: number }[];
    assert.equal(predictions.length, 60);
    assert.equal(new Set(predictions.map((p) => p.file)).size, 60, "each face is held out by exactly one fold");
    assert.deepEqual([...new Set(predictions.map((p) => p.fold))].sort(), [0, 1, 2]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("two processes on the same fold: the second is refused naming the fold and the first's pid; the fold is trained once", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kfold-lock-"));
  try {
    const run = path.join(tmp, "run");
    // Long enough (6 epochs) that the first still trains fold 0 when the second gets there.
    const args = [...ARGS.filter((_, i) => i < 5), "--first-epochs", "6", "--last-epochs", "6", "--max-images", "80", "--size", "32", "--batch", "10", "--run", run, "--fold", "0"];
    const start = (delay: number) =>
      new Promise<{ code: number; stderr: string; pid: number }>((resolve) =>
        setTimeout(() => {
          const child = spawn(TSX, [CLI, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, EXPERIMENT_PROFILE: "quick" } });
          let stderr = "";
          child.stderr.on("data", (d) => (stderr += d));
          child.on("exit", (code) => resolve({ code: code ?? -1, stderr, pid: child.pid! }));
        }, delay),
      );
    const [a, b] = await Promise.all([start(0), start(300)]);
    const codes = [a.code, b.code].sort();
    assert.deepEqual(codes, [0, 1], `exit codes ${a.code}, ${b.code}\n${a.stderr}\n${b.stderr}`);
    const refused = a.code === 1 ? a : b;
    assert.match(refused.stderr, /Fold 0 \(fold-01\) of .* is being trained by process \d+/);
    assert.match(refused.stderr, /Wait for it to finish or stop it \(kill \d+\)/);
    assert.ok(fs.existsSync(path.join(run, "fold-01", "metrics.json")));
    assert.ok(!fs.existsSync(path.join(run, "fold-01", "claim.lock")), "the lock is freed when the fold is done");
    const history = JSON.parse(fs.readFileSync(path.join(run, "fold-01", "history.json"), "utf8")) as EpochRecord[];
    assert.deepEqual(history.map((h) => h.epoch), [1, 2, 3, 4, 5, 6], "one run of the fold's epochs");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
