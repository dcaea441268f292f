/**
 * The notebooks as a user meets them, through a real client: Debian's classic Jupyter Notebook
 * web UI (started as `npm run notebook` starts it, on 127.0.0.1 with a token) driven in the
 * system Chromium. It runs notebooks 01 and 03 with Cell > Run All and checks no error and no
 * stderr output, the number of drawn Plotly figures, a visible progress bar while 03 trains,
 * and no request leaving the machine. Then it opens the executed copy of 01 in
 * results/notebooks/ without running it (its figures draw), an unsigned twin of it (static
 * pictures and the faces grid's rows show), and reruns that twin's Setup cell in place.
 * Screenshots: results/jupyter-ui-test/.
 */
import { spawn, type ChildProcess } from "child_process";
import * as assert from "node:assert/strict";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { chromiumPath, launchChromium } from "../lib/notebook/export";
import { runFigures } from "../lib/analysis/run-figures";
import { referenceFigures, referenceRun } from "../lib/analysis/reference";
import { REPO_ROOT, RESULTS_DIR } from "../lib/core/paths";
import { listRuns, loadRun } from "../lib/records/runs";
import { findJupyter, installKernelSpec, jupyterEnv, jupyterPython } from "../scripts/jupyter";
import { jupyterServerCommand } from "../scripts/notebook";
import { executeCopy } from "../scripts/run-notebooks";
import { skipUnlessCI } from "./helpers";

const OUT = path.join(RESULTS_DIR, "jupyter-ui-test");
const NOTEBOOKS = path.join(REPO_ROOT, "notebooks");
const COPIES = path.join(RESULTS_DIR, "notebooks");
const haveChromium = fs.existsSync(chromiumPath());
const classic = findJupyter("notebook");
const nbconvert = findJupyter("nbconvert");
const haveDist = fs.existsSync(path.join(REPO_ROOT, "dist", "lib", "index.js"));
const skip = skipUnlessCI(
  !haveChromium ? `no Chromium at ${chromiumPath()}` : !classic ? "no classic Jupyter Notebook (Debian: apt-get install jupyter-notebook)" : !nbconvert ? "no jupyter nbconvert" : !haveDist ? "dist/ not built (npm run build)" : false,
);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitForServer(url: string, server: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (server.exitCode !== null) throw new Error(`Jupyter exited with ${server.exitCode}:\n${log()}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Jupyter did not answer ${url} within 60 s:\n${log()}`);
}

type JupyterWindow = {
  __utkface?: { busy: boolean; finished: number };
  Jupyter: {
    notebook: {
      events: { on(e: string, f: () => void): void; one(e: string, f: () => void): void };
      get_cells(): { cell_type: string; input_prompt_number?: number | string | null }[];
    };
  };
};

/**
 * Follows the notebook's own state from Jupyter's JS objects, not from DOM nodes (outputs are
 * re-rendered while a cell runs): the kernel's busy/idle status messages and the number of
 * finished cell executions. Called before the cells are run.
 */
async function trackKernel(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as JupyterWindow;
    const state = { busy: false, finished: 0 };
    w.__utkface = state;
    w.Jupyter.notebook.events.on("kernel_busy.Kernel", () => (state.busy = true));
    w.Jupyter.notebook.events.on("kernel_idle.Kernel", () => (state.busy = false));
    w.Jupyter.notebook.events.on("finished_execute.CodeCell", () => state.finished++);
  });
}

/**
 * Waits until every code cell of a Run All has finished: as many finished executions as code
 * cells, each cell holding a numeric execution count (none pending, "*"), the kernel idle.
 */
async function waitForCellsDone(page: Page, timeoutMs: number, onPoll?: () => Promise<void>): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (onPoll) await onPoll();
    const done = await page.evaluate(() => {
      const w = window as unknown as JupyterWindow;
      const cells = w.Jupyter.notebook.get_cells().filter((c) => c.cell_type === "code");
      const state = w.__utkface!;
      return !state.busy && cells.length > 0 && state.finished >= cells.length && cells.every((c) => typeof c.input_prompt_number === "number");
    });
    if (done) return;
    await page.waitForTimeout(500);
  }
  throw new Error(`cells still running after ${timeoutMs / 1000} s`);
}

/**
 * Whether a training progress bar is on screen now; if so it is scrolled into view in the same
 * page task, so no node can be replaced between finding and scrolling it.
 */
function showProgressBar(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const bars = Array.from(document.querySelectorAll<HTMLElement>(".output_area")).filter((e) => /epoch \d+\/\d+ \[[=> ]+\] \d+\/\d+/.test(e.innerText));
    const bar = bars[bars.length - 1];
    if (!bar || bar.getClientRects().length === 0) return false;
    bar.scrollIntoView({ block: "center" });
    return true;
  });
}

