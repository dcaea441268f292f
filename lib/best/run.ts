/**
 * The best-model run: load the cached features of every face, try each head configuration of an
 * ablation on the validation split (carved from the training faces), train the chosen one on all
 * training faces, score the held-out split once, and write the model folder (heads, best.json,
 * metrics.json, ablation.json, MODEL_CARD.md).
 */
import * as fs from "fs";
import * as path from "path";
import { readJsonFile } from "../core/file-errors";
import { initBackend } from "../engine/backend";
import { GENDER_THRESHOLD } from "../data/labels";
import { BACKBONES, BackboneName, FACERES_AGE_BINS, FACERES_POOLED, backboneSpec, hasOwnOutputs } from "./backbones";
import { ExtractionProgress, FeatureSet, extractFeatureSet } from "./feature-cache";
import { expectedAges, roundedStandardizer } from "./heads";
import { BEST_ENSEMBLE_FORMAT, BEST_MODEL_FILE, BEST_MODEL_FORMAT, BestModelFile, headsFolder, loadBestModel, disposeBestModel, predictBestFiles } from "./model-folder";
import { REPO_ROOT } from "../core/paths";
import { writeFileAtomic, writeJsonAtomic } from "../core/files";
import { saveModel } from "../models/model-files";
import { BestSplit, featureRows, loadBestSplit } from "./faces";
import { bestModelCard } from "./card";
import { INPUT_ABLATION_FILE } from "./types";
import type { AblationRow, BestRunRecord, FeatureSubset, InputAblationRow, PreprocessingRow } from "./types";

export type { AblationRow, BestRunRecord, FeatureSubset, InputAblationRow, PreprocessingRow } from "./types";
import { BestMetrics, DEFAULT_HEAD_CONFIG, FeaturePart, FineTuneConfig, HeadConfig, HeadOutputs, TrainedHeads, averageOutputs, bestMetrics, bestPredictionRows, fuseFeatures, fusedDim, predictHeads, trainHeads } from "./head-training";
import { fineTuneHeads, fineTuneMaps, fineTuneOnPixels, modelInputs } from "./fine-tuning";
import { DEFAULT_AUGMENT } from "./augment";
import { loadFaces } from "../data/dataset";
import { CALIBRATION_FILE, CalibrationRecord, VALIDATION_PREDICTIONS_FILE, ValidationPrediction, intervalInputs } from "./calibration";


/**
 * A named ablation step: a head config, a backbone's own outputs (no training), or an ensemble
 * of heads steps that ran before it (their validation outputs averaged: nothing trains).
 */
export type AblationStep =
  | { kind: "heads"; description: string; config: HeadConfig }
  | { kind: "own"; description: string; backbone: BackboneName; name: string }
  | { kind: "ensemble"; description: string; name: string; of: string[] };

/**
 * Fine-tuning of the ablation's last step, chosen on the validation split: 8 epochs at 1e-4
 * (cosine) beat 6 at 1e-4 (constant) and 12 (see the model card's ablation and issue notes).
 */
export const DEFAULT_FINE_TUNE: FineTuneConfig = { epochs: 8, learningRate: 1e-4, batchSize: 64 };
/** Epochs of the heads before fine-tuning: the DLDL-v2 step's validation-best count. */
const DLDL_HEAD_EPOCHS = 15;

/**
 * The ablation: each step changes one thing from the one before, on the backbones given. The
 * order matters only for reading; the lowest validation MAE among the heads steps wins.
 */
