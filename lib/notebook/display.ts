/**
 * Showing things in a tslab notebook: Plotly figures inline and offline, face grids with
 * captions, tables. Outside a notebook (CLI, tests) the same calls print a plain-text line,
 * so library code can call them anywhere.
 *
 * Plotly offline: the first figure of a kernel session (or `initNotebookPlotly()`, which the
 * Setup cell calls) emits the plotly.js bundle once, inline, in an HTML output. Every figure
 * is then a <div> plus a `Plotly.newPlot` call, which works in the classic Notebook, in
 * JupyterLab (trusted notebooks run output scripts) and in nbconvert's HTML, with no CDN.
 * Each figure also carries the `application/vnd.plotly.v1+json` bundle, which JupyterLab's
 * and VS Code's Plotly renderers prefer when installed, and a PNG drawn by the system Chromium
 * (./static-figures.ts), also inside the HTML, for viewers that run no scripts.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { FaceDataset } from "../data/dataset";
import type { NamedFigure, PlotlyFigure } from "../analysis/figures";
import { AnyRun, asLoadedRun, runFigures } from "../analysis/run-figures";
import { HELD_OUT_FIGURES } from "../analysis/metrics";
import { ageDivision, decodeAgeGroup, decodeGender, GENDER_LABELS, predictionCaption } from "../data/labels";
import { buildModel, modelSpec, type ModelOptions } from "../models/registry";
import { permutation } from "../data/splits";
import { CACHE_DIR } from "../core/paths";
import { writeFileAtomic } from "../core/files";
import { figureSize, renderFigurePngsSync } from "./static-figures";

/** The plotly.js bundle installed with the project (plotly.js-dist). */
export function plotlyBundlePath(): string {
  try {
    return require.resolve("plotly.js-dist/plotly.js");
  } catch {
    throw new Error("plotly.js-dist is not installed: run `npm install` in the project folder (it ships the offline Plotly bundle).");
  }
}

let bundleText: string | undefined;

/**
 * The plotly.js source to inline: minified once with esbuild (a tsx dependency) into
 * data/.cache/, because the published bundle is 11 MB and every executed notebook embeds it;
 * the unminified file is used when esbuild is not installed.
 */
export function plotlyBundle(): string {
  if (bundleText) return bundleText;
  const src = plotlyBundlePath();
  const version = (require("plotly.js-dist/package.json") as { version: string }).version;
  const cached = path.join(CACHE_DIR, `plotly-${version}.min.js`);
  if (fs.existsSync(cached)) {
    bundleText = fs.readFileSync(cached, "utf8");
    return bundleText;
  }
  const full = fs.readFileSync(src, "utf8");
  try {
    const esbuild = require("esbuild") as { transformSync(code: string, o: object): { code: string } };
    bundleText = esbuild.transformSync(full, { minify: true, legalComments: "none" }).code;
    writeFileAtomic(cached, bundleText);
  } catch {
    bundleText = full;
  }
  return bundleText;
}

/** Makes a script body safe inside an HTML <script> element. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/**
 * The HTML that loads plotly.js inline. `define`, `module` and `exports` are shadowed so the
 * classic Notebook's require.js does not capture the bundle as an AMD module (plotly's UMD
 * header would otherwise skip setting window.Plotly); figures drawn before it loads are queued.
 */
export function plotlyInitHtml(): string {
  return (
    `<script type="text/javascript">(function(){var define, module, exports;\n${scriptSafe(plotlyBundle())}\n}).call(window);` +
    `(function(){var q = window.__utkfacePlotlyQueue || []; window.__utkfacePlotlyQueue = []; q.forEach(function(f){ f(); });})();</script>` +
    `<div style="font-size:11px;color:#888">plotly.js loaded inline (offline)</div>`
  );
}

/**
 * The HTML of one figure: a div and the script that draws it (waits for the bundle if needed).
 * With `png` (base64), the div first holds that picture, which the script replaces: where
 * scripts do not run (an untrusted notebook's sanitised HTML keeps <img> with its width and
 * height attributes but drops scripts and styles), the picture is what shows.
 */
