/** `npm run cli -- kfold`: the report's K-fold protocol, resumable, one fold per process if wanted. */
import { parseArgs } from "util";
import { mergeKFold, runKFold } from "../training/kfold";
import { MODELS } from "../models/registry";
import { profileSettings } from "../training/profile";
import { portablePath } from "../records/runs";
import { COMMON_RUN_OPTIONS, commonRunConfig, fractionOption, intOption } from "./options";

const QUICK = profileSettings("quick");
const FULL = profileSettings("full");

export const help = `Usage: npm run cli -- kfold --model <name> [options]
       npm run cli -- kfold --merge <run-dir>

Runs K-fold cross-validation: shuffled folds (seed 42), batch 25, epochs from --first-epochs on
the first fold down to --last-epochs on the last (full profile: 15 ... 2 over 10 folds). Each fold
checkpoints after every epoch; rerun the same command with --resume (or --run <dir>) after a kill
to continue from the last completed epoch. Finished folds are never redone.

Options:
  --model <name>        one of: ${Object.keys(MODELS).join(", ")}
  --folds K             number of folds (profile: quick 3, full 10)
  --fold k              run fold k only (0-based); use with --run so processes share the run
  --run <dir>           run folder to create or continue
  --resume              continue the newest unfinished K-fold run of this model
  --merge <dir>         gather finished fold folders into the run's summary and exit
  --first-epochs N      epochs of the first fold (profile: quick ${QUICK.firstEpochs}, full ${FULL.firstEpochs})
  --last-epochs N       epochs of the last fold (profile: quick ${QUICK.minEpochs}, full ${FULL.minEpochs})
  --carry-weights       each fold starts from the previous fold's weights (the report; default fresh)
  --second-pass         the report's second pass over the folds (implies --carry-weights)
  --hold-out-test F     keep the 80/20 split's test faces (share F, e.g. 0.2) out of every fold;
                        each fold's model is also scored on them (fold-NN/test-metrics.json)
  --accept-changes      continue a run although options differ from its config.json (which
                        then records each change and the fold and epoch it took effect);
                        without it a difference is refused, listing every difference.
                        Options left out when continuing are taken from config.json.
  --class-weights       weight the loss by class, balanced from each fold's training faces
  --size N, --color gray|rgb, --dir D, --batch N, --lr X, --seed N, --max-images N,
  --experiment NAME, --profile quick|full   as for train`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON_RUN_OPTIONS,
      folds: { type: "string" },
      fold: { type: "string" },
      run: { type: "string" },
      resume: { type: "boolean" },
      merge: { type: "string" },
      "first-epochs": { type: "string" },
      "last-epochs": { type: "string" },
      "carry-weights": { type: "boolean" },
      "second-pass": { type: "boolean" },
      "hold-out-test": { type: "string" },
      "accept-changes": { type: "boolean" },
    },
    strict: true,
  });
  if (values.merge) {
    const r = mergeKFold(values.merge);
    printSummary(r.runDir, r.summary.summary, r.summary.completed.length, r.summary.k);
    return 0;
  }
  const result = await runKFold({
    ...commonRunConfig(values, Boolean(values.run)),
    folds: intOption("folds", values.folds, 2),
    fold: intOption("fold", values.fold, 0),
    runDir: values.run,
    resume: values.resume,
    firstEpochs: intOption("first-epochs", values["first-epochs"]),
    lastEpochs: intOption("last-epochs", values["last-epochs"]),
    carryWeights: values["carry-weights"],
    secondPass: values["second-pass"],
    holdOutTest: fractionOption("hold-out-test", values["hold-out-test"]),
    acceptChanges: values["accept-changes"],
  });
  printSummary(result.runDir, result.summary.summary, result.summary.completed.length, result.summary.k);
  result.summary.folds.forEach((m, i) => (m.warnings ?? []).forEach((w) => console.error(`warning: fold ${result.summary.completed[i] + 1}: ${w}`)));
  if (result.summary.completed.length === result.summary.k && values.fold !== undefined) {
    console.log(`all folds done: merge with  npm run cli -- kfold --merge ${portablePath(result.runDir)}`);
  }
  return 0;
}

function printSummary(runDir: string, summary: Record<string, { mean: number; std: number }>, done: number, k: number): void {
  console.log(`run folder: ${portablePath(runDir)}  (${done}/${k} folds done)`);
  for (const [key, s] of Object.entries(summary)) console.log(`  ${key.padEnd(20)} mean ${s.mean.toFixed(4)}  std ${s.std.toFixed(4)}`);
}
