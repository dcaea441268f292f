/**
 * How much the photo path (detect, then cut the face framed like training) loses or gains
 * against feeding UTKFace's crops directly: both paths on the same held-out test faces of a
 * run, with the same model. `scripts/detect-vs-crop.ts` prints it; docs/photos.md has figures.
 */
import * as path from "path";
import { decodeImageBytes, decodeImageFile } from "../data/dataset";
import { ageDivision, ageGroupOf, decodeAgeGroup, decodeGender } from "../data/labels";
import { FilePrediction, loadTrainedModel, predictPixels } from "./predict";
import { loadRun, resolveStoredPath } from "../records/runs";
import { readRgb } from "./detect";
import { PhotoOptions, cutFace, frameFaces } from "./photo";

/** Held-out accuracy of one path; metrics the model does not predict are absent. */
export interface PathScores {
  faces: number;
  /** Mean absolute age error in years (group models: the predicted group's mid age). */
  mae?: number;
  /** Share of faces whose predicted age group is the true one. */
  groupAccuracy?: number;
  genderAccuracy?: number;
}

/** The comparison on a run's held-out faces. */
export interface DetectVsCrop {
  runDir: string;
  /** Held-out faces looked at. */
  faces: number;
  /** Faces where the detector found nothing (counted as missed by the photo path). */
  notFound: number;
  /** The crops fed directly, on every face. */
  direct: PathScores;
  /** The crops fed directly, on the faces the detector found (same faces as `detected`). */
  directOnFound: PathScores;
  /** Detect, then cut, on the faces found. */
  detected: PathScores;
}

/** Options of `compareDetectWithCrops`. */
export interface CompareOptions extends PhotoOptions {
  /** Look at the first N held-out faces only (default: all). */
  maxImages?: number;
  /** Called after each batch with faces done and total. */
  progress?: (done: number, total: number) => void;
}

type Truth = { age: number; gender: number };

function scores(preds: readonly Omit<FilePrediction, "file">[], truths: readonly Truth[], divisionName: string): PathScores {
  const division = ageDivision(divisionName);
  const s: PathScores = { faces: preds.length };
  if (preds.length === 0) return s;
  if (preds[0].age !== undefined) s.mae = preds.reduce((a, p, i) => a + Math.abs(p.age! - truths[i].age), 0) / preds.length;
  if (preds[0].ageGroup !== undefined) s.groupAccuracy = preds.filter((p, i) => p.ageGroup === decodeAgeGroup(ageGroupOf(truths[i].age, division), division)).length / preds.length;
  if (preds[0].gender !== undefined) s.genderAccuracy = preds.filter((p, i) => p.gender === decodeGender(truths[i].gender)).length / preds.length;
  return s;
}

/**
 * Runs both paths on the held-out test faces of a run (its predictions.json: never a training
 * image). The photo path takes the best-scoring face of each crop (`--detect always`).
 */
export async function compareDetectWithCrops(runDir: string, options: CompareOptions = {}): Promise<DetectVsCrop> {
  const run = loadRun(runDir);
  if (run.kind === "kfold") throw new Error(`${runDir} is a K-fold run: pass one fold's folder, e.g. ${path.join(runDir, "fold-01")}.`);
  const held = run.predictions.slice(0, options.maxImages ?? run.predictions.length);
  if (held.length === 0) throw new Error(`${runDir} has no held-out predictions (predictions.json): train it to the end first.`);
  const dataDir = resolveStoredPath(run.config.data.dir);
  const tm = await loadTrainedModel(runDir);
  const { size, color } = tm.info;
  const direct: Omit<FilePrediction, "file">[] = [];
  const directFound: Omit<FilePrediction, "file">[] = [];
  const detected: Omit<FilePrediction, "file">[] = [];
  const truthFound: Truth[] = [];
  let notFound = 0;
  const batch = 32;
  for (let s = 0; s < held.length; s += batch) {
    const rows = held.slice(s, s + batch);
    const files = rows.map((r) => path.join(dataDir, r.file));
    const crops = await Promise.all(files.map((f) => decodeImageFile(f, size, color)));
    const cut: (Uint8Array | undefined)[] = [];
    for (const f of files) {
      const image = await readRgb(f);
      const framed = await frameFaces(image, { ...options, detect: "always" });
      const face = framed.faces[0];
      cut.push(face ? await decodeImageBytes(await cutFace(image, face.crop, face.angle), size, color) : undefined);
    }
    const directPreds = await predictPixels(tm, crops);
    direct.push(...directPreds);
    const found = cut.map((c, i) => (c ? i : -1)).filter((i) => i >= 0);
    notFound += rows.length - found.length;
    if (found.length) detected.push(...(await predictPixels(tm, found.map((i) => cut[i]!))));
    for (const i of found) {
      directFound.push(directPreds[i]);
      truthFound.push(rows[i]);
    }
    options.progress?.(Math.min(s + batch, held.length), held.length);
  }
  const division = tm.info.ageDivision;
  return {
    runDir,
    faces: held.length,
    notFound,
    direct: scores(direct, held, division),
    directOnFound: scores(directFound, truthFound, division),
    detected: scores(detected, truthFound, division),
  };
}

/** One line of the comparison table. */
export interface DetectVsCropRow {
  path: string;
  faces: number;
  mae?: number;
  groupAccuracy?: number;
  genderAccuracy?: number;
}

/** The comparison as three table rows: crops directly (all, and the faces found), then detect-then-cut. */
export function detectVsCropRows(r: DetectVsCrop): DetectVsCropRow[] {
  return [
    { path: "crops fed directly (all)", ...r.direct },
    { path: "crops fed directly (faces found)", ...r.directOnFound },
    { path: "detect, then cut (faces found)", ...r.detected },
  ];
}
