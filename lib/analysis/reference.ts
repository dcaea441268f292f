/**
 * The project's reference results: the records of full-profile runs (the report's protocol on
 * 8,818 real faces), committed under results/reference/<experiment>/<run-id>/ so a fresh clone
 * can show what the protocol gives next to its own quick run.
 *
 * A reference run folder is a run folder (lib/records/runs.ts) without weights: config.json,
 * history.json, metrics.json, predictions.json; a K-fold run keeps its fold-NN/ folders (their
 * records are the source of truth, so a run with only some folds finished is read as such) and
 * drops the merged copies at the top, which the loader recomputes. results/reference/README.md
 * has one line per run: the command, engine, threads, wall time, date, profile and images.
 */
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, RESULTS_DIR } from "../core/paths";
import { writeFileAtomic } from "../core/files";
import { readKFold } from "../records/kfold-folders";
import { LoadedRun, RUN_FILES, RunConfig, RunMetrics, loadRun, portablePath } from "../records/runs";
import { ComparisonRow, NamedFigure, PUBLISHED_CLAIMS, confusionMatrixFigure } from "./figures";
import { measureLeak } from "./leak";
import { comparisonRow, runFigures } from "./run-figures";
import type { ConfusionMatrix, PredictionRow } from "../records/runs";
import { GENDER_THRESHOLD } from "../data/labels";
import { accuracy, accuracyWithin, meanAbsoluteError } from "./metrics";

/** Where reference runs are committed (the one folder under results/ that git tracks). */
export const REFERENCE_DIR = path.join(RESULTS_DIR, "reference");
/** The index of reference runs, one table row per run. */
export const REFERENCE_README = "README.md";

/** What a reference run is, in the words a figure title needs. */
export interface ReferenceInfo {
  experiment: string;
  runId: string;
  runDir: string;
  /** Day the run was started (YYYY-MM-DD, from config.json createdAt). */
  date: string;
  profile: string;
  /** Faces the run used (all folds together, or train + test). */
  images: number;
  /** K-fold runs: the number of folds planned and finished. */
  folds?: number;
  foldsDone?: number;
/** "full profile, 10 folds, 8,818 faces, reference run of 2026-11-23". */
  label: string;
}

/** A loaded run with its reference description. */
export type ReferenceRun = LoadedRun & { reference: ReferenceInfo };

/** "80/20 split", "90/10 split": a train/test run's split by its test fraction. */
function splitName(testFraction: number): string {
  return `${Math.round((1 - testFraction) * 100)}/${Math.round(testFraction * 100)} split`;
}

/** "full profile, 10 folds, 8,818 faces, reference run of <date>"; a partial K-fold run says "4 of 10 folds done". */
export function referenceLabel(config: RunConfig, foldsDone?: number): string {
  const parts = [`${config.profile} profile`];
  if (config.kfold) {
    const k = config.kfold.k;
    parts.push(foldsDone !== undefined && foldsDone < k ? `${foldsDone} of ${k} folds done` : `${k} folds`);
  } else if (config.split) {
    parts.push(splitName(config.split.testFraction));
  }
  const held = config.kfold?.heldOutTest;
  if (held) parts.push(`${config.kfold!.carryWeights ? "weights carried, " : ""}${config.kfold!.validation.flat().length.toLocaleString("en")} faces in the folds, ${held.indices.length.toLocaleString("en")} test faces held out`);
  else parts.push(`${config.data.used.toLocaleString("en")} faces`);
  parts.push(`reference run of ${config.createdAt.slice(0, 10)}`);
  return parts.join(", ");
}

/**
 * Reads one reference run folder. K-fold runs are read from their fold folders, so a run
 * copied with only some folds finished shows exactly those folds.
 */
