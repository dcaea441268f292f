/**
 * `npm run figures`: writes every report figure as PNG and SVG from what is already on disk,
 * without training: the data figures (from the load report; decoding is cached), each
 * experiment's latest finished run, and the model comparison. A run's figures are redrawn into
 * its own folder (results/<experiment>/<run-id>/figures/) and gathered, with the data and
 * comparison figures, flat into results/figures/.
 *
 *   npm run figures                 everything
 *   npm run figures -- --no-data    only figures of saved runs
 */
import * as path from "path";
import { loadFaces } from "../lib/data/dataset";
import { exportFigures, exportRunFigures, launchChromium, RUN_FIGURES_SUBDIR, type RunExportOptions, type RunFiguresExport } from "../lib/notebook/export";
import { ageHistogramFigure, comparisonFigure, groupGenderCountsFigure, PUBLISHED_CLAIMS, sharesFigure, type NamedFigure } from "../lib/analysis/figures";
import { comparisonRow, runFigures } from "../lib/analysis/run-figures";
import { FIGURES_DIR, IMAGE_SIZE, resolveDataDir } from "../lib/core/paths";
import { latestRun, listRuns, portablePath, type LoadedRun } from "../lib/records/runs";

/**
 * The figures of each experiment's latest finished run. A damaged run (a corrupt metrics.json,
 * say) is listed in `skipped` with its reason instead of stopping every other experiment's figures.
 */
export function latestRunFigures(experiments: readonly string[]): { latest: LoadedRun[]; figures: NamedFigure[]; skipped: { experiment: string; reason: string }[] } {
  const latest: LoadedRun[] = [];
  const figures: NamedFigure[] = [];
  const skipped: { experiment: string; reason: string }[] = [];
  for (const exp of experiments) {
    try {
      const run = latestRun(exp);
      const figs = runFigures(run);
      latest.push(run);
      figures.push(...figs);
    } catch (e) {
      skipped.push({ experiment: exp, reason: (e as Error).message });
    }
  }
  return { latest, figures, skipped };
}

/**
 * Redraws the figures of each experiment's latest finished run into that run's own folder
 * (`<runDir>/figures/`) and gathers copies flat into `options.gather` (default results/figures/).
 * Damaged runs are skipped as in `latestRunFigures`.
 */
export async function redrawRunFigures(experiments: readonly string[], options: RunExportOptions = {}): Promise<ReturnType<typeof latestRunFigures> & { files: RunFiguresExport }> {
  const found = latestRunFigures(experiments);
  const files = await exportRunFigures(found.latest, options);
  return { ...found, files };
}

async function main(argv: string[]): Promise<number> {
  const figures: NamedFigure[] = [];
  if (!argv.includes("--no-data")) {
    const faces = await loadFaces({ dir: resolveDataDir(), size: IMAGE_SIZE, color: "gray" });
    const ctx = { split: "all", images: faces.records.length, dataset: portablePath(faces.dir) };
    figures.push(
      { name: "01-faces-per-group-gender", figure: groupGenderCountsFigure(faces.report.countsByGroupGender, ctx) },
      { name: "01-age-histogram", figure: ageHistogramFigure(faces.records.map((r) => r.age), ctx) },
      { name: "01-gender-race-shares", figure: sharesFigure(faces.records, ctx) },
    );
  }
  const experiments = [...new Set(listRuns().filter((r) => r.finished && r.kind !== "fold").map((r) => r.experiment))].sort();
  if (figures.length === 0 && experiments.length === 0) {
    console.error("Nothing to draw: no data figure requested and no finished run under results/. Run `npm start` or `npm run cli -- train` first.");
    return 1;
  }
  const t0 = Date.now();
  const browser = await launchChromium();
  try {
    const { latest, figures: fromRuns, skipped, files } = await redrawRunFigures(experiments, { browser });
    for (const run of latest) console.log(`${run.config.experiment}: ${portablePath(path.join(run.runDir, RUN_FIGURES_SUBDIR))}${path.sep}`);
    for (const s of skipped) console.error(`warning: no figures for ${s.experiment}: ${s.reason}`);
    if (figures.length === 0 && latest.length === 0) {
      console.error("Nothing to draw: no data figure requested and no readable finished run under results/.");
      return 1;
    }
    // Compare only runs made like the newest one (same profile, data and size): others saw other images.
    const newest = latest.filter((r) => r.kind === "split").sort((a, b) => (a.config.createdAt < b.config.createdAt ? 1 : -1))[0];
    const splitRuns = latest.filter((r) => r.kind === "split" && newest && r.config.profile === newest.config.profile && r.config.data.dir === newest.config.data.dir && r.config.seed === newest.config.seed);
    if (splitRuns.length > 0) {
      const ctx = { split: "test", images: newest.metrics.images, profile: newest.config.profile };
      figures.push({ name: "06-models-compared", figure: comparisonFigure(splitRuns.map((r) => comparisonRow(r)), PUBLISHED_CLAIMS, ctx) });
    }
    const written = await exportFigures(figures, { dir: FIGURES_DIR, browser });
    const total = written.length + files.gathered.length;
    console.log(`${files.inRuns.length} files of ${latest.length} runs redrawn in their run folders; ${total} files (${figures.length + fromRuns.length} figures, PNG + SVG) in ${portablePath(FIGURES_DIR)}${path.sep}, ${files.gathered.length} of them gathered from the runs, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await browser.close();
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exitCode = 1;
    },
  );
}
