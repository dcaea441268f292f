/**
 * The benchmark's throughput measurement (lib/bench/throughput.ts): each model is timed at its
 * own batch unless one is given, a fixed number of real training steps moves the weights and
 * gives rates, and tfjs's wasm abort comes back as a message that names the model, the batch
 * and what to try.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { BENCH_MODELS, measureThroughput, wasmAbortHint } from "../lib/bench/throughput";

setBackendQuiet(true);
before(async () => {
  await initBackend();
});

test("the report CNN trains a fixed number of steps and infers at a positive rate; MobileNet's own batch is 8, the others' 25", async () => {
  const r = await measureThroughput({ model: "cnn", batch: 4, seconds: 0.5, steps: 3 });
  assert.equal(r.train_steps, 3);
  assert.ok(r.train_img_s > 0 && Number.isFinite(r.train_img_s), `train rate ${r.train_img_s}`);
  assert.ok(r.infer_img_s > 0 && Number.isFinite(r.infer_img_s), `inference rate ${r.infer_img_s}`);
  assert.equal(BENCH_MODELS.mobilenet.batch, 8);
  for (const m of ["cnn", "vgg19", "finetune", "finetune-pixels"] as const) assert.equal(BENCH_MODELS[m].batch, 25, m);
});

test("a wasm abort is explained with the model, the batch and the model's own batch; other errors pass unchanged", () => {
  const hinted = wasmAbortHint(new Error("Aborted(). Build with -sASSERTIONS for more info."), "mobilenet", 25);
  assert.match(hinted.message, /mobilenet at batch 25/);
  assert.match(hinted.message, /smaller --batch \(mobilenet's own is 8\)/);
  assert.match(hinted.message, /Aborted\(\)/);
  const other = new Error("Conv2D: shapes do not match");
  assert.equal(wasmAbortHint(other, "cnn", 25), other);
});