function loadReferenceRun(runDir: string): ReferenceRun {
  const dir = path.resolve(runDir);
  const configFile = path.join(dir, RUN_FILES.config);
  if (!fs.existsSync(configFile)) throw new Error(`${portablePath(dir)} is not a run folder: it has no config.json.`);
  const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as RunConfig;
  let run: LoadedRun;
  let foldsDone: number | undefined;
  if (config.kind === "kfold") {
    const r = readKFold(dir);
    run = { kind: "kfold", runDir: dir, config: r.config, history: r.history, metrics: r.summary, summary: r.summary, predictions: r.predictions };
    foldsDone = r.summary.completed.length;
  } else {
    run = loadRun(dir);
  }
  const reference: ReferenceInfo = {
    experiment: config.experiment,
    runId: config.runId,
    runDir: dir,
    date: config.createdAt.slice(0, 10),
    profile: config.profile,
    images: config.data.used,
    ...(config.kfold ? { folds: config.kfold.k, foldsDone } : {}),
    label: referenceLabel(config, foldsDone),
  };
  return { ...run, reference };
}

/**
 * Which K-fold procedure a reference run followed: "fresh" (each fold from new weights, the
 * held-out protocol every table uses) or "carried" (the report's own: weights carried from fold to fold).
 */
export type ReferenceProcedure = "fresh" | "carried";

/** Run folders under one experiment of the reference folder following one procedure, oldest first. */
function runDirsOf(root: string, experiment: string, procedure: ReferenceProcedure = "fresh"): string[] {
  const dir = path.join(root, experiment);
  if (!fs.existsSync(dir)) return [];
  const configOf = (id: string) => JSON.parse(fs.readFileSync(path.join(dir, id, RUN_FILES.config), "utf8")) as RunConfig;
  // Oldest first by the time the run began (run folders given by name need not sort by time).
  return fs
    .readdirSync(dir)
    .filter((id) => fs.existsSync(path.join(dir, id, RUN_FILES.config)))
    .filter((id) => (configOf(id).kfold?.carryWeights ? "carried" : "fresh") === procedure)
    .map((id) => ({ id, at: configOf(id).createdAt }))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id.localeCompare(b.id)))
    .map(({ id }) => path.join(dir, id));
}

/**
 * The newest committed reference run of an experiment (e.g. "cnn-age-sigmoid-kfold"), or
 * undefined when there is none; by default of the fresh-fold protocol, "carried" for the report's own.
 */
export function referenceRun(experiment: string, root: string = REFERENCE_DIR, procedure: ReferenceProcedure = "fresh"): ReferenceRun | undefined {
  const dirs = runDirsOf(root, experiment, procedure);
  return dirs.length ? loadReferenceRun(dirs[dirs.length - 1]) : undefined;
}

/**
 * Experiments that rerun one of the report's own procedures on other faces (VGG19's 90/10 split):
 * they have their own table (procedureTable), not a row among the models compared on the same faces.
 */
export const REPORT_PROCEDURE_SUFFIX = "-report";

/**
 * The newest fresh-protocol reference run of every experiment under results/reference/, by
 * experiment name (the report's own procedures, carried K-folds and `*-report`, are left to procedureRows).
 */
export function referenceRuns(root: string = REFERENCE_DIR): ReferenceRun[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((e) => fs.statSync(path.join(root, e)).isDirectory() && !e.endsWith(REPORT_PROCEDURE_SUFFIX))
    .sort()
    .map((e) => referenceRun(e, root))
    .filter((r): r is ReferenceRun => r !== undefined);
}

/**
 * Every figure of a reference run, titled as the reference ("Reference · Training curves",
 * subtitle "full profile, 10 folds, 8,818 faces, reference run of <date>") and named
 * `reference-<experiment>-<figure>`, so it is never mistaken for the run a notebook just did.
 */
export function referenceFigures(run: ReferenceRun): NamedFigure[] {
  const figures = runFigures(run);
  if (run.kind === "kfold") {
    // Every face is held out once over the folds: their confusion matrices add up to one.
    const ctx = { model: run.config.model, split: "validation folds", images: run.predictions.length, profile: run.config.profile };
    const age = sumConfusion(run.summary.folds.map((f) => f.ageConfusion));
    const gender = sumConfusion(run.summary.folds.map((f) => f.genderConfusion));
    if (age) figures.push({ name: `${run.config.experiment}-age-confusion`, figure: confusionMatrixFigure(age, "Age-group", ctx) });
    if (gender) figures.push({ name: `${run.config.experiment}-gender-confusion`, figure: confusionMatrixFigure(gender, "Gender", ctx) });
  }
  return figures.map(({ name, figure }) => {
    const t = figure.layout.title as { text?: string } | undefined;
    const what = (t?.text ?? "").split("<br>")[0];
    const text = `Reference · ${what}<br><sup>${run.config.model} · ${run.reference.label}</sup>`;
    return { name: `reference-${name}`, figure: { data: figure.data, layout: { ...figure.layout, title: { ...(t ?? {}), text } } } };
  });
}

