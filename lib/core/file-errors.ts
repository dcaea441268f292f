/**
 * File-system and decoder failures in words. Node and libvips report `ELOOP`, `EISDIR` or
 * "Warning treated as error due to failOn setting"; a user needs to hear which file, what is
 * wrong with it and what to do. Every reader and writer of the library goes through these.
 */
import * as fs from "fs";
import * as path from "path";

/** A plain-words reason for a failed file operation, from its errno code (undefined when unknown). */
export function describeErrno(code: string | undefined): string | undefined {
  switch (code) {
    case "ENOENT":
      return "does not exist (or is a symbolic link pointing nowhere)";
    case "ELOOP":
      return "is a symbolic link that loops back on itself";
    case "EACCES":
    case "EPERM":
      return "cannot be read or written with this user's permissions";
    case "EISDIR":
      return "is a folder where a file is needed";
    case "ENOTDIR":
      return "has a part of its path that is a file, not a folder";
    case "EEXIST":
      return "is a file in the way where a folder is needed: move it or choose another path";
    case "ENOSPC":
      return "cannot be written: the disk is full";
    case "EDQUOT":
      return "cannot be written: the disk quota is used up";
    case "EROFS":
      return "cannot be written: the file system is read-only";
    case "EMFILE":
    case "ENFILE":
      return "cannot be opened: too many files are open";
    case "EIO":
      return "cannot be read: the device reported an input/output error";
    default:
      return undefined;
  }
}

/** The errno code of an error, if it has one. */
export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Why an image could not be read or decoded, in words, as a clause about "the file":
 * unreadable (permissions, a bad link), cut short, or not an image at all.
 */
export function imageFailureReason(e: unknown): string {
  const known = describeErrno(errnoOf(e));
  if (known) return `the file ${known}`;
  const message = String((e as Error)?.message ?? e);
  if (/premature end|truncated|unexpected end|failOn|corrupt|Invalid SOS|huffman|end of (file|image)/i.test(message)) {
    return "the file is cut short or damaged (an incomplete download or copy?): copy it again from its source";
  }
  if (/unsupported image format|contains unsupported/i.test(message)) {
    return "the file is not an image this program can read: its content matches no image format (expected JPEG or PNG)";
  }
  if (/empty|0 bytes/i.test(message)) return "the file is empty (0 bytes)";
  return `the file could not be decoded as an image (${message.split("\n")[0]})`;
}

/**
 * Checks that a path can be read as a regular file before handing it to a decoder, so the
 * reason names the link loop, the dangling link or the permission rather than the image format.
 */
export function checkReadableFile(file: string): void {
  const st = fs.statSync(file); // follows links: ELOOP and a dangling link's ENOENT surface here
  if (st.isDirectory()) throw Object.assign(new Error(`${file} is a folder`), { code: "EISDIR" });
  fs.accessSync(file, fs.constants.R_OK);
  if (st.size === 0) throw new Error(`${file} is empty (0 bytes)`);
}

/**
 * Reads and parses a JSON file; a missing, unreadable or damaged file is an error naming it,
 * with `fix` (what to do) appended.
 */
export function readJsonFile<T>(file: string, fix: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file} ${describeErrno(errnoOf(e)) ?? `cannot be read (${(e as Error).message})`}. ${fix}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is damaged: not valid JSON (${(e as Error).message}). ${fix}`);
  }
}

/**
 * For ENOTDIR/EEXIST on a path: the nearest existing part of it that is a file where a folder
 * is needed (e.g. results/ being a file), or the path itself when none is.
 */
export function pathInTheWay(p: string): string {
  const parts: string[] = [];
  for (let q = p; ; q = path.dirname(q)) {
    parts.unshift(q);
    if (path.dirname(q) === q) break;
  }
  for (const q of parts) {
    try {
      if (!fs.statSync(q).isDirectory()) return q;
    } catch {
      return p;
    }
  }
  return p;
}
