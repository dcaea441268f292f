/**
 * The one atomic writer: every file the library writes (run files, model weights, the pixel
 * cache, the plotly bundle) goes to a temporary name first and is renamed into place, so a
 * reader (or a run killed mid-write) sees the old content or the new one, never half of it.
 */
import * as fs from "fs";
import * as path from "path";
import { describeErrno, pathInTheWay } from "./file-errors";

/** A temporary name beside `file`, unique per process and moment (same folder, so rename is atomic). */
function tempName(file: string): string {
  return `${file}.${process.pid}.${Date.now()}.tmp`;
}

/**
 * Writes a file atomically: `write` fills a temporary file (through its descriptor, for data
 * written in parts), which is then renamed over `file`.
 */
export function writeFileAtomicWith(file: string, write: (fd: number) => void): void {
  const tmp = tempName(file);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(tmp, "w");
    try {
      write(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    throw failedWrite(file, tmp, e);
  }
}

/**
 * Writes a file atomically: a reader sees the old content or the new one, never half of it.
 * A failed write (disk full, a folder in the way) removes its temporary file and says, in
 * words, which path was the problem.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempName(file);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    throw failedWrite(file, tmp, e);
  }
}

/** Removes the temporary file of a failed write and returns the failure in words, naming the path at fault. */
function failedWrite(file: string, tmp: string, e: unknown): Error {
  try {
    fs.rmSync(tmp, { force: true });
  } catch {
    // The temporary file's folder itself is what failed (ENOTDIR): nothing was written.
  }
  const err = e as NodeJS.ErrnoException;
  const code = err.code;
  // A file where a folder of the path should be: name that file, not the path below it.
  const where = code === "EEXIST" || code === "ENOTDIR" ? pathInTheWay(path.dirname(file)) : file;
  const known = describeErrno(code);
  const out = new Error(`Could not write ${file}: ${known ? `${where} ${known}` : `${where}: ${err.message}`}.`);
  Object.assign(out, { code, path: where });
  return out;
}

/** Writes JSON atomically, pretty-printed. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Writes JSON only if `file` does not exist yet, atomically and exclusively (a hard link fails
 * when the name is taken, so of two processes racing exactly one wins); returns whether it did.
 */
export function writeJsonExclusive(file: string, value: unknown): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Checks, before any work, that `file` can be created: not a folder, and no part of its folder
 * path is a file. Throws an error naming `flag`, the path at fault and what to do.
 */
export function checkOutputFile(file: string, flag: string): void {
  const abs = path.resolve(file);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw new Error(`${flag} ${file} is a folder, not a file: give a file name (e.g. ${path.join(file, "predictions.csv")}).`);
  checkFolderPath(path.dirname(abs), file, flag);
}

/** Checks, before any work, that folder `dir` exists or can be created (no file in its path). */
export function checkOutputDir(dir: string, flag: string): void {
  checkFolderPath(path.resolve(dir), dir, flag);
}

function checkFolderPath(abs: string, given: string, flag: string): void {
  const where = pathInTheWay(abs);
  let blocked = false;
  try {
    blocked = !fs.statSync(where).isDirectory();
  } catch {
    blocked = false; // nothing there yet: it will be created
  }
  if (blocked) {
    const self = where === abs;
    throw new Error(`${flag} ${given}: ${where} is a file, not a folder, so ${self ? "it cannot hold the output" : "nothing can be written under it"}: choose another path, or move that file away.`);
  }
}

/** A file's bytes, or undefined when it cannot be read (a cache that is missing is rebuilt, not an error). */
export function readFileIfReadable(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}
