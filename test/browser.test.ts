/**
 * Plotly figures render offline in a real browser: a page built from the library's inline
 * bundle, and the nbconvert HTML of a notebook executed with the tslab kernel, both opened in
 * headless Chromium; each must contain Plotly's SVG and log no console error. Screenshots go to
 * results/browser-test/ for a human to look at.
 */
import { spawnSync } from "child_process";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { test } from "node:test";
import { chromiumPath, launchChromium } from "../lib/notebook/export";
import { confusionMatrixFigure, groupGenderCountsFigure } from "../lib/analysis/figures";
import { figureHtml, plotlyInitHtml } from "../lib/notebook/display";
import { REPO_ROOT, RESULTS_DIR } from "../lib/core/paths";
import { renderFigurePngsSync } from "../lib/notebook/static-figures";
import { findJupyter, htmlExporterArgs, installKernelSpec, KERNEL_HOME } from "../scripts/jupyter";
import { skipUnlessCI } from "./helpers";
import { notebookJson } from "../scripts/make-notebooks";

const OUT = path.join(RESULTS_DIR, "browser-test");
const haveChromium = fs.existsSync(chromiumPath());
const jupyter = findJupyter() ?? (process.env.JUPYTER || "jupyter");
const haveNbconvert = findJupyter() !== undefined;

/** Opens a local HTML file, waits for Plotly's SVGs, screenshots it; returns counts and console errors. */
async function openInChromium(file: string, screenshot: string): Promise<{ plots: number; errors: string[] }> {
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("requestfailed", (r) => errors.push(`failed to load ${r.url()}`));
    // Any request leaving file:// would be a CDN dependency: count it as an error.
    page.on("request", (r) => {
      if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) errors.push(`network request to ${r.url()}`);
    });
    await page.goto(`file://${file}`);
    await page.waitForSelector("svg.main-svg", { timeout: 30000 });
    const plots = await page.locator(".js-plotly-plot").count();
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    return { plots, errors };
  } finally {
    await browser.close();
  }
}

test("an HTML page with the inline Plotly bundle renders two charts in Chromium", { skip: skipUnlessCI(haveChromium ? false : `no Chromium at ${chromiumPath()} (set CHROMIUM_PATH)`) }, async () => {
  const counts = groupGenderCountsFigure(
    [
      { group: "0 - 4", male: 3, female: 4 },
      { group: "5 - 9", male: 2, female: 1 },
    ],
    { split: "all", images: 10 },
  );
  const cm = confusionMatrixFigure({ labels: ["Male", "Female"], matrix: [[5, 1], [2, 4]] }, "Gender", { split: "test", images: 12 });
  // Figures placed before the bundle must wait for it (the queue), as in a reopened notebook.
  const html = `<!doctype html><html><body>${figureHtml(counts)}${plotlyInitHtml()}${figureHtml(cm)}</body></html>`;
  const file = path.join(OUT, "inline-plotly.html");
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(file, html);
  const { plots, errors } = await openInChromium(file, path.join(OUT, "inline-plotly.png"));
  assert.deepEqual(errors, []);
  assert.equal(plots, 2);
});

