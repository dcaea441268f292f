/**
 * Faces per second of the photo path on the CPU: find the faces of a group photo (SSD
 * MobileNet v1 + eye landmarks), cut each one framed like training and predict it with the
 * report's multi-output CNN (70x70 gray). The photo is built from data/sample crops, so the
 * benchmark needs no download; the CNN's weights are fresh (speed does not depend on them).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { listImageFiles, TrainedModel } from "../inference/predict";
import { buildModel } from "../models/registry";
import { IMAGE_SIZE, SAMPLE_DATA_DIR } from "../core/paths";
import { composePhoto } from "../inference/composite";
import { detectFaces, readRgb } from "../inference/detect";
import { predictPhotos } from "../inference/photo";

/** What `benchDetect` measured. */
export interface DetectBench {
  bench: "detect";
  photo: string;
  faces_per_photo: number;
  photos: number;
  /** Detection with landmarks only, per photo. */
  detect_ms: number;
  /** Detection, cutting and prediction, per photo. */
  total_ms: number;
  faces_s: number;
}

/** Times the photo path on a 1280x720 photo with 4 pasted faces for about `seconds` (after one warm-up). */
export async function benchDetect(seconds: number): Promise<DetectBench> {
  const crops = listImageFiles(SAMPLE_DATA_DIR).slice(0, 4);
  const placements = crops.map((file, i) => ({ file, x: 60 + i * 300, y: 120 + (i % 2) * 220, side: 150 + 30 * (i % 3), angle: i === 3 ? 15 : 0 }));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-detect-"));
  try {
    const photo = path.join(tmp, "group.jpg");
    fs.writeFileSync(photo, await composePhoto(placements, { width: 1280, height: 720 }));
    const tm: TrainedModel = {
      model: buildModel("cnn-multi", { channels: 1, size: IMAGE_SIZE }),
      info: { model: "cnn-multi", task: "age-gender", size: IMAGE_SIZE, color: "gray", normalize: "unit", ageDivision: "report20" },
      modelDir: tmp,
    };
    const image = await readRgb(photo);
    const faces = (await predictPhotos(tm, [photo], { detect: "always" }))[0].faces.length; // warm-up
    let n = 0;
    let t0 = performance.now();
    while (performance.now() - t0 < (seconds * 1000) / 2 || n === 0) {
      await detectFaces(image, { landmarks: true });
      n++;
    }
    const detectMs = (performance.now() - t0) / n;
    let m = 0;
    t0 = performance.now();
    while (performance.now() - t0 < (seconds * 1000) / 2 || m === 0) {
      await predictPhotos(tm, [photo], { detect: "always" });
      m++;
    }
    const totalMs = (performance.now() - t0) / m;
    return { bench: "detect", photo: "1280x720, 4 faces (one turned 15°)", faces_per_photo: faces, photos: m, detect_ms: Math.round(detectMs), total_ms: Math.round(totalMs), faces_s: Math.round((faces / (totalMs / 1000)) * 10) / 10 };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
