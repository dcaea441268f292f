/**
 * `npm start`: executes every notebook headless, top to bottom, with the tslab kernel, and
 * writes the executed copies (.ipynb and .html) to results/notebooks/. Figures are written by
 * the notebooks' last cells to results/figures/. An error in any cell fails the command.
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
import { writeJsonAtomic } from "../lib/core/files";

const NOTEBOOKS_DIR = path.join(REPO_ROOT, "notebooks");
const OUT_DIR = path.join(RESULTS_DIR, "notebooks");
/** Project-local Jupyter data folder holding the tslab kernel spec (ignored by git). */
export const KERNEL_HOME = path.join(REPO_ROOT, ".cache", "jupyter");

/**
 * Writes the tslab kernel spec into .cache/jupyter/kernels/tslab/, with the absolute path of
 * this checkout's tslab, so Jupyter finds the kernel without node_modules/.bin on its PATH.
 */
export function installKernelSpec(home: string = KERNEL_HOME): string {
  const bin = path.join(REPO_ROOT, "node_modules", ".bin", process.platform === "win32" ? "tslab.cmd" : "tslab");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm install\` first (tslab is a dependency).`);
  const dir = path.join(home, "kernels", "tslab");
  fs.mkdirSync(dir, { recursive: true });
  const spec = { argv: [bin, "kernel", "--config-path", "{connection_file}"], display_name: "TypeScript (tslab)", language: "typescript" };
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(spec, null, 2) + "\n");
  return dir;
}

/**
 * nbconvert HTML options that keep the page offline: Debian's nbconvert points require.js and
 * MathJax at /usr/share/javascript (packages libjs-requirejs, libjs-mathjax), upstream at a CDN.
 * Where the local files are missing, an empty data: script stands in (MathJax is optional in
 * the template; require.js is not needed by our figures), so the page logs no load errors.
 */
export function htmlExporterArgs(): string[] {
  const local = (file: string) => (fs.existsSync(file) ? `file://${file}` : "data:text/javascript,");
  return [
    `--HTMLExporter.require_js_url=${local("/usr/share/javascript/requirejs/require.min.js")}`,
    `--HTMLExporter.mathjax_url=${local("/usr/share/javascript/mathjax/MathJax.js")}`,
  ];
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const r = spawnSync(cmd, args, { stdio: "inherit", env, cwd: REPO_ROOT });
  if (r.error) throw new Error(`Could not run ${cmd}: ${r.error.message}`);
  return r.status ?? 1;
}

/** The Python that runs `jupyter`: $PYTHON, else the interpreter on the jupyter script's #! line. */
export function jupyterPython(jupyter: string): string {
  if (process.env.PYTHON) return process.env.PYTHON;
  const which = spawnSync("sh", ["-c", `command -v "${jupyter}"`], { encoding: "utf8" }).stdout.trim();
  try {
    const first = fs.readFileSync(which, "utf8").split("\n", 1)[0];
    const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (m) return m[1].endsWith("/env") && m[2] ? m[2] : m[1];
  } catch {
    // Not a script (a binary launcher): fall through.
  }
  return "python3";
}

/**
 * The Jupyter to run: $JUPYTER, else the one on PATH, else Debian's (a pyenv or venv shim on
 * PATH may lack nbconvert). Undefined when none runs `nbconvert`.
 */
export function findJupyter(): string | undefined {
  const candidates = process.env.JUPYTER ? [process.env.JUPYTER] : ["jupyter", "/usr/bin/jupyter"];
  return candidates.find((j) => spawnSync(j, ["nbconvert", "--version"], { encoding: "utf8" }).status === 0);
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
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_PATH: [KERNEL_HOME, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
    EXPERIMENT_PROFILE: process.env.EXPERIMENT_PROFILE || "quick",
    // Python's debugger warnings about frozen modules are noise in CI logs.
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const all = fs.readdirSync(NOTEBOOKS_DIR).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
  const chosen = argv.length ? all.filter((f) => argv.some((a) => f.startsWith(a))) : all;
  if (chosen.length === 0) {
    console.error(`No notebook in notebooks/ matches ${argv.join(", ") || "NN-*.ipynb"}. Notebooks: ${all.join(", ")}.`);
    return 2;
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const timeout = process.env.NOTEBOOK_TIMEOUT || "3600";
  const summary: { notebook: string; ok: boolean; seconds: number }[] = [];
  for (const nb of chosen) {
    const name = nb.replace(/\.ipynb$/, "");
    console.log(`[notebooks] ${name}: executing (profile ${env.EXPERIMENT_PROFILE})`);
    const t0 = Date.now();
    const executed = path.join(OUT_DIR, nb);
    const code = run(python, [path.join(REPO_ROOT, "scripts", "run-notebooks.py"), path.join(NOTEBOOKS_DIR, nb), executed, "tslab", timeout], env);
    const seconds = (Date.now() - t0) / 1000;
    // HTML of the executed copy (figures inline, offline); also for a failed one, to read where it stopped.
    const html = fs.existsSync(executed) && run(jupyter, ["nbconvert", "--to", "html", ...htmlExporterArgs(), "--output-dir", OUT_DIR, executed], env) === 0;
    const ok = code === 0 && html;
    summary.push({ notebook: name, ok, seconds: Math.round(seconds * 10) / 10 });
    console.log(`[notebooks] ${name}: ${ok ? "ok" : "FAILED"} in ${seconds.toFixed(1)} s`);
  }
  writeJsonAtomic(path.join(OUT_DIR, "summary.json"), { profile: env.EXPERIMENT_PROFILE, finishedAt: new Date().toISOString(), notebooks: summary });
  console.log("\n" + summary.map((s) => `${s.ok ? "ok    " : "FAILED"} ${s.seconds.toFixed(1).padStart(7)} s  ${s.notebook}`).join("\n"));
  console.log(`\nExecuted notebooks and HTML: results/notebooks/   figures: results/figures/`);
  return summary.every((s) => s.ok) ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
