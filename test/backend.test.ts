/**
 * Backend choice and wasm threads: the default wasm path is single-threaded with the training
 * kernels installed; UTKFACE_WASM_THREADS is validated; the opt-in threaded build (run in a
 * child process, with a time limit so a broken build can never hang the suite) computes the
 * same gradient as the single-threaded one and lets its process exit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { initBackend, setBackendQuiet, tf } from "../lib/engine/backend";
import { trainingKernelsInstalled } from "../lib/engine/wasm/training-kernels";
import { requestedWasmThreads, WASM_THREADS_ENV } from "../lib/engine/wasm/threads";

/** A conv-gradient checksum: exercises Conv2D, Conv2DBackpropFilter and Sum on the active backend. */
const CHECKSUM_SOURCE = `
const { initBackend, setBackendQuiet, tf } = require(${JSON.stringify(path.join(__dirname, "..", "lib", "engine", "backend"))});
(async () => {
  setBackendQuiet(true);
  const info = await initBackend();
  const x = tf.randomNormal([4, 9, 9, 3], 0, 1, "float32", 1);
  const w = tf.randomNormal([3, 3, 3, 5], 0, 1, "float32", 2);
  const g = tf.grad((f) => tf.conv2d(x, f, 2, "same").square().sum())(w);
  console.log(JSON.stringify({ threads: info.threads, reason: info.reason, grad: Array.from(g.dataSync()) }));
})();`;

function checksumIn(env: NodeJS.ProcessEnv): { threads: number; reason: string; grad: number[] } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", CHECKSUM_SOURCE], {
    cwd: path.join(__dirname, ".."), // where "--import tsx" resolves to this project's tsx
    // The wasm kernels' own threads are under test here, not the oneDNN engine (test/onednn.test.ts).
    env: { ...process.env, TFJS_BACKEND: "wasm", UTKFACE_ENGINE: "wasm", ...env },
    encoding: "utf8",
    timeout: 90_000, // the child must finish and exit on its own; a hang fails here
  });
  assert.equal(r.signal, null, `child did not exit by itself (signal ${r.signal}); stderr: ${r.stderr}`);
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("TFJS_BACKEND=wasm: wasm, one thread, training kernels installed", async () => {
  process.env.TFJS_BACKEND = "wasm";
  process.env.UTKFACE_ENGINE = "wasm"; // the oneDNN engine, when built, has its own test file
  delete process.env[WASM_THREADS_ENV];
  setBackendQuiet(true);
  const info = await initBackend();
  assert.equal(info.name, "wasm");
  assert.equal(tf.getBackend(), "wasm");
  assert.equal(info.threads, 1);
  assert.ok(trainingKernelsInstalled(), "wasm training kernels should be registered by initBackend");
  assert.ok(tf.getKernel("Conv2DBackpropFilter", "wasm"), "wasm can now compute conv filter gradients");
});

test("UTKFACE_WASM_THREADS: unset is 1, valid counts pass, anything else is a clear error", () => {
  assert.equal(requestedWasmThreads({}), 1);
  assert.equal(requestedWasmThreads({ [WASM_THREADS_ENV]: " 2 " }), 2);
  for (const bad of ["two", "0", "-1", "1.5", "9"]) {
    assert.throws(() => requestedWasmThreads({ [WASM_THREADS_ENV]: bad }), new RegExp(`${WASM_THREADS_ENV}="${bad.trim()}" is not a thread count`));
  }
});

test("threaded wasm (opt-in) gives the single-threaded gradient and its process exits", () => {
  const one = checksumIn({ [WASM_THREADS_ENV]: "1" });
  const two = checksumIn({ [WASM_THREADS_ENV]: "2" });
  assert.equal(one.threads, 1);
  // Either the threaded build ran, or it failed and said so while falling back (never an error).
  assert.ok(two.threads === 2 || /failed: .*single-threaded/.test(two.reason), `threads ${two.threads}, reason: ${two.reason}`);
  assert.equal(two.grad.length, one.grad.length);
  two.grad.forEach((v, i) => assert.ok(Math.abs(v - one.grad[i]) <= 1e-4 * Math.max(1, Math.abs(one.grad[i])), `grad[${i}] ${v} vs ${one.grad[i]}`));
});
