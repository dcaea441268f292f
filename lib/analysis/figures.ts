/**
 * The report's figures as Plotly specs, built from plain data (load reports, run files).
 * Pure functions: no browser, no tfjs. `show()` in lib/notebook/display.ts draws them inline and
 * `exportFigures()` in lib/notebook/export.ts writes them as PNG and SVG.
 *
 * Every title says what is plotted and on which images (split, count, profile), because a
 * figure copied out of its notebook loses that context otherwise.
 */
import type { FaceRecord, GroupCount } from "../data/dataset";
import { GENDER_LABELS } from "../data/labels";
import type { Baseline, BandError, ConfusionMatrix, EpochRecord, KFoldResult, KFoldSummary, LoadedRun, MeanVariance, PredictionRow, RunMetrics, RunResult } from "../records/runs";

/** A Plotly figure: traces and layout, as `Plotly.newPlot(div, data, layout)` takes them. */
export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

/** A figure with the file name it is exported under (no extension). */
export interface NamedFigure {
  name: string;
  figure: PlotlyFigure;
}

/** What a figure is computed on, for its subtitle. */
export interface FigureContext {
  /** Model name, e.g. "cnn-age-sigmoid". */
  model?: string;
  /** Which images: "test", "validation", "all", "10-fold". */
  split?: string;
  /** Number of images the figure is computed on. */
  images?: number;
  /** "quick" or "full". */
  profile?: string;
  /** Data directory name, e.g. "sample" or "crop_part1". */
  dataset?: string;
}

/** UTKFace race codes 0..4, as documented with the data set. */
export const RACE_LABELS: readonly string[] = ["White", "Black", "Asian", "Indian", "Others"];

const MALE_COLOR = "#1f77b4";
const FEMALE_COLOR = "#d62728";
/** Race colours: none shared with the gender colours, so the two pies' legend reads unambiguously. */
export const RACE_COLORS: readonly string[] = ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
const TRAIN_COLOR = "#1f77b4";
const VALIDATION_COLOR = "#ff7f0e";
const BASELINE_COLOR = "#7f7f7f";
/** Legend name of the constant predictor drawn beside a model's figures (RunMetrics.baseline). */
export const BASELINE_NAME = "majority baseline";

/** "cnn-gender · test split · 80 images · quick profile" (only the parts that are known). */
export function contextLine(ctx: FigureContext = {}): string {
  const parts: string[] = [];
  if (ctx.model) parts.push(ctx.model);
  // "all" means no split: say "all N images" rather than "all split".
  if (ctx.split === "all") parts.push(ctx.images !== undefined ? `all ${ctx.images} images` : "all images");
  else if (ctx.split) parts.push(/split|fold/.test(ctx.split) ? ctx.split : `${ctx.split} split`);
  if (ctx.images !== undefined && ctx.split !== "all") parts.push(`${ctx.images} images`);
  if (ctx.dataset) parts.push(`data: ${ctx.dataset}`);
  if (ctx.profile) parts.push(`${ctx.profile} profile`);
  return parts.join(" · ");
}

/** A title with the context as a smaller second line (plain <br><sup>, which every Plotly version renders). */
function title(what: string, ctx?: FigureContext): Record<string, unknown> {
  const line = contextLine(ctx);
  return { text: line ? `${what}<br><sup>${line}</sup>` : what, x: 0.02, xanchor: "left" };
}

function baseLayout(what: string, ctx: FigureContext | undefined, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    title: title(what, ctx),
    margin: { t: 80, l: 70, r: 30, b: 70 },
    height: 450,
    width: 800,
    legend: { orientation: "h", y: -0.2 },
    ...extra,
  };
}

function axis(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { title: { text }, automargin: true, ...extra };
}

