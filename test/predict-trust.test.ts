/**
 * Predict you can trust on any image (issue 18): on real UTKFace crops every face is predicted
 * in --detect auto, faces pasted into photos are found and confirmed by the landmark check,
 * faceless pictures give no face, and a huge, a 1x20000 and a 16x16 image each get their row
 * (a face or a skip reason) without stopping the others. Runs on UTKFace's crop_part1 when
 * $UTKFACE_DIR (or ../shared/data/utkface/crop_part1) is there, on data/sample otherwise.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import sharp from "sharp";
import { setBackendQuiet } from "../lib/engine/backend";
import { REPO_ROOT, resolveDataDir } from "../lib/core/paths";
import { isImageFile } from "../lib/data/dataset";
import { FACELESS_KINDS, composePhoto, facelessImage, placedBox } from "../lib/inference/composite";
import { iou } from "../lib/inference/detect";
import { PHOTO_CSV_COLUMNS, photoPredictionsCsv, predictPhotos } from "../lib/inference/photo";

setBackendQuiet(true);
const BEST = path.join(REPO_ROOT, "models", "best");
const dir = resolveDataDir();
const all = fs.readdirSync(dir).filter(isImageFile).sort();
/** Crops not used to set the check's thresholds (those were every 44th from the first). */
const crops = (n: number, offset: number) => Array.from({ length: n }, (_, i) => path.join(dir, all[(offset + i * 53) % all.length]));

function cli(...args: string[]) {
  return spawnSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "lib", "cli", "main.ts"), "predict", ...args], { cwd: REPO_ROOT, encoding: "utf8" });
}

