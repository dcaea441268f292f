/**
 * Static pictures of Plotly figures for notebook outputs: a PNG per figure, rendered by the
 * system Chromium, so a notebook whose scripts do not run (an untrusted notebook in Jupyter,
 * GitHub's viewer, VS Code without a Plotly renderer) still shows every figure.
 *
 * `show()` is synchronous (a cell's last line `ut.show(fig);` must not print a Promise), so the
 * rendering runs in a child Node process that this module's own file starts and waits for:
 * one Chromium for a whole batch of figures.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import type { PlotlyFigure } from "../analysis/figures";

/** Set to "0" to skip the static pictures (figures stay interactive only; saves ~2 s a cell). */
export const STATIC_FIGURES_ENV = "UTKFACE_STATIC_FIGURES";

/** Pixel size a figure is drawn at: its layout's width and height, else Plotly's 800x450 default. */
export function figureSize(fig: PlotlyFigure): { width: number; height: number } {
  return {
    width: typeof fig.layout.width === "number" ? fig.layout.width : 800,
    height: typeof fig.layout.height === "number" ? fig.layout.height : 450,
  };
}

/**
 * PNGs (base64, no data: prefix) of the figures, drawn at scale 1 by Plotly in headless
 * Chromium, in one browser. Throws when Chromium is missing or a figure does not draw.
 */
export async function renderFigurePngs(figures: readonly PlotlyFigure[]): Promise<string[]> {
  // Imported here, not at the top: export.ts imports display.ts, which imports this module.
  const { launchChromium, renderFigure } = await import("./export");
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.setContent("<!doctype html><html><body></body></html>");
    const { plotlyBundlePath } = await import("./display");
    await page.addScriptTag({ path: plotlyBundlePath() });
    const out: string[] = [];
    for (const fig of figures) {
      const url = await renderFigure(page, fig, "png", 1);
      out.push(url.slice(url.indexOf(",") + 1));
    }
    return out;
  } finally {
    await browser.close();
  }
}

/**
 * The same, synchronously: a child process renders them. Returns undefined (and the reason)
 * instead of throwing, because a missing picture must not stop a notebook: the interactive
 * figure is still there for a trusted viewer.
 */
export function renderFigurePngsSync(figures: readonly PlotlyFigure[]): { pngs?: string[]; reason?: string } {
  if (figures.length === 0) return { pngs: [] };
  if (process.env[STATIC_FIGURES_ENV] === "0") return { reason: `${STATIC_FIGURES_ENV}=0` };
  // Under tsx (tests) this file is TypeScript: the child needs tsx's loader flags too.
  const args = __filename.endsWith(".ts") ? [...process.execArgv, __filename] : [__filename];
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

// Child-process entry: figures as JSON on stdin, base64 PNGs as a JSON array on stdout.
if (require.main === module) {
  const figures = JSON.parse(fs.readFileSync(0, "utf8")) as PlotlyFigure[];
  renderFigurePngs(figures).then(
    (pngs) => process.stdout.write(JSON.stringify(pngs)),
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