export function defaultAblation(
  backbones: readonly BackboneName[],
  epochs = DEFAULT_HEAD_CONFIG.epochs,
  options: { short?: boolean; fineTune?: FineTuneConfig; genderWeight?: number; deeper?: boolean; pixels?: boolean; ensemble?: boolean; genderSmoothing?: number; genderBalance?: boolean } = {},
): AblationStep[] {
  const fineTune = options.fineTune ?? DEFAULT_FINE_TUNE;
  const base = { ...DEFAULT_HEAD_CONFIG, epochs };
  const steps: AblationStep[] = [];
  const faceres = backbones.find(hasOwnOutputs);
  const all: FeaturePart[] = backbones.map((b) => ({ backbone: b }));
  const cfg = (name: string, c: Partial<HeadConfig>): HeadConfig => ({ ...base, name, ...c });
  if (faceres) steps.push({ kind: "own", name: `${faceres} own`, backbone: faceres, description: `${faceres}'s own age (expected value of its 100 bins) and gender outputs, no training` });
  if (backbones.includes("facenet") && options.short) {
    // The facenet-only ablation has been run on its own (best train --backbones facenet); here
    // only its full recipe competes with the fused heads, on the same validation faces.
    steps.push({ kind: "heads", description: "face-api 128-d descriptor on every training face, MLP 256, flips", config: cfg("facenet mlp +flips", { features: [{ backbone: "facenet" }] }) });
  } else if (backbones.includes("facenet")) {
    steps.push({ kind: "heads", description: "face-api 128-d descriptor, linear heads, no mirrored copies", config: cfg("facenet linear", { features: [{ backbone: "facenet" }], hidden: 0, flipTrain: false, flipTest: false }) });
    steps.push({ kind: "heads", description: "MLP 256 instead of linear", config: cfg("facenet mlp", { features: [{ backbone: "facenet" }], flipTrain: false, flipTest: false }) });
    steps.push({ kind: "heads", description: "+ mirrored copies as training rows", config: cfg("facenet mlp +flip-train", { features: [{ backbone: "facenet" }], flipTest: false }) });
    steps.push({ kind: "heads", description: "+ test-time flip averaging", config: cfg("facenet mlp +flips", { features: [{ backbone: "facenet" }] }) });
    steps.push({ kind: "heads", description: "age loss DLDL + L1 of the expected age (DLDL-v2)", config: cfg("facenet dldl-l1", { features: [{ backbone: "facenet" }], ageLoss: "dldl-l1" }) });
    steps.push({ kind: "heads", description: "label spread sd 3 years instead of 2", config: cfg("facenet sigma3", { features: [{ backbone: "facenet" }], sigma: 3 }) });
    steps.push({ kind: "heads", description: "512 hidden units, dropout 0.5", config: cfg("facenet mlp512", { features: [{ backbone: "facenet" }], hidden: 512, dropout: 0.5 }) });
    if (fineTune.epochs > 0) {
      const dldl = { features: [{ backbone: "facenet" as const }], ageLoss: "dldl-l1" as const, epochs: Math.min(epochs, DLDL_HEAD_EPOCHS) };
      steps.push({
        kind: "heads",
        description: `DLDL-v2 heads (${dldl.epochs} epochs), then face-api's last stage (stage256 + descriptor, 4.4M weights) fine-tuned with them on cached stage128 maps: ${fineTune.epochs} epochs, batch ${fineTune.batchSize}, Adam ${fineTune.learningRate} cosine-decayed`,
        config: cfg("facenet fine-tune", { ...dldl, fineTune }),
      });
      if (options.deeper) {
        const deeper = { ...fineTune, maps: "facenet-maps64" as const };
        steps.push({ kind: "heads", description: `the same one stage deeper: stage128 fine-tuned too, on cached stage64 maps (17x17x64; 5.3M weights train)`, config: cfg("facenet fine-tune deeper", { ...dldl, fineTune: deeper }) });
      }
      if (options.pixels) {
        // Each epoch shows every face once (mirrored at random) where the cached-maps steps show
        // each face and its mirror image: twice the epochs make the same number of steps.
        const a = DEFAULT_AUGMENT;
        const pixels = { ...fineTune, epochs: 2 * fineTune.epochs, maps: "facenet-maps64" as const, augment: a };
        steps.push({
          kind: "heads",
          description: `the same on augmented pixels: every batch's faces rotated (up to ${a.rotation} degrees), zoomed (${a.scale * 100}%), shifted (${a.shift * 100}%), mirrored at random, brightness ${a.brightness * 100}% and contrast ${a.contrast * 100}%, then through the frozen stem to stage64; ${pixels.epochs} epochs of one view per face`,
          config: cfg("facenet fine-tune pixels", { ...dldl, fineTune: pixels }),
        });
        steps.push({
          kind: "heads",
          description: "the same one stage deeper: stage64 trains too (the frozen trunk ends after stage32: 35x35x32 maps; 5.6M weights train)",
          config: cfg("facenet fine-tune pixels deeper", { ...dldl, fineTune: { ...pixels, maps: "facenet-maps32" } }),
        });
      }
      // Two fine-tuned networks of different depth, averaged (trained once each in the final run).
      const pair = options.pixels ? ["facenet fine-tune pixels", "facenet fine-tune pixels deeper"] : options.deeper ? ["facenet fine-tune", "facenet fine-tune deeper"] : undefined;
      if (options.ensemble && pair) {
        steps.push({ kind: "ensemble", name: `ensemble: ${pair.join(" + ")}`, of: pair, description: `the age distributions and P(female) of ${pair.map((n) => `"${n}"`).join(" and ")} averaged (each as trained above; the final model trains both)` });
      }
      if (options.genderWeight !== undefined && options.genderWeight !== 1) {
        const genderWeight = options.genderWeight;
        steps.push({ kind: "heads", description: `the same with the gender loss weighted ${genderWeight}x (heads and fine-tuning)`, config: cfg(`facenet fine-tune gender x${genderWeight}`, { ...dldl, fineTune, genderWeight }) });
      }
    }
  }
  if (backbones.includes("facenet") && !options.short && (options.genderSmoothing || options.genderBalance)) {
    // Gender levers (issue 19), on the model's own recipe (fine-tuned, one stage deeper with
    // --deeper), or with --fine-tune-epochs 0 on the frozen DLDL-v2 heads (seconds per step).
    const tuned = fineTune.epochs > 0;
    const recipe: Partial<HeadConfig> = tuned
      ? { features: [{ backbone: "facenet" }], ageLoss: "dldl-l1", epochs: Math.min(epochs, DLDL_HEAD_EPOCHS), fineTune: options.deeper ? { ...fineTune, maps: "facenet-maps64" } : fineTune }
      : { features: [{ backbone: "facenet" }], ageLoss: "dldl-l1" };
    const base = tuned ? (options.deeper ? "facenet fine-tune deeper" : "facenet fine-tune") : "facenet dldl-l1";
    const where = tuned ? "heads and fine-tuning" : "frozen descriptor heads";
    if (options.genderSmoothing) {
      const eps = options.genderSmoothing;
      steps.push({ kind: "heads", description: `${base} with gender label smoothing ${eps} (targets ${eps / 2} and ${1 - eps / 2}; ${where})`, config: cfg(`${base} gender-smooth ${eps}`, { ...recipe, genderSmoothing: eps }) });
    }
    if (options.genderBalance) {
      steps.push({ kind: "heads", description: `${base} with the gender loss balanced within each age band (0-3, 4-12, 13-19, 20-59, 60+: both genders weigh alike; ${where})`, config: cfg(`${base} gender-balance`, { ...recipe, genderBalance: "age-band" }) });
    }
  }
  if (faceres) {
    steps.push({ kind: "heads", description: `${faceres} 1024-d pooled feature, MLP 256, flips`, config: cfg(`${faceres} pooled`, { features: [{ backbone: faceres, columns: "pooled" }] }) });
    steps.push({ kind: "heads", description: `+ ${faceres}'s own age/gender outputs as features`, config: cfg(`${faceres} all`, { features: [{ backbone: faceres }] }) });
    if (backbones.includes("facenet")) {
      steps.push({ kind: "heads", description: "fusion: face-api descriptor + faceres (all), MLP 256, flips", config: cfg("fused", { features: all }) });
      steps.push({ kind: "heads", description: "fusion, DLDL + L1", config: cfg("fused dldl-l1", { features: all, ageLoss: "dldl-l1" }) });
    }
  }
  return steps;
}