/** The report's Figure 7: number of faces per age group, male and female side by side. */
export function groupGenderCountsFigure(counts: readonly GroupCount[], ctx?: FigureContext): PlotlyFigure {
  if (counts.length === 0) throw new Error("groupGenderCountsFigure: no age groups given (is the load report empty?).");
  const groups = counts.map((c) => c.group);
  return {
    data: [
      { type: "bar", name: "Male", x: groups, y: counts.map((c) => c.male), marker: { color: MALE_COLOR } },
      { type: "bar", name: "Female", x: groups, y: counts.map((c) => c.female), marker: { color: FEMALE_COLOR } },
    ],
    layout: baseLayout("Faces per age group and gender", ctx, {
      barmode: "group",
      xaxis: axis("age group (years)", { type: "category", tickangle: -45 }),
      yaxis: axis("number of faces"),
    }),
  };
}

/** Distribution of real ages, one bar per year. */
export function ageHistogramFigure(ages: readonly number[], ctx?: FigureContext): PlotlyFigure {
  if (ages.length === 0) throw new Error("ageHistogramFigure: no ages given.");
  const max = Math.max(...ages);
  const counts = new Array<number>(Math.floor(max) + 1).fill(0);
  for (const a of ages) counts[Math.floor(a)]++;
  return {
    data: [{ type: "bar", name: "faces", x: counts.map((_, i) => i), y: counts, marker: { color: MALE_COLOR }, showlegend: false }],
    layout: baseLayout("Age distribution (one bar per year)", ctx, { bargap: 0.05, xaxis: axis("age (years)"), yaxis: axis("number of faces") }),
  };
}

/** Shares of gender and race as two pie charts. */
export function sharesFigure(records: readonly Pick<FaceRecord, "gender" | "race">[], ctx?: FigureContext): PlotlyFigure {
  if (records.length === 0) throw new Error("sharesFigure: no records given.");
  const gender = [0, 0];
  const race = new Array<number>(RACE_LABELS.length).fill(0);
  for (const r of records) {
    gender[r.gender]++;
    if (r.race >= 0 && r.race < race.length) race[r.race]++;
  }
  return {
    data: [
      { type: "pie", name: "gender", title: { text: "gender" }, labels: [...GENDER_LABELS], values: gender, domain: { x: [0, 0.46] }, marker: { colors: [MALE_COLOR, FEMALE_COLOR] }, textinfo: "label+percent", sort: false },
      { type: "pie", name: "race", title: { text: "race" }, labels: [...RACE_LABELS], values: race, domain: { x: [0.54, 1] }, marker: { colors: [...RACE_COLORS] }, textinfo: "label+percent", sort: false },
    ],
    layout: baseLayout("Gender and race shares", ctx, { showlegend: true }),
  };
}

/**
 * Histogram of pixel values after the input transform (e.g. 70x70 grayscale scaled to [0,1]).
 * Counts are binned here, so the figure stays small whatever the number of pixels.
 */
export function pixelHistogramFigure(values: ArrayLike<number>, ctx?: FigureContext & { transform?: string; bins?: number }): PlotlyFigure {
  if (values.length === 0) throw new Error("pixelHistogramFigure: no pixel values given.");
  const bins = ctx?.bins ?? 50;
  let lo = Infinity;
  let hi = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    sum += v;
  }
  const width = hi > lo ? (hi - lo) / bins : 1;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i] - lo) / width))]++;
  const centers = counts.map((_, i) => lo + (i + 0.5) * width);
  const mean = sum / values.length;
  return {
    data: [
      { type: "bar", name: "pixels", x: centers, y: counts, width: width * 0.95, marker: { color: "#7f7f7f" } },
      { type: "scatter", mode: "lines", name: `mean ${mean.toFixed(3)}`, x: [mean, mean], y: [0, Math.max(...counts)], line: { color: FEMALE_COLOR, dash: "dash" } },
    ],
    layout: baseLayout(`Pixel values after ${ctx?.transform ?? "the input transform"}`, ctx, { xaxis: axis("pixel value"), yaxis: axis("number of pixels") }),
  };
}

/** Metric names in a history, in first-seen order. */
function metricNames(history: readonly EpochRecord[]): string[] {
  const names = new Set<string>();
  for (const h of history) for (const k of Object.keys(h.metrics)) names.add(k);
  return [...names];
}

