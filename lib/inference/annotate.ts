/**
 * Annotated pictures: each face's box and a label ("Female · 60-64") drawn on the photo, as an
 * SVG overlay composited with sharp. Boxes are a bright line inside a dark one and labels white
 * text on a dark box, so both read on dark and light photos.
 */
import * as fs from "fs";
import * as path from "path";
import { displayBundle } from "../notebook/display";
import type { TrainedModel } from "./predict";
import { PhotoFace, PhotoOptions, PhotoPrediction, predictPhotos } from "./photo";
import { writeFileAtomic } from "../core/files";
import { readRgb } from "./detect";

/**
 * The label of a face: gender and age group, e.g. "Female · 60-64"; with a calibrated best
 * model's age interval, the predicted gender's probability and the age with its interval, e.g.
 * "Female 93% · 34 y, 29-40";
 * "?" when the model predicts neither.
 */
export function faceLabel(face: Pick<PhotoFace, "gender" | "ageGroup"> & Partial<Pick<PhotoFace, "age" | "ageLow" | "ageHigh" | "pFemale">>): string {
  const withInterval = face.age !== undefined && face.ageLow !== undefined && face.ageHigh !== undefined;
  // The predicted gender's own probability (P(female), or 1 - P(female) for "Male").
  const sure = face.pFemale === undefined ? undefined : face.gender === "Female" ? face.pFemale : 1 - face.pFemale;
  const gender = withInterval && face.gender && sure !== undefined ? `${face.gender} ${Math.round(sure * 100)}%` : face.gender;
  const age = withInterval ? `${Math.round(face.age!)} y, ${Math.round(face.ageLow!)}-${Math.round(face.ageHigh!)}` : face.ageGroup?.replace(/ - /g, "-");
  const parts = [gender, age].filter((p): p is string => Boolean(p));
  return parts.length ? parts.join(" · ") : "?";
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** The SVG overlay (same size as the photo) with every face's box and label. */
export function annotationSvg(width: number, height: number, faces: readonly PhotoFace[]): string {
  // Line and font sizes follow the photo, so labels stay legible on 200 px crops and 4000 px photos.
  const line = Math.max(2, Math.round(Math.min(width, height) / 250));
  const parts: string[] = [];
  for (const f of faces) {
    const { x, y, width: w, height: h } = f.box;
    const font = Math.max(11, Math.round(Math.max(Math.min(width, height) / 28, w / 9)));
    const label = escapeXml(`${faces.length > 1 ? `${f.index + 1}: ` : ""}${faceLabel(f)}`);
    // DejaVu Sans' average advance is ~0.6 em; the box is sized from it.
    const labelW = Math.ceil(font * 0.62 * label.length + font * 0.8);
    const labelH = Math.ceil(font * 1.4);
    const lx = Math.min(Math.max(0, x), Math.max(0, width - labelW));
    // Above the box when there is room, else inside its top edge.
    const ly = y - labelH >= 0 ? y - labelH : Math.max(0, y);
    parts.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#000" stroke-opacity="0.8" stroke-width="${line * 2 + 2}"/>`,
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#ffd400" stroke-width="${line}"/>`,
      `<rect x="${lx}" y="${ly}" width="${labelW}" height="${labelH}" fill="#000" fill-opacity="0.78" rx="${Math.round(font / 5)}"/>`,
      `<text x="${lx + font * 0.4}" y="${ly + font * 1.05}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${font}" fill="#fff">${label}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join("")}</svg>`;
}

/** Output format for an annotated file, from the input's extension (PNG for anything but JPEG/WebP). */
function formatOf(file: string): "jpeg" | "png" | "webp" {
  const ext = path.extname(file).toLowerCase();
  return ext === ".jpg" || ext === ".jpeg" ? "jpeg" : ext === ".webp" ? "webp" : "png";
}

/**
 * Draws a photo's faces (boxes and labels) on it, upright as it was predicted; returns the
 * encoded image (PNG unless `format` says otherwise).
 */
export async function annotateImage(prediction: PhotoPrediction, format: "jpeg" | "png" | "webp" = "png"): Promise<Buffer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const image = await readRgb(prediction.file);
  const svg = annotationSvg(image.width, image.height, prediction.faces);
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .toFormat(format, format === "jpeg" ? { quality: 90 } : {})
    .toBuffer();
}

/**
 * Writes each photo annotated into `dir` under its own file name (PNG with ".png" appended for
 * formats other than JPEG, PNG and WebP); two inputs with one name get "-2", "-3", ...
 * Returns the written paths.
 */
export async function writeAnnotated(dir: string, predictions: readonly PhotoPrediction[]): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const used = new Set<string>();
  const written: string[] = [];
  for (const p of predictions) {
    if (p.skipped !== undefined) continue;
    const format = formatOf(p.file);
    const base = path.basename(p.file);
    let name = format === "png" && path.extname(base).toLowerCase() !== ".png" ? `${base}.png` : base;
    for (let k = 2; used.has(name); k++) name = `${path.parse(base).name}-${k}${path.extname(name)}`;
    used.add(name);
    const out = path.join(dir, name);
    const bytes = await annotateImage(p, format);
    writeFileAtomic(out, bytes);
    written.push(out);
  }
  return written;
}

/** A photo predicted and drawn: the annotated PNG and the per-face predictions. */
export interface AnnotatedPhoto {
  png: Buffer;
  prediction: PhotoPrediction;
}

/**
 * For notebooks and scripts: finds and predicts the faces of one photo and returns it drawn
 * (PNG bytes) with its predictions. `showAnnotatedPhoto` displays the result inline.
 */
export async function annotatePhoto(modelOrDir: string | TrainedModel, file: string, options: PhotoOptions = {}): Promise<AnnotatedPhoto> {
  const [prediction] = await predictPhotos(modelOrDir, [file], options);
  return { png: await annotateImage(prediction, "png"), prediction };
}

/**
 * Shows an annotated photo in a tslab notebook (a PNG output; outside a notebook, the text
 * summary is printed), scaled to `width` pixels wide on screen (default: its own width, at most 900).
 */
export function showAnnotatedPhoto(photo: AnnotatedPhoto, width?: number): void {
  const p = photo.prediction;
  const summary = p.faces.length
    ? p.faces.map((f) => `face ${f.index + 1}: ${faceLabel(f)}${f.score === undefined ? "" : ` (score ${f.score.toFixed(2)})`}`).join("\n")
    : "no face found";
  const w = width ?? Math.min(900, p.width);
  displayBundle({
    "text/html": `<img src="data:image/png;base64,${photo.png.toString("base64")}" width="${w}" alt="${escapeXml(path.basename(p.file))}">`,
    "text/plain": `${path.basename(p.file)} (${p.width}x${p.height}): ${summary}`,
  });
}