export function figureHtml(fig: PlotlyFigure, id = `utkface-plot-${crypto.randomBytes(6).toString("hex")}`, png?: string): string {
  const width = typeof fig.layout.width === "number" ? `${fig.layout.width}px` : "100%";
  const height = typeof fig.layout.height === "number" ? `${fig.layout.height}px` : "450px";
  const size = figureSize(fig);
  const picture = png ? `<img class="utkface-static" src="data:image/png;base64,${png}" width="${size.width}" height="${size.height}" alt="${escapeHtml(figureTitle(fig))}">` : "";
  const spec = scriptSafe(JSON.stringify({ data: fig.data, layout: fig.layout, config: { responsive: true, displaylogo: false } }));
  return (
    `<div id="${id}" class="utkface-plot" style="width:${width};max-width:100%;height:${height}">${picture}</div>` +
    `<script type="text/javascript">(function(){var spec = ${spec};` +
    `function draw(){ var el = document.getElementById("${id}"); if (!el) return; el.innerHTML = ""; window.Plotly.newPlot(el, spec.data, spec.layout, spec.config); }` +
    `if (window.Plotly) draw(); else (window.__utkfacePlotlyQueue = window.__utkfacePlotlyQueue || []).push(draw);})();</script>`
  );
}

type WriteDisplayData = (data: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: Record<string, unknown> }, update: boolean) => void;

/** tslab's display writer when running inside a tslab kernel, else undefined. */
function kernelWriter(): WriteDisplayData | undefined {
  try {
    // tslab's public `display.raw` sends one MIME type per output; its jupyter module's writer
    // takes a whole bundle (HTML + Plotly JSON + text), which lets each front end pick.
    const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: WriteDisplayData | null };
    return jupyter.lastWriteDisplayData ?? undefined;
  } catch {
    return undefined;
  }
}

/** Whether this process is a tslab kernel (so `show` draws rather than prints). */
export function inNotebook(): boolean {
  return kernelWriter() !== undefined;
}

/** Displays a MIME bundle in the notebook, or prints its text/plain part elsewhere. */
export function displayBundle(data: Record<string, unknown>): void {
  const write = kernelWriter();
  if (!write) {
    if (typeof data["text/plain"] === "string") console.log(data["text/plain"]);
    return;
  }
  write({ data, metadata: {}, transient: {} }, false);
}

let plotlyEmitted = false;

/**
 * Emits the plotly.js bundle into the notebook (about 4.9 MB, once per notebook). The Setup
 * cell calls it; rerunning the cell emits it again, which keeps figures working after the
 * page is reloaded. `show()` calls it by itself if nothing has yet.
 */
export function initNotebookPlotly(): void {
  if (!inNotebook()) return;
  displayBundle({ "text/html": plotlyInitHtml(), "text/plain": "plotly.js loaded inline" });
  plotlyEmitted = true;
}

function figureTitle(fig: PlotlyFigure): string {
  const t = fig.layout.title as { text?: string } | string | undefined;
  const text = typeof t === "string" ? t : t?.text ?? "figure";
  return text.replace(/<br>/g, " — ").replace(/<[^>]+>/g, "");
}

/**
 * Shows Plotly figures inline (offline), each as one output carrying the interactive HTML,
 * the `application/vnd.plotly.v1+json` bundle (JupyterLab's and VS Code's Plotly renderers)
 * and a PNG (`image/png`, also inside the HTML) for viewers that run no scripts. The PNGs of
 * a call are drawn by one Chromium; outside a notebook, prints each title. Returns nothing, so
 * a cell ending in `ut.showFigures(figs);` prints no value.
 */
export function showFigures(figures: readonly (PlotlyFigure | NamedFigure)[]): void {
  const plain = figures.map((f) => ("figure" in f ? f.figure : f));
  if (!inNotebook()) {
    plain.forEach((f) => console.log(`[figure] ${figureTitle(f)}`));
    return;
  }
  if (!plotlyEmitted) initNotebookPlotly();
  const { pngs, reason } = renderFigurePngsSync(plain);
  plain.forEach((figure, i) => {
    const png = pngs?.[i];
    displayBundle({
      "text/html": figureHtml(figure, undefined, png),
      "application/vnd.plotly.v1+json": { data: figure.data, layout: figure.layout, config: { displaylogo: false } },
      ...(png ? { "image/png": png } : {}),
      "text/plain": `[figure] ${figureTitle(figure)}${png ? "" : ` (no static picture: ${reason})`}`,
    });
  });
}

