/**
 * `npm run cli -- best <features|train>`: the best-model family (frozen pretrained face
 * features + small heads), see models/best/MODEL_CARD.md.
 */
import * as path from "path";
import { parseArgs } from "util";
import { initBackend } from "../engine/backend";
import { BACKBONE_NAMES, BackboneName, backboneSpec } from "../best/backbones";
import { ExtractionProgress, extractFeatureSet } from "../best/feature-cache";
import { featureRows, loadBestSplit } from "../best/faces";
import { BEST_RECIPE, comparePreprocessings, rewriteModelCard } from "../best/run";
import { FINETUNE_BACKBONE } from "../best/fine-tuning";
import type { FineTuneConfig } from "../best/head-training";
import { writeJsonAtomic } from "../core/files";
import { intOption, numberOption } from "./options";

export const help = `Usage: npm run cli -- best <features|prep|train|cross-fit|stack|calibrate|card> [options]

  features   extract and cache frozen backbone features (plain + mirrored) of every face;
             resumable: rerun after an interruption and it continues at the first missing chunk
  prep       compare faceres preprocessings on the first --first-train N training faces (default
             400; never test faces): own outputs and heads; writes <--out>/preprocessing.json
  calibrate  --from RUN [--out models/best]: fit the age interval (10th-90th percentiles widened
             to hold 80% of real ages) and the gender temperature on RUN's validation-
             predictions.json (best train --validation-only --out RUN: a model that never
             trained on those faces), store them in <--out>/best.json, then score the test split
             once (calibration.json, predictions.json, MODEL_CARD.md); with --out-of-fold it
             fits on RUN's out-of-fold-predictions.json (best cross-fit) instead
  cross-fit  --from models/best [--folds 5]: train the folder's recipe once per fold of the
             training faces, each time predicting the fold left out, and write every training
             face's out-of-fold prediction to <--from>/out-of-fold-predictions.json (never
             reads the test split; resumable: done folds are kept in data/.cache/crossfit)
  stack      --from models/best [--backbone faceres-caffe]: stack the folder's model with heads
             on a second backbone's frozen features (cross-fitted on the folds of the folder's
             out-of-fold-predictions.json, so best cross-fit first), the weights fitted on
             every training face's out-of-fold predictions; then calibrate --out-of-fold (the
             test split's one look) and rewrite the card. Needs the backbone's features
             (best features --backbones faceres-caffe, about 3 min for 8,818 faces).
             --fine-tune: faceres's last block (conv_dw_13 + conv_pw_13 and its own age/gender
             layers) then trains with the member's heads on cached 7x7x1024 maps
             (faceres-caffe-maps, extracted on first use: 3.5 GB for 8,818 faces), Adam
             cosine-decayed; --fine-tune-epochs N (default 8), --fine-tune-lr X (default 3e-4)
  card       rewrite <--out>/MODEL_CARD.md from its run.json and the tables beside it
  train      choose heads on the validation split, train the final heads on all training faces,
             score the held-out split once and write the model folder (see train --help below)

Options of features:
  --dir D                 UTKFace folder (default $UTKFACE_DIR, data/UTKFace, data/sample)
  (no option)             what models/best needs (best train --deeper --pixels): facenet,
                          facenet-maps, facenet-maps64 and facenet-maps32 (its trunk maps after
                          stage128, stage64 and stage32, for fine-tuning; 4.7 GB for 8,818
                          faces) on every face with mirrored copies (8 min on 2 cores)
  --recipe fusion         also faceres-caffe on the first 1000 training faces + every test face
  --backbones a,b         of ${BACKBONE_NAMES.join(", ")}, on every face
  --train-faces N         only the first N training faces (seeded order) plus every test face:
                          for a backbone too slow for all faces (best train --train-faces N)
  --plain-only            no mirrored copies (half the time)
  --first-train N         only the first N training faces (in split order): a cheap cache for
                          choosing a preprocessing on training faces; never touches test faces`;

/** A progress printer: one line at most every `seconds`, and one at the end. */
export function progressPrinter(seconds = 15): (p: ExtractionProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < seconds * 1000 && p.done < p.total) return;
    last = now;
    const eta = p.rate > 0 ? (p.total - p.done) / p.rate : 0;
    console.log(`[${p.backbone}] ${p.done}/${p.total} faces (x2 with mirrored), ${p.rate.toFixed(1)} faces/s, ${Math.round(eta / 60)} min left`);
  };
}