/** Adds confusion matrices with the same labels; undefined when none is given. */
function sumConfusion(matrices: (ConfusionMatrix | undefined)[]): ConfusionMatrix | undefined {
  const given = matrices.filter((m): m is ConfusionMatrix => m !== undefined);
  if (given.length === 0) return undefined;
  const labels = given[0].labels;
  const matrix = labels.map((_, i) => labels.map((_, j) => given.reduce((a, m) => a + (m.matrix[i]?.[j] ?? 0), 0)));
  return { labels, matrix };
}

/**
 * One comparison row per reference run (K-fold: mean over finished folds), each with its
 * training time and images, for 06-comparison and the README table. `parameters` gives the
 * trainable parameter count per model name when known.
 */
/** What a K-fold reference was scored on: every face, or only the validation folds done so far. */
function kfoldHeldOut(run: ReferenceRun): string {
  const { foldsDone, folds } = run.reference;
  return foldsDone !== undefined && folds !== undefined && foldsDone < folds ? `the ${foldsDone} validation fold(s) done, each by its fold's model` : "every face, by its validation fold";
}

export function referenceComparisonRows(
  runs: readonly ReferenceRun[] = referenceRuns(),
  parameters: Record<string, number> = {},
): (ComparisonRow & { experiment: string; reference: string; heldOut: string; everyFace?: ComparisonRow })[] {
  // The same faces for every model: the 80/20 test split of a train run, when one is committed.
  // A K-fold run predicted each of those faces with the fold model that held it out.
  const split = runs.find((r) => r.kind === "split");
  const testFiles = split ? new Set(split.predictions.map((p) => p.file)) : undefined;
  return runs.map((run) => {
    const row = comparisonRow(run, parameters[run.config.model]);
    const base = { experiment: run.reference.experiment, reference: run.reference.label };
    if (run.kind !== "kfold" || !testFiles) return { ...row, ...base, heldOut: run.kind === "kfold" ? kfoldHeldOut(run) : "80/20 test split" };
    const rows = run.predictions.filter((p) => testFiles.has(p.file));
    // The 80/20 split and the folds cut one seeded order, so the test faces can fall in a few
    // folds only (with seed 42: folds 1 and 2, the two longest): say which.
    const folds = [...new Set(rows.map((p) => (p as { fold?: number }).fold).filter((f): f is number => f !== undefined))].sort((a, b) => a - b);
    const all = run.reference.folds ?? run.summary.folds.length;
    const which = folds.length > 0 && folds.length < all ? `the validation faces of fold${folds.length > 1 ? "s" : ""} ${folds.map((f) => f + 1).join(", ")} of ${all}` : "each by the fold that held it out";
    return { ...row, ...figuresOf(rows), images: rows.length, ...base, heldOut: `80/20 test split faces: ${which}`, everyFace: row };
  });
}

/**
 * The README's results table (markdown) from the newest reference runs: every model on the same
 * held-out faces, same metrics, training time, engine and threads; a line when there is none.
 */
