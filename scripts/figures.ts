/**
 * `npm run figures`: writes every report figure to results/figures/ as PNG and SVG from what
 * is already on disk, without training: the data figures (from the load report; decoding is
 * cached), each experiment's latest finished run, and the model comparison.
 *
 *   npm run figures                 everything
 *   npm run figures -- --no-data    only figures of saved runs
 */
import * as path from "path";
import { loadFaces } from "../lib/data/dataset";
import { exportFigures } from "../lib/notebook/export";
import { ageHistogramFigure, comparisonFigure, groupGenderCountsFigure, PUBLISHED_CLAIMS, sharesFigure, type NamedFigure } from "../lib/analysis/figures";
import { comparisonRow, runFigures } from "../lib/analysis/run-figures";
import { FIGURES_DIR, IMAGE_SIZE, resolveDataDir } from "../lib/core/paths";
import { latestRun, listRuns, portablePath, type LoadedRun } from "../lib/training/runs";

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
  const { latest, figures: fromRuns, skipped } = latestRunFigures(experiments);
  figures.push(...fromRuns);
  for (const run of latest) console.log(`${run.config.experiment}: ${portablePath(run.runDir)}`);
  for (const s of skipped) console.error(`warning: no figures for ${s.experiment}: ${s.reason}`);
  // Compare only runs made like the newest one (same profile, data and size): others saw other images.
  const newest = latest.filter((r) => r.kind === "split").sort((a, b) => (a.config.createdAt < b.config.createdAt ? 1 : -1))[0];
  const splitRuns = latest.filter((r) => r.kind === "split" && newest && r.config.profile === newest.config.profile && r.config.data.dir === newest.config.data.dir && r.config.seed === newest.config.seed);
  if (splitRuns.length > 0) {
    const ctx = { split: "test", images: newest.metrics.images, profile: newest.config.profile };
    figures.push({ name: "06-models-compared", figure: comparisonFigure(splitRuns.map((r) => comparisonRow(r)), PUBLISHED_CLAIMS, ctx) });
  }
  if (figures.length === 0) {
    console.error("Nothing to draw: no data figure requested and no finished run under results/. Run `npm start` or `npm run cli -- train` first.");
    return 1;
  }
  const t0 = Date.now();
  const written = await exportFigures(figures, { dir: FIGURES_DIR });
  console.log(`${written.length} files (${figures.length} figures, PNG + SVG) in ${portablePath(FIGURES_DIR)}${path.sep} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
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