/** x positions: the epoch, or for K-fold histories a running epoch count across folds. */
function epochAxis(history: readonly EpochRecord[]): { x: number[]; label: string } {
  const kfold = history.some((h) => h.fold !== undefined);
  return kfold ? { x: history.map((_, i) => i + 1), label: "epoch (all folds in order)" } : { x: history.map((h) => h.epoch), label: "epoch" };
}

/** Words for metric keys in axis titles and legends ("genderAccuracy" -> "gender accuracy"). */
export function metricLabel(key: string): string {
  const words: Record<string, string> = { ageAccuracyWithin1: "age accuracy ±1 group", mae: "MAE (years)" };
  return words[key] ?? key.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

/**
 * Training curves: loss and each metric, training and validation, one panel each side by side.
 * Validation lines appear only where the run held images back for validation; the majority
 * baseline (the training split's most common answer, scored on the held-out images) is drawn as
 * a dashed line on the accuracy and MAE panels when given.
 */
export function trainingCurvesFigure(history: readonly EpochRecord[], ctx?: FigureContext, baseline?: Baseline): PlotlyFigure {
  if (history.length === 0) throw new Error("trainingCurvesFigure: the history is empty (did the run train at least one epoch?).");
  const { x, label } = epochAxis(history);
  const panels = ["loss", ...metricNames(history)];
  const data: Record<string, unknown>[] = [];
  const layoutAxes: Record<string, unknown> = {};
  const gap = 0.08;
  const w = (1 - gap * (panels.length - 1)) / panels.length;
  panels.forEach((panel, i) => {
    const suffix = i === 0 ? "" : String(i + 1);
    const train = history.map((h) => (panel === "loss" ? h.loss : h.metrics[panel] ?? null));
    const val = history.map((h) => (panel === "loss" ? h.valLoss ?? null : h.valMetrics?.[panel] ?? null));
    const common = { type: "scatter", mode: "lines+markers", x, xaxis: `x${suffix}`, yaxis: `y${suffix}`, legendgroup: panel };
    data.push({ ...common, name: `${metricLabel(panel)} (train)`, y: train, line: { color: TRAIN_COLOR } });
    if (val.some((v) => v !== null)) data.push({ ...common, name: `${metricLabel(panel)} (validation)`, y: val, line: { color: VALIDATION_COLOR, dash: "dot" } });
    // The bar a model must clear, on the same axes: a curve under it has learned nothing useful.
    const base = baseline?.[panel as keyof Baseline];
    if (base !== undefined) data.push({ type: "scatter", mode: "lines", x: [x[0], x[x.length - 1]], y: [base, base], xaxis: `x${suffix}`, yaxis: `y${suffix}`, name: `${BASELINE_NAME} (held-out)`, legendgroup: "baseline", showlegend: !data.some((d) => d.legendgroup === "baseline"), line: { color: BASELINE_COLOR, dash: "dash" } });
    layoutAxes[`xaxis${suffix}`] = axis(label, { domain: [i * (w + gap), i * (w + gap) + w], anchor: `y${suffix}`, ...(x.length <= 20 ? { dtick: 1 } : {}) });
    layoutAxes[`yaxis${suffix}`] = axis(metricLabel(panel), { anchor: `x${suffix}` });
  });
  return { data, layout: baseLayout("Training curves", ctx, { ...layoutAxes, width: Math.max(800, 420 * panels.length) }) };
}

/** A confusion matrix as a heatmap: rows the real class, columns the predicted one, counts written in. */
export function confusionMatrixFigure(cm: ConfusionMatrix, what: string, ctx?: FigureContext): PlotlyFigure {
  const n = cm.labels.length;
  if (cm.matrix.length !== n || cm.matrix.some((row) => row.length !== n)) {
    throw new Error(`confusionMatrixFigure: a ${n}-label confusion matrix must be ${n}x${n}, got ${cm.matrix.length} rows.`);
  }
  return {
    data: [
      {
        type: "heatmap",
        name: what,
        x: cm.labels,
        y: cm.labels,
        z: cm.matrix,
        text: cm.matrix.map((row) => row.map((v) => (v ? String(v) : ""))),
        texttemplate: "%{text}",
        // White for zero, dark for many: Plotly's named "Blues" runs the other way.
        colorscale: [[0, "#ffffff"], [1, "#08306b"]],
        colorbar: { title: { text: "images" } },
        hovertemplate: "real %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
      },
    ],
    layout: baseLayout(`${what} confusion matrix`, ctx, {
      xaxis: axis("predicted", { type: "category", tickangle: -45 }),
      yaxis: axis("real", { type: "category", autorange: "reversed" }),
      width: n > 4 ? 820 : 520,
      height: n > 4 ? 760 : 460,
    }),
  };
}

/** Predicted against real age for every held-out image, with the line of perfect prediction. */
export function predictedVsRealFigure(rows: readonly PredictionRow[], ctx?: FigureContext): PlotlyFigure {
  const usable = rows.filter((r) => r.predAge !== undefined);
  if (usable.length === 0) throw new Error("predictedVsRealFigure: no prediction has a predicted age (is this a gender-only run?).");
  const top = Math.max(...usable.map((r) => Math.max(r.age, r.predAge as number)));
  return {
    data: [
      { type: "scatter", mode: "markers", name: "held-out image", x: usable.map((r) => r.age), y: usable.map((r) => r.predAge), text: usable.map((r) => r.file), marker: { size: 6, opacity: 0.6, color: TRAIN_COLOR } },
      { type: "scatter", mode: "lines", name: "predicted = real", x: [0, top], y: [0, top], line: { color: "#444", dash: "dash" } },
    ],
    layout: baseLayout("Predicted vs real age", ctx, { xaxis: axis("real age (years)"), yaxis: axis("predicted age (years)") }),
  };
}

/** The report's comparison of predicted and real mean and variance, two panels (mean, variance). */
export function meanVarianceFigure(mv: MeanVariance, what: string, ctx?: FigureContext): PlotlyFigure {
  const common = { type: "bar", x: ["real", "predicted"] };
  return {
    data: [
      { ...common, name: "mean", y: [mv.realMean, mv.predictedMean], marker: { color: TRAIN_COLOR }, xaxis: "x", yaxis: "y", text: [mv.realMean, mv.predictedMean].map((v) => v.toFixed(2)), textposition: "auto" },
      { ...common, name: "variance", y: [mv.realVariance, mv.predictedVariance], marker: { color: VALIDATION_COLOR }, xaxis: "x2", yaxis: "y2", text: [mv.realVariance, mv.predictedVariance].map((v) => v.toFixed(2)), textposition: "auto" },
    ],
    layout: baseLayout(`Mean and variance of ${what}, predicted vs real`, ctx, {
      xaxis: axis("", { domain: [0, 0.45], anchor: "y" }),
      yaxis: axis(`mean ${what}`, { anchor: "x" }),
      xaxis2: axis("", { domain: [0.55, 1], anchor: "y2" }),
      yaxis2: axis(`variance of ${what}`, { anchor: "x2" }),
    }),
  };
}

/** Mean absolute age error per real-age band; the image count of each band is written on its bar. */
export function maeByBandFigure(bands: readonly BandError[], ctx?: FigureContext): PlotlyFigure {
  if (bands.length === 0) throw new Error("maeByBandFigure: no bands given.");
  return {
    data: [
      {
        type: "bar",
        name: "MAE",
        x: bands.map((b) => b.band),
        y: bands.map((b) => b.mae),
        text: bands.map((b) => `n=${b.images}`),
        textposition: "outside",
        marker: { color: TRAIN_COLOR },
        showlegend: false,
      },
    ],
    layout: baseLayout("Mean absolute age error by real-age band", ctx, { xaxis: axis("real age band (years)", { type: "category", tickangle: -45 }), yaxis: axis("MAE (years)") }),
  };
}

/** Accuracy-like metric names of a history: "ageAccuracy", "genderAccuracy", or "accuracy". */
function accuracyKey(history: readonly EpochRecord[], which: "age" | "gender"): string | undefined {
  const names = metricNames(history);
  return names.find((n) => n.toLowerCase() === `${which}accuracy`) ?? names.find((n) => new RegExp(`^${which}.*acc`, "i").test(n)) ?? names.find((n) => /^acc(uracy)?$/i.test(n));
}

/**
 * The report's K-fold figure: accuracy per fold, training (last epoch of the fold) and
 * validation (the fold's held-out images), for age and for gender when the task has them, with
 * the majority baseline of each validation fold on the same axes.
 */
export function foldAccuracyFigure(summary: KFoldSummary, history: readonly EpochRecord[], ctx?: FigureContext): PlotlyFigure {
  if (summary.folds.length === 0) throw new Error("foldAccuracyFigure: the K-fold summary has no finished fold yet.");
  const folds = summary.completed.length === summary.folds.length ? summary.completed : summary.folds.map((_, i) => i);
  const labels = folds.map((f) => `fold ${f + 1}`);
  const data: Record<string, unknown>[] = [];
  const tasks: { which: "age" | "gender"; val: (m: RunMetrics) => number | undefined }[] = [
    { which: "age", val: (m) => m.ageAccuracy },
    { which: "gender", val: (m) => m.genderAccuracy },
  ];
  const present = tasks.filter((t) => summary.folds.some((m) => t.val(m) !== undefined));
  present.forEach((t, i) => {
    const suffix = i === 0 ? "" : String(i + 1);
    const key = accuracyKey(history, t.which);
    const train = folds.map((f) => {
      const last = history.filter((h) => h.fold === f).pop();
      return key && last ? last.metrics[key] ?? null : null;
    });
    // Same colours in both panels, so one legend entry each (the panel's axis says age or gender).
    data.push({ type: "bar", name: "train (last epoch)", legendgroup: "train", showlegend: i === 0, x: labels, y: train, marker: { color: TRAIN_COLOR }, xaxis: `x${suffix}`, yaxis: `y${suffix}` });
    data.push({ type: "bar", name: "validation fold", legendgroup: "validation", showlegend: i === 0, x: labels, y: summary.folds.map((m) => t.val(m) ?? null), marker: { color: VALIDATION_COLOR }, xaxis: `x${suffix}`, yaxis: `y${suffix}` });
    const base = summary.folds.map((m) => m.baseline?.[`${t.which}Accuracy`] ?? null);
    if (base.some((v) => v !== null)) data.push({ type: "scatter", mode: "lines+markers", name: `${BASELINE_NAME} (validation fold)`, legendgroup: "baseline", showlegend: i === 0, x: labels, y: base, line: { color: BASELINE_COLOR, dash: "dash" }, marker: { symbol: "line-ew-open", size: 14 }, xaxis: `x${suffix}`, yaxis: `y${suffix}` });
  });
  const layout: Record<string, unknown> = baseLayout(`Accuracy per fold (${summary.k}-fold)`, ctx, { barmode: "group", width: 900 });
  present.forEach((t, i) => {
    const suffix = i === 0 ? "" : String(i + 1);
    const w = present.length === 1 ? 1 : 0.45;
    layout[`xaxis${suffix}`] = axis("fold", { domain: [i * 0.55, i * 0.55 + w], anchor: `y${suffix}`, type: "category" });
    layout[`yaxis${suffix}`] = axis(`${t.which} accuracy`, { anchor: `x${suffix}`, range: [0, 1] });
  });
  return { data, layout };
}

/**
 * Figures the report publishes, shown next to ours as its claims, never as measurements (as
 * quoted in issue 13 from the report). Why ours differ, as far as the evidence goes:
 * docs/reference.md. The report's "sigmoid model" and "ReLU model" each came with a gender
 * figure; they are filed under those models, as the report gives them.
 */
export const PUBLISHED_CLAIMS: ClaimedFigure[] = [
  { source: "report (K-fold)", model: "cnn-age-sigmoid", metric: "ageAccuracy", value: 0.7819, where: "sigmoid model, after its K-fold runs (weights carried over the folds)" },
  { source: "report (K-fold)", model: "cnn-age-sigmoid", metric: "genderAccuracy", value: 0.9908, where: "sigmoid model, after its K-fold runs" },
  { source: "report (test set)", model: "cnn-age-sigmoid", metric: "ageAccuracy", value: 0.7398, where: "sigmoid model on its test set" },
  { source: "report (K-fold)", model: "cnn-age-sigmoid", metric: "trainSeconds", value: 2.5 * 3600, where: "sigmoid model: 2 h 30 min of training" },
  { source: "report (K-fold)", model: "cnn-age-relu", metric: "ageAccuracy", value: 0.2921, where: "ReLU model, after its K-fold runs" },
  { source: "report (K-fold)", model: "cnn-age-relu", metric: "genderAccuracy", value: 0.9802, where: "ReLU model, after its K-fold runs" },
  { source: "report (K-fold)", model: "cnn-age-relu", metric: "trainSeconds", value: 1.25 * 3600, where: "ReLU model: 1 h 15 min of training" },
  { source: "report (test set)", model: "vgg19", metric: "ageAccuracy", value: 0.4036, where: "VGG19 age accuracy" },
  { source: "report (test set)", model: "vgg19", metric: "predictedMean", value: 1.047, where: "VGG19 predicted mean (the report does not say in which unit)" },
  { source: "report (test set)", model: "vgg19", metric: "predictedVariance", value: 1.69, where: "VGG19 predicted variance (unit not stated)" },
  { source: "report (test set)", model: "vgg19", metric: "trainSeconds", value: 5 * 3600, where: "VGG19: about 5 h of training" },
];

/** One model's figures on the shared held-out split (06-comparison). */
export interface ComparisonRow {
  model: string;
  /** Held-out images the figures come from (K-fold: every image, once, over the folds). */
  images?: number;
  ageAccuracy?: number;
  ageAccuracyWithin1?: number;
  mae?: number;
  genderAccuracy?: number;
  trainSeconds?: number;
  /** Trainable parameters, for the complexity table. */
  parameters?: number;
  /** The majority baseline on the same held-out images (K-fold: mean over folds). */
  baseline?: Baseline;
  /** The report's VGG19 figures: mean and variance of its predictions (units not stated). */
  predictedMean?: number;
  predictedVariance?: number;
}

/** A figure someone else published: the report or a sibling write-up. Always shown as a claim. */
export interface ClaimedFigure {
  /** Who claims it, e.g. "report" or "seed 000 write-up". */
  source: string;
  model: string;
  metric: keyof Omit<ComparisonRow, "model" | "images" | "baseline">;
  value: number;
  /** Where in the source, e.g. "Table 3", and on what (K-fold runs, test set). */
  where?: string;
}

/** The comparison table's metrics and how they read. */
export const COMPARISON_METRICS: readonly { key: keyof Omit<ComparisonRow, "model" | "images" | "baseline">; label: string }[] = [
  { key: "ageAccuracy", label: "age-group accuracy" },
  { key: "ageAccuracyWithin1", label: "age accuracy ±1 group" },
  { key: "genderAccuracy", label: "gender accuracy" },
  { key: "mae", label: "MAE (years)" },
  { key: "trainSeconds", label: "training time (s)" },
];

/**
 * Every model side by side, one panel per metric: measured here (solid) next to what the
 * report and sibling write-ups claim (hatched, labelled "claimed by <source>"), with each
 * model's majority baseline on the same images as a grey tick.
 */
export function comparisonFigure(rows: readonly ComparisonRow[], claims: readonly ClaimedFigure[], ctx?: FigureContext): PlotlyFigure {
  if (rows.length === 0) throw new Error("comparisonFigure: no model rows given (run the experiments first).");
  const metrics = COMPARISON_METRICS.filter((m) => rows.some((r) => r[m.key] !== undefined) || claims.some((c) => c.metric === m.key));
  const models = [...new Set([...rows.map((r) => r.model), ...claims.map((c) => c.model)])];
  const sources = [...new Set(claims.map((c) => c.source))];
  const data: Record<string, unknown>[] = [];
  // Panels on a grid of up to three columns, so the figure stays readable on a page.
  const cols = Math.min(3, metrics.length);
  const gridRows = Math.ceil(metrics.length / cols);
  const layout: Record<string, unknown> = baseLayout("Models compared", ctx, { barmode: "group", width: 440 * cols, height: 80 + 360 * gridRows });
  const gapX = 0.08;
  const gapY = 0.16;
  const w = (1 - gapX * (cols - 1)) / cols;
  const h = (1 - gapY * (gridRows - 1)) / gridRows;
  metrics.forEach((m, i) => {
    const suffix = i === 0 ? "" : String(i + 1);
    const col = i % cols;
    const row = Math.floor(i / cols);
    const top = 1 - row * (h + gapY);
    data.push({ type: "bar", name: "measured here", legendgroup: "measured", showlegend: i === 0, x: models, y: models.map((name) => rows.find((r) => r.model === name)?.[m.key] ?? null), marker: { color: TRAIN_COLOR }, xaxis: `x${suffix}`, yaxis: `y${suffix}` });
    const base = models.map((name) => rows.find((r) => r.model === name)?.baseline?.[m.key as keyof Baseline] ?? null);
    if (base.some((v) => v !== null)) data.push({ type: "scatter", mode: "markers", name: `${BASELINE_NAME} (same images)`, legendgroup: "baseline", showlegend: !data.some((d) => d.legendgroup === "baseline"), x: models, y: base, marker: { symbol: "line-ew-open", size: 28, line: { width: 3, color: BASELINE_COLOR } }, xaxis: `x${suffix}`, yaxis: `y${suffix}` });
    sources.forEach((src, s) => {
      data.push({
        type: "bar",
        name: `claimed by ${src}`,
        legendgroup: src,
        showlegend: i === 0,
        x: models,
        y: models.map((name) => claims.find((c) => c.source === src && c.model === name && c.metric === m.key)?.value ?? null),
        marker: { color: ["#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"][s % 4], pattern: { shape: "/" } },
        xaxis: `x${suffix}`,
        yaxis: `y${suffix}`,
      });
    });
    layout[`xaxis${suffix}`] = axis("", { domain: [col * (w + gapX), col * (w + gapX) + w], anchor: `y${suffix}`, type: "category", tickangle: -30 });
    layout[`yaxis${suffix}`] = axis(m.label, { domain: [top - h, top], anchor: `x${suffix}` });
  });
  return { data, layout };
}

/** One fold of a carried-weight K-fold run, as `leakFigure` draws it (lib/analysis/leak.ts computes it). */
export interface LeakFigureRow {
  fold: number;
  /** Share of the fold's validation faces that earlier folds had trained on (0..1). */
  share: number;
  /** Accuracy on the fold's validation faces (what the report's procedure reports). */
  validation: number;
  /** The same fold's model on the held-out test faces, which no fold ever trained on. */
  test?: number;
}

/**
 * The report's procedure against faces it never saw: per fold, the validation accuracy a
 * carried-weight K-fold reports, the same model on held-out test faces, and the share of the
 * validation faces already trained on (the leak).
 */
export function leakFigure(rows: readonly LeakFigureRow[], what: "age" | "gender", ctx?: FigureContext): PlotlyFigure {
  if (rows.length === 0) throw new Error("leakFigure: no finished fold yet.");
  const x = rows.map((r) => `fold ${r.fold + 1}`);
  const data: Record<string, unknown>[] = [
    { type: "bar", name: "validation fold (the report's figure)", x, y: rows.map((r) => r.validation), marker: { color: VALIDATION_COLOR } },
    { type: "bar", name: "held-out test faces (never trained on)", x, y: rows.map((r) => r.test ?? null), marker: { color: TRAIN_COLOR } },
    { type: "scatter", mode: "lines+markers", name: "validation faces already trained on", x, y: rows.map((r) => r.share), line: { color: BASELINE_COLOR, dash: "dot" } },
  ];
  const layout = baseLayout(`The report's procedure: ${what} accuracy per fold with carried weights`, ctx, { barmode: "group", width: 900 });
  layout.xaxis = axis("fold", { type: "category" });
  layout.yaxis = axis(`${what} accuracy / share of faces`, { range: [0, 1] });
  return { data, layout };
}
