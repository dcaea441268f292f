/**
 * Figure specs from real labels (UTKFace file names of $UTKFACE_DIR or data/sample): titles
 * say what and on which images, axes are labelled, trace counts and plotted totals match.
 * A real quick run's figures are exported into its own run folder and gathered flat, as the
 * notebooks and `npm run figures` do.
 */
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { test } from "node:test";
import { countByGroupGender, isFaceRecord, parseFileName, type FaceRecord } from "../lib/data/dataset";
import {
  ageHistogramFigure,
  BASELINE_NAME,
  comparisonFigure,
  foldAccuracyFigure,
  PUBLISHED_CLAIMS,
  confusionMatrixFigure,
  groupGenderCountsFigure,
  maeByBandFigure,
  pixelHistogramFigure,
  predictedVsRealFigure,
  sharesFigure,
  trainingCurvesFigure,
  type PlotlyFigure,
} from "../lib/analysis/figures";
import { ageGroupOf, decodeAgeGroup, REPORT_AGE_GROUPS } from "../lib/data/labels";
import { RESULTS_DIR, resolveDataDir, SAMPLE_DATA_DIR } from "../lib/core/paths";
import { loadFaces } from "../lib/data/dataset";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { runFigures } from "../lib/analysis/run-figures";
import { chromiumPath, RUN_FIGURES_SUBDIR } from "../lib/notebook/export";
import { runExperiment } from "../lib/training/experiment";
import { redrawRunFigures } from "../scripts/figures";
import { skipUnlessCI } from "./helpers";

const dir = resolveDataDir();
const records: FaceRecord[] = fs.existsSync(dir) ? fs.readdirSync(dir).map(parseFileName).filter(isFaceRecord) : [];
const skip = records.length === 0 ? `no UTKFace images in ${dir} (set UTKFACE_DIR)` : false;

function titleOf(fig: PlotlyFigure): string {
  return (fig.layout.title as { text: string }).text;
}
function axisTitle(fig: PlotlyFigure, key: string): string {
  return ((fig.layout[key] as { title: { text: string } }).title ?? { text: "" }).text;
}
function sum(values: unknown): number {
  return (values as (number | null)[]).reduce<number>((a, b) => a + (b ?? 0), 0);
}

test("faces per age group and gender: two traces whose bars add up to every face", { skip }, () => {
  const fig = groupGenderCountsFigure(countByGroupGender(records), { split: "all", images: records.length });
  assert.equal(fig.data.length, 2);
  assert.deepEqual(fig.data.map((t) => t.name), ["Male", "Female"]);
  assert.equal(sum(fig.data[0].y) + sum(fig.data[1].y), records.length);
  assert.equal(sum(fig.data[1].y), records.filter((r) => r.gender === 1).length);
  assert.match(titleOf(fig), new RegExp(`all ${records.length} images`));
  assert.equal(axisTitle(fig, "xaxis"), "age group (years)");
  assert.equal(axisTitle(fig, "yaxis"), "number of faces");
});

test("age histogram and shares count every face", { skip }, () => {
  const hist = ageHistogramFigure(records.map((r) => r.age), { split: "all", images: records.length });
  assert.equal(sum(hist.data[0].y), records.length);
  assert.equal(axisTitle(hist, "xaxis"), "age (years)");
  const shares = sharesFigure(records);
  assert.equal(shares.data.length, 2);
  assert.equal(sum(shares.data[0].values), records.length);
  assert.equal(sum(shares.data[1].values), records.filter((r) => r.race >= 0 && r.race <= 4).length);
  // One colour per slice across both pies: Male and White were both Plotly's default blue.
  const colours = shares.data.flatMap((d) => (d.marker as { colors?: string[] } | undefined)?.colors ?? []);
  assert.equal(colours.length, [shares.data[0].labels, shares.data[1].labels].flatMap((l) => l as string[]).length);
  assert.equal(new Set(colours).size, colours.length, `a colour is shared: ${colours.join(", ")}`);
});

