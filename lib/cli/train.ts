/** `npm run cli -- train`: train one model on a train/test split and write its run folder. */
import { parseArgs } from "util";
import { DEFAULT_LEARNING_RATE, runExperiment } from "../training/experiment";
import { MODELS } from "../models/registry";
import { DEFAULT_FINE_TUNE_LEARNING_RATE } from "../models/transfer";
import { portablePath } from "../records/runs";
import { modelProfileSettings, profileSettings } from "../training/profile";
import { COMMON_RUN_OPTIONS, commonRunConfig, fractionOption, intOption, numberOption, printMetrics } from "./options";

// The learning rates in the help come from the registry (a model's own rate) and the trainer's
// defaults, so the text cannot drift from what a run uses.
const specs = Object.values(MODELS);
const ownRates = specs.flatMap((s) => (s.learningRate === undefined ? [] : [`${s.name}: ${s.learningRate}`])).join("; ");
const ownFineTuneRates = specs.flatMap((s) => (s.fineTune?.learningRate === undefined ? [] : [`${s.name} ${s.fineTune.learningRate.toExponential()}`])).join(", ");

const QUICK = profileSettings("quick");
const FULL = profileSettings("full");

export const help = `Usage: npm run cli -- train --model <name> [options]

Trains one model on the train split and evaluates it on the held-out test split, writing
results/<experiment>/<run-id>/ (config.json, history.json, metrics.json, predictions.json, model/).

Options:
  --model <name>          one of: ${Object.keys(MODELS).join(", ")}
  --epochs N              epochs (profile: quick ${QUICK.epochs}, full ${FULL.epochs}; a model may trim them, e.g. cnn-age-sigmoid quick ${modelProfileSettings("cnn-age-sigmoid", "quick").epochs})
  --size N                input side in pixels (profile: quick ${QUICK.size}, full ${FULL.size}; VGG19 quick ${modelProfileSettings("vgg19", "quick").size})
  --color gray|rgb        colour mode (default: the model's)
  --dir D                 UTKFace folder (default $UTKFACE_DIR, data/UTKFace, data/sample)
  --batch N               batch size (profile: quick ${QUICK.batchSize}, full ${FULL.batchSize})
  --lr X                  Adam learning rate (default ${DEFAULT_LEARNING_RATE}, quick profile 3e-4; ${ownRates})
  --seed N                seed of splits, batches and weights (default 42)
  --test-fraction X       held-out share (default 0.2)
  --validation-fraction X share of training images watched each epoch (default 0.1)
  --patience N            early stopping patience (default 0 = off)
  --keep-best             keep the epoch with the lowest validation loss (the report's VGG19), not the last
  --class-weights         weight the loss by class, balanced from the training faces' counts
  --max-images N          cap on images (profile: quick 2000, full all)
  --experiment NAME       folder under results/ (default: the model name)
  --pretrained FILE       vgg19-pretrained: model.json of Keras VGG19 converted to tfjs
  --fine-tune-epochs N    transfer models: epochs after the frozen stage with the last
                          pretrained layers unfrozen (facenet-transfer: quick 1, full 3; 0 = off)
  --fine-tune-lr X        learning rate of the fine-tune stage (${ownFineTuneRates}, else ${DEFAULT_FINE_TUNE_LEARNING_RATE.toExponential()})
  --fine-tune-layers N|all  pretrained layers to unfreeze, from the end (facenet-transfer: 2 of 6)
  --profile quick|full    overrides $EXPERIMENT_PROFILE (default quick)

Continuing an interrupted run (killed, disk full): every epoch is checkpointed in the run's
checkpoint/ folder (weights and Adam state), removed once the run is complete.
  --resume                continue the newest unfinished run of --model from its last epoch
  --run <dir>             continue this run folder (--model not needed)
  --accept-changes        continue even though options differ from the run's config.json;
                          config.json records each change and the epoch it took effect.
                          Without it, a difference is refused with the list of differences.
Options left out when continuing are taken from the run's config.json. A run killed after
its model was saved is finished by evaluating it (as \`npm run cli -- evaluate --run <dir>\` does).`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_RUN_OPTIONS,
      epochs: { type: "string" },
      "test-fraction": { type: "string" },
      "validation-fraction": { type: "string" },
      patience: { type: "string" },
      "keep-best": { type: "boolean" },
      pretrained: { type: "string" },
      "fine-tune-epochs": { type: "string" },
      "fine-tune-lr": { type: "string" },
      "fine-tune-layers": { type: "string" },
      resume: { type: "boolean" },
      run: { type: "string" },
      "accept-changes": { type: "boolean" },
    },
    strict: true,
  });
  if (values.resume && values.run) throw new Error("Pass either --resume (the newest unfinished run of --model) or --run <dir>, not both.");
  const result = await runExperiment({
    ...commonRunConfig(values, Boolean(values.run)),
    resume: values.resume,
    runDir: values.run,
    acceptChanges: values["accept-changes"],
    epochs: intOption("epochs", values.epochs),
    testFraction: fractionOption("test-fraction", values["test-fraction"]),
    validationFraction: fractionOption("validation-fraction", values["validation-fraction"], true),
    patience: intOption("patience", values.patience, 0),
    ...(values["keep-best"] ? { keepBest: true } : {}),
    pretrainedWeights: values.pretrained,
    fineTuneEpochs: intOption("fine-tune-epochs", values["fine-tune-epochs"], 0),
    fineTuneLearningRate: numberOption("fine-tune-lr", values["fine-tune-lr"]),
    fineTuneLayers: values["fine-tune-layers"] === "all" ? "all" : intOption("fine-tune-layers", values["fine-tune-layers"]),
  });
  console.log(`run folder: ${portablePath(result.runDir)}`);
  printMetrics(result.metrics);
  return 0;
}
