/**
 * `npm run notebook`: makes the notebooks openable in one command. It builds dist/ (what the
 * notebooks import), registers the tslab kernel in the project-local .cache/jupyter/ (the
 * absolute path of this checkout's tslab, the display name the notebooks carry), and starts
 * Jupyter (JupyterLab where installed, else the classic Notebook) on this checkout, opened at
 * notebooks/, listening on 127.0.0.1 only. Executed copies in results/notebooks/ open from the
 * same server.
 *
 *   npm run notebook                       start Jupyter (arguments after -- go to it: --port 9000, --no-browser)
 *   npm run notebook -- --classic          the classic Notebook even where JupyterLab is installed
 *   npm run notebook -- --register         only register the kernel for your user (an existing JupyterLab's menu)
 *
 * Environment: JUPYTER (the jupyter command; default the one on PATH, else /usr/bin/jupyter).
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../lib/core/paths";
import { findJupyter, installKernelSpec, jupyterEnv, jupyterPython, KERNEL_DISPLAY_NAME, KERNEL_NAME } from "./jupyter";

/** Options of `jupyterServerCommand`. */
export interface ServerOptions {
  /** "lab", "notebook", or undefined for JupyterLab where installed, else the classic Notebook. */
  app?: "lab" | "notebook";
  /** Extra arguments for Jupyter (port, token, --no-browser, ...). */
  args?: readonly string[];
}

/**
 * The command that serves this checkout with the project's kernel: which jupyter, which app,
 * its arguments and environment. Throws a clear error when no Jupyter with a web UI runs.
 */
export function jupyterServerCommand(options: ServerOptions = {}): { jupyter: string; app: "lab" | "notebook"; args: string[]; env: NodeJS.ProcessEnv } {
  const apps = options.app ? [options.app] : (["lab", "notebook"] as const);
  for (const app of apps) {
    const jupyter = findJupyter(app);
    if (!jupyter) continue;
    // The server's root is the checkout, so results/notebooks/ opens too; the browser starts at notebooks/.
    const start = app === "lab" ? "--LabApp.default_url=/lab/tree/notebooks" : "--NotebookApp.default_url=/tree/notebooks";
    // Jupyter refuses to start as root without --allow-root (containers, CI): still local-only.
    const root = process.getuid?.() === 0 ? ["--allow-root"] : [];
    const args = [app, "--ip=127.0.0.1", `--notebook-dir=${REPO_ROOT}`, start, ...root, ...(options.args ?? [])];
    return { jupyter, app, args, env: jupyterEnv() };
  }
  throw new Error(
    `No Jupyter web UI found (tried ${apps.map((a) => `"${process.env.JUPYTER || "jupyter"} ${a}"`).join(", ")}). ` +
      "Debian, as root: bash scripts/system-deps.sh (installs jupyter-notebook); elsewhere: pip install notebook (or jupyterlab), or set JUPYTER=/path/to/jupyter.",
  );
}

/**
 * Registers the project's kernel spec for the current user, for a Jupyter started elsewhere:
 * the same kernel.json, written to that Jupyter's user data folder (`jupyter --data-dir`, where
 * `jupyter kernelspec install --user` would put it; Debian's Jupyter has no `kernelspec`
 * command). Returns the folder written.
 */
export function registerUserKernel(): string {
  const candidates = process.env.JUPYTER ? [process.env.JUPYTER] : ["jupyter", "/usr/bin/jupyter"];
  for (const jupyter of candidates) {
    const r = spawnSync(jupyter, ["--data-dir"], { encoding: "utf8" });
    const dataDir = r.status === 0 ? r.stdout.trim() : "";
    if (dataDir) return installKernelSpec(dataDir);
  }
  throw new Error(`"${candidates.join('" and "')} --data-dir" did not run: install Jupyter (Debian: bash scripts/system-deps.sh) or set JUPYTER=/path/to/jupyter.`);
}

function build(): void {
  const tsc = path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { stdio: "inherit", cwd: REPO_ROOT });
  if (r.status !== 0) console.error("[notebook] tsc reported errors; dist/ may be stale (a cell that needs a broken function will fail).");
}

function main(argv: string[]): number {
  const register = argv.includes("--register");
  const app = argv.includes("--classic") ? "notebook" : argv.includes("--lab") ? "lab" : undefined;
  const rest = argv.filter((a) => !["--register", "--classic", "--lab"].includes(a));
  if (!fs.existsSync(path.join(REPO_ROOT, "node_modules", ".bin", "tslab"))) {
    console.error("[notebook] node_modules/.bin/tslab is missing: run `npm install` first.");
    return 1;
  }
  console.log("[notebook] building dist/ (the notebooks import it)");
  build();
  if (register) {
    try {
      console.log(`[notebook] kernel spec written to ${registerUserKernel()}`);
    } catch (e) {
      console.error(`[notebook] ${(e as Error).message}`);
      return 1;
    }
    console.log(`[notebook] choose the "${KERNEL_DISPLAY_NAME}" kernel in your Jupyter; it runs this checkout's tslab.`);
    return 0;
  }
  let server;
  try {
    server = jupyterServerCommand({ app, args: rest });
  } catch (e) {
    console.error(`[notebook] ${(e as Error).message}`);
    return 1;
  }
  const kernelDir = installKernelSpec();
  console.log(`[notebook] kernel "${KERNEL_DISPLAY_NAME}" registered in ${path.relative(REPO_ROOT, kernelDir)} (Python of this Jupyter: ${jupyterPython(server.jupyter)})`);
  console.log(`[notebook] starting ${server.jupyter} ${server.app} on 127.0.0.1; stop it with Ctrl+C`);
  const child = spawn(server.jupyter, server.args, { stdio: "inherit", env: server.env, cwd: REPO_ROOT });
  // Ctrl+C reaches Jupyter too (same process group); wait for its own shutdown.
  process.on("SIGINT", () => undefined);
  child.on("exit", (code) => process.exit(code ?? 0));
  return 0;
}

if (require.main === module) {
  const code = main(process.argv.slice(2));
  if (code !== 0) process.exitCode = code;
}
