/**
 * Group photos with known answers: face crops pasted at chosen places, sizes and angles onto a
 * larger background. The tests, the benchmark and the photos notebook use them to check that
 * every face is found where it was put and predicted as its crop is.
 */
import type { Box } from "./detect";
import { mulberry32 } from "../data/splits";

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

// ---------------------------------------------------------------------------------------------
// Faceless pictures: what a detector must not call a face (seeded by mulberry32: the same on every run)

/** Names of the 20 faceless pictures `facelessImage` draws. */
export const FACELESS_KINDS = [
  "gradient-grey", "gradient-warm", "gradient-skin", "gradient-diagonal", "radial-light", "radial-skin",
  "noise", "noise-blurred", "clouds", "brick-wall", "plaster-wall", "wood", "checkerboard", "stripes",
  "landscape-hills", "landscape-sunset", "landscape-town", "circles", "shapes", "tiles",
] as const;
export type FacelessKind = (typeof FACELESS_KINDS)[number];

/**
 * A picture without a face (JPEG bytes, 800x600 unless told): smooth gradients (including
 * skin-coloured ones), noise, walls, wood, patterns and landscapes drawn from shapes. Seeded:
 * the same kind and seed give the same picture.
 */
export async function facelessImage(kind: FacelessKind, seed = 1, width = 800, height = 600): Promise<Buffer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharp = require("sharp");
  const rnd = mulberry32(seed * 7919 + FACELESS_KINDS.indexOf(kind));
  const svg = (body: string, defs = "") => Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs>${defs}</defs>${body}</svg>`);
  const lin = (a: string, b: string, x2 = 1, y2 = 0) => `<linearGradient id="g" x1="0" y1="0" x2="${x2}" y2="${y2}"><stop offset="0" stop-color="${a}"/><stop offset="1" stop-color="${b}"/></linearGradient>`;
  const rad = (a: string, b: string) => `<radialGradient id="g" cx="0.5" cy="0.45" r="0.6"><stop offset="0" stop-color="${a}"/><stop offset="1" stop-color="${b}"/></radialGradient>`;
  const fill = `<rect width="${width}" height="${height}" fill="url(#g)"/>`;
  const noise = (channels: number, lo: number, hi: number) => {
    const d = Buffer.alloc(width * height * channels);
    for (let i = 0; i < d.length; i++) d[i] = lo + Math.floor(rnd() * (hi - lo));
    return sharp(d, { raw: { width, height, channels } });
  };
  const rects = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join("");
  let img;
  switch (kind) {
    case "gradient-grey": img = sharp(svg(fill, lin("#202020", "#e0e0e0"))); break;
    case "gradient-warm": img = sharp(svg(fill, lin("#f4d03f", "#c0392b", 0, 1))); break;
    case "gradient-skin": img = sharp(svg(fill, lin("#f1c27d", "#8d5524", 1, 1))); break;
    case "gradient-diagonal": img = sharp(svg(fill, lin("#2c3e50", "#bdc3c7", 1, 1))); break;
    case "radial-light": img = sharp(svg(fill, rad("#ffffff", "#34495e"))); break;
    case "radial-skin": img = sharp(svg(fill, rad("#ffdbac", "#5a3825"))); break;
    case "noise": img = noise(3, 0, 256); break;
    case "noise-blurred": img = noise(3, 40, 220).blur(3); break;
    case "clouds": {
      const small = Buffer.alloc(40 * 30);
      for (let i = 0; i < small.length; i++) small[i] = 120 + Math.floor(rnd() * 135);
      img = sharp(small, { raw: { width: 40, height: 30, channels: 1 } }).resize(width, height, { kernel: "cubic" }).blur(12).tint({ r: 150, g: 190, b: 255 });
      break;
    }
    case "brick-wall": {
      const bw = 80, bh = 30;
      const bricks = rects(Math.ceil(height / bh) * (Math.ceil(width / bw) + 1), (i) => {
        const cols = Math.ceil(width / bw) + 1, r = Math.floor(i / cols), c = i % cols;
        const shade = 120 + Math.floor(rnd() * 60);
        return `<rect x="${c * bw - (r % 2) * (bw / 2)}" y="${r * bh}" width="${bw - 4}" height="${bh - 4}" fill="rgb(${shade + 40},${shade - 40},${shade - 60})"/>`;
      });
      img = sharp(svg(`<rect width="${width}" height="${height}" fill="#cfc6b8"/>${bricks}`));
      break;
    }
    case "plaster-wall": img = noise(1, 170, 215).blur(1.5).tint({ r: 235, g: 225, b: 205 }); break;
    case "wood": img = sharp(svg(rects(60, (i) => `<rect x="0" y="${(i * height) / 60}" width="${width}" height="${height / 60 + 1}" fill="rgb(${130 + Math.floor(rnd() * 50)},${80 + Math.floor(rnd() * 30)},${40 + Math.floor(rnd() * 20)})"/>`))).blur(2); break;
    case "checkerboard": img = sharp(svg(rects(16 * 12, (i) => ((i % 16) + Math.floor(i / 16)) % 2 ? `<rect x="${(i % 16) * 50}" y="${Math.floor(i / 16) * 50}" width="50" height="50" fill="#222"/>` : ""), "")).flatten({ background: "#eee" }); break;
    case "stripes": img = sharp(svg(rects(20, (i) => `<rect x="${i * 40}" y="0" width="20" height="${height}" fill="hsl(${i * 18},60%,50%)"/>`))).flatten({ background: "#fafafa" }); break;
    case "landscape-hills":
      img = sharp(svg(`${fill}<circle cx="620" cy="120" r="60" fill="#fff3b0"/><ellipse cx="200" cy="600" rx="420" ry="220" fill="#4e8f3a"/><ellipse cx="650" cy="640" rx="400" ry="260" fill="#3d7a2e"/>${rects(6, (i) => `<polygon points="${90 + i * 120},430 ${70 + i * 120},500 ${110 + i * 120},500" fill="#1e4d1a"/>`)}`, lin("#7fb7e6", "#dff1ff", 0, 1)));
      break;
    case "landscape-sunset":
      img = sharp(svg(`${fill}<circle cx="400" cy="380" r="90" fill="#ffcc66"/><rect x="0" y="380" width="${width}" height="220" fill="#1b2a49"/>${rects(8, (i) => `<rect x="0" y="${400 + i * 25}" width="${width}" height="4" fill="#ffcc66" fill-opacity="0.3"/>`)}`, lin("#ff7e5f", "#feb47b", 0, 1)));
      break;
    case "landscape-town":
      img = sharp(svg(`${fill}${rects(9, (i) => { const h = 120 + Math.floor(rnd() * 200); return `<rect x="${i * 90}" y="${600 - h}" width="80" height="${h}" fill="rgb(${90 + i * 10},${80 + i * 5},${70})"/>${rects(6, (k) => `<rect x="${i * 90 + 10 + (k % 2) * 35}" y="${620 - h + Math.floor(k / 2) * 40}" width="20" height="20" fill="#ffe9a8"/>`)}`; })}`, lin("#95b8d1", "#e8eef2", 0, 1)));
      break;
    case "circles": img = sharp(svg(rects(12, (i) => `<circle cx="400" cy="300" r="${300 - i * 25}" fill="hsl(${i * 30},50%,${35 + (i % 2) * 30}%)"/>`))); break;
    case "shapes": img = sharp(svg(rects(40, () => `<rect x="${Math.floor(rnd() * width)}" y="${Math.floor(rnd() * height)}" width="${20 + Math.floor(rnd() * 150)}" height="${20 + Math.floor(rnd() * 150)}" fill="hsl(${Math.floor(rnd() * 360)},60%,55%)" transform="rotate(${Math.floor(rnd() * 90)} 400 300)"/>`))).flatten({ background: "#f0f0f0" }); break;
    case "tiles": img = sharp(svg(rects(20 * 15, (i) => `<rect x="${(i % 20) * 40 + 1}" y="${Math.floor(i / 20) * 40 + 1}" width="38" height="38" fill="rgb(${200 + Math.floor(rnd() * 40)},${200 + Math.floor(rnd() * 40)},${210 + Math.floor(rnd() * 40)})"/>`))).flatten({ background: "#777" }); break;
  }
  return img.removeAlpha().jpeg({ quality: 92 }).toBuffer();
}
