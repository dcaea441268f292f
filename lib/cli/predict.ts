/** `npm run cli -- predict`: find the faces in photos and predict age and gender per face. */
import { parseArgs } from "util";
import { numberOption } from "./options";
import { writeAnnotated } from "../inference/annotate";
import { DETECT_MODES, DetectMode, photoPredictionsCsv, predictPhotos, writePhotoPredictionsCsv } from "../inference/photo";
import { listImageFiles } from "../inference/predict";
import { checkOutputDir, checkOutputFile } from "../core/files";
import { describeErrno, errnoOf } from "../core/file-errors";

export const help = `Usage: npm run cli -- predict --model <run-dir, model-dir or models/best> <image file or folder>... [options]

Finds every face in each image (face-api's SSD MobileNet v1), cuts each one from the original
pixels framed like UTKFace's training crops (levelled by the eyes) and predicts it with a
trained model. Prints CSV, one row per face: file, face, x, y, width, height (the detector's
box), score, check, age, age_low, age_high, age_group, gender, p_female, note. age_low and
age_high: a calibrated models/best's 80% age interval (10th-90th percentiles of its age
distribution, widened on validation faces to hold 80% of real ages). score is the detector's
confidence (empty where it did not run), check the landmark check's verdict ("face" or
"not a face: <why>"): a detection is kept only when the check says face. An image without a
face gets one row with note "no face found"; an image taken whole as a face crop has note
"whole image" ("whole image: no face detected" when the crop's face was not confirmed). Columns a
model does not predict are left empty. See docs/photos.md.
  --detect auto|always|never  auto (default): an image holding one face that fills most of it
                              is taken whole, as a UTKFace-style crop; always: cut every face;
                              never: the whole image is one face (no detector)
  --align eyes|none           level each face by its eyes before cutting (default eyes)
  --min-score X               lowest detector score kept (default 0.3)
  --annotate DIR              also write each image with boxes and labels into DIR
  --out f.csv                 write the CSV to a file instead of printing it
  --strict                    exit with 1 when any file was skipped

A file that cannot be used (unreadable, a broken link, cut short, not an image) does not stop
the others: its row has note "skipped: <reason>", and the skipped files are also listed on
stderr. The exit code is 0 when at least one image was read, 1 when none could be.`;

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      out: { type: "string" },
      detect: { type: "string", default: "auto" },
      align: { type: "string", default: "eyes" },
      "min-score": { type: "string" },
      annotate: { type: "string" },
      strict: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (!values.model) throw new Error("--model <run-dir or model-dir> is required.");
  if (positionals.length === 0) throw new Error("Pass an image file or a folder of images after the options.");
  if (!DETECT_MODES.includes(values.detect as DetectMode)) throw new Error(`--detect "${values.detect}" is not one of ${DETECT_MODES.join(", ")}.`);
  if (values.align !== "eyes" && values.align !== "none") throw new Error(`--align "${values.align}" is not "eyes" or "none".`);
  // Paths checked before minutes of predicting, not after.
  if (values.out) checkOutputFile(values.out, "--out");
  if (values.annotate) checkOutputDir(values.annotate, "--annotate");
  const files = positionals.flatMap((p) => listImageFiles(p));
  const rows = await predictPhotos(values.model, files, {
    detect: values.detect as DetectMode,
    align: values.align === "eyes",
    minScore: numberOption("min-score", values["min-score"], 0),
  });
  const faces = rows.reduce((n, r) => n + r.faces.length, 0);
  const skipped = rows.filter((r) => r.skipped !== undefined);
  if (values.out) {
    try {
      writePhotoPredictionsCsv(values.out, rows);
    } catch (e) {
      // Nothing predicted is lost: the CSV goes to stdout instead.
      process.stdout.write(photoPredictionsCsv(rows));
      throw new Error(`--out ${values.out}: ${(e as Error).message}\nThe CSV was printed on stdout instead (redirect it to a file, or fix the cause and rerun).`);
    }
    console.log(`${faces} face(s) in ${rows.length - skipped.length} image(s) written to ${values.out}${skipped.length ? `, ${skipped.length} file(s) skipped` : ""}`);
  } else process.stdout.write(photoPredictionsCsv(rows));
  // After the CSV: a failure here (disk full) leaves the predictions written.
  if (values.annotate) {
    try {
      const written = await writeAnnotated(values.annotate, rows);
      console.error(`${written.length} annotated image(s) written to ${values.annotate}`);
    } catch (e) {
      const m = (e as Error).message;
      throw new Error(`--annotate ${values.annotate}: ${/^Could not write/.test(m) ? m : `${describeErrno(errnoOf(e)) ? `${(e as NodeJS.ErrnoException).path ?? values.annotate} ${describeErrno(errnoOf(e))}` : m}`}\nThe predictions are complete${values.out ? ` in ${values.out}` : " (printed above)"}; only the annotated images are missing: fix the cause and rerun with --annotate.`);
    }
  }
  if (skipped.length > 0) {
    process.stderr.write(`skipped ${skipped.length} of ${rows.length} file(s):\n${skipped.map((r) => `  ${r.file}: ${r.skipped}`).join("\n")}\n`);
  }
  if (skipped.length === rows.length) {
    process.stderr.write("error: no image could be predicted (see the reasons above).\n");
    return 1;
  }
  return values.strict && skipped.length > 0 ? 1 : 0;
}
