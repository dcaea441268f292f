/**
 * Measures where the face detector puts its box on UTKFace's training crops, the numbers kept
 * as FRAMING in lib/inference/detect.ts. Usage:
 *   UTKFACE_DIR=path/to/crop_part1 npx tsx scripts/measure-framing.ts [--count 400]
 * Takes `count` crops spread evenly over the sorted folder (every k-th file), so the sample
 * covers all ages (files are named by age).
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { setBackendQuiet } from "../lib/engine/backend";
import { measureFraming } from "../lib/inference/detect";
import { resolveDataDir } from "../lib/core/paths";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: "string", default: "400" }, dir: { type: "string" } }, strict: true });
  setBackendQuiet(true);
  const dir = resolveDataDir(values.dir);
  const all = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  const count = Math.min(Number(values.count), all.length);
  const step = all.length / count;
  const files = Array.from({ length: count }, (_, i) => path.join(dir, all[Math.floor(i * step)]));
  const t0 = Date.now();
  const m = await measureFraming(files);
  const r = (x: number) => Number(x.toFixed(3));
  console.log(`${m.crops} crops of ${path.basename(dir)} (${all.length} files): ${m.oneFace} with one face, ${m.noFace} with none, ${m.severalFaces} with several (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  console.log(`FRAMING = { side: ${r(m.framing.side)}, dx: ${r(m.framing.dx)}, dy: ${r(m.framing.dy)} }`);
  console.log(`quartiles: side ${m.quartiles.side.map(r).join("..")}, dx ${m.quartiles.dx.map(r).join("..")}, dy ${m.quartiles.dy.map(r).join("..")}`);
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