/**
 * The fusion recipe (`--recipe fusion`): face-api's descriptor on every face (with mirrored
 * copies) and faceres with the original repository's preprocessing (chosen on training faces,
 * see `best prep`) on the first 1,000 training faces plus every test face, without mirrored
 * copies: faceres then ran at about 1 face/s on this project's shared 2-core machine (its graph
 * is now fused at load and extracts every face in minutes; `best stack` uses it so). On
 * validation it did not beat face-api's descriptor on every face, so models/best is built with
 * `--backbones facenet` and stacked with faceres afterwards.
 */
export const BEST_RECIPE: { backbones: BackboneName[]; subset: FeatureSubset } = {
  backbones: ["facenet", "faceres-caffe"],
  subset: { trainFaces: 1000, backbones: ["faceres-caffe"], mirrored: false },
};

/** Options of `runBest`. */
export interface BestRunOptions {
  /** UTKFace folder (default $UTKFACE_DIR, data/UTKFace, data/sample). */
  dir?: string;
  /** The steps to compare on validation; the heads step with the lowest MAE becomes the model. */
  steps: AblationStep[];
  /** Where the model folder goes (e.g. models/best). */
  outDir: string;
  /** Feature cache folder (default data/.cache/features). */
  cacheDir?: string;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
  /** Extract some backbones on a subset of the training faces only (all test faces kept). */
  subset?: FeatureSubset;
  /** Faces timed through the whole predictor (decode + backbones + heads) for the speed figure. */
  speedFaces?: number;
  /**
   * Stop after the ablation: write ablation.json (validation figures only) and return, never
   * training the final model nor looking at the test split. For trying steps before the one
   * final run.
   */
  validationOnly?: boolean;
  /** The \`best train\` arguments, recorded for the model card's reproduce line. */
  args?: string[];
}


function labels(split: BestSplit, idx: readonly number[]) {
  return { ages: idx.map((i) => split.records[i].age), genders: idx.map((i) => split.records[i].gender as number) };
}

/** A faceres backbone's own predictions (expected age of its 100 bins, 1 - its male score). */
export function ownOutputs(set: FeatureSet, indices: readonly number[], view: "plain" | "flipped" = "plain"): HeadOutputs {
  if (!hasOwnOutputs(set.backbone)) throw new Error(`Backbone ${set.backbone} has no own age/gender outputs.`);
  const n = indices.length;
  // Pad its 100 bins to the heads' AGE_BINS so expectedAges reads both alike.
  const probs = new Float32Array(n * 101);
  const pFemale = new Float32Array(n);
  indices.forEach((idx, i) => {
    const row = ((view === "flipped" ? set.flipped : undefined) ?? set.plain).subarray(idx * set.dim, (idx + 1) * set.dim);
    probs.set(row.subarray(FACERES_POOLED, FACERES_POOLED + FACERES_AGE_BINS), i * 101);
    pFemale[i] = 1 - row[FACERES_POOLED + FACERES_AGE_BINS];
  });
  return { ageProbabilities: probs, pFemale, n };
}

