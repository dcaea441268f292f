/**
 * The JPEG addon (native/src/jpeg.cc) decodes exactly as sharp does: every face of data/sample
 * gives byte-identical raw pixels both ways and the loaded datasets are identical at the sizes
 * and colours the models use; JPEG variants it takes (gray, progressive, 4:4:4, odd sizes, EXIF
 * orientation 1) are identical too; and what it must not take (EXIF rotation, ICC profile,
 * CMYK, PNG, WebP, damaged or non-image files) goes to sharp with the same result or the same
 * error as before. With UTKFACE_DIR set the raw identity is also checked over that folder.
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import sharp from "sharp";
import { FaceDataset, decodeImageFile, decodeRaw, isImageFile, loadFaces } from "../lib/data/dataset";
import { checkDecoderIdentity } from "../lib/data/decode-identity";
import { DECODER_ENV, loadJpegAddon } from "../lib/data/native-jpeg";
import { DATA_DIR_ENV, SAMPLE_DATA_DIR } from "../lib/core/paths";

const addon = loadJpegAddon();
const skip = addon.addon ? false : `${addon.reason}`;
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-jpeg-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let count = 0;
const tmpDir = (label: string) => fs.mkdirSync(path.join(tmpRoot, `${label}-${count++}`), { recursive: true })!;
const sampleFiles = fs.readdirSync(SAMPLE_DATA_DIR).filter((f) => f.endsWith(".jpg")).sort();

/** Runs `body` with every image decoded by sharp alone (UTKFACE_DECODER=sharp), as before the addon. */
async function withSharpOnly<T>(body: () => Promise<T>): Promise<T> {
  const before = process.env[DECODER_ENV];
  process.env[DECODER_ENV] = "sharp";
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env[DECODER_ENV];
    else process.env[DECODER_ENV] = before;
  }
}

