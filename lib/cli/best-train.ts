/** `npm run cli -- best train`: the ablation on validation, the final heads, the model folder. */
import { parseArgs } from "util";
import { BACKBONE_NAMES, BackboneName, backboneSpec } from "../best/backbones";
import { BEST_RECIPE, DEFAULT_FINE_TUNE, defaultAblation, runBest } from "../best/run";
import { DEFAULT_HEAD_CONFIG } from "../best/head-training";
import { intOption, numberOption } from "./options";

export const help = `Usage: npm run cli -- best train [--dir D] [--out models/best] [--backbones a,b ...]

Tries each ablation step on the validation split (carved from the training faces), trains the
step with the lowest validation MAE on every training face, scores the held-out split once
(the same seeded 80/20 split as train) and writes the model folder: heads/ (tfjs), best.json,
metrics.json, ablation.json, predictions.json, MODEL_CARD.md. Features come from the cache
(npm run cli -- best features); missing ones are extracted first.
  (no option)       models/best: face-api's descriptor (facenet) on every face
  --recipe fusion   facenet on every face + faceres-caffe on the first 1000 training faces and
                    every test face (npm run cli -- best features --recipe fusion)
  --backbones a,b   backbones to use (of ${BACKBONE_NAMES.join(", ")}), every face
  --train-faces N --subset-backbones b [--plain-only]
                    backbones b were extracted (best features --train-faces N [--plain-only])
                    for the first N training faces plus every test face only; steps using
                    them fit on those faces, the others on every training face, all are
                    scored on the same validation faces
  --epochs N        epochs of each ablation step (default ${DEFAULT_HEAD_CONFIG.epochs}; the final model
                    trains for the validation-best count)
  --fine-tune-epochs N
                    epochs of the last step, which fine-tunes face-api's last stage with the
                    heads (default ${DEFAULT_FINE_TUNE.epochs}; 0 leaves it out: frozen features only)
  --fine-tune-lr X  its starting learning rate (default ${DEFAULT_FINE_TUNE.learningRate}, cosine-decayed to 0)
  --deeper          also try the fine-tuning step one stage deeper (stage128 trains too, on
                    cached stage64 maps: 1.3 GB of cache, about twice the time)
  --pixels          also try the deeper step on augmented pixels (rotation, zoom, shift, mirror,
                    brightness, contrast; the frozen stem to stage64 runs on every batch)
  --ensemble        also try the two fine-tuning steps of --pixels (or of --deeper) averaged;
                    chosen, the final run trains both
  --gender-weight W also try the fine-tuning step with the gender loss weighted W times
  --validation-only run the ablation and write its ablation.json only: no final model, the
                    test split untouched (for trying steps before the one final run); also
                    validation-predictions.json, the chosen step's predictions of the
                    validation faces (what best calibrate fits on)
  --gender-smoothing E
                    also try the model's fine-tuning step with gender label smoothing E
  --gender-balance  also try it with the gender loss balanced within each age band
  --steps a,b       only the ablation steps of these names (e.g. "facenet fine-tune deeper")`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { dir: { type: "string" }, out: { type: "string" }, recipe: { type: "string" }, backbones: { type: "string" }, epochs: { type: "string" }, "train-faces": { type: "string" }, "subset-backbones": { type: "string" }, "plain-only": { type: "boolean" }, "fine-tune-epochs": { type: "string" }, "fine-tune-lr": { type: "string" }, "validation-only": { type: "boolean" }, "gender-weight": { type: "string" }, deeper: { type: "boolean" }, pixels: { type: "boolean" }, ensemble: { type: "boolean" }, steps: { type: "string" }, "gender-smoothing": { type: "string" }, "gender-balance": { type: "boolean" } },
    strict: true,
  });
  if (values.recipe !== undefined && values.recipe !== "fusion") throw new Error(`--recipe must be "fusion", got "${values.recipe}".`);
  const fusion = values.recipe === "fusion";
  // Default: models/best (face-api's descriptor on every face); --recipe fusion: BEST_RECIPE.
  const backbones = values.backbones ? values.backbones.split(",").map((b) => backboneSpec(b.trim()).name) : fusion ? BEST_RECIPE.backbones : (["facenet"] as BackboneName[]);
  const epochs = intOption("epochs", values.epochs);
  const trainFaces = intOption("train-faces", values["train-faces"]);
  const subset = trainFaces
    ? { trainFaces, backbones: (values["subset-backbones"] ?? "").split(",").filter(Boolean).map((b) => backboneSpec(b.trim()).name), mirrored: !values["plain-only"] }
    : fusion
      ? BEST_RECIPE.subset
      : undefined;
  const fineTune = { epochs: intOption("fine-tune-epochs", values["fine-tune-epochs"], 0) ?? DEFAULT_FINE_TUNE.epochs, learningRate: numberOption("fine-tune-lr", values["fine-tune-lr"]) ?? DEFAULT_FINE_TUNE.learningRate, batchSize: DEFAULT_FINE_TUNE.batchSize };
  let steps = defaultAblation(backbones, epochs, { short: !!subset, fineTune, genderWeight: numberOption("gender-weight", values["gender-weight"]), deeper: values.deeper, pixels: values.pixels, ensemble: values.ensemble, genderSmoothing: numberOption("gender-smoothing", values["gender-smoothing"]), genderBalance: values["gender-balance"] });
  if (values.steps !== undefined) {
    const wanted = values.steps.split(",").map((n) => n.trim());
    const names = steps.map((s) => (s.kind === "heads" ? s.config.name : s.name));
    const unknown = wanted.filter((n) => !names.includes(n));
    if (unknown.length) throw new Error(`--steps: no ablation step named ${unknown.map((n) => `"${n}"`).join(", ")}; the steps are ${names.map((n) => `"${n}"`).join(", ")}.`);
    steps = steps.filter((_, i) => wanted.includes(names[i]));
  }
  await runBest({ dir: values.dir, outDir: values.out ?? "models/best", steps, subset, validationOnly: values["validation-only"], args: argv });
  return 0;
}
