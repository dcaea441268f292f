/** `npm run cli -- predict`: predict age and gender of image files with a trained model. */
import { parseArgs } from "util";
import { listImageFiles, predictFiles, predictionsCsv, writePredictionsCsv } from "../inference/predict";

export const help = `Usage: npm run cli -- predict --model <run-dir or model-dir> <image file or folder> [--out f.csv] [--strict]

Predicts each image (any file name; it need not be in UTKFace form) with a trained model and
prints CSV with columns file, age, age_group, gender, p_female, skipped. Columns a model does
not predict (age for a gender model, gender for an age model) are left empty.

A file that cannot be used (unreadable, a broken link, cut short, not an image) does not stop
the others: its row has empty predictions and the reason in the skipped column, and the
skipped files are also listed on stderr. The exit code is 0 when at least one image was
predicted, 1 when none could be.
  --out f.csv   write the CSV to a file instead of printing it
  --strict      exit with 1 when any file was skipped`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { model: { type: "string" }, out: { type: "string" }, strict: { type: "boolean" } }, allowPositionals: true, strict: true });
  if (!values.model) throw new Error("--model <run-dir or model-dir> is required.");
  if (positionals.length === 0) throw new Error("Pass an image file or a folder of images after the options.");
  const files = positionals.flatMap((p) => listImageFiles(p));
  const rows = await predictFiles(values.model, files);
  const skipped = rows.filter((r) => r.skipped !== undefined);
  const predicted = rows.length - skipped.length;
  if (values.out) {
    writePredictionsCsv(values.out, rows);
    console.log(`${predicted} prediction(s) written to ${values.out}${skipped.length ? `, ${skipped.length} file(s) skipped` : ""}`);
  } else process.stdout.write(predictionsCsv(rows));
  if (skipped.length > 0) {
    process.stderr.write(`skipped ${skipped.length} of ${rows.length} file(s):\n${skipped.map((r) => `  ${r.file}: ${r.skipped}`).join("\n")}\n`);
  }
  if (predicted === 0) {
    process.stderr.write("error: no image could be predicted (see the reasons above).\n");
    return 1;
  }
  return values.strict && skipped.length > 0 ? 1 : 0;
}