export function referenceTable(runs: readonly ReferenceRun[] = referenceRuns()): string {
  if (runs.length === 0) return "No reference run is committed yet (results/reference/): run `bash scripts/reference-runs.sh`.";
  const rows = referenceComparisonRows(runs);
  const pct = (v?: number) => (v === undefined ? "" : `${(v * 100).toFixed(1)}%`);
  const lines = [
    "| model | run | held-out faces | images | age-group accuracy | ±1 group | MAE (years) | gender accuracy | training | engine |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r, i) => {
      const b = runs[i].config.backend;
      return `| \`${r.model}\` | ${r.reference} | ${r.heldOut} | ${r.images?.toLocaleString("en") ?? ""} | ${pct(r.ageAccuracy)} | ${pct(r.ageAccuracyWithin1)} | ${r.mae?.toFixed(1) ?? ""} | ${pct(r.genderAccuracy)} | ${r.trainSeconds !== undefined ? formatHours(r.trainSeconds) : ""} | ${b.engine ?? `${b.name}, ${b.threads || "auto"} thread(s)`} |`;
    }),
  ];
  // A K-fold row restricted to the test faces may come from a few folds only: give the whole
  // protocol's figure (every face, every fold) beside it.
  const partial = rows.filter((r) => r.everyFace && !r.heldOut.endsWith("held it out"));
  if (partial.length > 0) {
    const figure = (r: ComparisonRow) => (r.ageAccuracy !== undefined ? `${pct(r.ageAccuracy)} age-group accuracy` : `${pct(r.genderAccuracy)} gender accuracy`);
    lines.push(
      "",
      `The K-fold rows above score only the folds that hold the test faces (the 80/20 split and the folds share one seeded order), the folds that trained longest. Over every face and all folds, the protocol's own result: ${partial.map((r) => `\`${r.model}\` ${figure(r.everyFace!)}`).join(", ")} (docs/reference.md).`,
    );
  }
  return lines.join("\n");
}

/** A row of the procedure table: one of the report's headline figures, claimed, reproduced and held out. */
export interface ProcedureRow {
  model: string;
  metric: "ageAccuracy" | "genderAccuracy";
  claim?: number;
  claimWhere?: string;
  /** Our run of the report's own procedure, and on what it is scored. */
  procedure?: { value: number; on: string };
  /** The same run's model on faces it never trained on. */
  heldOut?: { value: number; on: string };
  /** The fresh-fold protocol's (or 80/20) held-out reference figure. */
  fresh?: { value: number; on: string };
}

/** The report's headline figures beside our runs of its procedure and the held-out figures (README, notebook 06). */
export function procedureRows(root: string = REFERENCE_DIR): ProcedureRow[] {
  const claimOf = (model: string, metric: string, source = "report (K-fold)") => PUBLISHED_CLAIMS.find((c) => c.model === model && c.metric === metric && c.source === source);
  const rows: ProcedureRow[] = [];
  const n = (v: number) => v.toLocaleString("en");
  for (const [model, metric, claimModel] of [["cnn-age-sigmoid", "ageAccuracy", "cnn-age-sigmoid"], ["cnn-gender", "genderAccuracy", "cnn-age-sigmoid"]] as const) {
    const claim = claimOf(claimModel, metric);
    const row: ProcedureRow = { model, metric, claim: claim?.value, claimWhere: claim?.where };
    const carried = referenceRun(`${model}-kfold`, root, "carried");
    if (carried) {
      const leak = measureLeak(carried.runDir);
      const k = carried.config.kfold!.k;
      const faces = carried.config.kfold!.validation.flat().length;
      row.procedure = { value: leak.meanValidation, on: `mean of ${leak.folds.length === k ? k : `${leak.folds.length} of ${k}`} validation folds, weights carried (${n(faces)} faces)` };
      if (leak.finalTest) row.heldOut = { value: leak.finalTest.accuracy, on: `${n(leak.finalTest.faces)} test faces no fold trained on, fold ${leak.finalTest.fold + 1}'s model` };
    }
    const fresh = referenceRun(`${model}-kfold`, root, "fresh");
    const v = fresh ? figuresOf(fresh.predictions)[metric] : undefined;
    if (fresh && v !== undefined) row.fresh = { value: v, on: `fresh ${fresh.config.kfold!.k}-fold protocol, every face by its validation fold (${n(fresh.predictions.length)})` };
    rows.push(row);
  }
  const claim = claimOf("vgg19", "ageAccuracy", "report (test set)");
  const vgg: ProcedureRow = { model: "vgg19", metric: "ageAccuracy", claim: claim?.value, claimWhere: claim?.where };
  const report = referenceRun("vgg19-report", root);
  if (report && report.kind === "split") {
    const m = report.metrics as RunMetrics;
    const on = `its ${Math.round(report.config.split!.testFraction * 100)}% test split (${n(m.images)} faces), class-weighted, best of ${report.history.length} epochs by validation${m.keptEpoch ? ` (epoch ${m.keptEpoch})` : ""}`;
    if (m.ageAccuracy !== undefined) vgg.procedure = { value: m.ageAccuracy, on };
    if (m.ageAccuracy !== undefined) vgg.heldOut = { value: m.ageAccuracy, on: "the same test faces (this procedure has no leak)" };
  }
  const split = referenceRun("vgg19", root);
  if (split && split.kind === "split" && (split.metrics as RunMetrics).ageAccuracy !== undefined) vgg.fresh = { value: (split.metrics as RunMetrics).ageAccuracy!, on: `80/20 test split (${n((split.metrics as RunMetrics).images)} faces), 15 epochs, unweighted` };
  rows.push(vgg);
  return rows;
}