test("confusion matrix of real vs shifted age groups: a heatmap with labelled axes and the split in the title", { skip }, () => {
  const truth = records.slice(0, 60).map((r) => ageGroupOf(r.age));
  const predicted = truth.map((g, i) => (i % 3 === 0 ? Math.min(g + 1, 19) : g));
  const labels = REPORT_AGE_GROUPS.labels.slice();
  const matrix = labels.map(() => labels.map(() => 0));
  truth.forEach((t, i) => matrix[t][predicted[i]]++);
  const fig = confusionMatrixFigure({ labels, matrix }, "Age-group", { model: "cnn-age-sigmoid", split: "test", images: 60, profile: "quick" });
  assert.equal(fig.data.length, 1);
  assert.equal(fig.data[0].type, "heatmap");
  assert.equal(sum((fig.data[0].z as number[][]).flat()), 60);
  assert.match(titleOf(fig), /Age-group confusion matrix.*cnn-age-sigmoid · test split · 60 images · quick profile/);
  assert.equal(axisTitle(fig, "xaxis"), "predicted");
  assert.equal(axisTitle(fig, "yaxis"), "real");
  assert.throws(() => confusionMatrixFigure({ labels, matrix: matrix.slice(1) }, "Age-group"), /must be 20x20/);
});

test("predicted vs real age, MAE by band and pixel histogram", { skip }, () => {
  const rows = records.slice(0, 40).map((r) => ({ file: r.file, age: r.age, gender: r.gender, trueGroup: ageGroupOf(r.age), predAge: r.age + 3 }));
  const fig = predictedVsRealFigure(rows, { split: "test", images: rows.length });
  assert.equal(fig.data.length, 2);
  assert.equal((fig.data[0].x as number[]).length, rows.length);
  assert.equal(axisTitle(fig, "yaxis"), "predicted age (years)");
  assert.throws(() => predictedVsRealFigure(rows.map(({ predAge, ...r }) => r)), /no prediction has a predicted age/);
  const bands = maeByBandFigure([{ band: decodeAgeGroup(0), images: 3, mae: 2.5 }, { band: decodeAgeGroup(1), images: 0, mae: null }]);
  assert.deepEqual(bands.data[0].y, [2.5, null]);
  const px = pixelHistogramFigure(Float32Array.from({ length: 1000 }, (_, i) => (i % 100) / 99), { transform: "scaling to [0,1]", bins: 10 });
  assert.equal(sum(px.data[0].y), 1000);
  assert.match(titleOf(px), /after scaling to \[0,1\]/);
});

test("training curves: one panel per metric, validation lines only where recorded", () => {
  const history = [1, 2, 3].map((epoch) => ({ epoch, loss: 1 / epoch, valLoss: 1.2 / epoch, metrics: { ageAccuracy: 0.1 * epoch, genderAccuracy: 0.5 }, seconds: 1, imagesPerSecond: 100 }));
  const fig = trainingCurvesFigure(history, { model: "cnn-multi", split: "train" });
  // loss: train + validation; each metric: train only.
  assert.equal(fig.data.length, 4);
  assert.equal(axisTitle(fig, "yaxis"), "loss");
  assert.equal(axisTitle(fig, "yaxis2"), "age accuracy");
  assert.equal(axisTitle(fig, "xaxis3"), "epoch");
  assert.throws(() => trainingCurvesFigure([]), /history is empty/);
});

