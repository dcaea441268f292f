/**
 * The JPEG addon built from native/src/jpeg.cc (at `npm install`, see scripts/build-native.sh):
 * libjpeg-turbo decoding on libuv's threadpool, for the JPEGs whose pixels it gives exactly as
 * sharp does. Everything else (other formats, EXIF rotation, ICC profiles, CMYK, damaged files)
 * it hands back as a `fallback`, and ./dataset decodes those with sharp.
 */
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../core/paths";

/**
 * Decoded pixels: uint8 HWC RGB, as sharp's `.raw()` gives them (sharp turns a grayscale JPEG
 * into sRGB by copying its one band, so the addon does the same: channels is always 3).
 */
export interface NativeDecoded {
  /** A view of the scratch array when the pixels fitted in it, else a new Buffer. */
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
  fallback?: undefined;
}

/** Why the addon left a file to sharp (native/src/jpeg.cc lists the reasons). */
export interface NativeFallback {
  fallback: "not-jpeg" | "read" | "exif" | "icc" | "color" | "warning" | "error" | "limit";
  detail: string;
}

/** The addon's entry points. */
export interface JpegAddon {
  /**
   * Reads (a path) and decodes on the threadpool; never rejects for a bad image: it returns a
   * fallback. `scratch`, left untouched until the promise settles, receives the pixels when
   * they fit (no buffer allocated per image).
   */
  decode(input: string | Buffer, scratch?: Uint8Array): Promise<NativeDecoded | NativeFallback>;
  info(): { libjpeg: string; jpegLibVersion: number };
}

/** Where node-gyp puts the addon; UTKFACE_JPEG_ADDON names another build. */
export const JPEG_ADDON_PATH = process.env.UTKFACE_JPEG_ADDON || path.join(REPO_ROOT, "native", "build", "Release", "utkface_jpeg.node");

/** `UTKFACE_DECODER=sharp` decodes every image with sharp (the addon is not used). */
export const DECODER_ENV = "UTKFACE_DECODER";

let loaded: { addon?: JpegAddon; reason?: string } | undefined;

/** The addon, or the reason it cannot load (not built: no libjpeg headers at install). Loaded once per process. */
export function loadJpegAddon(): { addon?: JpegAddon; reason?: string } {
  if (loaded) return loaded;
  if (!fs.existsSync(JPEG_ADDON_PATH)) {
    loaded = { reason: "JPEG addon not built (needs g++ and libjpeg62-turbo-dev at npm install), see README" };
  } else {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      loaded = { addon: require(JPEG_ADDON_PATH) as JpegAddon };
    } catch (e) {
      loaded = { reason: `JPEG addon failed to load (${(e as Error).message.split("\n")[0]})` };
    }
  }
  return loaded;
}

/** The addon when it is built and not switched off by UTKFACE_DECODER=sharp. */
export function nativeJpeg(): JpegAddon | undefined {
  if (process.env[DECODER_ENV] === "sharp") return undefined;
  return loadJpegAddon().addon;
}