function summary(m: BestMetrics) {
  const b13 = m.genderByBand.find((b) => b.band === "13+");
  return { mae: m.mae ?? NaN, genderAccuracy: m.genderAccuracy ?? NaN, genderAccuracy13: b13?.accuracy ?? NaN, ageGroupAccuracy: m.ageAccuracy ?? NaN };
}


/**
 * Loads (or extracts, with progress) cached features for each backbone, over every face, or
 * with `subset` over the subset's faces; returns the split restricted to the faces every
 * backbone has (indices renumbered) and the feature sets in that numbering.
 */
export async function loadFeatureSets(
  split: BestSplit,
  backbones: readonly BackboneName[],
  options: { cacheDir?: string; subset?: FeatureSubset; log?: (line: string) => void } = {},
): Promise<{ split: BestSplit; sets: Map<string, FeatureSet> }> {
  const log = options.log ?? console.log;
  let last = 0;
  const onProgress = (p: ExtractionProgress) => {
    if (Date.now() - last < 15000 && p.done < p.total) return;
    last = Date.now();
    log(`[${p.backbone}] extracting ${p.done}/${p.total} faces, ${p.rate.toFixed(1)} faces/s`);
  };
  const sub = options.subset;
  const rows = featureRows(split, sub?.trainFaces);
  const sets = new Map<string, FeatureSet>();
  for (const b of backbones) {
    const onSubset = !!sub && sub.backbones.includes(b);
    const own = onSubset ? rows : split.records.map((_, i) => i);
    const set = await extractFeatureSet(own.map((i) => split.files[i]), b, { cacheDir: options.cacheDir, onProgress, mirrored: onSubset ? sub.mirrored : true });
    sets.set(b, own.length === rows.length ? set : gatherRows(set, rows));
  }
  if (rows.length === split.records.length) return { split, sets };
  const position = new Map(rows.map((r, p) => [r, p]));
  const remap = (idx: number[]) => idx.filter((i) => position.has(i)).map((i) => position.get(i)!);
  return {
    split: { ...split, records: rows.map((i) => split.records[i]), files: rows.map((i) => split.files[i]), train: remap(split.train), fit: remap(split.fit), validation: remap(split.validation), test: remap(split.test) },
    sets,
  };
}

/** A feature set restricted to some of its rows, in the given order. */
function gatherRows(set: FeatureSet, rows: readonly number[]): FeatureSet {
  const take = (a: Float32Array) => {
    const out = new Float32Array(rows.length * set.dim);
    rows.forEach((r, i) => out.set(a.subarray(r * set.dim, (r + 1) * set.dim), i * set.dim));
    return out;
  };
  return { ...set, files: rows.map((r) => set.files[r]), plain: take(set.plain), flipped: set.flipped && take(set.flipped) };
}