/** CSV rows as objects by column name, from the header line on (quoted fields unquoted). */
function rows(csv: string): Record<string, string>[] {
  const lines = csv.split("\n");
  const start = lines.findIndex((l) => l.startsWith("file,face,"));
  assert.ok(start >= 0, `no CSV header in\n${csv}`);
  const split = (l: string) => {
    const out: string[] = [];
    let cur = "";
    let quoted = false;
    for (let i = 0; i < l.length; i++) {
      const c = l[i];
      if (quoted) {
        if (c === '"' && l[i + 1] === '"') (cur += '"'), i++;
        else if (c === '"') quoted = false;
        else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") out.push(cur), (cur = "");
      else cur += c;
    }
    return [...out, cur];
  };
  const cols = lines[start].split(",");
  return lines
    .slice(start + 1)
    .filter((l) => l.trim() !== "")
    .map((l) => Object.fromEntries(split(l).map((v, i) => [cols[i], v])));
}

test("every UTKFace crop is predicted in --detect auto, as with --detect never", async () => {
  const files = crops(60, 17);
  const auto = await predictPhotos(BEST, files, { detect: "auto" });
  const never = await predictPhotos(BEST, files, { detect: "never" });
  const missing = auto.filter((p) => p.faces.length !== 1 || p.faces[0].age === undefined).map((p) => path.basename(p.file));
  assert.deepEqual(missing, [], `crops without an answer in auto mode: ${missing.join(", ")}`);
  for (const [i, p] of auto.entries()) {
    assert.equal(p.source, "whole-image", `${path.basename(p.file)} taken whole`);
    assert.ok(Math.abs(p.faces[0].age! - never[i].faces[0].age!) < 1e-6, `${path.basename(p.file)}: age ${p.faces[0].age} vs ${never[i].faces[0].age} with --detect never`);
  }
  // Every row says how far to trust it: the check's verdict (a crop that fails it says so in the note).
  for (const r of rows(photoPredictionsCsv(auto))) {
    assert.ok(r.check === "face" || (r.check.startsWith("not a face") && r.note === "whole image: no face detected"), JSON.stringify(r));
  }
  const confirmed = auto.filter((p) => p.faces[0].check?.ok).length;
  assert.ok(confirmed >= 57, `landmark check confirms ${confirmed} of 60 crops`);
});

test("faces pasted into group photos are found and confirmed; faceless pictures give no face", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trust-"));
  try {
    const photos: { file: string; placements: { file: string; x: number; y: number; side: number; angle?: number }[] }[] = [];
    for (let p = 0; p < 4; p++) {
      const f = crops(4, 300 + p * 11);
      const placements = [
        { file: f[0], x: 50, y: 70, side: 120 + p * 20 },
        { file: f[1], x: 320, y: 40, side: 210 },
        { file: f[2], x: 620, y: 250, side: 150, angle: p % 2 ? 12 : 0 },
        { file: f[3], x: 880, y: 90, side: 170 },
      ];
      const file = path.join(tmp, `group-${p}.jpg`);
      fs.writeFileSync(file, await composePhoto(placements, { width: 1150, height: 560, background: p % 2 ? "dark" : "light" }));
      photos.push({ file, placements });
    }
    const faceless: string[] = [];
    for (const k of FACELESS_KINDS) {
      const file = path.join(tmp, `faceless-${k}.jpg`);
      fs.writeFileSync(file, await facelessImage(k));
      faceless.push(file);
    }
    const got = await predictPhotos(BEST, [...photos.map((p) => p.file), ...faceless], { detect: "auto" });
    let found = 0;
    let pasted = 0;
    for (const [i, p] of photos.entries()) {
      for (const pl of p.placements) {
        pasted++;
        if (got[i].faces.some((f) => iou(f.crop, placedBox(pl)) > 0.5)) found++;
      }
      for (const f of got[i].faces) assert.ok(f.check?.ok && f.score !== undefined, `${path.basename(p.file)}: every kept face has a score and passed the check`);
    }
    assert.ok(found >= 0.95 * pasted, `${found} of ${pasted} pasted faces found`);
    const falseFaces = got.slice(photos.length).filter((p) => p.faces.length > 0).map((p) => `${path.basename(p.file)} (score ${p.faces[0].score})`);
    assert.deepEqual(falseFaces, [], "no face on a faceless picture");
    const csv = photoPredictionsCsv(got);
    assert.equal(csv.split("\n")[0], PHOTO_CSV_COLUMNS.join(","));
    assert.match(csv.split("\n")[0], /,score,check,/);
    for (const r of rows(csv).filter((r) => r.file.includes("faceless"))) assert.equal(r.note, "no face found");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("a huge panorama, a 1x20000 and a 16x16 image each get their row; the other crops are still predicted", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trust-big-"));
  try {
    const good = crops(3, 901);
    for (const f of good) fs.copyFileSync(f, path.join(tmp, path.basename(f)));
    // 12000x2000 with one face of 600 px: the old border pass asked sharp for 24000x14000 pixels.
    const face = crops(1, 1234)[0];
    const pano = await composePhoto([{ file: face, x: 7000, y: 700, side: 600 }], { width: 12000, height: 2000 });
    fs.writeFileSync(path.join(tmp, "panorama.jpg"), pano);
    await sharp({ create: { width: 1, height: 20000, channels: 3, background: { r: 90, g: 120, b: 150 } } }).png().toFile(path.join(tmp, "line.png"));
    await sharp(face).resize(16, 16).jpeg().toFile(path.join(tmp, "tiny.jpg"));
    for (const detect of ["auto", "always"]) {
      const r = cli("--model", BEST, "--detect", detect, tmp);
      assert.equal(r.status, 0, r.stderr);
      const byFile = rows(r.stdout);
      assert.equal(new Set(byFile.map((x) => x.file)).size, 6, `${detect}: a row for each of the 6 files\n${r.stdout}`);
      for (const f of good) assert.ok(byFile.some((x) => x.file.endsWith(path.basename(f)) && x.age !== ""), `${detect}: ${path.basename(f)} predicted`);
      const p = byFile.filter((x) => x.file.endsWith("panorama.jpg"));
      assert.equal(p.length, 1, `${detect}: one face in the panorama\n${r.stdout}`);
      const [x, y, w] = [p[0].x, p[0].y, p[0].width].map(Number);
      assert.ok(iou({ x, y, width: w, height: Number(p[0].height) }, { x: 7000, y: 700, width: 600, height: 600 }) > 0.4, `${detect}: panorama face at ${x},${y} ${w} px (pasted at 7000,700, 600 px)`);
      assert.ok(p[0].age !== "" && p[0].check === "face");
      assert.match(byFile.find((x) => x.file.endsWith("line.png"))!.note, /too small: 1x20000 px/);
      assert.match(byFile.find((x) => x.file.endsWith("tiny.jpg"))!.note, /too small: 16x16 px/);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
