/**
 * Group photos with known answers: face crops pasted at chosen places, sizes and angles onto a
 * larger background. The tests, the benchmark and the photos notebook use them to check that
 * every face is found where it was put and predicted as its crop is.
 */
import type { Box } from "./detect";

/** One crop to paste: the crop file, where its square goes (before rotation) and its angle. */
export interface Placement {
  file: string;
  x: number;
  y: number;
  /** Side of the pasted square in pixels. */
  side: number;
  /** Degrees, clockwise; the square turns about its centre and its corners are dropped. */
  angle?: number;
}

/** Options of `composePhoto`. */
export interface CompositeOptions {
  width: number;
  height: number;
  /** Background: "light" or "dark" (default "light"); both get a soft gradient and stripes, not a flat colour. */
  background?: "light" | "dark";
}

/** The background's SVG: a gradient with a few soft stripes, so the detector sees texture, not a blank page. */
function backgroundSvg(width: number, height: number, tone: "light" | "dark"): string {
  const [a, b] = tone === "light" ? ["#e9e4da", "#b7c4cc"] : ["#20242b", "#3b3026"];
  const stripes = Array.from({ length: 6 }, (_, i) => {
    const x = ((i + 0.5) * width) / 6;
    return `<rect x="${x}" y="0" width="${width / 24}" height="${height}" fill="${tone === "light" ? "#8a9aa6" : "#55606b"}" fill-opacity="0.25"/>`;
  }).join("");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${a}"/><stop offset="1" stop-color="${b}"/></linearGradient></defs>` +
    `<rect width="${width}" height="${height}" fill="url(#g)"/>${stripes}</svg>`
  );
}

/**
 * Builds a photo (JPEG bytes, quality 92) with each crop pasted as placed. A turned crop is
 * cut to a circle first, so no corner of its square (and no black fill) shows.
 */
export async function composePhoto(placements: readonly Placement[], options: CompositeOptions): Promise<Buffer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const layers = await Promise.all(
    placements.map(async (p) => {
      const side = Math.round(p.side);
      let img = sharp(p.file).removeAlpha().resize(side, side);
      if (p.angle) {
        // Alpha 0 outside the inscribed circle, set by hand: a turned circle shows no corners.
        const { data } = await img.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        const r = side / 2;
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) if ((x + 0.5 - r) ** 2 + (y + 0.5 - r) ** 2 > r * r) data[(y * side + x) * 4 + 3] = 0;
        }
        img = sharp(data, { raw: { width: side, height: side, channels: 4 } }).rotate(p.angle, { background: { r: 0, g: 0, b: 0, alpha: 0 } });
      }
      const input = await img.png().toBuffer();
      const meta = await sharp(input).metadata();
      // A turned square grows; centre it where the unturned square's centre was.
      return { input, left: Math.round(p.x + p.side / 2 - meta.width / 2), top: Math.round(p.y + p.side / 2 - meta.height / 2) };
    }),
  );
  return sharp(Buffer.from(backgroundSvg(options.width, options.height, options.background ?? "light")))
    .composite(layers)
    .flatten()
    .jpeg({ quality: 92 })
    .toBuffer();
}

/** The square a placement covers (before rotation), the box a found face's training crop should match. */
export function placedBox(p: Placement): Box {
  return { x: p.x, y: p.y, width: p.side, height: p.side };
}
