/**
 * What the notebook scripts share about Jupyter: finding a Jupyter that has a given
 * subcommand and its Python, the tslab kernel spec (one name, one display name, the absolute
 * path of this checkout's tslab), signing executed copies as trusted, and moving a notebook's
 * relative imports when the notebook is written to another folder.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../lib/core/paths";

/** The kernel's name, in every notebook's metadata and in the kernel spec. */
export const KERNEL_NAME = "tslab";
/** The kernel's menu name, the same in the notebooks' metadata and the kernel spec (else Jupyter marks each opened notebook changed). */
export const KERNEL_DISPLAY_NAME = "TypeScript (tslab)";
/** Project-local Jupyter data folder holding the tslab kernel spec (ignored by git). */
export const KERNEL_HOME = path.join(REPO_ROOT, ".cache", "jupyter");

/** The notebook metadata naming the tslab kernel. */
export function kernelspecMetadata(): { name: string; display_name: string; language: string } {
  return { name: KERNEL_NAME, display_name: KERNEL_DISPLAY_NAME, language: "typescript" };
}

/**
 * Writes the tslab kernel spec into `<home>/kernels/tslab/`, with the absolute path of this
 * checkout's tslab, so Jupyter starts the kernel without node_modules/.bin on its PATH (a bare
 * `tslab`, as `tslab install` writes, fails with FileNotFoundError outside npm scripts).
 */
export function installKernelSpec(home: string = KERNEL_HOME): string {
  const bin = path.join(REPO_ROOT, "node_modules", ".bin", process.platform === "win32" ? "tslab.cmd" : "tslab");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm install\` first (tslab is a dependency).`);
  const dir = path.join(home, "kernels", KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  const { display_name, language } = kernelspecMetadata();
  const spec = { argv: [bin, "kernel", "--config-path", "{connection_file}"], display_name, language };
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(spec, null, 2) + "\n");
  return dir;
}

/** The environment for a Jupyter that must see the project-local kernel spec. */
export function jupyterEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JUPYTER_PATH: [KERNEL_HOME, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
    // Python's debugger warnings about frozen modules are noise in CI logs.
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
    ...extra,
  };
}

/**
 * The Jupyter to run for `subcommand` ("nbconvert", "notebook", "lab"): $JUPYTER, else the one
 * on PATH, else Debian's /usr/bin/jupyter (a pyenv or venv shim on PATH may lack it).
 * Undefined when none runs `<subcommand> --version`.
 */
export function findJupyter(subcommand = "nbconvert"): string | undefined {
  const candidates = process.env.JUPYTER ? [process.env.JUPYTER] : ["jupyter", "/usr/bin/jupyter"];
  return candidates.find((j) => spawnSync(j, [subcommand, "--version"], { encoding: "utf8" }).status === 0);
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

/**
 * Signs notebooks as trusted for the user running this (what `jupyter trust` does: Jupyter's
 * notary database in that user's Jupyter data folder, or $JUPYTER_DATA_DIR), so Jupyter runs
 * their figure scripts when they are opened. Runs nbformat's signer with `python` (Debian's
 * Jupyter ships no `jupyter trust` command). Returns an error message, or undefined when signed.
 */
export function trustNotebooks(python: string, files: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (files.length === 0) return undefined;
  const r = spawnSync(python, ["-m", "nbformat.sign", ...files], { env, encoding: "utf8" });
  if (r.error) return r.error.message;
  return r.status === 0 ? undefined : (r.stderr || r.stdout || `exit status ${r.status}`).trim();
}

/**
 * The notebook text with every relative module specifier in its code cells (`from "../dist/lib"`)
 * rewritten for a copy written to `toDir`: the copy's kernel starts in `toDir`, so the copy
 * reruns in place. Specifiers that do not start with "./" or "../" are left alone.
 */
export function relocateImports(notebookText: string, fromDir: string, toDir: string): string {
  const nb = JSON.parse(notebookText) as { cells: { cell_type: string; source: string[] | string }[] };
  const move = (spec: string) => {
    let rel = path.relative(toDir, path.resolve(fromDir, spec)).split(path.sep).join("/");
    if (!rel.startsWith(".")) rel = `./${rel}`;
    return rel;
  };
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    const text = [cell.source].flat().join("");
    const moved = text.replace(/(\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(["'])(\.\.?\/[^"']*)\2/g, (_m, lead: string, q: string, spec: string) => `${lead}${q}${move(spec)}${q}`);
    if (moved !== text) cell.source = moved.split(/(?<=\n)/);
  }
  return JSON.stringify(nb, null, 1) + "\n";
}