/** Runs the ablation, trains and scores the chosen heads, writes the model folder. */
export async function runBest(options: BestRunOptions): Promise<BestRunRecord | undefined> {
  const log = options.log ?? console.log;
  await initBackend();
  const all = await loadBestSplit({ dir: options.dir });
  const needed = new Set<BackboneName>();
  for (const s of options.steps) {
    if (s.kind === "own") needed.add(s.backbone);
    else if (s.kind === "heads") [...s.config.features, ...modelInputs(s.config)].forEach((f) => needed.add(f.backbone));
  }
  // One data context per face set: every face (backbones with an all-faces cache) and, with a
  // subset, the subset's faces (slow backbones). Both choose on the same validation faces, so
  // a fused model on fewer faces and a single-backbone model on all faces compare fairly.
  const sub = options.subset;
  const subsetNeeded = sub ? [...needed].filter((b) => sub.backbones.includes(b)) : [];
  const fullNeeded = [...needed].filter((b) => !subsetNeeded.includes(b));
  const full = await loadFeatureSets(all, fullNeeded, { cacheDir: options.cacheDir, log });
  const part = sub && subsetNeeded.length ? await loadFeatureSets(all, [...needed], { cacheDir: options.cacheDir, subset: sub, log }) : undefined;
  interface Context {
    split: BestSplit;
    sets: Map<string, FeatureSet>;
    fit: number[];
    validation: number[];
    /** What the final heads train on: every training face of this context. */
    finalTrain: number[];
  }
  const partRows = part ? featureRows(all, sub!.trainFaces) : undefined;
  const fullCtx: Context = {
    ...full,
    fit: all.fit,
    validation: part ? part.split.validation.map((p) => partRows![p]) : all.validation,
    finalTrain: all.train,
  };
  const partCtx: Context | undefined = part && { ...part, fit: part.split.fit, validation: part.split.validation, finalTrain: part.split.train };
  const contextOf = (backbones: BackboneName[]): Context => (partCtx && backbones.some((b) => subsetNeeded.includes(b)) ? partCtx : fullCtx);
  const training = (c: Context, idx: number[]) => idx.map((i) => c.split.records[i]);

  const ablation: AblationRow[] = [];
  // Each heads step's validation outputs, for ensemble steps after it.
  const fitted = new Map<string, { config: HeadConfig; row: AblationRow; ctx: Context; out: HeadOutputs }>();
  let chosen: { configs: HeadConfig[]; row: AblationRow; ctx: Context; validation: ValidationPrediction[] } | undefined;
  for (const step of options.steps) {
    const t = Date.now();
    if (step.kind === "ensemble") {
      const members = step.of.map((n) => {
        const m = fitted.get(n);
        if (!m) throw new Error(`Ablation step "${step.name}" averages "${n}", which has not run before it: list that step first (--steps).`);
        return m;
      });
      const c = members[0].ctx;
      if (members.some((m) => m.ctx !== c)) throw new Error(`Ablation step "${step.name}" averages steps fitted on different faces.`);
      const out = averageOutputs(members.map((m) => m.out));
      const m = bestMetrics(bestPredictionRows(c.split.records, c.validation, out), "validation", training(c, c.fit));
      const row: AblationRow = { name: step.name, description: step.description, faces: c.fit.length, dim: members.reduce((d, x) => d + x.row.dim, 0), bestEpoch: 0, ...summary(m), seconds: members.reduce((sec, x) => sec + x.row.seconds, 0) };
      ablation.push(row);
      if (!chosen || row.mae < chosen.row.mae) chosen = { configs: members.map((x) => ({ ...x.config, epochs: x.row.bestEpoch })), row, ctx: c, validation: validationPredictions(c.split, c.validation, out) };
    } else if (step.kind === "own") {
      const c = contextOf([step.backbone]);
      const out = ownOutputs(c.sets.get(step.backbone)!, c.validation);
      const m = bestMetrics(bestPredictionRows(c.split.records, c.validation, out), "validation", training(c, c.fit));
      ablation.push({ name: step.name, description: step.description, faces: c.fit.length, dim: 0, bestEpoch: 0, ...summary(m), seconds: (Date.now() - t) / 1000 });
    } else {
      const cfg = step.config;
      const c = contextOf(cfg.features.map((f) => f.backbone));
      const heads = await fitConfig(cfg, c.split, c.sets, c.fit, c.validation, log);
      // A fine-tuned model is judged after its last epoch (its learning rate decays to 0 there);
      // plain heads at their best epoch, the count the final heads then train for.
      const best = cfg.fineTune ? { ...heads.curve[heads.curve.length - 1], epoch: cfg.epochs } : heads.curve.reduce((x, y) => (y.mae < x.mae ? y : x));
      // Score the final epoch's heads on validation with every figure (the curve has MAE and gender only).
      const val = inputsOf(cfg, c.split, c.sets, c.validation);
      const out = predictHeads(heads, val.plain, val.flipped);
      const m = bestMetrics(bestPredictionRows(c.split.records, c.validation, out), "validation", training(c, c.fit));
      heads.model.dispose();
      const validation = validationPredictions(c.split, c.validation, out);
      const row: AblationRow = { name: cfg.name, description: step.description, faces: c.fit.length, dim: fusedDim(modelInputs(cfg)), bestEpoch: best.epoch, ...summary(m), mae: best.mae, seconds: (Date.now() - t) / 1000 };
      ablation.push(row);
      fitted.set(cfg.name, { config: cfg, row, ctx: c, out });
      if (!chosen || row.mae < chosen.row.mae) chosen = { configs: [{ ...cfg, epochs: row.bestEpoch }], row, ctx: c, validation };
    }
    const r = ablation[ablation.length - 1];
    log(`[ablation] ${r.name}: validation MAE ${r.mae.toFixed(2)}, gender ${(r.genderAccuracy * 100).toFixed(1)}% (13+: ${(r.genderAccuracy13 * 100).toFixed(1)}%), 20-group ${(r.ageGroupAccuracy * 100).toFixed(1)}%, epoch ${r.bestEpoch}, fit on ${r.faces} faces, ${r.seconds.toFixed(0)} s`);
  }
  if (!chosen) throw new Error("The ablation has no heads step to choose from.");
  if (options.validationOnly) {
    fs.mkdirSync(options.outDir, { recursive: true });
    writeJsonAtomic(path.join(options.outDir, "ablation.json"), ablation);
    // The chosen step's predictions of the validation faces it never trained on: what
    // `best calibrate` fits the age interval and the gender temperature on.
    writeJsonAtomic(path.join(options.outDir, VALIDATION_PREDICTIONS_FILE), { model: chosen.row.name, fitFaces: chosen.row.faces, predictions: chosen.validation });
    log(`[ablation] validation only: ${chosen.row.name} would be chosen (validation MAE ${chosen.row.mae.toFixed(2)}); ${path.join(options.outDir, "ablation.json")} and ${VALIDATION_PREDICTIONS_FILE} written, the test split untouched`);
    return undefined;
  }

  // The final heads: the chosen config (each of an ensemble's) at its best epoch count, on every
  // training face of its context; each is scored on the test split and saved before the next trains.
  const { ctx } = chosen;
  const split = ctx.split;
  const sets = ctx.sets;
  const trainRows = ctx.finalTrain;
  const configs = chosen.configs;
  const finalConfig = configs[0];
  const out = path.resolve(options.outDir);
  fs.mkdirSync(out, { recursive: true });
  const t = Date.now();
  const testOuts: HeadOutputs[] = [];
  const standardizers: (TrainedHeads["standardizer"])[] = [];
  for (const [k, cfg] of configs.entries()) {
    log(`[final] ${cfg.name}, ${cfg.epochs} epochs on ${trainRows.length} training faces${configs.length > 1 ? ` (ensemble member ${k + 1} of ${configs.length})` : ""}`);
    const heads = await fitConfig(cfg, split, sets, trainRows, undefined, log);
    // The one look at the test split.
    const testInputs = inputsOf(cfg, split, sets, split.test);
    testOuts.push(predictHeads(heads, testInputs.plain, testInputs.flipped));
    standardizers.push(heads.standardizer);
    // A fine-tuned model holds face-api's last stages (millions of weights): stored as float16.
    await saveModel(heads.model, path.join(out, headsFolder(k)), { model: "best", inputs: cfg.fineTune ? "face-api trunk maps (facenet-maps), see ../best.json" : "fused standardised features, see ../best.json" }, { float16: !!cfg.fineTune });
    heads.model.dispose();
  }
  const trainSeconds = (Date.now() - t) / 1000;
  for (let k = configs.length; fs.existsSync(path.join(out, headsFolder(k))); k++) fs.rmSync(path.join(out, headsFolder(k)), { recursive: true, force: true });
  const testOut = averageOutputs(testOuts);
  const testRows = bestPredictionRows(split.records, split.test, testOut);
  const test = bestMetrics(testRows, "test", training(ctx, trainRows), "best");
  test.trainSeconds = trainSeconds;
  // A faceres backbone's own age/gender outputs, scored beside the model when one was loaded.
  const ownBackbone = [...needed].find(hasOwnOutputs);
  const ownCtx = ownBackbone ? contextOf([ownBackbone]) : undefined;
  const testOwn = ownBackbone && ownCtx ? bestMetrics(bestPredictionRows(ownCtx.split.records, ownCtx.split.test, ownOutputs(ownCtx.sets.get(ownBackbone)!, ownCtx.split.test)), "test", training(ownCtx, ownCtx.finalTrain), `${ownBackbone} own outputs`) : undefined;
  const mirrored = Object.fromEntries([...sets].map(([name, set]) => [name, set.flipped !== undefined]));

  const rel = (p: string) => path.relative(process.cwd(), p).split(path.sep).join("/");
  const inputs = [...new Map(configs.flatMap((c) => modelInputs(c)).map((f) => [f.backbone, f])).values()];
  const file: BestModelFile = {
    format: configs.length > 1 ? BEST_ENSEMBLE_FORMAT : BEST_MODEL_FORMAT,
    config: finalConfig,
    standardizer: roundedStandardizer(standardizers[0]),
    ...(configs.length > 1 ? { ensemble: configs.slice(1).map((c, i) => ({ heads: headsFolder(i + 1), config: c, standardizer: roundedStandardizer(standardizers[i + 1]) })) } : {}),
    mirrored,
    backbones: inputs.map((f) => ({ ...f, package: BACKBONES[f.backbone].package, licence: BACKBONES[f.backbone].licence, preprocessing: BACKBONES[f.backbone].preprocessing })),
    data: { dir: rel(split.dir), faces: all.records.length, trainedOn: trainRows.length, test: split.test.length, seed: split.seed },
  };
  writeJsonAtomic(path.join(out, BEST_MODEL_FILE), file);

  // Speed: the whole path a user runs (decode, both views through every backbone, heads).
  const speedFiles = split.test.slice(0, options.speedFaces ?? 32).map((i) => split.files[i]);
  const model = await loadBestModel(out);
  await predictBestFiles(model, speedFiles.slice(0, 2));
  const ts = Date.now();
  await predictBestFiles(model, speedFiles);
  const secondsPerImage = (Date.now() - ts) / 1000 / speedFiles.length;
  disposeBestModel(model);

  const prepFile = path.join(out, "preprocessing.json");
  const preprocessing = fs.existsSync(prepFile) ? readJsonFile<PreprocessingRow[]>(prepFile, "Delete it (it only adds a table to the model card) or restore it (models/best: git checkout -- models/best).") : undefined;
  const fusionFile = path.join(out, "ablation-fusion.json");
  const fusionAblation = fs.existsSync(fusionFile) ? readJsonFile<AblationRow[]>(fusionFile, "Delete it (it only adds a table to the model card) or restore it (models/best: git checkout -- models/best).") : undefined;
  const data = { dir: path.relative(REPO_ROOT, all.dir).split(path.sep).join("/"), faces: all.records.length, test: all.test.length, seed: all.seed, testFraction: all.testFraction };
  const backend = await initBackend();
  const engine = backend.engine ?? `tfjs ${backend.name} backend, ${backend.threads || "auto"} thread(s)`;
  const result: BestRunRecord = { args: options.args, fusionAblation, ablation, chosen: finalConfig, ...(configs.length > 1 ? { members: configs } : {}), test, testOwn, secondsPerImage, engine, data, trainedOn: trainRows.length, subset: sub, validationFaces: ctx.validation.length, preprocessing };
  writeJsonAtomic(path.join(out, "metrics.json"), { test, testOwn, secondsPerImage });
  writeJsonAtomic(path.join(out, "run.json"), { ...result, fusionAblation: undefined, preprocessing: undefined });
  writeJsonAtomic(path.join(out, "ablation.json"), ablation);
  // The chosen step's ablation fit never saw the validation faces: its predictions of them are
  // what `best calibrate --from <this folder>` fits the interval and the temperature on.
  writeJsonAtomic(path.join(out, VALIDATION_PREDICTIONS_FILE), { model: chosen.row.name, fitFaces: chosen.row.faces, predictions: chosen.validation });
  writeJsonAtomic(
    path.join(out, "predictions.json"),
    testRows.map((r) => ({ file: r.file, age: r.age, gender: r.gender, predAge: Number((r.predAge as number).toFixed(2)), pFemale: Number((r.pFemale as number).toFixed(4)) })),
  );
  writeFileAtomic(path.join(out, "MODEL_CARD.md"), bestModelCard(result));
  log(`[test] ${split.test.length} held-out faces: MAE ${test.mae?.toFixed(2)}, gender ${((test.genderAccuracy ?? 0) * 100).toFixed(1)}%, 20-group ${((test.ageAccuracy ?? 0) * 100).toFixed(1)}% (within one ${((test.ageAccuracyWithin1 ?? 0) * 100).toFixed(1)}%), ${secondsPerImage.toFixed(3)} s/image`);
  return result;
}