/** Texts of error and stderr outputs on the page. */
function failures(page: Page): Promise<string[]> {
  return page.evaluate(() => Array.from(document.querySelectorAll(".output_error, .output_stderr")).map((e) => (e as HTMLElement).innerText.slice(0, 500)));
}

async function openNotebook(page: Page, base: string, relPath: string, token: string): Promise<void> {
  await page.goto(`${base}/notebooks/${relPath.split(path.sep).join("/")}?token=${token}`);
  await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 120_000 });
}

async function runAll(page: Page): Promise<void> {
  await trackKernel(page);
  await page.click("#celllink");
  await page.click("#run_all_cells > a");
}

/**
 * Screenshot of every output holding a figure or a face (classic Notebook scrolls inside the
 * page, so a full-page shot would show only the top), plus the visible window.
 */
async function screenshots(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
  const outputs = page.locator(".code_cell .output_wrapper").filter({ has: page.locator(".utkface-plot, .output_html img, .utkface-faces") });
  const n = await outputs.count();
  for (let i = 0; i < n; i++) await outputs.nth(i).screenshot({ path: path.join(OUT, `${name}-output-${i + 1}.png`) });
}

/** Plotly figures drawn by the library's `show`: each a .utkface-plot div that Plotly turned into an SVG chart. */
function drawnFigures(page: Page): Promise<number> {
  return page.locator(".utkface-plot.js-plotly-plot").filter({ has: page.locator("svg.main-svg") }).count();
}

