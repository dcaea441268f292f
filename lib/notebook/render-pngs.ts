/**
 * Draws Plotly figures as PNGs in one headless Chromium of their own, for the static pictures
 * notebook figures carry: the fallback of ./static-figures.ts when the shared renderer thread
 * (./figure-renderer.ts) cannot serve. Also a child-process entry: figures as JSON on stdin,
 * base64 PNGs as a JSON array on stdout.
 */
import * as fs from "fs";
import type { PlotlyFigure } from "../analysis/figures";
import { plotlyBundlePath } from "./display";
import { launchChromium, renderFigure } from "./export";
import { STATIC_SCALE } from "./static-figures";

/**
 * PNGs (base64, no data: prefix) of the figures, drawn at scale 1 by Plotly in headless
 * Chromium, in one browser. Throws when Chromium is missing or a figure does not draw.
 */
export async function renderFigurePngs(figures: readonly PlotlyFigure[]): Promise<string[]> {
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ path: plotlyBundlePath() });
    const out: string[] = [];
    for (const fig of figures) {
      const url = await renderFigure(page, fig, "png", STATIC_SCALE);
      out.push(url.slice(url.indexOf(",") + 1));
    }
    return out;
  } finally {
    await browser.close();
  }
}

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