export function validationPredictions(split: BestSplit, idx: readonly number[], out: HeadOutputs): ValidationPrediction[] {
  const x = intervalInputs(out.ageProbabilities, out.n);
  const r4 = (v: number) => Number(v.toFixed(4));
  return idx.map((i, k) => ({ file: split.records[i].file, age: split.records[i].age, gender: split.records[i].gender as number, predAge: r4(x[k].predAge), q10: r4(x[k].q10), q90: r4(x[k].q90), pFemale: r4(out.pFemale[k]) }));
}

/** The rows a model of `cfg` reads for some faces (plain and mirrored) and their labels. */
export function inputsOf(cfg: HeadConfig, split: BestSplit, sets: ReadonlyMap<string, FeatureSet>, idx: number[], parts: FeaturePart[] = modelInputs(cfg)) {
  return { plain: fuseFeatures(sets, parts, idx, "plain"), flipped: fuseFeatures(sets, parts, idx, "flipped"), ...labels(split, idx) };
}

/**
 * Trains the model of a config on the faces `fit`: heads on its features, then, with
 * `fineTune`, face-api's last stages and the heads together on the trunk maps. With
 * `validation`, the returned curve is the validation figures (every 5 heads epochs, or every
 * fine-tuning epoch).
 */
export async function fitConfig(cfg: HeadConfig, split: BestSplit, sets: ReadonlyMap<string, FeatureSet>, fit: number[], validation: number[] | undefined, log: (line: string) => void): Promise<TrainedHeads> {
  const features = inputsOf(cfg, split, sets, fit, cfg.features);
  if (!cfg.fineTune) return trainHeads(cfg, features, validation && inputsOf(cfg, split, sets, validation));
  const heads = await trainHeads(cfg, features);
  const val = validation && inputsOf(cfg, split, sets, validation);
  if (!cfg.fineTune.augment) return fineTuneHeads(heads, inputsOf(cfg, split, sets, fit), val, log);
  const side = backboneSpec(fineTuneMaps(cfg)).size;
  return fineTuneOnPixels(heads, { pixels: await facePixels(split, fit, side, log), side, ...labels(split, fit) }, val, log);
}

