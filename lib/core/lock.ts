/**
 * Exclusive claims on a folder (a K-fold fold, a train run) so two processes never train the
 * same thing at once: a lock file created exclusively (`wx`) holding the owner's pid, host and
 * start time, removed when the owner finishes or exits. A lock whose owner is gone (killed with
 * SIGKILL, the machine rebooted) is stale and taken over; a live one is refused, naming the
 * process that holds it.
 *
 * Liveness: on the same host, whether the pid still runs; from another host (a shared folder,
 * one pod per fold), whether the owner still touches the file (a heartbeat every 30 s; stale
 * after 5 minutes without one).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** File name of a claim inside the claimed folder. */
export const LOCK_FILE = "claim.lock";
const HEARTBEAT_MS = 30_000;
const FOREIGN_STALE_MS = 5 * 60_000;

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the claim was made. */
  since: string;
  /** What was claimed, in words (e.g. "fold-02 of results/x/y"). */
  what?: string;
}

/** A held claim: `release()` removes the lock file (idempotent). */
export interface Claim {
  file: string;
  release(): void;
}

/** Whether a process with this pid runs on this machine (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  // A killed process stays a zombie until its parent reaps it, and in a container whose first
  // process reaps nothing it stays one: it holds no lock. Linux says so in /proc (elsewhere: alive).
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(file, "utf8")) as LockOwner;
    return typeof o?.pid === "number" ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Why a lock held by `owner` is stale, or undefined when its owner may still be working. */
function staleReason(file: string, owner: LockOwner | undefined): string | undefined {
  let age = 0;
  try {
    age = Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return "it is gone";
  }
  if (!owner) return age > 2000 ? "it is empty or damaged (its owner died while writing it)" : undefined;
  if (owner.host === os.hostname()) return pidAlive(owner.pid) ? undefined : `process ${owner.pid} is no longer running`;
  return age > FOREIGN_STALE_MS ? `process ${owner.pid} on ${owner.host} has not touched it for ${Math.round(age / 60_000)} min` : undefined;
}

/**
 * Claims `dir` for this process, or throws an error naming `what`, the process that holds it
 * and what to do. A stale lock is taken over (returned claim's `tookOver` says whose).
 */
export function claimDir(dir: string, what: string): Claim & { tookOver?: LockOwner } {
  const file = path.join(dir, LOCK_FILE);
  fs.mkdirSync(dir, { recursive: true });
  let tookOver: LockOwner | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    const me: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what };
    let fd: number;
    try {
      fd = fs.openSync(file, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = readOwner(file);
      const stale = staleReason(file, owner);
      if (stale === undefined) {
        if (!owner) {
          // Being written this very moment: look again shortly.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
          continue;
        }
        if (owner.pid === process.pid && owner.host === me.host) throw new Error(`${what} is already claimed by this process (${file}).`);
        throw new Error(
          `${what} is being trained by process ${owner.pid} on ${owner.host} (since ${owner.since}; lock ${file}). ` +
            `Wait for it to finish or stop it (kill ${owner.pid}), then run this again` +
            (owner.host === me.host ? "." : `; if that process is gone, delete the lock file (it is also taken over ${FOREIGN_STALE_MS / 60_000} minutes after its last heartbeat).`),
        );
      }
      // Stale: move it aside, and take over only if what was moved is the stale lock itself
      // (another process may have taken it over and claimed anew in between).
      const aside = `${file}.${process.pid}.stale`;
      try {
        fs.renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = readOwner(aside);
      if (moved && (!owner || moved.pid !== owner.pid || moved.host !== owner.host || moved.since !== owner.since)) {
        try {
          fs.linkSync(aside, file); // someone else's fresh claim: put it back
        } catch {
          // Yet another claim took its place; the next attempt reads it.
        }
      } else {
        tookOver = owner;
      }
      fs.rmSync(aside, { force: true });
      continue;
    }
    try {
      fs.writeSync(fd, JSON.stringify(me) + "\n");
    } finally {
      fs.closeSync(fd);
    }
    return { file, tookOver, release: holdClaim(file, me) };
  }
  throw new Error(`Could not claim ${what}: its lock ${file} keeps changing (several processes starting at once?). Try again.`);
}

/** Keeps a claim alive (heartbeat, removal at exit) and returns its release function. */
function holdClaim(file: string, me: LockOwner): () => void {
  let released = false;
  const heartbeat = setInterval(() => {
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      // Gone or unreachable: the next claim attempt by anyone decides.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(heartbeat);
    process.removeListener("exit", release);
    // Remove it only while it is still ours.
    const owner = readOwner(file);
    if (owner && owner.pid === me.pid && owner.host === me.host && owner.since === me.since) fs.rmSync(file, { force: true });
  };
  process.on("exit", release);
  return release;
}
