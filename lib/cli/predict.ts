/** `npm run cli -- predict`: predict age and gender of image files with a trained model. */
import { parseArgs } from "util";
import { listImageFiles, predictFiles, predictionsCsv, writePredictionsCsv } from "../inference/predict";

export const help = `Usage: npm run cli -- predict --model <run-dir or model-dir> <image file or folder> [--out f.csv]

Predicts each image (any file name; it need not be in UTKFace form) with a trained model and
prints CSV with columns file, age, age_group, gender, p_female. Columns a model does not
predict (age for a gender model, gender for an age model) are left empty.
  --out f.csv   write the CSV to a file instead of printing it`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { model: { type: "string" }, out: { type: "string" } }, allowPositionals: true, strict: true });
  if (!values.model) throw new Error("--model <run-dir or model-dir> is required.");
  if (positionals.length === 0) throw new Error("Pass an image file or a folder of images after the options.");
  const files = positionals.flatMap((p) => listImageFiles(p));
  const rows = await predictFiles(values.model, files);
  if (values.out) {
    writePredictionsCsv(values.out, rows);
    console.log(`${rows.length} prediction(s) written to ${values.out}`);
  } else process.stdout.write(predictionsCsv(rows));
  return 0;
}