test("the notebooks through Jupyter's web UI: run all, open an executed copy, rerun it in place", { skip, timeout: 900_000 }, async () => {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const jupyterHome = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-jupyter-"));
  // A Jupyter of its own: its config, runtime files and notary database (trust signatures) stay in a temp folder.
  const env = jupyterEnv({
    JUPYTER_DATA_DIR: path.join(jupyterHome, "data"),
    JUPYTER_CONFIG_DIR: path.join(jupyterHome, "config"),
    JUPYTER_RUNTIME_DIR: path.join(jupyterHome, "runtime"),
    // The smoke cut of the quick profile: 03 trains in seconds here, as it did before issue 21.
    EXPERIMENT_PROFILE: "smoke",
  });
  const tag = `ui-test-${process.pid}`;
  // Run-all copies beside the originals (same relative import), hidden names so nothing lists them.
  const runCopies = ["01-data-exploration", "03-relu-age-model"].map((n) => {
    const file = path.join(NOTEBOOKS, `.${tag}-${n}.ipynb`);
    fs.copyFileSync(path.join(NOTEBOOKS, `${n}.ipynb`), file);
    return file;
  });
  const twin = path.join(COPIES, `.${tag}-01-untrusted.ipynb`);
  let server: ChildProcess | undefined;
  const browser = await launchChromium();
  try {
    // The executed copy a user would open, made as `npm start` makes it (signed in this Jupyter's notary).
    installKernelSpec();
    const jupyter = nbconvert!;
    const executed = executeCopy(path.join(NOTEBOOKS, "01-data-exploration.ipynb"), COPIES, { jupyter, python: jupyterPython(jupyter), env, timeout: "600" });
    assert.ok(executed.ok, "headless run of 01 failed (see its output above)");

    const port = await freePort();
    const token = crypto.randomBytes(12).toString("hex");
    const cmd = jupyterServerCommand({ app: "notebook", args: ["--no-browser", `--port=${port}`, "--NotebookApp.port_retries=0", `--NotebookApp.token=${token}`, "--ContentsManager.allow_hidden=True"] });
    let log = "";
    server = spawn(cmd.jupyter, cmd.args, { env: { ...cmd.env, ...env }, cwd: REPO_ROOT });
    server.stdout!.on("data", (d) => (log += d));
    server.stderr!.on("data", (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    await waitForServer(`${base}/api/status?token=${token}`, server, () => log);

    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    const offMachine: string[] = [];
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (!["data:", "blob:", "about:"].includes(url.protocol) && url.hostname !== "127.0.0.1") offMachine.push(r.url());
    });

    // 01: run all through the menu; its Figures cell draws 4 figures.
    await openNotebook(page, base, path.relative(REPO_ROOT, runCopies[0]), token);
    await runAll(page);
    await waitForCellsDone(page, 300_000);
    assert.deepEqual(await failures(page), [], "01: error or stderr output");
    assert.equal(await drawnFigures(page), 4, "01: drawn Plotly figures");
    await screenshots(page, "01-run-all");

    // 03: a training notebook; the progress bar must show while it trains.
    await openNotebook(page, base, path.relative(REPO_ROOT, runCopies[1]), token);
    await runAll(page);
    let progressSeen = false;
    await waitForCellsDone(page, 600_000, async () => {
      if (progressSeen) return;
      if (await showProgressBar(page)) {
        progressSeen = true;
        await page.screenshot({ path: path.join(OUT, "03-progress.png") });
      }
    });
    assert.ok(progressSeen, "03: no visible progress bar while training");
    assert.deepEqual(await failures(page), [], "03: error or stderr output");
    const runs = listRuns("03-relu-age").filter((r) => r.finished);
    const own = runFigures(loadRun(runs[runs.length - 1].runDir)).length;
    assert.ok(own >= 3, `03's run has ${own} figures`);
    // Beside its own run, 03 draws the committed full-profile reference of the ReLU model.
    const reference = referenceRun("cnn-age-relu-kfold");
    const expected = own + (reference ? referenceFigures(reference).length : 0);
    assert.equal(await drawnFigures(page), expected, "03: drawn Plotly figures");
    await screenshots(page, "03-run-all");

    // The executed copy, opened without running anything: signed, so its figures draw.
    await openNotebook(page, base, path.relative(REPO_ROOT, executed.file), token);
    await page.waitForFunction(() => document.querySelectorAll(".utkface-plot.js-plotly-plot svg.main-svg").length > 0 && Array.from(document.querySelectorAll(".utkface-plot")).every((d) => d.querySelector("svg.main-svg")), undefined, { timeout: 60_000 });
    assert.equal(await drawnFigures(page), 4, "executed copy: drawn Plotly figures");
    await screenshots(page, "01-executed-copy");

    // An unsigned twin (any change voids the signature): figures show their PNG, the faces keep their rows of 5.
    const nb = JSON.parse(fs.readFileSync(executed.file, "utf8")) as { metadata: Record<string, unknown> };
    nb.metadata.utkface_ui_test = true;
    fs.writeFileSync(twin, JSON.stringify(nb));
    await openNotebook(page, base, path.relative(REPO_ROOT, twin), token);
    assert.equal(await page.locator(".js-plotly-plot").count(), 0, "untrusted twin: no script should have run");
    const pictures = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>(".output_html img")).map((i) => ({ w: i.naturalWidth, h: i.clientHeight, top: Math.round(i.getBoundingClientRect().top), plot: i.width >= 400 })),
    );
    const plots = pictures.filter((p) => p.plot);
    assert.equal(plots.length, 4, "untrusted twin: one static picture per figure");
    assert.ok(plots.every((p) => p.w > 0 && p.h > 100), "untrusted twin: the pictures show");
    const faces = pictures.filter((p) => !p.plot);
    assert.equal(faces.length, 15, "untrusted twin: 15 faces");
    assert.equal(new Set(faces.map((f) => f.top)).size, 3, "untrusted twin: the faces grid keeps 3 rows of 5");
    await screenshots(page, "01-untrusted-copy");

    // Rerun its Setup cell where it is: the moved import resolves from results/notebooks/.
    const setup = page.locator(".code_cell").first();
    await setup.locator(".input_area").click();
    // The copy's prompts already hold numbers: wait for this execution's own reply instead.
    await page.evaluate(() => {
      const w = window as unknown as JupyterWindow & { __setupDone?: boolean };
      w.__setupDone = false;
      w.Jupyter.notebook.events.one("finished_execute.CodeCell", () => (w.__setupDone = true));
    });
    await page.click("#celllink");
    await page.click("#run_cell > a");
    await page.waitForFunction(() => (window as unknown as { __setupDone?: boolean }).__setupDone === true, undefined, { timeout: 120_000 });
    assert.deepEqual(await failures(page), [], "rerun Setup in results/notebooks/: error or stderr output");
    assert.match(await setup.locator(".output_area").last().innerText(), /Configuration/);
    await page.screenshot({ path: path.join(OUT, "01-copy-setup-rerun.png") });

    assert.deepEqual(offMachine, [], "requests off the machine");
  } finally {
    await browser.close();
    if (server && server.exitCode === null) {
      server.kill("SIGTERM");
      await new Promise((r) => server!.once("exit", r));
    }
    for (const f of [...runCopies, twin]) {
      fs.rmSync(f, { force: true });
      const checkpoint = path.join(path.dirname(f), ".ipynb_checkpoints", path.basename(f).replace(/\.ipynb$/, "-checkpoint.ipynb"));
      fs.rmSync(checkpoint, { force: true });
    }
    fs.rmSync(jupyterHome, { recursive: true, force: true });
  }
});
