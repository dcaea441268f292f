/**
 * Builds data/sample/: 2,000 UTKFace faces copied unchanged from a full UTKFace folder, chosen
 * deterministically (seeded shuffles) so rerunning it gives the same files:
 *   - `--balanced` (400) of them spread over every (five-year age group, gender) cell the folder
 *     has: each cell gets an equal share; cells with fewer faces give all they have and their
 *     unused share goes to the others;
 *   - the rest drawn at random from the remaining faces, so the sample also follows UTKFace's
 *     own age distribution (on an even spread of age groups, the report's 20 independent
 *     sigmoid outputs sit at their 5% prior and never learn: issue 21).
 *
 *   npx tsx scripts/make-sample.ts --from <UTKFace dir> [--count 2000] [--balanced 400] [--seed 42] [--out data/sample]
 *
 * Only faces whose names parse and whose images decode are taken.
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
      count: { type: "string", default: "2000" },
      balanced: { type: "string", default: "400" },
      out: { type: "string" },
      seed: { type: "string", default: String(SEED) },
    },
  });
  const from = values.from ?? process.env[DATA_DIR_ENV];
  if (!from) throw new Error(`Pass --from <UTKFace dir> or set ${DATA_DIR_ENV}.`);
  const total = Number(values.count);
  const target = Math.min(total, Number(values.balanced));
  const seed = Number(values.seed);
  const out = path.resolve(values.out ?? SAMPLE_DATA_DIR);

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
  const usable = async (r: FaceRecord): Promise<boolean> => {
    try {
      await decodeImageFile(path.join(from, r.file), 70, "gray");
      return true;
    } catch {
      return false;
    }
  };
  for (const [key, members] of cells) {
    const shuffled = permutation(members.length, seed).map((i) => members[i]);
    let taken = 0;
    for (const r of shuffled) {
      if (taken === quota.get(key)) break;
      if (!(await usable(r))) continue;
      chosen.push(r.file);
      taken++;
    }
  }
  // The rest at random from the faces not chosen yet (one seeded shuffle of them all).
  const inSample = new Set(chosen);
  const rest = [...cells.values()].flat().filter((r) => !inSample.has(r.file)).sort((a, b) => (a.file < b.file ? -1 : 1));
  for (const i of permutation(rest.length, seed)) {
    if (chosen.length >= total) break;
    if (await usable(rest[i])) chosen.push(rest[i].file);
  }
  chosen.sort();

  fs.mkdirSync(out, { recursive: true });
  const keep = new Set(chosen);
  for (const old of fs.readdirSync(out)) {
    if (old !== "README.md" && !keep.has(old)) fs.rmSync(path.join(out, old));
  }
  let bytes = 0;
  for (const f of chosen) {
    fs.copyFileSync(path.join(from, f), path.join(out, f));
    bytes += fs.statSync(path.join(out, f)).size;
  }
  console.log(`Copied ${chosen.length} faces from ${cells.size} age-group x gender cells (${(bytes / 1e6).toFixed(2)} MB) into ${path.relative(process.cwd(), out)}.`);
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
