/**
 * Builds data/sample/: about 400 UTKFace faces copied unchanged from a full UTKFace folder,
 * spread over every (five-year age group, gender) cell that the folder has, chosen
 * deterministically (seeded shuffle per cell) so rerunning it gives the same files.
 *
 *   npx tsx scripts/make-sample.ts --from <UTKFace dir> [--count 400] [--seed 42]
 *
 * Each cell gets an equal share; cells with fewer faces give all they have and their unused
 * share goes to the others. Only faces whose names parse and whose images decode are taken.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { FaceRecord, decodeImageFile, isFaceRecord, parseFileName } from "../lib/data/dataset";
import { ageGroupOf } from "../lib/data/labels";
import { DATA_DIR_ENV, SAMPLE_DATA_DIR, SEED } from "../lib/core/paths";
import { permutation } from "../lib/data/splits";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      from: { type: "string" },
      count: { type: "string", default: "400" },
      seed: { type: "string", default: String(SEED) },
    },
  });
  const from = values.from ?? process.env[DATA_DIR_ENV];
  if (!from) throw new Error(`Pass --from <UTKFace dir> or set ${DATA_DIR_ENV}.`);
  const target = Number(values.count);
  const seed = Number(values.seed);

  const cells = new Map<string, FaceRecord[]>();
  for (const name of fs.readdirSync(from).sort()) {
    const r = parseFileName(name);
    if (!isFaceRecord(r)) continue;
    const key = `${ageGroupOf(r.age)}/${r.gender}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key)!.push(r);
  }
  // Water-filling: the smallest cells are served first, each with an equal share of what is left.
  const order = [...cells.keys()].sort((a, b) => cells.get(a)!.length - cells.get(b)!.length || (a < b ? -1 : 1));
  const quota = new Map<string, number>();
  let left = target;
  order.forEach((key, i) => {
    const share = Math.floor(left / (order.length - i));
    const q = Math.min(share, cells.get(key)!.length);
    quota.set(key, q);
    left -= q;
  });

  const chosen: string[] = [];
  for (const [key, members] of cells) {
    const shuffled = permutation(members.length, seed).map((i) => members[i]);
    let taken = 0;
    for (const r of shuffled) {
      if (taken === quota.get(key)) break;
      try {
        await decodeImageFile(path.join(from, r.file), 70, "gray");
      } catch {
        continue;
      }
      chosen.push(r.file);
      taken++;
    }
  }
  chosen.sort();

  fs.mkdirSync(SAMPLE_DATA_DIR, { recursive: true });
  const keep = new Set(chosen);
  for (const old of fs.readdirSync(SAMPLE_DATA_DIR)) {
    if (old !== "README.md" && !keep.has(old)) fs.rmSync(path.join(SAMPLE_DATA_DIR, old));
  }
  let bytes = 0;
  for (const f of chosen) {
    fs.copyFileSync(path.join(from, f), path.join(SAMPLE_DATA_DIR, f));
    bytes += fs.statSync(path.join(SAMPLE_DATA_DIR, f)).size;
  }
  console.log(`Copied ${chosen.length} faces from ${cells.size} age-group x gender cells (${(bytes / 1e6).toFixed(2)} MB) into ${path.relative(process.cwd(), SAMPLE_DATA_DIR)}.`);
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