/** Shows one Plotly figure inline (offline); see `showFigures`. */
export function show(fig: PlotlyFigure | NamedFigure): void {
  showFigures([fig]);
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Options of `showFaces`. */
export interface FaceGridOptions {
  /** Caption under each face (e.g. `predictionCaption(...)`); default the file's labels. */
  captions?: readonly string[];
  /** Faces per row (default 5). */
  columns?: number;
  /** Displayed width of each face in pixels (default 140; small inputs are upscaled). */
  width?: number;
  /** Heading above the grid. */
  title?: string;
}

/** PNG bytes of sample `index` of a dataset (its decoded pixels at the dataset's size). */
export async function facePng(ds: FaceDataset, index: number): Promise<Buffer> {
  if (!Number.isInteger(index) || index < 0 || index >= ds.records.length) {
    throw new Error(`Face index ${index} is outside 0..${ds.records.length - 1} of the dataset loaded from ${ds.dir}.`);
  }
  const sharp = (await import("sharp")).default;
  const n = ds.size * ds.size * ds.channels;
  const px = Buffer.from(ds.pixels.buffer, ds.pixels.byteOffset + index * n, n);
  return sharp(px, { raw: { width: ds.size, height: ds.size, channels: ds.channels } }).png().toBuffer();
}

/**
 * The HTML of a grid of faces with captions. A table, and sizes as <img> attributes, because
 * an untrusted notebook's sanitiser drops every style attribute: the layout must not need CSS.
 */
export async function faceGridHtml(ds: FaceDataset, indices: readonly number[], options: FaceGridOptions = {}): Promise<string> {
  const columns = options.columns ?? 5;
  const width = options.width ?? 140;
  if (options.captions && options.captions.length !== indices.length) {
    throw new Error(`showFaces: ${indices.length} faces but ${options.captions.length} captions; give one caption per face.`);
  }
  const cells = await Promise.all(
    indices.map(async (idx, i) => {
      const r = ds.records[idx];
      const png = (await facePng(ds, idx)).toString("base64");
      const caption = options.captions?.[i] ?? `Age: ${r.age}  Gender: ${r.gender === 1 ? "Female" : "Male"}`;
      const lines = caption.split("\n").map(escapeHtml).join("<br>");
      return (
        `<td align="center" valign="top" width="${width + 8}" style="text-align:center;vertical-align:top">` +
        `<img src="data:image/png;base64,${png}" width="${width}" height="${width}" style="image-rendering:pixelated" alt="${escapeHtml(r.file)}">` +
        `<br><small>${lines}</small></td>`
      );
    }),
  );
  const rows: string[] = [];
  for (let i = 0; i < cells.length; i += columns) rows.push(`<tr>${cells.slice(i, i + columns).join("")}</tr>`);
  const heading = options.title ? `<caption><b>${escapeHtml(options.title)}</b></caption>` : "";
  return `<table class="utkface-faces">${heading}<tbody>${rows.join("")}</tbody></table>`;
}

/** Shows faces of a dataset in a grid, each with a caption (default: its real age and gender). */
export async function showFaces(ds: FaceDataset, indices: readonly number[], options: FaceGridOptions = {}): Promise<void> {
  const html = await faceGridHtml(ds, indices, options);
  const captions = indices.map((idx, i) => `${ds.records[idx].file}: ${options.captions?.[i] ?? `age ${ds.records[idx].age}`}`);
  displayBundle({ "text/html": html, "text/plain": captions.join("\n") });
}

/** Something with columns and rows: plain row objects, or a danfo.js DataFrame. */
export type Tabular = readonly object[] | { columns: string[]; values: readonly unknown[] };

function tableRows(table: Tabular): { columns: string[]; rows: unknown[][] } {
  if (Array.isArray(table)) {
    const rows = table as readonly Record<string, unknown>[];
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    return { columns, rows: rows.map((r) => columns.map((c) => r[c])) };
  }
  const df = table as { columns: string[]; values: readonly unknown[]; index?: unknown[] };
  const values = df.values.map((v) => (Array.isArray(v) ? v : [v]));
  if (df.index && df.index.length === values.length && !df.index.every((v, i) => v === i)) {
    return { columns: ["", ...df.columns], rows: values.map((row, i) => [df.index![i], ...row]) };
  }
  return { columns: df.columns, rows: values };
}

function cellText(v: unknown, digits: number): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  if (v === null || v === undefined) return "";
  return String(v);
}

/** Shows a table (row objects or a danfo.js DataFrame) as HTML, numbers rounded to `digits`. */
export function showTable(table: Tabular, options: { title?: string; digits?: number } = {}): void {
  const { columns, rows } = tableRows(table);
  const digits = options.digits ?? 3;
  const head = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(cellText(v, digits))}</td>`).join("")}</tr>`).join("");
  const caption = options.title ? `<caption style="caption-side:top;font-weight:bold">${escapeHtml(options.title)}</caption>` : "";
  const text = [options.title ?? "", columns.join("\t"), ...rows.map((r) => r.map((v) => cellText(v, digits)).join("\t"))].filter(Boolean).join("\n");
  displayBundle({ "text/html": `<table>${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`, "text/plain": text });
}

/** Shows markdown in the notebook (prints it elsewhere). */
export function showMarkdown(md: string): void {
  displayBundle({ "text/markdown": md, "text/plain": md });
}