/** The procedure table (markdown): the report's claim, our run of its procedure, the held-out figure, each labelled. */
export function procedureTable(rows: readonly ProcedureRow[] = procedureRows()): string {
  const pct = (v?: { value: number; on: string }) => (v ? `**${(v.value * 100).toFixed(1)}%** (${v.on})` : "not run yet");
  return [
    "| model | figure | the report's claim | the report's procedure, run here | held out: faces the model never trained on | fresh-fold reference |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| \`${r.model}\` | ${r.metric === "genderAccuracy" ? "gender accuracy" : "age-group accuracy"} | ${r.claim !== undefined ? `${(r.claim * 100).toFixed(2)}% (${r.claimWhere})` : ""} | ${pct(r.procedure)} | ${pct(r.heldOut)} | ${pct(r.fresh)} |`),
  ].join("\n");
}

/** Markers around the generated procedure table in README.md. */
export const README_PROCEDURE_MARKERS = ["<!-- procedure-table: generated by `npm run cli -- reference table --readme` -->", "<!-- /procedure-table -->"] as const;

/** Markers around the generated results table in README.md. */
export const README_TABLE_MARKERS = ["<!-- reference-table: generated by `npm run cli -- reference table --readme` -->", "<!-- /reference-table -->"] as const;

/**
 * Replaces the block between README_TABLE_MARKERS in a README with `referenceTable()`;
 * a clear error when the markers are missing. Returns the new text.
 */
export function updateReadmeTable(readmeText: string, table: string = referenceTable(), procedure?: string): string {
  const [open, close] = README_TABLE_MARKERS;
  const a = readmeText.indexOf(open);
  const b = readmeText.indexOf(close);
  if (a < 0 || b < a) throw new Error(`README has no reference table block: add the lines ${open} and ${close} where the table goes.`);
  const withTable = readmeText.slice(0, a + open.length) + "\n" + table + "\n" + readmeText.slice(b);
  // The procedure table, where the README has its markers.
  const [po, pc] = README_PROCEDURE_MARKERS;
  const pa = withTable.indexOf(po);
  const pb = withTable.indexOf(pc);
  if (pa < 0 || pb < pa) return withTable;
  return withTable.slice(0, pa + po.length) + "\n" + (procedure ?? procedureTable()) + "\n" + withTable.slice(pb);
}

/** Headline figures of prediction rows (the definitions of lib/analysis/metrics.ts, on a subset). */
export function figuresOf(rows: readonly PredictionRow[]): Pick<ComparisonRow, "ageAccuracy" | "ageAccuracyWithin1" | "mae" | "genderAccuracy"> {
  const aged = rows.filter((r) => r.predGroup !== undefined && r.trueGroup >= 0);
  const years = rows.filter((r) => r.predAge !== undefined);
  const gendered = rows.filter((r) => r.pFemale !== undefined);
  const defined = (v: number) => (Number.isFinite(v) ? v : undefined);
  return {
    ageAccuracy: aged.length ? defined(accuracy(aged.map((r) => r.trueGroup), aged.map((r) => r.predGroup!))) : undefined,
    ageAccuracyWithin1: aged.length ? defined(accuracyWithin(aged.map((r) => r.trueGroup), aged.map((r) => r.predGroup!))) : undefined,
    mae: years.length ? defined(meanAbsoluteError(years.map((r) => r.age), years.map((r) => r.predAge!))) : undefined,
    genderAccuracy: gendered.length ? defined(accuracy(gendered.map((r) => r.gender), gendered.map((r) => (r.pFemale! >= GENDER_THRESHOLD ? 1 : 0)))) : undefined,
  };
}

