import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  decodeImageFile,
  imagesTensor,
  isFaceRecord,
  loadFaces,
  normalizePixels,
  parseFileName,
} from "../lib/data/dataset";
import { DATA_DIR_ENV, REPO_ROOT, SAMPLE_DATA_DIR } from "../lib/core/paths";

setBackendQuiet(true);

/** The full crop_part1 set when this checkout has it ($UTKFACE_DIR, else ../shared beside the repo). */
const SHARED_DIR = [process.env[DATA_DIR_ENV], path.join(REPO_ROOT, "..", "shared", "data", "utkface", "crop_part1")].find(
  (d): d is string => Boolean(d) && fs.existsSync(d!),
);
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-data-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCount = 0;
const tmpDir = (label: string) => {
  const d = path.join(tmpRoot, `${label}-${tmpCount++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

const sampleFiles = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort();
/** A folder with `n` sample faces copied in, plus whatever `extra` writes. */
function faceDir(n: number, extra?: (dir: string) => void): string {
  const dir = tmpDir("faces");
  for (const f of sampleFiles.slice(0, n)) fs.copyFileSync(path.join(SAMPLE_DATA_DIR, f), path.join(dir, f));
  extra?.(dir);
  return dir;
}

test("file names: a valid name parses; every kind of malformed name is rejected with its reason", () => {
  assert.deepEqual(parseFileName("26_1_2_20170116174525125.jpg.chip.jpg"), {
    file: "26_1_2_20170116174525125.jpg.chip.jpg",
    age: 26,
    gender: 1,
    race: 2,
    datetime: "20170116174525125",
  });
  assert.equal((parseFileName("some/dir/0_0_0_1.jpg") as { age: number }).age, 0);
  const bad: [string, RegExp][] = [
    ["61_3_20170109150557335.jpg.chip.jpg", /4 fields.*found 3/],
    ["26_2_1_20170116174525125.jpg.chip.jpg", /gender "2" is not 0 \(male\) or 1 \(female\)/],
    ["117_0_1_20170116174525125.jpg.chip.jpg", /age 117 is outside 0\.\.116/],
    ["x_0_1_20170116174525125.jpg.chip.jpg", /age "x" is not a whole number/],
    ["-3_0_1_20170116174525125.jpg.chip.jpg", /age "-3" is not a whole number/],
    ["26_0_9_20170116174525125.jpg.chip.jpg", /race "9"/],
    ["26_0_1_2017x.jpg.chip.jpg", /date-time "2017x"/],
    ["26_0_1_20170116174525125_extra.jpg", /found 5/],
    ["photo.jpg", /found 1/],
  ];
  for (const [name, reason] of bad) {
    const r = parseFileName(name);
    assert.ok(!isFaceRecord(r), `${name} should not parse`);
    assert.match(r.error, reason, name);
  }
});

test("loading skips malformed names and undecodable files with reasons, ignores non-images, and goes on", async () => {
  const good = sampleFiles[0];
  const dir = faceDir(5, (d) => {
    fs.copyFileSync(path.join(SAMPLE_DATA_DIR, good), path.join(d, "61_3_20170109150557335.jpg.chip.jpg"));
    fs.copyFileSync(path.join(SAMPLE_DATA_DIR, good), path.join(d, "40_5_0_20170109150557335.jpg.chip.jpg"));
    fs.writeFileSync(path.join(d, "30_0_0_20170101000000001.jpg.chip.jpg"), "");
    const jpeg = fs.readFileSync(path.join(SAMPLE_DATA_DIR, good));
    fs.writeFileSync(path.join(d, "31_0_0_20170101000000002.jpg.chip.jpg"), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    fs.writeFileSync(path.join(d, "32_1_0_20170101000000003.jpg.chip.jpg"), "this is a text file, not a JPEG\n");
    fs.writeFileSync(path.join(d, "README.md"), "# notes\n");
    fs.mkdirSync(path.join(d, "subfolder"));
  });
  const ds = await loadFaces({ dir, cache: false });
  const r = ds.report;
  assert.equal(r.usable, 5);
  assert.equal(ds.records.length, 5);
  assert.deepEqual(ds.records.map((x) => x.file), sampleFiles.slice(0, 5));
  assert.equal(r.files, 11);
  assert.deepEqual(r.ignored, ["README.md"]);
  const reasons = Object.fromEntries(r.skipped.map((s) => [s.file, s.reason]));
  assert.equal(r.skipped.length, 5, JSON.stringify(r.skipped));
  assert.match(reasons["61_3_20170109150557335.jpg.chip.jpg"], /file name does not parse: .*found 3/);
  assert.match(reasons["40_5_0_20170109150557335.jpg.chip.jpg"], /gender "5"/);
  assert.match(reasons["30_0_0_20170101000000001.jpg.chip.jpg"], /empty file \(0 bytes\)/);
  assert.match(reasons["31_0_0_20170101000000002.jpg.chip.jpg"], /cannot decode image: .+/);
  assert.match(reasons["32_1_0_20170101000000003.jpg.chip.jpg"], /cannot decode image: .*(unsupported image format|format)/i);
  assert.equal(r.cacheUsed, false);
  assert.equal(r.cacheFile, null);
  assert.equal(ds.pixels.length, 5 * 70 * 70);
  const total = r.countsByGroupGender.reduce((a, g) => a + g.male + g.female, 0);
  assert.equal(total, 5);
});

test("a directory that does not exist, or holds no usable image, is a clear error saying how to get UTKFace", async () => {
  const missing = path.join(tmpRoot, "no-such-dir");
  await assert.rejects(loadFaces({ dir: missing, cache: false }), (e: Error) => {
    assert.match(e.message, /UTKFace directory .*no-such-dir does not exist/);
    assert.match(e.message, /data\/UTKFace/);
    assert.match(e.message, new RegExp(DATA_DIR_ENV));
    assert.match(e.message, /Kaggle/);
    return true;
  });
  const empty = tmpDir("empty");
  fs.writeFileSync(path.join(empty, "notes.txt"), "nothing here");
  await assert.rejects(loadFaces({ dir: empty, cache: false }), /has no \.jpg\/\.jpeg\/\.png files.*UTKFACE_DIR/);
  const broken = tmpDir("broken");
  fs.writeFileSync(path.join(broken, "30_0_0_1.jpg"), "not an image");
  await assert.rejects(loadFaces({ dir: broken, cache: false }), /has no usable image \(1 skipped, e\.g\. 30_0_0_1\.jpg: cannot decode/);
});

test("decoded pixels are the photo: 200x200 RGB equals sharp's own decode, gray is its ITU-R 601 luma", async () => {
  const file = path.join(SAMPLE_DATA_DIR, sampleFiles[10]);
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 200);
  const rgb = await decodeImageFile(file, 200, "rgb");
  assert.deepEqual(Buffer.from(rgb), data);
  const gray = await decodeImageFile(file, 200, "gray");
  let worst = 0;
  for (let p = 0; p < 200 * 200; p++) {
    const y = 0.299 * data[p * 3] + 0.587 * data[p * 3 + 1] + 0.114 * data[p * 3 + 2];
    worst = Math.max(worst, Math.abs(gray[p] - y));
  }
  assert.ok(worst <= 0.5001, `gray differs from luma by up to ${worst}`);
});

test("resizing to 70 (report), 128 and 32 averages areas: close to libvips' own resize of the same face", async () => {
  const file = path.join(SAMPLE_DATA_DIR, sampleFiles[20]);
  for (const [size, color] of [[70, "gray"], [70, "rgb"], [128, "rgb"], [32, "gray"]] as const) {
    const ours = await decodeImageFile(file, size, color);
    const ch = color === "gray" ? 1 : 3;
    assert.equal(ours.length, size * size * ch);
    let ref = sharp(file).resize(size, size, { fit: "fill", kernel: "linear" });
    if (ch === 1) ref = ref.greyscale();
    const theirs = await ref.raw().toBuffer();
    assert.equal(theirs.length, ours.length);
    let sum = 0;
    for (let i = 0; i < ours.length; i++) sum += Math.abs(ours[i] - theirs[i]);
    const mad = sum / ours.length;
    // Different filters and gray formulas differ by a few levels; a wrong layout differs by tens.
    assert.ok(mad < 4, `${size} ${color}: mean |ours - libvips| = ${mad.toFixed(2)}`);
  }
  await assert.rejects(decodeImageFile(path.join(tmpRoot, "nope.jpg"), 70, "gray"), /nope\.jpg: the file does not exist/);
  await assert.rejects(decodeImageFile(file, 0, "gray"), /Image size 0/);
});

test("cache: a second load reads it (same faces, same pixels), an added file invalidates it", async () => {
  const dir = faceDir(12);
  const cacheDir = tmpDir("cache");
  const first = await loadFaces({ dir, cacheDir, size: 48, color: "rgb" });
  assert.equal(first.report.cacheUsed, false);
  assert.equal(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".bin")).length, 1);
  const second = await loadFaces({ dir, cacheDir, size: 48, color: "rgb" });
  assert.equal(second.report.cacheUsed, true);
  assert.deepEqual(second.records, first.records);
  assert.deepEqual(Buffer.from(second.pixels), Buffer.from(first.pixels));
  assert.equal(second.channels, 3);
  // Another size or colour is another cache entry, not a wrong hit.
  assert.equal((await loadFaces({ dir, cacheDir, size: 48, color: "gray" })).report.cacheUsed, false);
  fs.copyFileSync(path.join(SAMPLE_DATA_DIR, sampleFiles[100]), path.join(dir, sampleFiles[100]));
  const third = await loadFaces({ dir, cacheDir, size: 48, color: "rgb" });
  assert.equal(third.report.cacheUsed, false);
  assert.equal(third.report.usable, 13);
  assert.equal((await loadFaces({ dir, cacheDir, size: 48, color: "rgb" })).report.cacheUsed, true);
  // No temporary files left behind by the atomic writes.
  assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".tmp")), []);
});

test("cache: a truncated, garbled or bit-flipped cache file is ignored and rebuilt", async () => {
  const dir = faceDir(8);
  const cacheDir = tmpDir("cache");
  const fresh = await loadFaces({ dir, cacheDir });
  const [name] = fs.readdirSync(cacheDir);
  const file = path.join(cacheDir, name);
  const good = fs.readFileSync(file);
  const damages: [string, Buffer][] = [
    ["truncated", good.subarray(0, good.length - 100)],
    ["garbage", Buffer.from("definitely not a cache file")],
    ["empty", Buffer.alloc(0)],
    ["flipped pixel", Buffer.from(good).fill(0x55, good.length - 10, good.length - 9)],
  ];
  for (const [what, bytes] of damages) {
    fs.writeFileSync(file, bytes);
    const ds = await loadFaces({ dir, cacheDir });
    assert.equal(ds.report.cacheUsed, false, what);
    assert.deepEqual(Buffer.from(ds.pixels), Buffer.from(fresh.pixels), what);
    assert.equal((await loadFaces({ dir, cacheDir })).report.cacheUsed, true, `${what}: rebuilt`);
  }
});

test("imagesTensor: shapes, [0,1] scaling and ImageNet normalisation on real faces", async () => {
  await initBackend();
  const dir = faceDir(6);
  const cacheDir = tmpDir("cache");
  const gray = await loadFaces({ dir, cacheDir, size: 70, color: "gray" });
  const rgb = await loadFaces({ dir, cacheDir, size: 70, color: "rgb" });
  const before = tf.memory().numTensors;

  const g = imagesTensor(gray, [0, 5, 2]);
  assert.deepEqual(g.shape, [3, 70, 70, 1]);
  assert.equal(g.dtype, "float32");
  const gv = g.dataSync();
  assert.ok(Math.min(...gv) >= 0 && Math.max(...gv) <= 1);
  assert.ok(Math.max(...gv) > 0.5, "a face has bright pixels");
  // Row 1 is sample 5, scaled by 1/255.
  const frame = 70 * 70;
  for (const k of [0, 1234, frame - 1]) assert.ok(Math.abs(gv[frame + k] - gray.pixels[5 * frame + k] / 255) < 1e-6);

  const c = imagesTensor(rgb, [1, 3], "imagenet");
  assert.deepEqual(c.shape, [2, 70, 70, 3]);
  const cv = c.dataSync();
  for (let ch = 0; ch < 3; ch++) {
    const px = rgb.pixels[1 * frame * 3 + 777 * 3 + ch];
    assert.ok(Math.abs(cv[777 * 3 + ch] - (px / 255 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch]) < 1e-5);
  }
  // Normalised faces are centred near 0, not in [0,1].
  const mean = cv.reduce((a, b) => a + b, 0) / cv.length;
  assert.ok(mean > -1.5 && mean < 1.5 && Math.min(...cv) < 0, `imagenet mean ${mean}`);

  assert.throws(() => imagesTensor(gray, [0], "imagenet"), /ImageNet normalisation needs RGB/);
  assert.throws(() => imagesTensor(gray, [6]), /Sample index 6 \(position 0\) is outside 0\.\.5/);
  assert.deepEqual(Array.from(normalizePixels(Uint8Array.from([0, 255, 51]), 1)), [0, 1, Math.fround(0.2)]);
  g.dispose();
  c.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test("the shipped sample loads fully: about 2,000 faces over all twenty age groups and both genders", async () => {
  const ds = await loadFaces({ dir: SAMPLE_DATA_DIR, cacheDir: tmpDir("cache") });
  const images = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg"));
  assert.equal(ds.report.usable, images.length);
  assert.ok(images.length >= 1800 && images.length <= 2200, `${images.length} faces in the sample`);
  assert.deepEqual(ds.report.skipped, []);
  assert.deepEqual(ds.report.ignored, ["README.md"]);
  assert.equal(ds.report.dir, "data/sample");
  assert.equal(ds.report.countsByGroupGender.length, 20);
  for (const g of ds.report.countsByGroupGender) assert.ok(g.male + g.female > 0, `group ${g.group} is empty`);
  assert.ok(ds.records.some((r) => r.gender === 0) && ds.records.some((r) => r.gender === 1));
});

test("the full shared set: every file is usable or skipped with a reason; the cached load matches", { skip: SHARED_DIR ? false : "no full UTKFace set (set UTKFACE_DIR or put it in ../shared/data/utkface/crop_part1)" }, async () => {
  const dir = SHARED_DIR!;
  const cacheDir = tmpDir("cache");
  const first = await loadFaces({ dir, cacheDir });
  const names = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f));
  assert.equal(first.report.usable + first.report.skipped.length, names.length);
  // Checked with a plain pattern, independent of parseFileName.
  const wellNamed = (f: string) => /^\d{1,3}_[01]_[0-4]_\d+\./.test(f) && Number(f.split("_")[0]) <= 116;
  const skippedNames = new Set(first.report.skipped.map((s) => s.file));
  for (const f of names) if (!wellNamed(f)) assert.ok(skippedNames.has(f), `${f} should be skipped`);
  for (const s of first.report.skipped) assert.ok(s.reason.length > 10, `${s.file} has no reason`);
  if (names.includes("61_3_20170109150557335.jpg.chip.jpg")) {
    assert.match(first.report.skipped.find((s) => s.file === "61_3_20170109150557335.jpg.chip.jpg")!.reason, /4 fields/);
  }
  const cached = await loadFaces({ dir, cacheDir });
  assert.equal(cached.report.cacheUsed, true);
  assert.equal(cached.records.length, first.records.length);
  assert.ok(Buffer.from(cached.pixels).equals(Buffer.from(first.pixels)));
  console.log(`# full set: ${first.report.usable} usable, first load ${first.report.seconds.toFixed(2)} s, cached ${cached.report.seconds.toFixed(3)} s`);
});
