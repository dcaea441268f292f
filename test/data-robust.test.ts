/**
 * Issue 11, findings 3, 4, 5 and the loading part of 7: images decoded upright (EXIF), the
 * pixel cache checksummed whole, and loading that skips every kind of unreadable entry with a
 * reason in words, on real faces from data/sample.
 */
import { after, mock, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import sharp from "sharp";
import { decodeImageFile, loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-robust-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let count = 0;
const tmpDir = (label: string) => fs.mkdirSync(path.join(tmpRoot, `${label}-${count++}`), { recursive: true })!;
const sampleFiles = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort();

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** A phone-style copy of a face: pixels stored turned 90° anticlockwise, EXIF orientation 6 (show turned clockwise). */
async function sidewaysCopy(src: string, dest: string): Promise<void> {
  await sharp(src).rotate(270).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toFile(dest);
}

test("EXIF orientation 6 is applied when decoding a file and when loading a folder", async () => {
  const dir = tmpDir("exif");
  const name = sampleFiles[3];
  const original = path.join(SAMPLE_DATA_DIR, name);
  const rotated = path.join(dir, name);
  await sidewaysCopy(original, rotated);
  assert.equal((await sharp(rotated).metadata()).orientation, 6);
  const upright = await decodeImageFile(original, 70, "gray");
  const decoded = await decodeImageFile(rotated, 70, "gray");
  // Only JPEG re-encoding separates them (about 1 level); sideways the same face differs by ~40.
  const diff = meanAbsDiff(upright, decoded);
  assert.ok(diff < 4, `rotated copy decodes ${diff.toFixed(1)} levels away from the upright face`);
  const other = await decodeImageFile(path.join(SAMPLE_DATA_DIR, sampleFiles[4]), 70, "gray");
  assert.ok(meanAbsDiff(upright, other) > 4 * diff, "another face is much further away than the rotated copy");

  const ds = await loadFaces({ dir, cache: false });
  assert.ok(meanAbsDiff(ds.pixels, upright) < 4, "loadFaces decodes the rotated copy upright too");
});

test("the pixel cache is checksummed whole: one flipped byte in the label header rebuilds it", async () => {
  const dir = tmpDir("faces");
  for (const f of sampleFiles.slice(0, 6)) fs.copyFileSync(path.join(SAMPLE_DATA_DIR, f), path.join(dir, f));
  const cacheDir = tmpDir("cache");
  const fresh = await loadFaces({ dir, cacheDir });
  const [name] = fs.readdirSync(cacheDir);
  const file = path.join(cacheDir, name);
  const bytes = fs.readFileSync(file);
  // Change the first record's age by one digit inside the JSON header (the "26 became 66").
  const age = fresh.records[0].age;
  const needle = Buffer.from(`"age":${age},`);
  const at = bytes.indexOf(needle);
  assert.ok(at > 0, "the label header holds the age");
  const digit = at + needle.length - 2;
  bytes[digit] = bytes[digit] === 0x36 ? 0x35 : 0x36;
  fs.writeFileSync(file, bytes);
  const again = await loadFaces({ dir, cacheDir });
  assert.equal(again.report.cacheUsed, false, "a damaged label header is not accepted from the cache");
  assert.deepEqual(again.records.map((r) => r.age), fresh.records.map((r) => r.age));
  assert.equal((await loadFaces({ dir, cacheDir })).report.cacheUsed, true, "rebuilt");
});

test("loading skips a symlink loop, a dangling link, a truncated JPEG and a text file, with reasons in words; tiny images are used and warned", async () => {
  const dir = tmpDir("bad");
  for (const f of sampleFiles.slice(0, 4)) fs.copyFileSync(path.join(SAMPLE_DATA_DIR, f), path.join(dir, f));
  fs.symlinkSync("20_0_0_20170101000000002.jpg.chip.jpg", path.join(dir, "20_0_0_20170101000000001.jpg.chip.jpg"));
  fs.symlinkSync("20_0_0_20170101000000001.jpg.chip.jpg", path.join(dir, "20_0_0_20170101000000002.jpg.chip.jpg"));
  fs.symlinkSync("gone.jpg", path.join(dir, "21_1_0_20170101000000003.jpg.chip.jpg"));
  const jpeg = fs.readFileSync(path.join(SAMPLE_DATA_DIR, sampleFiles[0]));
  fs.writeFileSync(path.join(dir, "22_0_1_20170101000000004.jpg.chip.jpg"), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  fs.writeFileSync(path.join(dir, "23_1_2_20170101000000005.jpg.chip.jpg"), "a text file named like a face\n");
  await sharp(path.join(SAMPLE_DATA_DIR, sampleFiles[1])).resize(1, 1).toFile(path.join(dir, "24_0_0_20170101000000006.jpg.chip.jpg"));
  await sharp(path.join(SAMPLE_DATA_DIR, sampleFiles[2])).resize(20, 20).toFile(path.join(dir, "25_1_0_20170101000000007.jpg.chip.jpg"));

  const ds = await loadFaces({ dir, cacheDir: tmpDir("cache") });
  const r = ds.report;
  assert.equal(r.usable, 6, JSON.stringify(r.skipped));
  const reasons = Object.fromEntries(r.skipped.map((s) => [s.file.slice(0, 2), s.reason]));
  assert.match(reasons["20"], /symbolic link that loops back on itself/);
  assert.match(reasons["21"], /does not exist \(or is a symbolic link pointing nowhere\)/);
  assert.match(reasons["22"], /cut short or damaged/);
  assert.doesNotMatch(reasons["22"], /failOn/);
  assert.match(reasons["23"], /not an image .* matches no image format/);
  assert.deepEqual(r.tiny.map((t) => [t.file.slice(0, 2), t.width, t.height]), [["24", 1, 1], ["25", 20, 20]]);
  assert.match(r.warnings.join("\n"), /2 image\(s\) smaller than 32 px.*24_0_0_20170101000000006\.jpg\.chip\.jpg \(1x1\)/);
  assert.equal(r.cacheWritten, true);
});

test("a single unreadable image names the file and says what is wrong, not the decoder's words", async () => {
  const dir = tmpDir("single");
  const truncated = path.join(dir, "cut.jpg");
  const jpeg = fs.readFileSync(path.join(SAMPLE_DATA_DIR, sampleFiles[0]));
  fs.writeFileSync(truncated, jpeg.subarray(0, 3000));
  await assert.rejects(decodeImageFile(truncated, 48, "gray"), /cut\.jpg: the file is cut short or damaged/);
  const text = path.join(dir, "notes.jpg");
  fs.writeFileSync(text, "hello");
  await assert.rejects(decodeImageFile(text, 48, "gray"), /notes\.jpg: the file is not an image/);
  const loop = path.join(dir, "loop.jpg");
  fs.symlinkSync("loop.jpg", loop);
  await assert.rejects(decodeImageFile(loop, 48, "gray"), /loop\.jpg: the file is a symbolic link that loops back on itself/);
  await assert.rejects(decodeImageFile(path.join(dir, "missing.jpg"), 48, "gray"), /missing\.jpg: the file does not exist/);
});

test("a file this user may not read is skipped as unreadable, not as a bad image (simulated: tests run as root)", async () => {
  const dir = tmpDir("perm");
  for (const f of sampleFiles.slice(0, 3)) fs.copyFileSync(path.join(SAMPLE_DATA_DIR, f), path.join(dir, f));
  const locked = path.join(dir, sampleFiles[1]);
  fs.chmodSync(locked, 0o000);
  // Root reads anything; make access() answer as it would for an ordinary user.
  const nodeFs = require("fs") as typeof import("fs");
  const real = nodeFs.accessSync;
  const denied = mock.method(nodeFs, "accessSync", (p: fs.PathLike, mode?: number) => {
    if (String(p) === locked) throw Object.assign(new Error(`EACCES: permission denied, access '${p}'`), { code: "EACCES" });
    return real(p, mode);
  });
  try {
    const ds = await loadFaces({ dir, cache: false });
    assert.equal(ds.report.usable, 2);
    assert.deepEqual(ds.report.skipped, [{ file: sampleFiles[1], reason: "unreadable: the file cannot be read or written with this user's permissions" }]);
    await assert.rejects(decodeImageFile(locked, 32, "gray"), /cannot be read or written with this user's permissions/);
  } finally {
    denied.mock.restore();
  }
});
