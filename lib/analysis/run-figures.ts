/**
 * Run adapters: from a run (as trained, or read back from its folder) to the figure specs of
 * ./figures and to rows of the model comparison. The specs stay pure functions of plain data;
 * what a run holds and which of its figures apply is decided here.
 */
import { validationHoldout } from "../data/splits";
import { HELD_OUT_FIGURES } from "./metrics";
import {
  ComparisonRow,
  FigureContext,
  NamedFigure,
  PlotlyFigure,
  confusionMatrixFigure,
  foldAccuracyFigure,
  maeByBandFigure,
  meanVarianceFigure,
  predictedVsRealFigure,
  trainingCurvesFigure,
} from "./figures";
import type { Baseline, BandError, ConfusionMatrix, KFoldResult, KFoldSummary, LoadedRun, MeanVariance, RunMetrics, RunResult } from "../records/runs";

/** A run as returned by `runExperiment` / `runKFold` or read back by `loadRun` / `latestRun`. */
export type AnyRun = LoadedRun | RunResult | KFoldResult;

/** The loaded form of any run (adds `kind` and, for K-fold, `metrics`). */
export function asLoadedRun(run: AnyRun): LoadedRun {
  if ("kind" in run) return run;
  if ("summary" in run) return { ...run, kind: "kfold", metrics: run.summary, summary: run.summary };
  return { ...run, kind: run.config.kind === "fold" ? "fold" : "split" };
}

/** A run's held-out figures as a comparison row. */
export function comparisonRow(anyRun: AnyRun, parameters?: number): ComparisonRow {
  const run = asLoadedRun(anyRun);
  const m = run.kind === "kfold" ? foldMeans(run.summary) : run.metrics;
  return {
    model: run.config.model,
    images: run.kind === "kfold" ? run.predictions.length : run.metrics.images,
    ageAccuracy: m.ageAccuracy,
    ageAccuracyWithin1: m.ageAccuracyWithin1,
    mae: m.mae,
    genderAccuracy: m.genderAccuracy,
    trainSeconds: run.kind === "kfold" ? run.summary.trainSeconds : run.metrics.trainSeconds,
    parameters,
    baseline: m.baseline,
  };
}

function foldMeans(s: KFoldSummary): Partial<RunMetrics> {
  const mean = (k: string) => s.summary[k]?.mean;
  // The majority baseline of each validation fold, averaged like the model's figures.
  const baseMean = (k: keyof Baseline) => {
    const v = s.folds.map((f) => f.baseline?.[k]).filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const baseline: Baseline = { ageAccuracy: baseMean("ageAccuracy"), ageAccuracyWithin1: baseMean("ageAccuracyWithin1"), mae: baseMean("mae"), genderAccuracy: baseMean("genderAccuracy") };
  return { ...Object.fromEntries(HELD_OUT_FIGURES.map((k) => [k, mean(k)])), baseline };
}

/** Every figure a saved run supports, named for export (`<experiment>-<figure>`). */
export function runFigures(anyRun: AnyRun): NamedFigure[] {
  const run = asLoadedRun(anyRun);
  const prefix = run.config.experiment;
  const out: NamedFigure[] = [];
  const add = (name: string, make: () => PlotlyFigure) => out.push({ name: `${prefix}-${name}`, figure: make() });
  const base: FigureContext = { model: run.config.model, profile: run.config.profile };
  const baseline = run.kind === "kfold" ? undefined : run.metrics.baseline;
  if (run.history.length > 0) {
    // The curves' training side is the images fitted: the train split less its validation holdout.
    const trainSize = run.config.split?.train.length;
    const fitted = trainSize === undefined ? undefined : trainSize - validationHoldout(trainSize, run.config.hyper.validationFraction ?? 0);
    add("training-curves", () => trainingCurvesFigure(run.history, { ...base, split: "train", images: fitted }, baseline));
  }
  if (run.kind === "kfold") {
    const ctx = { ...base, split: `${run.summary.k}-fold`, images: run.config.data.used };
    if (run.summary.folds.length > 0) add("fold-accuracy", () => foldAccuracyFigure(run.summary, run.history, ctx));
    if (run.predictions.some((p) => p.predAge !== undefined)) add("predicted-vs-real", () => predictedVsRealFigure(run.predictions, { ...ctx, split: "validation folds" }));
    return out;
  }
  const m = run.metrics;
  const ctx: FigureContext = { ...base, split: m.split, images: m.images };
  if (m.ageConfusion) add("age-confusion", () => confusionMatrixFigure(m.ageConfusion as ConfusionMatrix, "Age-group", ctx));
  if (m.genderConfusion) add("gender-confusion", () => confusionMatrixFigure(m.genderConfusion as ConfusionMatrix, "Gender", ctx));
  if (run.predictions.some((p) => p.predAge !== undefined)) add("predicted-vs-real", () => predictedVsRealFigure(run.predictions, ctx));
  if (m.ageMeanVariance) add("age-mean-variance", () => meanVarianceFigure(m.ageMeanVariance as MeanVariance, "age (years)", ctx));
  if (m.genderMeanVariance) add("gender-mean-variance", () => meanVarianceFigure(m.genderMeanVariance as MeanVariance, "gender (P(female) vs code)", ctx));
  if (m.maeByBand && m.maeByBand.length > 0) add("mae-by-band", () => maeByBandFigure(m.maeByBand as BandError[], ctx));
  return out;
}
