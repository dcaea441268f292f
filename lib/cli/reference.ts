/** `npm run cli -- reference add <run-dir>`: commit a run's records as a reference run. */
import { parseArgs } from "util";
import * as fs from "fs";
import * as path from "path";
import { addReferenceRun, procedureTable, referenceRuns, referenceTable, updateReadmeTable } from "../analysis/reference";
import { REPO_ROOT } from "../core/paths";
import { writeFileAtomic } from "../core/files";
import { portablePath } from "../records/runs";
import { numberOption } from "./options";

export const help = `Usage: npm run cli -- reference add <run-dir> [--command "..."] [--wall-seconds S]
       npm run cli -- reference list
       npm run cli -- reference table [--readme]

add   copies a finished train run, or a K-fold run with some or all folds finished, into
      results/reference/<experiment>/<run-id>/ without model/ and checkpoint/ folders, and
      appends its line (command, engine, threads, wall time, folds done) to
      results/reference/README.md. Adding the same run again replaces it and its line.
list  prints the newest reference run of every experiment.
table prints the README's results table (markdown) from the newest reference runs, and the
      procedure table (the report's claims, its own procedure run here, held-out figures);
      with --readme, writes them into README.md between their markers.

Options:
  --command "..."      the command line as run (default: rebuilt from config.json)
  --wall-seconds S     wall time (default: config.json createdAt to the run's last write)`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { command: { type: "string" }, "wall-seconds": { type: "string" }, readme: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const [action, runDir] = positionals;
  if (action === "list") {
    for (const r of referenceRuns()) console.log(`${r.reference.experiment.padEnd(24)} ${portablePath(r.runDir)}  ${r.reference.label}`);
    return 0;
  }
  if (action === "table") {
    const table = referenceTable();
    const procedure = procedureTable();
    if (values.readme) {
      const readme = path.join(REPO_ROOT, "README.md");
      writeFileAtomic(readme, updateReadmeTable(fs.readFileSync(readme, "utf8"), table, procedure));
      console.log(`README.md results and procedure tables updated from ${referenceRuns().length} reference runs`);
    } else console.log(`${table}\n\n${procedure}`);
    return 0;
  }
  if (action !== "add" || !runDir) {
    console.error(help);
    return 2;
  }
  const added = addReferenceRun(runDir, { command: values.command, wallSeconds: numberOption("wall-seconds", values["wall-seconds"], 0) });
  console.log(`copied to ${portablePath(added.dest)} (${(added.bytes / 1024).toFixed(0)} KiB, ${added.run.reference.label})`);
  console.log(added.line);
  return 0;
}