/** The command that produces a run like this one, as a README line shows it. */
export function commandOf(config: RunConfig): string {
  const env = `EXPERIMENT_PROFILE=${config.profile} UTKFACE_DIR=${config.data.dir}`;
  if (config.kind === "kfold" && config.kfold) {
    const flags = [config.kfold.carryWeights && !config.kfold.secondPass ? "--carry-weights" : "", config.kfold.secondPass ? "--second-pass" : ""].filter(Boolean).join(" ");
    return `${env} npm run cli -- kfold --model ${config.model} --run results/${config.experiment}/${config.runId}${flags ? " " + flags : ""}`;
  }
  return `${env} npm run cli -- train --model ${config.model} --epochs ${config.hyper.epochs} --experiment ${config.experiment}`;
}

/** "2 h 31 min" / "12 min" / "45 s". */
export function formatHours(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.round(seconds / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Folders of a run that are never copied into the reference: weights and resumable state. */
const EXCLUDED_DIRS = new Set<string>([RUN_FILES.model, RUN_FILES.checkpoint]);
/** K-fold top-level files the loader recomputes from the folds (copying them would double the size). */
const MERGED_COPIES = new Set<string>([RUN_FILES.history, RUN_FILES.predictions]);

/** Copies the records (JSON) of a run tree, written compactly; returns bytes written. */
function copyRecords(src: string, dest: string, top: boolean, kfold: boolean): number {
  let bytes = 0;
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, entry.name);
    if (entry.isDirectory()) {
      // A fold still training has no held-out figures yet: it is copied once it has finished.
      const unfinishedFold = top && kfold && /^(pass2-)?fold-\d+$/.test(entry.name) && !fs.existsSync(path.join(from, RUN_FILES.metrics));
      if (!EXCLUDED_DIRS.has(entry.name) && !unfinishedFold) bytes += copyRecords(from, path.join(dest, entry.name), false, kfold);
      continue;
    }
    if (!entry.isFile() || !entry.name.endsWith(".json")) continue;
    if (top && kfold && MERGED_COPIES.has(entry.name)) continue;
    let value = JSON.parse(fs.readFileSync(from, "utf8")) as Record<string, unknown>;
    // A fold's config.json repeats the run's plan, every fold's validation indices included:
    // the run's config.json keeps them once.
    if (!top && entry.name === RUN_FILES.config && (value as unknown as RunConfig).kfold) {
      const c = value as unknown as RunConfig;
      value = { ...c, kfold: { ...c.kfold!, validation: "see the run's config.json" } } as unknown as Record<string, unknown>;
    }
    // The data folder as a path from the repository root: committed records name no machine's paths.
    if (entry.name === RUN_FILES.config) value = withRelativeDataDir(value as unknown as RunConfig) as unknown as Record<string, unknown>;
    const text = JSON.stringify(value) + "\n";
    writeFileAtomic(path.join(dest, entry.name), text);
    bytes += Buffer.byteLength(text);
  }
  return bytes;
}

/** A config whose data folder is written relative to the repository root rather than as an absolute path. */
function withRelativeDataDir(config: RunConfig): RunConfig {
  const dir = config.data?.dir;
  if (!dir || !path.isAbsolute(dir)) return config;
  return { ...config, data: { ...config.data, dir: path.relative(REPO_ROOT, dir).split(path.sep).join("/") } };
}

