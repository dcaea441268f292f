/**
 * Measures the detector and its landmark check on real faces and faceless pictures (issue 18):
 * UTKFace crops (whole-image check and detections), faces pasted into composite photos, and the
 * 20 faceless pictures of composite.ts. Prints one JSON line per image.
 *
 *   UTKFACE_DIR=path/to/crop_part1 npx tsx scripts/measure-trust.ts --crops 100 --offset 0 --photos 8
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { setBackendQuiet } from "../lib/engine/backend";
import { checkWholeImage, detectFaces, iou, readRgb, trainingCrop } from "../lib/inference/detect";
import { FACELESS_KINDS, composePhoto, facelessImage, placedBox } from "../lib/inference/composite";

setBackendQuiet(true);
const { values } = parseArgs({ options: { crops: { type: "string", default: "100" }, offset: { type: "string", default: "0" }, photos: { type: "string", default: "8" }, step: { type: "string", default: "44" } } });
const dir = process.env.UTKFACE_DIR;
if (!dir) throw new Error("Set UTKFACE_DIR to UTKFace's crop folder (crop_part1).");

(async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".jpg")).sort();
  const step = Number(values.step);
  const crops = Array.from({ length: Number(values.crops) }, (_, i) => files[(i * step + Number(values.offset)) % files.length]);
  for (const f of crops) {
    const image = await readRgb(path.join(dir, f));
    const whole = await checkWholeImage(image);
    const faces = await detectFaces(image);
    console.log(JSON.stringify({ kind: "crop", file: f, whole, faces: faces.map((d) => ({ score: +d.score.toFixed(3), check: d.check, side: +(Math.sqrt(d.box.width * d.box.height) / 200).toFixed(2) })) }));
  }
  for (const k of FACELESS_KINDS) {
    const image = await readRgb(await facelessImage(k));
    const faces = await detectFaces(image, { minScore: 0.3 });
    console.log(JSON.stringify({ kind: "faceless", file: k, whole: await checkWholeImage(image), faces: faces.map((d) => ({ score: +d.score.toFixed(3), check: d.check, box: Object.values(d.box).map(Math.round) })) }));
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trust-"));
  for (let p = 0; p < Number(values.photos); p++) {
    const pick = (i: number) => path.join(dir, files[(p * 97 + i * 31 + 5 + Number(values.offset)) % files.length]);
    const placements = [
      { file: pick(0), x: 40, y: 80, side: 110 + (p % 3) * 40 },
      { file: pick(1), x: 330, y: 40, side: 220 },
      { file: pick(2), x: 640, y: 260, side: 140, angle: p % 2 ? 12 : 0 },
      { file: pick(3), x: 900, y: 100, side: 180 },
    ];
    const image = await readRgb(await composePhoto(placements, { width: 1200, height: 600, background: p % 2 ? "dark" : "light" }));
    const faces = await detectFaces(image, { minScore: 0.3 });
    const rows = faces.map((d) => {
      const hit = placements.findIndex((pl) => iou(trainingCrop(d.box), placedBox(pl)) > 0.4);
      return { score: +d.score.toFixed(3), check: d.check, hit };
    });
    console.log(JSON.stringify({ kind: "photo", file: `photo-${p}`, pasted: placements.length, faces: rows }));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
})();