async function features(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { dir: { type: "string" }, recipe: { type: "string" }, backbones: { type: "string" }, "first-train": { type: "string" }, "train-faces": { type: "string" }, "plain-only": { type: "boolean" } },
    strict: true,
  });
  const firstTrain = intOption("first-train", values["first-train"]);
  const trainFaces = intOption("train-faces", values["train-faces"]);
  await initBackend();
  const split = await loadBestSplit({ dir: values.dir });
  // Default: what models/best needs (facenet and the trunk maps of every fine-tuning step, every face); --recipe fusion: BEST_RECIPE's features.
  const plan: { backbone: BackboneName; indices: number[]; mirrored: boolean; what: string }[] = [];
  if (values.recipe !== undefined && values.recipe !== "fusion") throw new Error(`--recipe must be "fusion", got "${values.recipe}".`);
  if (values.recipe !== "fusion") {
    const indices = firstTrain ? [...split.fit, ...split.validation].slice(0, firstTrain) : featureRows(split, trainFaces);
    const what = firstTrain ? `first ${firstTrain} training faces` : trainFaces ? `first ${trainFaces} training faces + every test face` : "every face";
    for (const b of (values.backbones ?? `facenet,${FINETUNE_BACKBONE},facenet-maps64,facenet-maps32`).split(",")) plan.push({ backbone: backboneSpec(b.trim()).name, indices, mirrored: !values["plain-only"], what });
  } else {
    const sub = BEST_RECIPE.subset;
    for (const b of BEST_RECIPE.backbones) {
      const onSubset = sub.backbones.includes(b);
      plan.push({ backbone: b, indices: onSubset ? featureRows(split, sub.trainFaces) : featureRows(split), mirrored: onSubset ? sub.mirrored : true, what: onSubset ? `first ${sub.trainFaces} training faces + every test face` : "every face" });
    }
  }
  for (const p of plan) {
    const t = Date.now();
    console.log(`[${p.backbone}] ${p.indices.length} faces of ${split.dir} (${p.what}${p.mirrored ? ", with mirrored copies" : ""})`);
    const set = await extractFeatureSet(p.indices.map((i) => split.files[i]), p.backbone, { onProgress: progressPrinter(), mirrored: p.mirrored });
    console.log(`[${p.backbone}] ${set.cacheHit ? "cache hit" : `extracted in ${((Date.now() - t) / 60000).toFixed(1)} min`}: ${set.cacheFile}`);
  }
  return 0;
}

async function preprocessing(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: "string" }, backbones: { type: "string" }, "first-train": { type: "string" }, out: { type: "string" } }, strict: true });
  const backbones = (values.backbones ?? "faceres,faceres-caffe").split(",").map((b) => backboneSpec(b.trim()).name);
  const faces = intOption("first-train", values["first-train"] ?? "400")!;
  const rows = await comparePreprocessings({ dir: values.dir, faces, backbones });
  const file = path.join(values.out ?? "models/best", "preprocessing.json");
  writeJsonAtomic(file, rows);
  console.log(`written to ${file}`);
  return 0;
}

/**
 * The fine-tuning of `best stack`'s second member from its options: none without --fine-tune
 * (its epochs and learning rate options alone are an error, not silently ignored).
 */
export function stackFineTune(values: { "fine-tune"?: boolean; "fine-tune-epochs"?: string; "fine-tune-lr"?: string }, defaults: FineTuneConfig): FineTuneConfig | undefined {
  const epochs = intOption("fine-tune-epochs", values["fine-tune-epochs"]);
  const learningRate = numberOption("fine-tune-lr", values["fine-tune-lr"]);
  if (!values["fine-tune"]) {
    if (epochs !== undefined || learningRate !== undefined) throw new Error("--fine-tune-epochs and --fine-tune-lr set the fine-tuning of --fine-tune: add --fine-tune.");
    return undefined;
  }
  return { ...defaults, epochs: epochs ?? defaults.epochs, learningRate: learningRate ?? defaults.learningRate };
}

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "features") return features(rest);
  if (sub === "prep") return preprocessing(rest);
  if (sub === "card") {
    const { values } = parseArgs({ args: rest, options: { out: { type: "string" } }, strict: true });
    rewriteModelCard(values.out ?? "models/best");
    console.log(`${path.join(values.out ?? "models/best", "MODEL_CARD.md")} rewritten`);
    return 0;
  }
  if (sub === "calibrate") {
    const { values } = parseArgs({ args: rest, options: { from: { type: "string" }, out: { type: "string" }, dir: { type: "string" }, "out-of-fold": { type: "boolean" } }, strict: true });
    if (!values.from) throw new Error("best calibrate needs --from <folder of a best train run, or of best cross-fit with --out-of-fold>.");
    const { calibrateBest } = await import("../best/calibrate");
    const out = values.out ?? "models/best";
    await calibrateBest({ modelDir: out, from: values.from, dir: values.dir, outOfFold: values["out-of-fold"] });
    rewriteModelCard(out);
    console.log(`${path.join(out, "best.json")}, calibration.json and MODEL_CARD.md written`);
    return 0;
  }
  if (sub === "cross-fit") {
    const { values } = parseArgs({ args: rest, options: { from: { type: "string" }, folds: { type: "string" }, dir: { type: "string" } }, strict: true });
    const { crossFitBest } = await import("../best/cross-fit");
    await crossFitBest({ modelDir: values.from ?? "models/best", folds: intOption("folds", values.folds), dir: values.dir });
    return 0;
  }
  if (sub === "stack") {
    const { values } = parseArgs({
      args: rest,
      options: { from: { type: "string" }, backbone: { type: "string" }, dir: { type: "string" }, "fine-tune": { type: "boolean" }, "fine-tune-epochs": { type: "string" }, "fine-tune-lr": { type: "string" } },
      strict: true,
    });
    const { STACK_FINE_TUNE, stackBest } = await import("../best/stack");
    const { calibrateBest } = await import("../best/calibrate");
    const dir = values.from ?? "models/best";
    await stackBest({ modelDir: dir, backbone: values.backbone ? backboneSpec(values.backbone).name : undefined, dir: values.dir, fineTune: stackFineTune(values, STACK_FINE_TUNE) });
    // The stacked predictor's interval and temperature, fitted on its out-of-fold rows; then its one look at the test split.
    await calibrateBest({ modelDir: dir, from: dir, dir: values.dir, outOfFold: true });
    rewriteModelCard(dir);
    console.log(`${dir}: stacked, calibrated and scored; MODEL_CARD.md rewritten`);
    return 0;
  }
  if (sub === "train") return (await import("./best-train")).run(rest);
  throw new Error(`Unknown best subcommand "${sub ?? ""}": use "features", "prep", "train", "cross-fit", "stack", "calibrate" or "card" (see --help).`);
}
