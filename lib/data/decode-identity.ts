/**
 * The proof behind the JPEG addon: every file decoded both ways (the library's decoder, which
 * takes the addon where it can, and sharp alone) must give the same raw pixels, or the same
 * error. Used by test/jpeg-decode.test.ts and `npx tsx scripts/jpeg-identity.ts --dir DIR`.
 */
import { decodeRaw } from "./dataset";
import { imageFailureReason } from "../core/file-errors";

/** Counts of one identity check. */
export interface DecoderIdentity {
  files: number;
  /** Decoded by the addon, byte for byte what sharp gives (same width, height, channels). */
  identical: number;
  /** Left to sharp by the addon, by reason ("exif", "icc", "not-jpeg", ...): the same result by construction. */
  fallback: Record<string, number>;
  /** Decoded by the addon but not as sharp decodes it (or sharp fails where the addon did not): must be 0. */
  different: number;
  /** The first few different files, with what differs. */
  differences: { file: string; what: string }[];
}

type Outcome = { ok: true; raw: Awaited<ReturnType<typeof decodeRaw>> } | { ok: false; error: string };

async function outcome(file: string, decoder: "auto" | "sharp"): Promise<Outcome> {
  try {
    return { ok: true, raw: await decodeRaw(file, decoder) };
  } catch (e) {
    // The reason the library reports, not sharp's raw message: libvips' error buffer is shared by
    // its threads, so two damaged files failing at once can swap or merge messages (sharp alone
    // does that too, e.g. "Warning treated as error due to failOn setting" for a corrupt file).
    return { ok: false, error: imageFailureReason(e) };
  }
}

function describe(o: Outcome): string {
  return o.ok ? `${o.raw.width}x${o.raw.height}x${o.raw.channels}` : `error "${o.error}"`;
}

/** Decodes each file both ways (`concurrency` files at a time) and counts identical, fallback and different images. */
export async function checkDecoderIdentity(files: readonly string[], concurrency = 4): Promise<DecoderIdentity> {
  const result: DecoderIdentity = { files: files.length, identical: 0, fallback: {}, different: 0, differences: [] };
  const differ = (file: string, what: string) => {
    result.different++;
    if (result.differences.length < 20) result.differences.push({ file, what });
  };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const file = files[i];
      const [auto, sharp] = [await outcome(file, "auto"), await outcome(file, "sharp")];
      if (auto.ok && auto.raw.decoder === "sharp") {
        const reason = auto.raw.fallback ?? "addon not used";
        result.fallback[reason] = (result.fallback[reason] ?? 0) + 1;
        if (!sharp.ok || !Buffer.from(auto.raw.data).equals(Buffer.from(sharp.raw.data))) differ(file, `fallback ${reason} gave ${describe(auto)}, sharp ${describe(sharp)}`);
      } else if (!auto.ok) {
        // Only sharp throws (the addon hands every problem back as a fallback): the same error or not.
        result.fallback["sharp error"] = (result.fallback["sharp error"] ?? 0) + 1;
        if (sharp.ok || sharp.error !== auto.error) differ(file, `${describe(auto)}, sharp alone ${describe(sharp)}`);
      } else if (!sharp.ok) {
        differ(file, `addon decoded ${describe(auto)} but sharp fails: ${sharp.error}`);
      } else {
        const a = auto.raw;
        const s = sharp.raw;
        const same = a.width === s.width && a.height === s.height && a.channels === s.channels && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.length).equals(Buffer.from(s.data.buffer, s.data.byteOffset, s.data.length));
        if (same) result.identical++;
        else {
          let n = 0;
          if (a.data.length === s.data.length) for (let k = 0; k < a.data.length; k++) if (a.data[k] !== s.data[k]) n++;
          differ(file, `addon ${describe(auto)}, sharp ${describe(sharp)}${n ? `, ${n} bytes differ` : ""}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  return result;
}
