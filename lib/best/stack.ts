/**
 * Stacking (issue 19's second backbone): a best-model folder's model and a second model on
 * another backbone (human's faceres, frozen features and DLDL heads), combined by weights fitted
 * on out-of-fold predictions of every training face:
 *
 * - age: the members' expected ages and 10th/90th percentiles averaged with weights summing to 1
 *   (quantile averaging), so the calibrated interval keeps its meaning;
 * - gender: logistic regression on the members' logits, logit P(female) = a + sum_i b_i logit(p_i).
 *
 * Both are fitted on rows where every member's prediction comes from a model that never trained
 * on that face (`best cross-fit` for the folder's model, the same folds here for the second), so
 * no weight is chosen on a face a member saw. The stack's own out-of-fold figures come from
 * nesting: each fold's rows combined by weights fitted on the other folds' rows. The test split
 * is looked at once, at the end, through the whole predictor (`best calibrate`).
 */
import * as fs from "fs";
import * as path from "path";
import { readJsonFile } from "../core/file-errors";
import { writeJsonAtomic } from "../core/files";
import { REPO_ROOT } from "../core/paths";
import { initBackend } from "../engine/backend";
import { saveModel } from "../models/model-files";
import { BACKBONES, BackboneName, FACERES_MAPS, backboneSpec } from "./backbones";
import { OUT_OF_FOLD_FILE, OutOfFoldFile, crossFitFolds, outOfFoldRows, recipeKey } from "./cross-fit";
import { loadBestSplit } from "./faces";
import { FineTuneConfig, HeadConfig } from "./head-training";
import { modelInputs } from "./fine-tuning";
import { roundedStandardizer } from "./heads";
import { StackRecord, fitStack, nestedStackRows, rowFigures, stackRows } from "./stack-weights";
export type { BestStack, StackRecord } from "./stack-weights";
import { BEST_MODEL_FILE, BEST_STACK_FORMAT, BestModelFile, disposeBestModel, headsFolder, loadBestModel, predictBestFiles } from "./model-folder";
import { fitConfig, loadFeatureSets } from "./run";

/**
 * The second member's recipe: the folder's heads settings on another backbone's frozen
 * features; with `fineTune`, faceres's last block then trains with them on its cached
 * 7x7x1024 maps (fine-tuning.ts), which needs the faceres-caffe backbone.
 */
export function memberConfig(base: HeadConfig, backbone: BackboneName, fineTune?: FineTuneConfig): HeadConfig {
  const { fineTune: _fineTune, ...heads } = base;
  if (!fineTune) return { ...heads, name: `${backbone} heads`, features: [{ backbone }] };
  if (backbone !== "faceres-caffe") throw new Error(`Fine-tuning a stack member trains faceres's last block: it needs --backbone faceres-caffe, got ${backbone}.`);
  if (fineTune.augment) throw new Error("A faceres member fine-tunes on cached maps only: drop fineTune.augment.");
  return { ...heads, name: `${backbone} fine-tuned`, features: [{ backbone }], fineTune: { ...fineTune, maps: FACERES_MAPS } };
}

/** The default fine-tuning of a faceres member: what scripts/faceres-tail.ts measured on validation. */
export const STACK_FINE_TUNE: FineTuneConfig = { epochs: 8, learningRate: 3e-4, batchSize: 64 };

/** Options of `stackBest`. */
export interface StackOptions {
  /** A best-model folder with its out-of-fold predictions (best cross-fit); stacked in place. */
  modelDir: string;
  /** The second member's backbone (default faceres-caffe). */
  backbone?: BackboneName;
  /** Fine-tune the second member's last block with its heads (faceres-caffe only; STACK_FINE_TUNE is the default to pass). */
  fineTune?: FineTuneConfig;
  dir?: string;
  cacheDir?: string;
  /** Where the second member's per-fold files go (default data/.cache/crossfit). */
  workDir?: string;
  log?: (line: string) => void;
}