/** Shows every figure a run supports (training curves, confusion matrices, ...); `runFigures(run)` gives them for export. */
export function showRunFigures(run: AnyRun): void {
  showFigures(runFigures(run));
}

/** Shows a run's held-out figures as a one-row table (K-fold: mean ± std over folds). */
export function showMetrics(anyRun: AnyRun): void {
  const run = asLoadedRun(anyRun);
  // A collapsed model (one answer for every face) is said first, before its figures.
  const warnings = run.kind === "kfold" ? run.summary.folds.flatMap((m, i) => (m.warnings ?? []).map((w) => `fold ${run.summary.completed[i] + 1}: ${w}`)) : run.metrics.warnings ?? [];
  if (warnings.length > 0) showMarkdown(warnings.map((w) => `**Warning:** ${w}`).join("\n\n"));
  const row: Record<string, unknown> = { model: run.config.model, run: run.config.runId, profile: run.config.profile };
  if (run.kind === "kfold") {
    row.split = `${run.summary.k}-fold (${run.summary.completed.length} done)`;
    for (const [k, s] of Object.entries(run.summary.summary)) row[k] = `${s.mean.toFixed(3)} ± ${s.std.toFixed(3)}`;
    row.trainSeconds = run.summary.trainSeconds;
  } else {
    const m = run.metrics;
    row.split = m.split;
    row.images = m.images;
    for (const k of [...HELD_OUT_FIGURES, "loss", "trainSeconds", "imagesPerSecond"] as const) {
      if (m[k] !== undefined) row[k] = m[k];
    }
    if (m.baseline) {
      // The same images scored by a constant answer fitted on the training labels.
      const base: Record<string, unknown> = { model: "majority baseline", run: "", profile: "", split: m.split, images: m.images, ...m.baseline };
      showTable([row, base], { title: `Held-out figures of ${run.config.experiment}, and what the training split's most common answer scores` });
      return;
    }
  }
  showTable([row], { title: `Held-out figures of ${run.config.experiment}` });
}

/**
 * Sample held-out predictions with their faces and the report's captions ("Predicted Gender:
 * Female  Predicted Age: 60 - 64"), joining the age and gender runs by file name. Faces are
 * taken from `faces` (the dataset the runs were trained from), chosen at random with `seed`.
 */
export async function showPredictions(faces: FaceDataset, runs: readonly AnyRun[], options: { count?: number; seed?: number; columns?: number } = {}): Promise<void> {
  const byFile = new Map<string, { age?: string; gender?: string; real: string }>();
  for (const anyRun of runs) {
    const run = asLoadedRun(anyRun);
    for (const p of run.predictions) {
      const entry = byFile.get(p.file) ?? { real: `Real: ${GENDER_LABELS[p.gender]}, ${p.age}` };
      if (p.predGroup !== undefined && p.predGroup >= 0) entry.age = decodeAgeGroup(p.predGroup, ageDivision(run.config.hyper.ageDivision));
      else if (p.predAge !== undefined) entry.age = String(Math.round(p.predAge));
      if (p.pFemale !== undefined) entry.gender = decodeGender(p.pFemale);
      byFile.set(p.file, entry);
    }
  }
  const indexOf = new Map(faces.records.map((r, i) => [r.file, i]));
  const files = [...byFile.keys()].filter((f) => indexOf.has(f));
  if (files.length === 0) throw new Error(`showPredictions: none of the runs' predicted files is in the dataset loaded from ${faces.dir}; pass the dataset the runs were trained on.`);
  const order = permutation(files.length, options.seed ?? 7).slice(0, options.count ?? 10);
  const chosen = order.map((i) => files[i]);
  const captions = chosen.map((f) => {
    const e = byFile.get(f)!;
    return `${predictionCaption({ gender: e.gender, ageGroup: e.age })}\n${e.real}`;
  });
  await showFaces(faces, chosen.map((f) => indexOf.get(f)!), { captions, columns: options.columns ?? 5, width: 150, title: "Sample held-out predictions" });
}

/** Builds a model by name, shows its layers and parameter count, and frees it; returns the count. */
export function describeModel(name: string, options: ModelOptions = {}): number {
  const model = buildModel(name, options);
  try {
    const rows = model.layers.map((l) => ({ layer: l.name, type: l.getClassName(), output: JSON.stringify(l.outputShape), parameters: l.countParams() }));
    const total = model.countParams();
    showTable(rows, { title: `${name}: ${modelSpec(name).description} — ${total.toLocaleString("en")} parameters` });
    return total;
  } finally {
    model.dispose();
  }
}
