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
  const latest: LoadedRun[] = [];
  for (const exp of experiments) {
    const run = latestRun(exp);
    latest.push(run);
    figures.push(...runFigures(run));
    console.log(`${exp}: ${portablePath(run.runDir)}`);
  }
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

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    console.error(`error: ${err.message}`);
    process.exitCode = 1;
  },
);
