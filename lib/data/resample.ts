/**
 * The resampler behind image decoding: decoded pixels of any size and channel count to the
 * square uint8 frames the models take (area averaging when shrinking, bilinear when
 * enlarging), in JS because each extra libvips operation costs more than the decode.
 */

/**
 * Source-to-target taps of a 1-D resampling: area averaging when shrinking (like OpenCV's
 * INTER_AREA, no aliasing on 200 -> 70) and bilinear when enlarging.
 */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  index: Int32Array;
  weight: Float32Array;
}

const tapsCache = new Map<string, Taps>();

function resampleTaps(inLen: number, outLen: number): Taps {
  const key = `${inLen}>${outLen}`;
  const hit = tapsCache.get(key);
  if (hit) return hit;
  const idx: number[] = [];
  const wts: number[] = [];
  const start = new Int32Array(outLen);
  const count = new Int32Array(outLen);
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    start[o] = idx.length;
    if (scale >= 1) {
      const lo = o * scale;
      const hi = (o + 1) * scale;
      for (let i = Math.floor(lo); i < Math.min(inLen, Math.ceil(hi)); i++) {
        const w = Math.min(hi, i + 1) - Math.max(lo, i);
        if (w > 1e-9) {
          idx.push(i);
          wts.push(w / scale);
        }
      }
    } else {
      const c = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inLen - 1);
      const i0 = Math.floor(c);
      const i1 = Math.min(i0 + 1, inLen - 1);
      const f = c - i0;
      idx.push(i0, i1);
      wts.push(1 - f, f);
    }
    count[o] = idx.length - start[o];
  }
  const taps = { start, count, index: Int32Array.from(idx), weight: Float32Array.from(wts) };
  tapsCache.set(key, taps);
  return taps;
}

// Float scratch planes reused across calls: decoding 8,818 faces would otherwise allocate 2 GB
// of short-lived arrays. Safe because toFrame is synchronous and JS runs it on one thread.
let planeScratch = new Float32Array(0);
let columnScratch = new Float32Array(0);

/**
 * The largest whole factor k <= (source side / target side) that divides both sides: a k x k
 * box average to start with is exact area averaging and 4x (k = 2) less work for what follows.
 */
function boxFactor(w: number, h: number, size: number): number {
  for (let k = Math.floor(Math.min(w, h) / size); k > 1; k--) if (w % k === 0 && h % k === 0) return k;
  return 1;
}

/**
 * Converts decoded pixels (1 to 4 channels, any size) to `size` x `size` x `ch` uint8 (1 gray, 3 RGB) and
 * writes them at `out[offset..]`. Done in JS because each extra libvips operation (resize,
 * colour space) costs more per 200x200 face than the JPEG decode itself.
 */
export function toFrame(src: Uint8Array, sw: number, sh: number, srcChannels: number, size: number, ch: 1 | 3, out: Uint8Array, offset: number): void {
  const k = boxFactor(sw, sh, size);
  const w = sw / k;
  const h = sh / k;
  if (planeScratch.length < w * h * ch) planeScratch = new Float32Array(w * h * ch);
  if (columnScratch.length < size * w * ch) columnScratch = new Float32Array(size * w * ch);
  const plane = planeScratch;
  // Colour and the k x k box first (alpha, if any, is ignored). Gray is ITU-R 601 luma, as
  // PIL's "L" and OpenCV's cvtColor compute it; luma is linear, so boxing first is the same.
  const inv = 1 / (k * k);
  const sc = srcChannels;
  const gray = ch === 1;
  if (sc >= 3) {
    // Sum the box per channel, then one luma per box: the same value, a third of the work.
    for (let py = 0, p = 0; py < h; py++) {
      const row0 = py * k * sw * sc;
      for (let px = 0; px < w; px++, p += ch) {
        let r = 0;
        let g = 0;
        let b = 0;
        if (k === 2) {
          // The report's case (200 -> 100 -> 70), unrolled: loop overhead dominates a 2x2 box.
          const q0 = row0 + px * 2 * sc;
          const q1 = q0 + sw * sc;
          r = src[q0] + src[q0 + sc] + src[q1] + src[q1 + sc];
          g = src[q0 + 1] + src[q0 + sc + 1] + src[q1 + 1] + src[q1 + sc + 1];
          b = src[q0 + 2] + src[q0 + sc + 2] + src[q1 + 2] + src[q1 + sc + 2];
        } else {
          for (let dy = 0; dy < k; dy++) {
            for (let dx = 0, q = row0 + (dy * sw + px * k) * sc; dx < k; dx++, q += sc) {
              r += src[q];
              g += src[q + 1];
              b += src[q + 2];
            }
          }
        }
        if (gray) {
          plane[p] = (0.299 * r + 0.587 * g + 0.114 * b) * inv;
        } else {
          plane[p] = r * inv;
          plane[p + 1] = g * inv;
          plane[p + 2] = b * inv;
        }
      }
    }
  } else {
    // Gray source (with or without alpha): its one channel fills every output channel.
    for (let py = 0, p = 0; py < h; py++) {
      for (let px = 0; px < w; px++, p += ch) {
        let acc = 0;
        for (let dy = 0; dy < k; dy++) {
          for (let dx = 0, q = ((py * k + dy) * sw + px * k) * sc; dx < k; dx++, q += sc) acc += src[q];
        }
        for (let c = 0; c < ch; c++) plane[p + c] = acc * inv;
      }
    }
  }
  // Vertical pass first: its inner loop runs over whole contiguous source rows, the fast
  // direction for the JIT; the horizontal pass then works on the already shortened image.
  // Taps in locals: V8 does not hoist property loads out of these loops by itself.
  const { start: yStart, count: yCount, index: yIndex, weight: yWeight } = resampleTaps(h, size);
  const { start: xStart, count: xCount, index: xIndex, weight: xWeight } = resampleTaps(w, size);
  const rowLen = w * ch;
  const cols = columnScratch;
  for (let oy = 0; oy < size; oy++) {
    const o = oy * rowLen;
    cols.fill(0, o, o + rowLen);
    for (let t = yStart[oy], e = t + yCount[oy]; t < e; t++) {
      const wt = yWeight[t];
      const r = yIndex[t] * rowLen;
      for (let j = 0; j < rowLen; j++) cols[o + j] += plane[r + j] * wt;
    }
  }
  for (let oy = 0; oy < size; oy++) {
    const r = oy * rowLen;
    const o = offset + oy * size * ch;
    for (let ox = 0; ox < size; ox++) {
      const s = xStart[ox];
      const e = s + xCount[ox];
      for (let c = 0; c < ch; c++) {
        let acc = 0.5; // rounds half up when truncated below
        for (let t = s; t < e; t++) acc += cols[r + xIndex[t] * ch + c] * xWeight[t];
        out[o + ox * ch + c] = acc >= 255 ? 255 : acc <= 0 ? 0 : acc;
      }
    }
  }
}
