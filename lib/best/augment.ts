/**
 * Random augmentation of face crops for fine-tuning on pixels: a small similarity transform
 * (rotation, scale, shift), a left-right mirror, and brightness and contrast changes, applied to
 * uint8 HWC RGB faces and written straight into the [0, 1] float batch the network reads.
 *
 * The geometric part samples the source with bilinear interpolation, the edge pixels repeated
 * outside the crop (UTKFace crops hold face and hair up to their borders, so a black frame would
 * be a cue that real inputs never have). With every amount at zero it returns the face as it is,
 * which test/augment.test.ts checks to the bit.
 */

/** How strongly faces are augmented; every amount 0 leaves them as they are. */
export interface AugmentOptions {
  /** Largest rotation either way, in degrees. */
  rotation: number;
  /** Largest relative zoom either way: the scale is drawn from [1 - scale, 1 + scale]. */
  scale: number;
  /** Largest shift either way along each axis, as a fraction of the side. */
  shift: number;
  /** Mirror half of the faces left to right. */
  mirror: boolean;
  /** Largest brightness change either way, as a fraction of the full range (255). */
  brightness: number;
  /** Largest relative contrast change either way, around the face's own mean. */
  contrast: number;
}

/**
 * The fine-tuning default: mild enough that a face stays a centred face (UTKFace crops are
 * aligned), strong enough that no epoch shows the network the same pixels twice.
 */
export const DEFAULT_AUGMENT: AugmentOptions = { rotation: 10, scale: 0.08, shift: 0.04, mirror: true, brightness: 0.1, contrast: 0.15 };

/** No augmentation at all (the identity). */
export const NO_AUGMENT: AugmentOptions = { rotation: 0, scale: 0, shift: 0, mirror: false, brightness: 0, contrast: 0 };

/** One face's drawn transform, for tests and for logging what a batch saw. */
export interface FaceTransform {
  /** Radians, counter-clockwise on the image. */
  angle: number;
  scale: number;
  /** Shift in pixels. */
  dx: number;
  dy: number;
  mirror: boolean;
  /** Added to every value (0..255 units) after the contrast change. */
  brightness: number;
  /** Multiplies each value's distance from the face's mean. */
  contrast: number;
}

/** Draws one face's transform from `options` with `rng` (uniform on [0, 1)). */
export function drawTransform(options: AugmentOptions, side: number, rng: () => number): FaceTransform {
  const u = () => rng() * 2 - 1;
  return {
    angle: (u() * options.rotation * Math.PI) / 180,
    scale: 1 + u() * options.scale,
    dx: u() * options.shift * side,
    dy: u() * options.shift * side,
    mirror: options.mirror && rng() < 0.5,
    brightness: u() * options.brightness * 255,
    contrast: 1 + u() * options.contrast,
  };
}

/**
 * Writes face `src` (side x side x 3 uint8) transformed by `t` into `out` at `offset`, as floats
 * in [0, 1] (value / 255 after the photometric change, clamped).
 */
export function applyTransform(src: Uint8Array, side: number, t: FaceTransform, out: Float32Array, offset: number): void {
  if (src.length !== side * side * 3) throw new Error(`A face of ${side}x${side} RGB holds ${side * side * 3} bytes, got ${src.length}.`);
  if (offset < 0 || offset + src.length > out.length) throw new Error(`The output holds ${out.length} values; a face at offset ${offset} does not fit.`);
  let mean = 0;
  if (t.contrast !== 1) {
    for (let i = 0; i < src.length; i++) mean += src[i];
    mean /= src.length;
  }
  // (v * contrast + bias) / 255, divided last so that the identity gives exactly v / 255.
  const gain = t.contrast;
  const bias = mean * (1 - t.contrast) + t.brightness;
  const identity = t.angle === 0 && t.scale === 1 && t.dx === 0 && t.dy === 0;
  const c = (side - 1) / 2;
  // Output pixel p maps to source c + R(-angle) (p - c - shift) / scale (inverse mapping).
  const cos = Math.cos(t.angle) / t.scale;
  const sin = Math.sin(t.angle) / t.scale;
  const last = side - 1;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const o = offset + (y * side + x) * 3;
      const xo = t.mirror ? last - x : x;
      if (identity) {
        const s = (y * side + xo) * 3;
        for (let k = 0; k < 3; k++) out[o + k] = clamp01((src[s + k] * gain + bias) / 255);
        continue;
      }
      const px = xo - c - t.dx;
      const py = y - c - t.dy;
      const sx = Math.min(last, Math.max(0, c + cos * px + sin * py));
      const sy = Math.min(last, Math.max(0, c - sin * px + cos * py));
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(last, x0 + 1);
      const y1 = Math.min(last, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const a = (y0 * side + x0) * 3;
      const b = (y0 * side + x1) * 3;
      const d = (y1 * side + x0) * 3;
      const e = (y1 * side + x1) * 3;
      for (let k = 0; k < 3; k++) {
        const top = src[a + k] + (src[b + k] - src[a + k]) * fx;
        const bottom = src[d + k] + (src[e + k] - src[d + k]) * fx;
        out[o + k] = clamp01(((top + (bottom - top) * fy) * gain + bias) / 255);
      }
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * A batch of augmented faces: faces `indices` of `pixels` (n x side x side x 3 uint8, HWC),
 * each with its own transform drawn from `options`, as one float array in [0, 1].
 */
export function augmentBatch(pixels: Uint8Array, side: number, indices: ArrayLike<number>, options: AugmentOptions, rng: () => number): Float32Array {
  const per = side * side * 3;
  if (pixels.length % per !== 0) throw new Error(`Pixels hold ${pixels.length} bytes, not a whole number of ${side}x${side} RGB faces.`);
  const faces = pixels.length / per;
  const out = new Float32Array(indices.length * per);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < faces)) throw new Error(`Face ${i} is outside the ${faces} faces given.`);
    applyTransform(pixels.subarray(i * per, (i + 1) * per), side, drawTransform(options, side, rng), out, k * per);
  }
  return out;
}