test(
  "a notebook executed with the tslab kernel exports HTML whose Plotly charts render offline",
  { skip: skipUnlessCI(!haveChromium ? `no Chromium at ${chromiumPath()}` : !haveNbconvert ? `"${jupyter} nbconvert" does not run (install jupyter-nbconvert)` : !fs.existsSync(path.join(REPO_ROOT, "dist", "lib", "index.js")) ? "dist/ not built (npm run build)" : false), timeout: 180000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(REPO_ROOT, "notebooks", ".browser-test-"));
    try {
      const nb = path.join(dir, "plot.ipynb");
      // Two cells, the second run twice, so the figure shows after a rerun too.
      const cells = [
        { cell_type: "code" as const, source: 'import * as ut from "../../dist/lib";\nut.initNotebookPlotly();' },
        { cell_type: "code" as const, source: 'const fig = ut.groupGenderCountsFigure([{ group: "0 - 4", male: 3, female: 4 }], { split: "all", images: 7 });\nut.show(fig);' },
        { cell_type: "code" as const, source: 'const fig = ut.groupGenderCountsFigure([{ group: "0 - 4", male: 3, female: 4 }], { split: "all", images: 7 });\nut.show(fig);' },
      ];
      fs.writeFileSync(nb, notebookJson(cells));
      installKernelSpec();
      const env = { ...process.env, JUPYTER_PATH: KERNEL_HOME, PYDEVD_DISABLE_FILE_VALIDATION: "1" };
      const exec = spawnSync(jupyter, ["nbconvert", "--to", "html", ...htmlExporterArgs(), "--execute", "--ExecutePreprocessor.kernel_name=tslab", "--output-dir", dir, nb], { env, encoding: "utf8" });
      assert.equal(exec.status, 0, `nbconvert failed:\n${exec.stderr}`);
      const html = path.join(dir, "plot.html");
      const { plots, errors } = await openInChromium(html, path.join(OUT, "notebook-html.png"));
      assert.deepEqual(errors, []);
      assert.equal(plots, 2);
      // One copy of the bundle, not one per figure.
      const text = fs.readFileSync(html, "utf8");
      assert.equal(text.split("plotly.js loaded inline").length - 1, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("figures get a static PNG of their layout size, drawn in the process's shared Chromium, and the HTML holds it until the script draws", { skip: skipUnlessCI(haveChromium ? false : `no Chromium at ${chromiumPath()} (set CHROMIUM_PATH)`), timeout: 180000 }, async () => {
  const counts = groupGenderCountsFigure([{ group: "0 - 4", male: 3, female: 4 }], { split: "all", images: 7 });
  const cm = { ...confusionMatrixFigure({ labels: ["Male", "Female"], matrix: [[5, 1], [2, 4]] }, "Gender", { split: "test", images: 12 }) };
  cm.layout = { ...cm.layout, width: 500, height: 400 };
  const { pngs, reason } = renderFigurePngsSync([counts, cm]);
  assert.ok(pngs, `no pictures: ${reason}`);
  const sharp = (await import("sharp")).default;
  const sizes = await Promise.all(pngs.map(async (b64) => sharp(Buffer.from(b64, "base64")).metadata()));
  assert.deepEqual(sizes.map((m) => [m.format, m.width, m.height]), [["png", 800, 450], ["png", 500, 400]]);
  // Not a blank picture: a drawn chart has many distinct colours.
  const { data, info } = await sharp(Buffer.from(pngs[0], "base64")).raw().toBuffer({ resolveWithObject: true });
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += info.channels) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  assert.ok(colours.size > 20, `only ${colours.size} colours in the picture`);
  // Opened as a page, the script replaces the picture with the chart.
  const file = path.join(OUT, "static-then-interactive.html");
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(file, `<!doctype html><html><body>${plotlyInitHtml()}${figureHtml(cm, "fig", pngs[1])}</body></html>`);
  assert.match(fs.readFileSync(file, "utf8"), /<div id="fig"[^>]*><img class="utkface-static" src="data:image\/png;base64,/);
  const { plots, errors } = await openInChromium(file, path.join(OUT, "static-then-interactive.png"));
  assert.deepEqual(errors, []);
  assert.equal(plots, 1);
});

test("launchChromium names the missing executable", async () => {
  const saved = process.env.CHROMIUM_PATH;
  process.env.CHROMIUM_PATH = path.join(os.tmpdir(), "no-such-chromium");
  try {
    await assert.rejects(launchChromium(), /no-such-chromium.*CHROMIUM_PATH/);
  } finally {
    if (saved === undefined) delete process.env.CHROMIUM_PATH;
    else process.env.CHROMIUM_PATH = saved;
  }
});
