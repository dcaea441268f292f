/**
 * `npm run cli -- data`: loads UTKFace (or the shipped sample) and prints the load report:
 * usable faces, a table of age group x gender, skipped files with reasons, time, cache use.
 * Loads no tfjs, so `--json` prints one JSON object and nothing else.
 */
import { parseArgs } from "util";
import type { ColorMode, LoadReport } from "../data/dataset";
import { loadFaces } from "../data/dataset";
import { IMAGE_SIZE } from "../core/paths";

/** Usage text. */
export const help = `Usage: npm run cli -- data [--dir D] [--size ${IMAGE_SIZE}] [--color gray|rgb] [--json] [--no-cache]

Loads every usable face of a UTKFace directory and prints the load report.

Options:
  --dir D       UTKFace directory (default: $UTKFACE_DIR, else data/UTKFace, else data/sample)
  --size N      side of the decoded square images in pixels (default ${IMAGE_SIZE})
  --color C     gray (1 channel, the report's CNN) or rgb (3 channels, VGG19); default gray
  --json        print the report as one JSON object on stdout
  --no-cache    decode every file and neither read nor write data/.cache
  -h, --help    this text`;

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  let values: { dir?: string; size?: string; color?: string; json?: boolean; "no-cache"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        dir: { type: "string" },
        size: { type: "string" },
        color: { type: "string" },
        json: { type: "boolean" },
        "no-cache": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new Error(`${(e as Error).message}. Run "npm run cli -- data --help" for the options.`);
  }
  if (values.help) {
    console.log(help);
    return 0;
  }
  const size = values.size === undefined ? IMAGE_SIZE : Number(values.size);
  if (!Number.isInteger(size) || size < 1) throw new Error(`--size "${values.size}" is not a whole number of pixels (e.g. --size ${IMAGE_SIZE}).`);
  const color = (values.color ?? "gray") as ColorMode;
  if (color !== "gray" && color !== "rgb") throw new Error(`--color "${values.color}" is not gray or rgb.`);

  const ds = await loadFaces({ dir: values.dir, size, color, cache: !values["no-cache"] });
  if (values.json) {
    process.stdout.write(JSON.stringify(ds.report) + "\n");
  } else {
    console.log(formatReport(ds.report));
  }
  return 0;
}

/** The report as text: a summary, the age group x gender table and the skipped files. */
export function formatReport(r: LoadReport): string {
  const lines: string[] = [];
  lines.push(`UTKFace directory: ${r.dir}`);
  lines.push(`Usable faces: ${r.usable} of ${r.files} files (${r.skipped.length} skipped, ${r.ignored.length} not images)`);
  lines.push(`Decoded: ${r.size}x${r.size} ${r.color}`);
  lines.push(`Load time: ${r.seconds.toFixed(2)} s (${r.cacheUsed ? "from the cache" : r.cacheWritten ? "decoded, cache written" : r.cacheFile ? "decoded, cache NOT written (see the warning)" : "decoded, cache off"})`);
  if (r.cacheFile) lines.push(`Cache file: ${r.cacheFile}`);
  lines.push("");
  const w = Math.max(...r.countsByGroupGender.map((g) => g.group.length), "Age group".length);
  lines.push(`${"Age group".padEnd(w)}  ${"Male".padStart(6)}  ${"Female".padStart(6)}  ${"Total".padStart(6)}`);
  let male = 0;
  let female = 0;
  for (const g of r.countsByGroupGender) {
    male += g.male;
    female += g.female;
    lines.push(`${g.group.padEnd(w)}  ${String(g.male).padStart(6)}  ${String(g.female).padStart(6)}  ${String(g.male + g.female).padStart(6)}`);
  }
  lines.push(`${"All".padEnd(w)}  ${String(male).padStart(6)}  ${String(female).padStart(6)}  ${String(male + female).padStart(6)}`);
  if (r.skipped.length > 0) {
    lines.push("", `Skipped files (${r.skipped.length}):`);
    for (const s of r.skipped) lines.push(`  ${s.file}: ${s.reason}`);
  }
  if (r.warnings.length > 0) {
    lines.push("", "Warnings:");
    for (const w of r.warnings) lines.push(`  ${w}`);
  }
  if (r.ignored.length > 0) {
    const shown = r.ignored.slice(0, 10).join(", ");
    lines.push("", `Not images, ignored (${r.ignored.length}): ${shown}${r.ignored.length > 10 ? ", ..." : ""}`);
  }
  return lines.join("\n");
}
