/**
 * Issue 18, point 6: a chunk ("part") of an interrupted feature extraction is trusted only when
 * its checksum matches. An extraction stopped after its first chunk, that chunk's floats zeroed
 * in place (same size, as a crash or a bad copy leaves it), then rerun: the damaged part is named
 * and extracted again, and the sealed cache holds the real features, not zeros. Real sample faces.
 */
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { extractFeatureSet, featureCacheFile } from "../lib/best/feature-cache";

setBackendQuiet(true);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "feature-parts-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("a feature-cache part zeroed in place is detected by its checksum and extracted again; the sealed cache holds real features", async () => {
  await initBackend();
  const files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().slice(0, 16).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const cacheDir = path.join(tmp, "cache");
  const truth = await extractFeatureSet(files, "facenet", { cache: false });

  // Interrupted after the first of two chunks of 8 faces (the second never written).
  await assert.rejects(
    extractFeatureSet(files, "facenet", {
      cacheDir,
      chunkFaces: 8,
      onProgress: (p) => {
        if (p.done === 16) throw new Error("killed");
      },
    }),
    /killed/,
  );
  const partsDir = `${featureCacheFile(files, "facenet", cacheDir)}.parts`;
  const parts = fs.readdirSync(partsDir).filter((f) => !f.endsWith(".tmp"));
  assert.equal(parts.length, 1, `one finished part: ${parts}`);
  const part = path.join(partsDir, parts[0]);
  // Zero its floats in place, keeping the size and anything before them.
  const buf = fs.readFileSync(part);
  const floats = 2 * 8 * 128 * 4;
  buf.fill(0, buf.length - floats);
  fs.writeFileSync(part, buf);

  const warnings: string[] = [];
  const rerun = await extractFeatureSet(files, "facenet", { cacheDir, chunkFaces: 8, onWarning: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1, "the damaged part is reported");
  assert.match(warnings[0], new RegExp(parts[0].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  assert.match(warnings[0], /checksum/);
  assert.match(warnings[0], /faces 1-8 of 16/);
  const zeroRows = (a: Float32Array) => Array.from({ length: 16 }, (_, i) => a.subarray(i * 128, (i + 1) * 128).every((v) => v === 0)).filter(Boolean).length;
  assert.equal(zeroRows(rerun.plain), 0, "no face has all-zero features");
  for (let j = 0; j < truth.plain.length; j++) assert.ok(Math.abs(rerun.plain[j] - truth.plain[j]) < 1e-5, `plain value ${j}`);
  for (let j = 0; j < truth.flipped!.length; j++) assert.ok(Math.abs(rerun.flipped![j] - truth.flipped![j]) < 1e-5, `mirrored value ${j}`);

  // The sealed file is what later calls read: the same real features.
  const hit = await extractFeatureSet(files, "facenet", { cacheDir, chunkFaces: 8 });
  assert.equal(hit.cacheHit, true);
  assert.deepEqual(hit.plain, rerun.plain);
  assert.ok(!fs.existsSync(partsDir), "parts removed once sealed");
});

test("a part of the older unchecked format (floats only) is not trusted either", async () => {
  await initBackend();
  const files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().slice(20, 28).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const cacheDir = path.join(tmp, "cache-old");
  const file = featureCacheFile(files, "facenet", cacheDir);
  const key = path.basename(file).split("-").pop()!.replace(".bin", "");
  // What the old code wrote for one chunk of all 8 faces: the right number of floats, all zero here.
  fs.mkdirSync(`${file}.parts`, { recursive: true });
  for (const name of [`${key}-0-8.f32`, `${key}-0-8.part`]) fs.writeFileSync(path.join(`${file}.parts`, name), Buffer.alloc(2 * 8 * 128 * 4));
  const warnings: string[] = [];
  const set = await extractFeatureSet(files, "facenet", { cacheDir, onWarning: (m) => warnings.push(m) });
  assert.ok(set.plain.some((v) => v !== 0), "features extracted, not read as zeros");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /-0-8\.part/);
});

test("a sealed feature cache written and read in slices (as caches over 2 GiB must be) is the same file, read back exactly; a damaged byte in it rebuilds it", async () => {
  await initBackend();
  const files = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort().slice(20, 26).map((f) => path.join(SAMPLE_DATA_DIR, f));
  const whole = path.join(tmp, "whole");
  const sliced = path.join(tmp, "sliced");
  // 1,000 bytes: slices that end inside a float, and many of them (6 faces x 2 views x 512 bytes).
  const a = await extractFeatureSet(files, "facenet", { cacheDir: whole });
  const b = await extractFeatureSet(files, "facenet", { cacheDir: sliced, sliceBytes: 1000 });
  assert.equal(b.cacheHit, false);
  const fa = featureCacheFile(files, "facenet", whole);
  const fb = featureCacheFile(files, "facenet", sliced);
  assert.deepEqual(fs.readFileSync(fb), fs.readFileSync(fa), "the sliced writer writes the same bytes, checksum included");
  const again = await extractFeatureSet(files, "facenet", { cacheDir: sliced, sliceBytes: 1000 });
  assert.equal(again.cacheHit, true);
  assert.deepEqual(again.plain, a.plain);
  assert.deepEqual(again.flipped, a.flipped);
  // One byte changed inside the floats: the sliced checksum sees it, and the file is rebuilt.
  const buf = fs.readFileSync(fb);
  buf[buf.length - 1500] ^= 0x40;
  fs.writeFileSync(fb, buf);
  const rebuilt = await extractFeatureSet(files, "facenet", { cacheDir: sliced, sliceBytes: 1000 });
  assert.equal(rebuilt.cacheHit, false);
  assert.deepEqual(rebuilt.plain, a.plain);
  assert.deepEqual(fs.readFileSync(fb), fs.readFileSync(fa));
});
