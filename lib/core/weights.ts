/**
 * The one reader of tfjs weights manifests (model.json's weightsManifest, face-api's
 * *-weights_manifest.json): gathers the listed binary files, in order, into one buffer that
 * tf.io.decodeWeights (or tf.io.fromMemory) takes with the specs.
 */
import * as fs from "fs";
import * as path from "path";
import type * as tf from "@tensorflow/tfjs";

/** Specs and the concatenated weight data of a manifest. */
export interface ManifestWeights {
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
}

/**
 * Reads the weight files a manifest lists, relative to `dir`. A missing file is an error
 * whose text `missing(path)` gives, so each caller can say what to do about it.
 */
export function readManifestWeights(manifest: tf.io.WeightsManifestConfig, dir: string, missing: (file: string) => string): ManifestWeights {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of manifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const f = path.join(dir, p);
      if (!fs.existsSync(f)) throw new Error(missing(p));
      parts.push(fs.readFileSync(f));
    }
  }
  const all = Buffer.concat(parts);
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer };
}
