/**
 * Resume records (the log of continuations; ./resume.ts decides whether a run may continue):
 * a run continued after a kill says so in its own folder, so a reference
 * result can be read knowing which folds were interrupted, when, and after which epoch.
 *
 * Each fold (or train/test run) folder gets `resumes.json`, a list of ResumeEvent. Only the
 * process training that folder writes it, so folds running in parallel never share a file.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeJsonAtomic } from "../core/files";
import type { TrainingCallback } from "./callbacks";
import type { ResumeEvent } from "./runs";

/** File name of the resume records inside a fold or run folder. */
export const RESUMES_FILE = "resumes.json";

/** The resume records of a fold or run folder (empty when it never resumed). */
export function readResumes(dir: string): ResumeEvent[] {
  const file = path.join(dir, RESUMES_FILE);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as ResumeEvent[]) : [];
}

/** Appends one resume record (atomically: a kill while writing leaves the old list). */
export function recordResume(dir: string, event: ResumeEvent): void {
  writeJsonAtomic(path.join(dir, RESUMES_FILE), [...readResumes(dir), event]);
}

/** A training callback that records a resume when the loop starts after epoch 1 (it found a checkpoint). */
export function resumeRecorder(dir: string): TrainingCallback {
  return {
    onTrainBegin(info) {
      if (info.startEpoch <= 1) return;
      recordResume(dir, { at: new Date().toISOString(), ...(info.fold !== undefined ? { fold: info.fold } : {}), afterEpoch: info.startEpoch - 1, epochs: info.epochs, host: os.hostname(), pid: process.pid });
    },
  };
}