/**
 * RGB pixels of faces `idx` of the split at `side` (the backbone's input: area-averaged from the
 * crop, as the feature cache decodes them), through the pixel cache of loadFaces.
 */
async function facePixels(split: BestSplit, idx: readonly number[], side: number, log: (line: string) => void): Promise<Uint8Array> {
  const t = Date.now();
  const data = await loadFaces({ dir: split.dir, size: side, color: "rgb" });
  const row = new Map(data.records.map((r, i) => [r.file, i]));
  const per = side * side * 3;
  const out = new Uint8Array(idx.length * per);
  idx.forEach((i, k) => {
    const file = split.records[i].file;
    const r = row.get(file);
    if (r === undefined) throw new Error(`Face ${file} of the split did not load at ${side}x${side} RGB from ${split.dir}; check that the folder did not change during the run.`);
    out.set(data.pixels.subarray(r * per, (r + 1) * per), k * per);
  });
  log(`[pixels] ${idx.length} faces at ${side}x${side} RGB for fine-tuning on augmented pixels (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  return out;
}

/** Gender decided from P(female), as everywhere in the library. */
export function isFemale(pFemale: number): boolean {
  return pFemale >= GENDER_THRESHOLD;
}

/** Expected ages of head outputs (re-exported for notebooks). */
export { expectedAges };


/**
 * Compares faceres preprocessings on the first `faces` training faces only (never test faces):
 * each one's own outputs, and heads fitted on 3/4 of them and scored on the rest. Cheap enough
 * to run before extracting the whole set with the winner.
 */
export async function comparePreprocessings(options: { dir?: string; faces: number; backbones: BackboneName[]; cacheDir?: string; epochs?: number; log?: (line: string) => void }): Promise<PreprocessingRow[]> {
  const log = options.log ?? console.log;
  await initBackend();
  const split = await loadBestSplit({ dir: options.dir });
  const idx = [...split.fit, ...split.validation].slice(0, options.faces);
  const files = idx.map((i) => split.files[i]);
  const records = idx.map((i) => split.records[i]);
  const cut = Math.round(idx.length * 0.75);
  const fit = records.map((_, i) => i).slice(0, cut);
  const held = records.map((_, i) => i).slice(cut);
  const rows: PreprocessingRow[] = [];
  for (const b of options.backbones) {
    const set = await extractFeatureSet(files, b, { cacheDir: options.cacheDir });
    const all = records.map((_, i) => i);
    const own = bestMetrics(bestPredictionRows(records, all, ownOutputs(set, all)), "training subset", records);
    const sets = new Map([[b as string, set]]);
    const parts = [{ backbone: b, columns: "pooled" as const }];
    const config: HeadConfig = { ...DEFAULT_HEAD_CONFIG, name: b, features: parts, epochs: options.epochs ?? DEFAULT_HEAD_CONFIG.epochs };
    const heads = await trainHeads(config, { plain: fuseFeatures(sets, parts, fit, "plain"), flipped: fuseFeatures(sets, parts, fit, "flipped"), ages: fit.map((i) => records[i].age), genders: fit.map((i) => records[i].gender) });
    const out = predictHeads(heads, fuseFeatures(sets, parts, held, "plain"), fuseFeatures(sets, parts, held, "flipped"));
    heads.model.dispose();
    const m = bestMetrics(bestPredictionRows(records, held, out), "training subset", fit.map((i) => records[i]));
    rows.push({ backbone: b, faces: idx.length, ownMae: own.mae!, ownGenderAccuracy: own.genderAccuracy!, headMae: m.mae!, headGenderAccuracy: m.genderAccuracy! });
    log(`[${b}] own outputs on ${idx.length} training faces: MAE ${own.mae!.toFixed(2)}, gender ${(own.genderAccuracy! * 100).toFixed(1)}%; heads (fit ${fit.length}, scored on ${held.length}): MAE ${m.mae!.toFixed(2)}, gender ${(m.genderAccuracy! * 100).toFixed(1)}%`);
  }
  return rows;
}

/**
 * Rewrites MODEL_CARD.md of a model folder from its run.json and the optional tables beside it
 * (ablation-fusion.json, preprocessing.json), e.g. after adding one of them.
 */
export function rewriteModelCard(dir: string): string {
  const fix = "Restore it (models/best: git checkout -- models/best) or retrain the folder (npm run cli -- best train --out <dir>).";
  const read = <T>(name: string): T | undefined => (fs.existsSync(path.join(dir, name)) ? readJsonFile<T>(path.join(dir, name), fix) : undefined);
  const run = read<BestRunRecord>("run.json");
  if (!run) throw new Error(`${dir} has no run.json: train it with npm run cli -- best train.`);
  for (const key of ["chosen", "test", "data"] as const) {
    if (typeof run[key] !== "object" || run[key] === null) throw new Error(`${path.join(dir, "run.json")} is damaged: it has no "${key}". ${fix}`);
  }
  const card = bestModelCard({ ...run, fusionAblation: read<AblationRow[]>("ablation-fusion.json"), preprocessing: read<PreprocessingRow[]>("preprocessing.json"), calibration: read<CalibrationRecord>(CALIBRATION_FILE), genderAblation: read<AblationRow[]>("ablation-gender.json"), ensembleAblation: read<AblationRow[]>("ablation-ensemble.json"), inputAblation: read<InputAblationRow[]>(INPUT_ABLATION_FILE) });
  writeFileAtomic(path.join(dir, "MODEL_CARD.md"), card);
  return card;
}