/** What a decode gives: the pixels, or the error message. */
async function settle(p: Promise<Uint8Array>): Promise<{ pixels?: Buffer; error?: string }> {
  try {
    return { pixels: Buffer.from(await p) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function sameDataset(a: FaceDataset, b: FaceDataset, label: string): void {
  assert.equal(a.size, b.size, label);
  assert.equal(a.channels, b.channels, label);
  assert.deepEqual(a.records, b.records, label);
  assert.deepEqual(a.report.skipped, b.report.skipped, label);
  assert.deepEqual(a.report.tiny, b.report.tiny, label);
  assert.deepEqual(a.report.warnings, b.report.warnings, label);
  assert.equal(a.pixels.length, b.pixels.length, label);
  assert.ok(Buffer.from(a.pixels.buffer, a.pixels.byteOffset, a.pixels.length).equals(Buffer.from(b.pixels.buffer, b.pixels.byteOffset, b.pixels.length)), `${label}: pixels differ`);
}

test("every face of data/sample: the addon's raw pixels are byte for byte sharp's", { skip }, async () => {
  const r = await checkDecoderIdentity(sampleFiles.map((f) => path.join(SAMPLE_DATA_DIR, f)));
  assert.deepEqual(r.differences, []);
  assert.equal(r.different, 0);
  assert.deepEqual(r.fallback, {}, "every sample face is a plain JPEG the addon decodes");
  assert.equal(r.identical, sampleFiles.length);
  // And the library really takes the addon for them.
  const one = await decodeRaw(path.join(SAMPLE_DATA_DIR, sampleFiles[0]));
  assert.equal(one.decoder, "native");
  assert.deepEqual([one.width, one.height, one.channels], [200, 200, 3]);
});

test("data/sample loads identically with the addon and with sharp alone: 64 gray, 70 gray, 70 rgb", { skip }, async () => {
  for (const [size, color] of [[64, "gray"], [70, "gray"], [70, "rgb"]] as const) {
    const ours = await loadFaces({ dir: SAMPLE_DATA_DIR, size, color, cache: false });
    const before = await withSharpOnly(() => loadFaces({ dir: SAMPLE_DATA_DIR, size, color, cache: false }));
    assert.equal(ours.records.length, sampleFiles.length);
    sameDataset(ours, before, `${size} ${color}`);
  }
});

test("JPEG variants the addon decodes are identical to sharp: gray, progressive, 4:4:4, mozjpeg, odd size, EXIF orientation 1", { skip }, async () => {
  const dir = tmpDir("variants");
  const src = path.join(SAMPLE_DATA_DIR, sampleFiles[5]);
  const odd = sharp(src).extract({ left: 3, top: 5, width: 157, height: 131 });
  const made: [string, Promise<unknown>][] = [
    ["gray.jpg", sharp(src).toColourspace("b-w").jpeg({ quality: 90 }).toFile(path.join(dir, "gray.jpg"))],
    ["progressive.jpg", sharp(src).jpeg({ progressive: true }).toFile(path.join(dir, "progressive.jpg"))],
    ["444.jpg", sharp(src).jpeg({ chromaSubsampling: "4:4:4", quality: 95 }).toFile(path.join(dir, "444.jpg"))],
    ["mozjpeg.jpg", sharp(src).jpeg({ mozjpeg: true }).toFile(path.join(dir, "mozjpeg.jpg"))],
    ["odd.jpg", odd.clone().jpeg({ quality: 80 }).toFile(path.join(dir, "odd.jpg"))],
    ["odd-gray-progressive.jpg", odd.clone().toColourspace("b-w").jpeg({ progressive: true }).toFile(path.join(dir, "odd-gray-progressive.jpg"))],
    ["exif1.jpg", sharp(src).withExif({ IFD0: { Orientation: "1", Copyright: "test" } }).jpeg().toFile(path.join(dir, "exif1.jpg"))],
  ];
  await Promise.all(made.map(([, p]) => p));
  assert.equal((await sharp(path.join(dir, "gray.jpg")).metadata()).channels, 1, "a one-component JPEG");
  assert.equal((await sharp(path.join(dir, "exif1.jpg")).metadata()).orientation, 1);
  for (const [name] of made) {
    const file = path.join(dir, name);
    const ours = await decodeRaw(file);
    const theirs = await decodeRaw(file, "sharp");
    assert.equal(ours.decoder, "native", `${name} goes through the addon`);
    assert.deepEqual([ours.width, ours.height, ours.channels], [theirs.width, theirs.height, theirs.channels], name);
    assert.ok(Buffer.from(ours.data).equals(Buffer.from(theirs.data)), `${name}: pixels differ from sharp's`);
  }
});

test("EXIF-rotated, ICC, CMYK, PNG, WebP, truncated, corrupt and non-image files go to sharp with the same result as before", { skip }, async () => {
  const dir = tmpDir("fallback");
  const src = path.join(SAMPLE_DATA_DIR, sampleFiles[7]);
  const bytes = fs.readFileSync(src);
  const corrupt = Buffer.from(bytes);
  corrupt.fill(0x5a, bytes.length >> 1, (bytes.length >> 1) + 40);
  // An explicit EXIF orientation 1 patched to 3 (rotate 180): EXIF rotation without an ICC
  // profile (sharp's withMetadata, the usual way to set an orientation, adds one).
  const exif1 = await sharp(src).withExif({ IFD0: { Orientation: "1", Copyright: "test" } }).jpeg().toBuffer();
  const tag = Buffer.from([0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00]); // little-endian: tag 0x0112, SHORT, 1, value 1
  const at = exif1.indexOf(tag);
  assert.ok(at > 0, "sharp wrote the orientation tag little-endian");
  const exif3 = Buffer.from(exif1);
  exif3[at + 8] = 3;
  // name, how it is made, the addon's reason, whether sharp decodes it
  const cases: [string, () => Promise<unknown> | void, string, boolean][] = [
    ["exif6.jpg", () => sharp(src).rotate(270).withMetadata({ orientation: 6 }).jpeg().toFile(path.join(dir, "exif6.jpg")), "exif", true],
    ["exif3.jpg", () => fs.writeFileSync(path.join(dir, "exif3.jpg"), exif3), "exif", true],
    ["icc-p3.jpg", () => sharp(src).withIccProfile("p3").jpeg().toFile(path.join(dir, "icc-p3.jpg")), "icc", true],
    ["cmyk.jpg", () => sharp(src).toColourspace("cmyk").jpeg().toFile(path.join(dir, "cmyk.jpg")), "color", true],
    ["face.png", () => sharp(src).png().toFile(path.join(dir, "face.png")), "not-jpeg", true],
    ["face.webp", () => sharp(src).webp().toFile(path.join(dir, "face.webp")), "not-jpeg", true],
    ["truncated.jpg", () => fs.writeFileSync(path.join(dir, "truncated.jpg"), bytes.subarray(0, bytes.length >> 1)), "warning", false],
    ["corrupt.jpg", () => fs.writeFileSync(path.join(dir, "corrupt.jpg"), corrupt), "warning", false],
    ["text.jpg", () => fs.writeFileSync(path.join(dir, "text.jpg"), "this is a text file, not a JPEG\n"), "not-jpeg", false],
  ];
  for (const [, make] of cases) await make();
  assert.equal((await sharp(path.join(dir, "exif6.jpg")).metadata()).orientation, 6);
  const m3 = await sharp(path.join(dir, "exif3.jpg")).metadata();
  assert.equal(m3.orientation, 3);
  assert.equal(m3.hasProfile ?? false, false);
  // sharp rotates it: the addon must not have decoded it the way it is stored.
  const stored = await sharp(path.join(dir, "exif3.jpg")).raw().toBuffer();
  assert.ok(!stored.equals(Buffer.from((await decodeRaw(path.join(dir, "exif3.jpg"))).data)), "orientation 3 is applied");

  for (const [name, , reason, decodes] of cases) {
    const file = path.join(dir, name);
    const native = await addon.addon!.decode(file);
    assert.equal(native.fallback, reason, `${name}: ${JSON.stringify(native.fallback ? native : { decoded: true })}`);
    for (const [size, color] of [[70, "gray"], [70, "rgb"], [200, "rgb"]] as const) {
      const ours = await settle(decodeImageFile(file, size, color));
      const before = await withSharpOnly(() => settle(decodeImageFile(file, size, color)));
      assert.deepEqual(ours, before, `${name} at ${size} ${color}`);
      assert.equal(ours.pixels !== undefined, decodes, `${name} ${decodes ? "decodes" : "fails"}`);
      // The error still names the file.
      if (ours.error) assert.match(ours.error, new RegExp(name.replace(".", "\\.")));
    }
  }
  // The same through a folder load: same faces, same pixels, same skipped files and reasons.
  const faces = tmpDir("fallback-faces");
  cases.forEach(([name], i) => fs.copyFileSync(path.join(dir, name), path.join(faces, `${20 + i}_0_0_2017010100000000${i}.jpg.chip${path.extname(name)}`)));
  fs.copyFileSync(src, path.join(faces, sampleFiles[7]));
  for (const color of ["gray", "rgb"] as const) {
    const ours = await loadFaces({ dir: faces, color, cache: false });
    const before = await withSharpOnly(() => loadFaces({ dir: faces, color, cache: false }));
    sameDataset(ours, before, `folder ${color}`);
    assert.equal(ours.report.skipped.length, cases.filter((c) => !c[3]).length);
  }
});

test("UTKFACE_DECODER=sharp and decodeRaw(file, \"sharp\") leave the addon out", { skip }, async () => {
  const file = path.join(SAMPLE_DATA_DIR, sampleFiles[1]);
  assert.equal((await decodeRaw(file, "sharp")).decoder, "sharp");
  assert.equal((await withSharpOnly(() => decodeRaw(file))).decoder, "sharp");
  // Bytes go through the addon as files do.
  const bytes = await decodeRaw(fs.readFileSync(file));
  assert.equal(bytes.decoder, "native");
  assert.ok(Buffer.from(bytes.data).equals(Buffer.from((await decodeRaw(file, "sharp")).data)));
});

const fullDir = process.env[DATA_DIR_ENV];
test(
  "the folder in UTKFACE_DIR: every image decodes as sharp decodes it (identical or left to sharp, none different)",
  { skip: skip || (fullDir && fs.existsSync(fullDir) ? false : "set UTKFACE_DIR to check a full UTKFace folder") },
  async () => {
    const files = fs.readdirSync(fullDir!).filter((f) => !f.startsWith(".") && isImageFile(f)).sort().map((f) => path.join(fullDir!, f));
    const r = await checkDecoderIdentity(files);
    console.log(`# ${fullDir}: ${JSON.stringify({ files: r.files, identical: r.identical, fallback: r.fallback, different: r.different })}`);
    assert.deepEqual(r.differences, []);
    assert.equal(r.different, 0);
  },
);
