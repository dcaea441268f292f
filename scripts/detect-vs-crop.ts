/**
 * The photo path against the crops, on a run's held-out test faces (see lib/inference/compare.ts).
 * Usage:
 *   npx tsx scripts/detect-vs-crop.ts --run results/<experiment>/<run-id> [--max-images N] [--align eyes|none] [--json f.json]
 */
import { parseArgs } from "util";
import { setBackendQuiet } from "../lib/engine/backend";
import { PathScores, compareDetectWithCrops, detectVsCropRows } from "../lib/inference/compare";
import { writeJsonAtomic } from "../lib/core/paths";
import { portablePath, resolveRunDir } from "../lib/records/runs";

function line(name: string, s: PathScores): string {
  const pct = (v?: number) => (v === undefined ? "-" : `${(v * 100).toFixed(1)}%`);
  return `${name.padEnd(34)} ${String(s.faces).padStart(6)}  ${s.mae === undefined ? "-" : s.mae.toFixed(2).padStart(6)}  ${pct(s.groupAccuracy).padStart(7)}  ${pct(s.genderAccuracy).padStart(7)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { run: { type: "string" }, "max-images": { type: "string" }, align: { type: "string", default: "eyes" }, json: { type: "string" } }, strict: true });
  if (!values.run) throw new Error("--run <run folder> is required (a single train run, not a K-fold run).");
  if (values.align !== "eyes" && values.align !== "none") throw new Error(`--align "${values.align}" is not "eyes" or "none".`);
  setBackendQuiet(true);
  const runDir = resolveRunDir(values.run);
  const t0 = Date.now();
  const r = await compareDetectWithCrops(runDir, {
    maxImages: values["max-images"] ? Number(values["max-images"]) : undefined,
    align: values.align === "eyes",
    progress: (done, total) => process.stderr.write(`\r${done}/${total} held-out faces`),
  });
  process.stderr.write("\n");
  console.log(`${portablePath(runDir)}: ${r.faces} held-out faces, detector found no face on ${r.notFound} (${((r.notFound / r.faces) * 100).toFixed(1)}%), align ${values.align}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`${"path".padEnd(34)} ${"faces".padStart(6)}  ${"MAE".padStart(6)}  ${"group".padStart(7)}  ${"gender".padStart(7)}`);
  for (const row of detectVsCropRows(r)) console.log(line(row.path, row));
  if (values.json) writeJsonAtomic(values.json, { ...r, runDir: portablePath(runDir), align: values.align });
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