/** Newest modification time among a run's files (ms), i.e. when it last wrote something. */
function lastWrite(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? lastWrite(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Options of `addReferenceRun`. */
export interface AddReferenceOptions {
  /** Reference folder (default results/reference); tests pass a temporary one. */
  root?: string;
  /** The command as run (default: reconstructed from config.json by `commandOf`). */
  command?: string;
  /** Wall time in seconds (default: from config.json createdAt to the run's last file write). */
  wallSeconds?: number;
}

/** What `addReferenceRun` did. */
export interface AddedReference {
  dest: string;
  /** The README table row appended. */
  line: string;
  bytes: number;
  run: ReferenceRun;
}

/** README header of results/reference/, written when the file does not exist yet. */
const README_HEAD = `# Reference runs

Full-profile runs of the report's protocol, committed so every notebook can show them next to
its own quick run. Weights (\`model/\`) and checkpoints are not committed; each folder holds
config.json, history.json, metrics.json and the held-out predictions (a K-fold run: per fold).
Added with \`npm run cli -- reference add <run-dir>\`; produced by \`scripts/reference-runs.sh\`.
Wall time runs from the run's creation to its last write (resumed runs include the pause);
training is the sum of the epochs' seconds over all folds.

| experiment | run | model | profile | images | folds done | command | engine | threads | wall time | training | started |
|---|---|---|---|---|---|---|---|---|---|---|---|
`;

/**
 * Copies a finished (or partly finished K-fold) run into the reference folder without its
 * weights and checkpoints, and appends its line to the reference README. A run already
 * there is replaced (a K-fold run copied again after more folds finished).
 */
export function addReferenceRun(runDir: string, options: AddReferenceOptions = {}): AddedReference {
  const src = path.resolve(runDir);
  const cfgFile = path.join(src, RUN_FILES.config);
  if (!fs.existsSync(cfgFile)) throw new Error(`${portablePath(src)} is not a run folder (no config.json): give the folder printed as "run folder:" by train or kfold.`);
  const config = JSON.parse(fs.readFileSync(cfgFile, "utf8")) as RunConfig;
  if (config.kind === "fold") throw new Error(`${portablePath(src)} is one fold of a K-fold run: add the K-fold run folder above it.`);
  const kfold = config.kind === "kfold";
  if (!kfold && !fs.existsSync(path.join(src, RUN_FILES.metrics))) throw new Error(`${portablePath(src)} has no metrics.json: the run has not finished, so it has no held-out figures to commit.`);
  if (kfold && readKFold(src).summary.completed.length === 0) throw new Error(`${portablePath(src)}: no fold has finished yet, nothing to commit.`);
  const root = options.root ?? REFERENCE_DIR;
  const dest = path.join(root, config.experiment, config.runId);
  fs.rmSync(dest, { recursive: true, force: true });
  const bytes = copyRecords(src, dest, true, kfold);
  const run = loadReferenceRun(dest);
  const wall = options.wallSeconds ?? (lastWrite(src) - Date.parse(config.createdAt)) / 1000;
  const training = kfold ? (run.metrics as { trainSeconds: number }).trainSeconds : (run.metrics as RunMetrics).trainSeconds;
  const b = config.backend;
  const cells = [
    config.experiment,
    config.runId,
    config.model,
    config.profile,
    config.data.used.toLocaleString("en"),
    kfold ? `${run.reference.foldsDone} of ${run.reference.folds}` : `(${splitName(config.split?.testFraction ?? 0.2)})`,
    "`" + (options.command ?? commandOf(config)) + "`",
    // The reason usually starts with the backend's name already ("wasm: tfjs-node not installed").
    `${b.reason.startsWith(b.name) ? b.reason : `${b.name}: ${b.reason}`}${b.gpu ? " (GPU)" : ""}`.replace(/\|/g, "/"),
    b.threads === 0 ? "backend decides" : String(b.threads),
    formatHours(wall),
    formatHours(training),
    run.reference.date,
  ];
  const line = `| ${cells.join(" | ")} |`;
  const readme = path.join(root, REFERENCE_README);
  const before = fs.existsSync(readme) ? fs.readFileSync(readme, "utf8") : README_HEAD;
  // One line per run: a K-fold run added again after more folds finished replaces its old line.
  const kept = before.split("\n").filter((l) => !l.startsWith(`| ${config.experiment} | ${config.runId} |`));
  writeFileAtomic(readme, kept.join("\n").replace(/\n*$/, "\n") + line + "\n");
  return { dest, line, bytes, run };
}
