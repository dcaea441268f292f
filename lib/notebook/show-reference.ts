/**
 * The full-profile reference beside a notebook's own quick run: each notebook shows, after its
 * figures, the committed reference run of the same analysis (lib/analysis/reference.ts), titled
 * as such, or one line saying that none is committed yet and how to produce it.
 */
import { PUBLISHED_CLAIMS, NamedFigure, comparisonFigure, leakFigure } from "../analysis/figures";
import { leakSentence, measureLeak } from "../analysis/leak";
import { ReferenceRun, procedureRows, referenceComparisonRows, referenceFigures, referenceRun, referenceRuns } from "../analysis/reference";
import { buildModel } from "../models/registry";
import { portablePath } from "../records/runs";
import { showFigures, showMarkdown, showMetrics, showTable } from "./display";

/** Trainable parameters of the model a run trained, at the run's input size and colour (built and freed). */
function parameterCount(run: ReferenceRun): number | undefined {
  let model;
  try {
    model = buildModel(run.config.model, { size: run.config.size, channels: run.config.color === "rgb" ? 3 : 1 });
  } catch {
    return undefined; // e.g. vgg19-pretrained, whose weights file is not here: the table leaves the count out
  }
  try {
    return model.countParams();
  } finally {
    model.dispose();
  }
}

/** How to produce the reference runs, in one line a notebook can show. */
/** How to produce the carried-weight runs of the report's own procedure. */
export const CARRIED_HOWTO =
  "produce it with `bash scripts/carried-runs.sh` (the report's carried-weight 10-fold chain on the 80/20 training faces of crop_part1, the test faces kept out: about an hour per model on one core, resumable), then `git add results/reference`";

export const REFERENCE_HOWTO =
  "produce it with `bash scripts/reference-runs.sh` (the report's protocol on the 8,818 faces of crop_part1: hours of CPU, resumable), then `git add results/reference`";

/** Options of `showReference`. */
export interface ShowReferenceOptions {
  /** Only figures whose name ends with one of these (e.g. ["fold-accuracy"]); default all. */
  only?: readonly string[];
  /** Reference folder (default results/reference). */
  root?: string;
}

/**
 * Shows the newest reference run of each experiment (its held-out figures as a table, then its
 * figures titled "Reference · ..." with "full profile, 10 folds, 8,818 faces, reference run of
 * <date>"), or one line per missing one. Returns the figures shown, for export.
 */
export function showReference(experiments: readonly string[], options: ShowReferenceOptions = {}): NamedFigure[] {
  const shown: NamedFigure[] = [];
  for (const experiment of experiments) {
    const run: ReferenceRun | undefined = referenceRun(experiment, options.root);
    if (!run) {
      showMarkdown(`No full-profile reference run of \`${experiment}\` is committed yet: ${REFERENCE_HOWTO}.`);
      continue;
    }
    showMarkdown(`**Reference: \`${run.config.model}\`, ${run.reference.label}** (records in \`${portablePath(run.runDir)}\`; not this notebook's run).`);
    showMetrics(run);
    const figures = referenceFigures(run).filter((f) => !options.only || options.only.some((suffix) => f.name.endsWith(suffix)));
    showFigures(figures);
    shown.push(...figures);
  }
  return shown;
}

/**
 * 06-comparison's reference part: every committed reference run side by side (same metrics,
 * training time, engine and threads: the report's complexity table) next to the report's
 * claims. One line instead when no reference run is committed. Parameter counts are those of
 * each run's own input (70x70 in the full profile, not the quick notebook's size). Returns the
 * figures shown.
 */
export function showReferenceComparison(root?: string): NamedFigure[] {
  const runs = referenceRuns(root);
  if (runs.length === 0) {
    showMarkdown(`No full-profile reference run is committed yet, so the full-profile comparison cannot be shown: ${REFERENCE_HOWTO}.`);
    return [];
  }
  const rows = referenceComparisonRows(runs, Object.fromEntries(runs.flatMap((run) => { const n = parameterCount(run); return n === undefined ? [] : [[run.config.model, n]]; })));
  showTable(
    runs.map((run, i) => ({
      model: run.config.model,
      reference: run.reference.label,
      heldOut: rows[i].heldOut,
      images: rows[i].images,
      ageAccuracy: rows[i].ageAccuracy,
      ageAccuracyWithin1: rows[i].ageAccuracyWithin1,
      mae: rows[i].mae,
      genderAccuracy: rows[i].genderAccuracy,
      parameters: rows[i].parameters,
      trainHours: rows[i].trainSeconds !== undefined ? rows[i].trainSeconds! / 3600 : undefined,
      engine: run.config.backend.reason,
      threads: run.config.backend.threads,
    })),
    { title: "Reference runs (full profile): every model's held-out figures and training time (the complexity table)" },
  );
  const fig = (v?: { value: number; on: string }) => (v ? v.value : undefined);
  const on = (v?: { value: number; on: string }) => v?.on ?? "not run yet";
  showTable(
    procedureRows(root).map((r) => ({ model: r.model, figure: r.metric, reportClaim: r.claim, reportProcedureHere: fig(r.procedure), scoredOn: on(r.procedure), heldOut: fig(r.heldOut), heldOutOn: on(r.heldOut), freshReference: fig(r.fresh), freshOn: on(r.fresh) })),
    { title: "The report's headline figures: its claim, its own procedure run here, and faces the model never trained on" },
  );
  const figure = { name: "reference-06-models-compared", figure: comparisonFigure(rows, PUBLISHED_CLAIMS, { split: rows.some((r) => r.heldOut.startsWith("80/20")) ? "80/20 test split faces" : "held-out faces", profile: "full" }) };
  showFigures([figure]);
  return [figure];
}

/**
 * 05-kfold's part on the report's own procedure: for each experiment, its committed
 * carried-weight reference run, the leak per fold (the share of validation faces already trained
 * on, the accuracy on them and on faces never seen, and each fold's model on the held-out test
 * faces) as a table and a figure, and the sentence "the report's procedure gives X% on its
 * validation folds and Y% on faces it never saw". Returns the figures shown, for export.
 */
export function showReportProcedure(experiments: readonly string[], root?: string): NamedFigure[] {
  const shown: NamedFigure[] = [];
  for (const experiment of experiments) {
    const run = referenceRun(experiment, root, "carried");
    if (!run) {
      showMarkdown(`No carried-weight reference run of \`${experiment}\` is committed yet: ${CARRIED_HOWTO}.`);
      continue;
    }
    const leak = measureLeak(run.runDir);
    const what = leak.metric === "genderAccuracy" ? "gender" : "age";
    showMarkdown(`**The report's procedure, \`${run.config.model}\`: ${run.reference.label}, weights carried from fold to fold** (records in \`${portablePath(run.runDir)}\`).\n\n${leakSentence(leak)}`);
    showTable(
      leak.folds.map((f) => ({ fold: f.fold + 1, ...(f.pass > 1 ? { pass: f.pass } : {}), validationFaces: f.validationFaces, alreadyTrainedOn: f.share, validation: f.validation, onFacesTrainedOn: f.accuracySeen, onFacesNeverSeen: f.accuracyUnseen, heldOutTest: f.test, testFaces: f.testFaces })),
      { title: `The leak per fold: ${what} accuracy on validation faces already trained on, on faces never seen, and on the held-out test faces` },
    );
    const figure = { name: `reference-${experiment}-carried-leak`, figure: leakFigure(leak.folds, what, { model: run.config.model, split: "validation folds and held-out test faces", profile: run.config.profile }) };
    showFigures([figure]);
    shown.push(figure);
  }
  return shown;
}
