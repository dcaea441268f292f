/**
 * Checks, for every image of a folder, that the library's decoder (the JPEG addon where it
 * applies, sharp otherwise) gives byte for byte the raw pixels sharp alone gives, or the same
 * error. Prints the counts as JSON; exits 1 if any image differs (or the addon is not built).
 *
 *   npx tsx scripts/jpeg-identity.ts --dir ../shared/data/utkface/crop_part1   # default: $UTKFACE_DIR, data/UTKFace, data/sample
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { isImageFile } from "../lib/data/dataset";
import { checkDecoderIdentity } from "../lib/data/decode-identity";
import { loadJpegAddon } from "../lib/data/native-jpeg";
import { REPO_ROOT, resolveDataDir } from "../lib/core/paths";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: "string" } } });
  const addon = loadJpegAddon();
  if (!addon.addon) {
    console.error(`jpeg-identity: ${addon.reason}`);
    return 1;
  }
  const dir = resolveDataDir(values.dir);
  const files = fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith(".") && isImageFile(f))
    .sort()
    .map((f) => path.join(dir, f));
  const started = Date.now();
  const r = await checkDecoderIdentity(files);
  const rel = path.relative(REPO_ROOT, dir).split(path.sep).join("/") || ".";
  console.log(JSON.stringify({ dir: rel, libjpeg: addon.addon.info().libjpeg, ...r, differences: r.differences.map((d) => ({ ...d, file: path.basename(d.file) })), seconds: (Date.now() - started) / 1000 }));
  return r.different === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`jpeg-identity: ${(e as Error).message}`);
    process.exit(1);
  },
);