/**
 * Stacks a folder's model with a second member (see the file's comment): cross-fits the member
 * on the folds of the folder's out-of-fold file, fits the stack on every training face's
 * out-of-fold rows, trains the member on every training face, and writes heads-2/, best.json
 * (format v5, `stack`), the stacked out-of-fold-predictions.json (each member's rows kept in it)
 * and run.json's `stack`. The folder's calibration is dropped: refit it with
 * `best calibrate --from <folder> --out-of-fold`, which also looks at the test split.
 */
export async function stackBest(o: StackOptions): Promise<StackRecord> {
  const log = o.log ?? console.log;
  await initBackend();
  const bestFile = path.join(o.modelDir, BEST_MODEL_FILE);
  const file = readJsonFile<BestModelFile>(bestFile, "Is it a best-model folder (npm run cli -- best train)?");
  if (file.ensemble && !file.stack) throw new Error(`${bestFile} is an averaged ensemble: stack a folder of one model (best train without --ensemble).`);
  const backbone = backboneSpec(o.backbone ?? "faceres-caffe").name;
  const base = file.config;
  const member = memberConfig(base, backbone, o.fineTune);
  const needed = [...new Set([...member.features, ...modelInputs(member)].map((f) => f.backbone))];
  const oofFile = path.join(o.modelDir, OUT_OF_FOLD_FILE);
  const oof = readJsonFile<OutOfFoldFile>(oofFile, `Write it with npm run cli -- best cross-fit --from ${o.modelDir}.`);
  // A folder stacked before keeps its first member's rows: stacking again starts from those.
  const baseRows = oof.members?.[0]?.predictions ?? oof.predictions;
  const baseRecipe = oof.members?.[0]?.recipe ?? oof.recipe;
  if (baseRecipe !== recipeKey([base])) throw new Error(`${oofFile} was cross-fitted with another recipe than ${bestFile}'s first model: rerun npm run cli -- best cross-fit --from ${o.modelDir}.`);

  const all = await loadBestSplit({ dir: o.dir });
  const { split, sets } = await loadFeatureSets(all, needed, { cacheDir: o.cacheDir, log });
  if (split.records.length !== all.records.length) throw new Error(`Stacking needs ${needed.join(" and ")} features of every face: extract them with npm run cli -- best features --backbones ${needed.join(",")}.`);
  const folds = crossFitFolds(split, oof.folds);
  const fileIndex = new Map(split.records.map((r, i) => [r.file, i]));
  if (baseRows.length !== split.train.length || baseRows.some((r, i) => fileIndex.get(r.file) !== split.train[i])) {
    throw new Error(`${oofFile} does not hold this split's ${split.train.length} training faces in order: rerun npm run cli -- best cross-fit --from ${o.modelDir} on the same data.`);
  }
  const memberOof = await outOfFoldRows([member], split, sets, folds, o.workDir, log);
  const members = [baseRows, memberOof.predictions];
  const stack = fitStack(members, oof.folds);
  const foldOfFace = new Map<number, number>();
  folds.forEach((f, k) => f.forEach((i) => foldOfFace.set(i, k)));
  const nested = nestedStackRows(members, split.train.map((i) => foldOfFace.get(i)!), oof.folds);
  const record: StackRecord = {
    ...stack,
    outOfFold: [rowFigures(oof.members?.[0]?.model ?? oof.model, baseRows), rowFigures(member.name, memberOof.predictions), rowFigures("stack (nested: each fold by weights fitted on the others)", nested)],
  };
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  for (const r of record.outOfFold) log(`[stack] out of fold, ${baseRows.length} training faces, ${r.model}: MAE ${r.mae.toFixed(2)}, gender ${pct(r.genderAccuracy)} (${r.genderByBand.map((b) => `${b.band} ${pct(b.accuracy)}`).join(", ")})`);
  log(`[stack] age weights ${stack.ageWeights.join(" / ")}; gender logit = ${stack.gender.intercept.toFixed(3)} + ${stack.gender.weights.map((w) => w.toFixed(3)).join(" x first + ")} x second`);

  // The second member on every training face, saved before best.json names it.
  const t = Date.now();
  log(`[stack] ${member.name} on ${split.train.length} training faces`);
  const heads = await fitConfig(member, split, sets, split.train, undefined, log);
  const out = path.resolve(o.modelDir);
  const inputs = modelInputs(member).map((f) => f.backbone);
  await saveModel(heads.model, path.join(out, headsFolder(1)), { model: "best", inputs: member.fineTune ? `${inputs.join(", ")} rows (no standardiser), see ../best.json` : "standardised features, see ../best.json" }, { float16: !!member.fineTune });
  heads.model.dispose();
  const stackedRows = stackRows(stack, members);
  const stacked: OutOfFoldFile = {
    model: `${base.name} + ${member.name} (stacked)`,
    recipe: recipeKey([base, member]),
    folds: oof.folds,
    fitFaces: oof.fitFaces,
    foldMae: folds.map((f) => {
      const inFold = new Set(f);
      const rows = stackedRows.filter((_, i) => inFold.has(split.train[i]));
      return Number((rows.reduce((s, r) => s + Math.abs(r.predAge - r.age), 0) / rows.length).toFixed(4));
    }),
    predictions: stackedRows,
    members: [
      { model: oof.members?.[0]?.model ?? oof.model, recipe: baseRecipe, predictions: baseRows },
      { model: member.name, recipe: recipeKey([member]), predictions: memberOof.predictions },
    ],
  };
  writeJsonAtomic(oofFile, stacked);
  const { calibration: _stale, ...rest } = file;
  const firstInputs = new Set<string>(modelInputs(base).map((f) => f.backbone));
  const next: BestModelFile = {
    ...rest,
    format: BEST_STACK_FORMAT,
    ensemble: [{ heads: headsFolder(1), config: member, standardizer: roundedStandardizer(heads.standardizer) }],
    stack,
    mirrored: { ...(file.mirrored ?? {}), ...Object.fromEntries(inputs.map((b) => [b, sets.get(b)!.flipped !== undefined])) },
    // The first member's backbones as they were, then the second member's (a former second member's go).
    backbones: [
      ...(file.backbones ?? []).filter((b) => firstInputs.has(b.backbone) && !inputs.includes(b.backbone as BackboneName)),
      ...inputs.map((b) => ({ backbone: b, package: BACKBONES[b].package, licence: BACKBONES[b].licence, preprocessing: BACKBONES[b].preprocessing })),
    ],
  };
  writeJsonAtomic(bestFile, next);
  // Speed: the whole path a user runs (decode, both views through both backbones, both heads, the stack), as best train times it.
  const speedFiles = split.test.slice(0, 32).map((i) => split.files[i]);
  const model = await loadBestModel(out);
  let secondsPerImage: number;
  try {
    await predictBestFiles(model, speedFiles.slice(0, 2));
    const ts = Date.now();
    await predictBestFiles(model, speedFiles);
    secondsPerImage = (Date.now() - ts) / 1000 / speedFiles.length;
  } finally {
    disposeBestModel(model);
  }
  const fix = "Retrain the folder with npm run cli -- best train.";
  const runFile = path.join(out, "run.json");
  if (fs.existsSync(runFile)) writeJsonAtomic(runFile, { ...readJsonFile<Record<string, unknown>>(runFile, fix), stack: record, members: [base, member], secondsPerImage });
  const metricsFile = path.join(out, "metrics.json");
  if (fs.existsSync(metricsFile)) writeJsonAtomic(metricsFile, { ...readJsonFile<Record<string, unknown>>(metricsFile, fix), secondsPerImage });
  log(`[stack] ${path.relative(REPO_ROOT, out) || out}: heads-2/ (${((Date.now() - t) / 1000).toFixed(0)} s), best.json (stacked), ${OUT_OF_FOLD_FILE} written; ${(secondsPerImage * 1000).toFixed(1)} ms per face through the predictor; next: npm run cli -- best calibrate --from ${o.modelDir} --out-of-fold --out ${o.modelDir}`);
  return record;
}
