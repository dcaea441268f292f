/**
 * Static pictures of Plotly figures for notebook outputs: a PNG per figure, rendered by the
 * system Chromium, so a notebook whose scripts do not run (an untrusted notebook in Jupyter,
 * GitHub's viewer, VS Code without a Plotly renderer) still shows every figure.
 *
 * `show()` is synchronous (a cell's last line `ut.show(fig);` must not print a Promise), so the
 * rendering runs in a child Node process (./render-pngs.ts) that this module starts and waits
 * for: one Chromium for a whole batch of figures. The drawing lives in that other file so that
 * the display module, which the exporter imports, can use this one without an import cycle.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import type { PlotlyFigure } from "../analysis/figures";

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
 * PNGs (base64) of the figures, drawn synchronously: a child process (./render-pngs.ts) draws
 * them in one Chromium and this call waits for it. Returns undefined (and the reason)
 * instead of throwing, because a missing picture must not stop a notebook: the interactive
 * figure is still there for a trusted viewer.
 */
export function renderFigurePngsSync(figures: readonly PlotlyFigure[]): { pngs?: string[]; reason?: string } {
  if (figures.length === 0) return { pngs: [] };
  if (process.env[STATIC_FIGURES_ENV] === "0") return { reason: `${STATIC_FIGURES_ENV}=0` };
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
