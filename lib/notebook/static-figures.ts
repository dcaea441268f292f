/**
 * Static pictures of Plotly figures for notebook outputs: a PNG per figure, rendered by the
 * system Chromium, so a notebook whose scripts do not run (an untrusted notebook in Jupyter,
 * GitHub's viewer, VS Code without a Plotly renderer) still shows every figure.
 *
 * `show()` is synchronous (a cell's last line `ut.show(fig);` must not print a Promise), so the
 * PNGs are drawn by a worker thread that owns one headless Chromium for the whole kernel
 * process (./figure-renderer.ts, ./figure-worker.ts): the first figure of a kernel launches it,
 * every later `showFigures` call, and the figure export (./export.ts), draw in the same page,
 * and this thread blocks in Atomics.wait until the worker answers. The worker never keeps the
 * process alive, and Chromium ends with the process (its debugging pipe closes; at a normal exit
 * an exit handler kills it and removes its profile at once). Measured on 2 cores: the first call
 * about 3.4 s (the launch), later ones about 0.05 s a figure, where each call used to pay about
 * 3.1 s of launch; with `npm start -- 03` the notebook's two figure cells take 3.8 s and 0.9 s
 * instead of 7.6 s and 4.3 s (see docs/notebooks.md). Where the worker cannot serve (it does not start, or
 * dies), a child Node process (./render-pngs.ts) with its own Chromium draws the batch, as
 * before; on a timeout (180 s) or a drawing error the figure gets no picture, never an error.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import type { PlotlyFigure } from "../analysis/figures";
import { chromiumPath, renderSync, type RenderJob } from "./figure-renderer";

/** PNG pixel ratio of the static pictures (the figure's own pixel size). */
export const STATIC_SCALE = 1;

/** Set to "0" to skip the static pictures (figures stay interactive only; saves a Chromium launch a call). */
export const STATIC_FIGURES_ENV = "UTKFACE_STATIC_FIGURES";

/** Pixel size a figure is drawn at: its layout's width and height, else Plotly's 800x450 default. */
export function figureSize(fig: PlotlyFigure): { width: number; height: number } {
  return {
    width: typeof fig.layout.width === "number" ? fig.layout.width : 800,
    height: typeof fig.layout.height === "number" ? fig.layout.height : 450,
  };
}

/**
 * PNGs (base64) of the figures, drawn synchronously in this process's shared Chromium (the
 * worker thread of ./figure-renderer.ts, launched on the first call and kept). Where that
 * thread cannot serve (it does not start, or dies), falls back to a child process with its own
 * Chromium (`renderFigurePngsInChild`). Returns undefined (and the reason) instead of throwing,
 * because a missing picture must not stop a notebook: the interactive figure is still there for
 * a trusted viewer.
 */
export function renderFigurePngsSync(figures: readonly PlotlyFigure[]): { pngs?: string[]; reason?: string } {
  if (figures.length === 0) return { pngs: [] };
  if (process.env[STATIC_FIGURES_ENV] === "0") return { reason: `${STATIC_FIGURES_ENV}=0` };
  const jobs: RenderJob[] = figures.map((f) => ({ data: f.data, layout: f.layout, format: "png", scale: STATIC_SCALE }));
  const outcome = renderSync(jobs, chromiumPath());
  if ("unavailable" in outcome) {
    // A timeout already took its time: no second try in a child.
    if (/no answer/.test(outcome.unavailable)) return { reason: outcome.unavailable };
    return renderFigurePngsInChild(figures);
  }
  const { reply } = outcome;
  if (reply.error) return { reason: reply.error };
  const results = reply.results ?? [];
  if (results.length !== figures.length) return { reason: `${results.length} pictures for ${figures.length} figures` };
  const failed = results.find((r): r is { error: string } => "error" in r);
  if (failed) return { reason: failed.error };
  return { pngs: results.map((r) => ("url" in r ? r.url.slice(r.url.indexOf(",") + 1) : "")) };
}

/**
 * The former way, kept as the fallback: a child Node process (./render-pngs.ts) launches its
 * own Chromium, draws the figures and exits; this call waits for it (spawnSync).
 */
export function renderFigurePngsInChild(figures: readonly PlotlyFigure[]): { pngs?: string[]; reason?: string } {
  if (figures.length === 0) return { pngs: [] };
  // Under tsx (tests) these files are TypeScript: the child needs tsx's loader flags too.
  const ext = path.extname(__filename);
  const script = path.join(__dirname, `render-pngs${ext}`);
  const args = ext === ".ts" ? [...process.execArgv, script] : [script];
  const r = spawnSync(process.execPath, args, {
    input: JSON.stringify(figures.map((f) => ({ data: f.data, layout: f.layout }))),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    timeout: 180_000,
  });
  if (r.error) return { reason: r.error.message };
  if (r.status !== 0) return { reason: (r.stderr || `exit status ${r.status}`).trim().split("\n").slice(-1)[0] };
  try {
    const pngs = JSON.parse(r.stdout) as string[];
    return pngs.length === figures.length ? { pngs } : { reason: `${pngs.length} pictures for ${figures.length} figures` };
  } catch (e) {
    return { reason: `unreadable renderer output: ${(e as Error).message}` };
  }
}
