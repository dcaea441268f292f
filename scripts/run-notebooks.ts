/**
 * `npm start`: executes every notebook headless, top to bottom, with the tslab kernel, and
 * writes the executed copies (.ipynb and .html) to results/notebooks/. Figures are written by
 * the notebooks' last cells to results/figures/. An error, or any output on stderr (where tslab
 * reports TypeScript errors and a failed import), in any cell fails the command.
 *
 * Each copy is executed where it is written (its relative imports moved there), so it reruns in
 * place when opened, and is signed as trusted for the user who ran it (nbformat's signer, as `jupyter trust`), so
 * Jupyter draws its interactive figures; each figure also carries a PNG for other viewers.
 *
 *   npm start                          all notebooks, quick profile
 *   npm start -- 01 03                 notebooks whose names start with 01 or 03
 *   EXPERIMENT_PROFILE=full npm start  the report's protocol (hours)
 *   UTKFACE_DIR=... npm start          another data directory (default: data/UTKFace, else data/sample)
 *
 * Environment: JUPYTER (default "jupyter"), PYTHON (the Python of that Jupyter; default: read
 * from the jupyter script's #! line), NOTEBOOK_TIMEOUT (seconds per cell, default 3600).
 *
 * Execution goes through scripts/run-notebooks.py (nbclient, as nbconvert --execute) so a
 * failed notebook still leaves its executed copy and the failing cell's TypeScript errors are
 * printed; HTML comes from `jupyter nbconvert --to html`.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, RESULTS_DIR } from "../lib/core/paths";
import { writeFileAtomic, writeJsonAtomic } from "../lib/core/files";
import { findJupyter, htmlExporterArgs, installKernelSpec, jupyterEnv, jupyterPython, KERNEL_NAME, relocateImports, trustNotebooks } from "./jupyter";

const NOTEBOOKS_DIR = path.join(REPO_ROOT, "notebooks");
const OUT_DIR = path.join(RESULTS_DIR, "notebooks");

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const r = spawnSync(cmd, args, { stdio: "inherit", env, cwd: REPO_ROOT });
  if (r.error) throw new Error(`Could not run ${cmd}: ${r.error.message}`);
  return r.status ?? 1;
}

/** What `executeCopy` needs to run Jupyter. */
export interface ExecuteOptions {
  jupyter: string;
  /** The Python of that Jupyter (nbclient, nbformat). */
  python: string;
  /** Environment of the kernel and of Jupyter (see `jupyterEnv`). */
  env: NodeJS.ProcessEnv;
  /** Seconds per cell. */
  timeout: string;
}

/**
 * Executes a copy of `notebook` in `outDir` (its relative imports moved there, the kernel
 * started there, so the copy reruns in place), signs it as trusted for this user and writes
 * its HTML beside it. `ok` is false when a cell failed or wrote to stderr.
 */
export function executeCopy(notebook: string, outDir: string, o: ExecuteOptions): { ok: boolean; seconds: number; file: string } {
  const t0 = Date.now();
  fs.mkdirSync(outDir, { recursive: true });
  const executed = path.join(outDir, path.basename(notebook));
  writeFileAtomic(executed, relocateImports(fs.readFileSync(notebook, "utf8"), path.dirname(notebook), outDir));
  const code = run(o.python, [path.join(REPO_ROOT, "scripts", "run-notebooks.py"), executed, executed, KERNEL_NAME, o.timeout], o.env);
  // Signed for this user, so Jupyter runs the copy's figure scripts when it is opened.
  const untrusted = fs.existsSync(executed) ? trustNotebooks(o.python, [executed], o.env) : undefined;
  if (untrusted) console.error(`[notebooks] could not sign ${executed} as trusted (${untrusted}); its figures show as static pictures until you trust it.`);
  const seconds = (Date.now() - t0) / 1000;
  // HTML of the executed copy (figures inline, offline); also for a failed one, to read where it stopped.
  const html = fs.existsSync(executed) && run(o.jupyter, ["nbconvert", "--to", "html", ...htmlExporterArgs(), "--output-dir", outDir, executed], o.env) === 0;
  return { ok: code === 0 && html, seconds, file: executed };
}

function main(argv: string[]): number {
  const jupyter = findJupyter();
  if (!jupyter) {
    console.error(`"${process.env.JUPYTER || "jupyter"} nbconvert" does not run. Install Jupyter with nbconvert (Debian, as root: bash scripts/system-deps.sh; or apt-get install jupyter-nbconvert python3-nbclient python3-ipykernel; or pip install nbconvert nbclient ipykernel) or set JUPYTER=/path/to/jupyter.`);
    return 1;
  }
  const python = jupyterPython(jupyter);
  console.log("[notebooks] building dist/ (the notebooks import ../dist/lib)");
  if (run(process.execPath, [path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], process.env) !== 0) {
    console.error("[notebooks] tsc reported errors; dist/ may be stale (continuing: a cell that needs a broken function will fail).");
  }
  installKernelSpec();
  const env = jupyterEnv({ EXPERIMENT_PROFILE: process.env.EXPERIMENT_PROFILE || "quick" });
  const all = fs.readdirSync(NOTEBOOKS_DIR).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
  const chosen = argv.length ? all.filter((f) => argv.some((a) => f.startsWith(a))) : all;
  if (chosen.length === 0) {
    console.error(`No notebook in notebooks/ matches ${argv.join(", ") || "NN-*.ipynb"}. Notebooks: ${all.join(", ")}.`);
    return 2;
  }
  const timeout = process.env.NOTEBOOK_TIMEOUT || "3600";
  const summary: { notebook: string; ok: boolean; seconds: number }[] = [];
  for (const nb of chosen) {
    const name = nb.replace(/\.ipynb$/, "");
    console.log(`[notebooks] ${name}: executing (profile ${env.EXPERIMENT_PROFILE})`);
    const { ok, seconds } = executeCopy(path.join(NOTEBOOKS_DIR, nb), OUT_DIR, { jupyter, python, env, timeout });
    summary.push({ notebook: name, ok, seconds: Math.round(seconds * 10) / 10 });
    console.log(`[notebooks] ${name}: ${ok ? "ok" : "FAILED"} in ${seconds.toFixed(1)} s`);
  }
  writeJsonAtomic(path.join(OUT_DIR, "summary.json"), { profile: env.EXPERIMENT_PROFILE, finishedAt: new Date().toISOString(), notebooks: summary });
  console.log("\n" + summary.map((s) => `${s.ok ? "ok    " : "FAILED"} ${s.seconds.toFixed(1).padStart(7)} s  ${s.notebook}`).join("\n"));
  console.log(`\nExecuted notebooks and HTML: results/notebooks/   figures: results/figures/`);
  return summary.every((s) => s.ok) ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