test("quick results are drawn with the majority baseline on the same axes; claims are drawn as claims", () => {
  const history = [1, 2].map((epoch) => ({ epoch, loss: 1 / epoch, metrics: { genderAccuracy: 0.5 + 0.01 * epoch }, seconds: 1, imagesPerSecond: 100 }));
  const curves = trainingCurvesFigure(history, { model: "cnn-gender" }, { genderAccuracy: 0.55 });
  const base = curves.data.filter((t) => t.name === `${BASELINE_NAME} (held-out)`);
  assert.equal(base.length, 1);
  assert.deepEqual(base[0].y, [0.55, 0.55]);
  assert.equal(base[0].yaxis, "y2", "on the gender accuracy panel, not the loss panel");

  const fold = (acc: number, baseAcc: number) => ({ split: "validation", images: 10, profile: "quick" as const, task: "gender" as const, model: "cnn-gender", genderAccuracy: acc, baseline: { genderAccuracy: baseAcc }, trainSeconds: 1, imagesPerSecond: 1 });
  const summary = { split: "kfold" as const, k: 2, completed: [0, 1], profile: "quick" as const, task: "gender" as const, model: "cnn-gender", folds: [fold(0.6, 0.5), fold(0.7, 0.4)], summary: {}, trainSeconds: 2 };
  const folds = foldAccuracyFigure(summary, history.map((h, i) => ({ ...h, fold: i })));
  assert.deepEqual(folds.data.find((t) => String(t.name).startsWith(BASELINE_NAME))?.y, [0.5, 0.4]);

  const rows = [{ model: "cnn-age-sigmoid", ageAccuracy: 0.2, baseline: { ageAccuracy: 0.19 } }];
  const cmp = comparisonFigure(rows, PUBLISHED_CLAIMS);
  const ageBase = cmp.data.find((t) => String(t.name).startsWith(BASELINE_NAME) && t.yaxis === "y");
  assert.equal((ageBase?.y as (number | null)[])[0], 0.19);
  const claimed = cmp.data.filter((t) => t.name === "claimed by report (K-fold)" && t.yaxis === "y")[0];
  const models = claimed.x as string[];
  assert.equal((claimed.y as number[])[models.indexOf("cnn-age-sigmoid")], 0.7819);
  assert.ok(PUBLISHED_CLAIMS.every((c) => c.source.startsWith("report") && c.where), "every claim says where it comes from");
});

test("a run's figures are drawn into its own run folder and gathered flat, as `npm run figures` does", { skip: skipUnlessCI(fs.existsSync(chromiumPath()) ? false : `no Chromium at ${chromiumPath()} (set CHROMIUM_PATH)`), timeout: 300000 }, async () => {
  setBackendQuiet(true);
  await initBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "run-figures-"));
  // latestRun reads results/ itself, so the run goes there under a name no one else uses.
  const experiment = `zz-run-figures-${process.pid}`;
  try {
    const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray", cacheDir: path.join(tmp, "cache") });
    const run = await runExperiment({ model: "cnn-gender", experiment, data, epochs: 1, maxImages: 60, progress: false });
    const gather = path.join(tmp, "figures");
    const out = await redrawRunFigures([experiment], { gather });
    assert.deepEqual(out.skipped, []);
    const names = runFigures(run).map((f) => f.name);
    assert.ok(names.length >= 3, `a finished run has several figures: ${names.join(", ")}`);
    const files = names.flatMap((n) => [`${n}.png`, `${n}.svg`]).sort();
    const runFiguresDir = path.join(run.runDir, RUN_FIGURES_SUBDIR);
    assert.deepEqual(fs.readdirSync(runFiguresDir).sort(), files, "the run folder holds each figure as PNG and SVG");
    assert.deepEqual(out.files.inRuns.map((f) => path.relative(runFiguresDir, f)).sort(), files);
    assert.deepEqual(fs.readdirSync(gather).sort(), files, "the gather folder holds a flat copy of each");
    for (const f of files) {
      const own = fs.readFileSync(path.join(runFiguresDir, f));
      assert.ok(own.equals(fs.readFileSync(path.join(gather, f))), `${f}: the gathered copy is the run's file`);
      if (f.endsWith(".png")) assert.ok(own.subarray(1, 4).toString() === "PNG" && own.length > 5000, `${f}: a drawn PNG (${own.length} bytes)`);
      else assert.match(own.toString("utf8", 0, 400), /<svg/);
    }
  } finally {
    fs.rmSync(path.join(RESULTS_DIR, experiment), { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
