/**
 * Resume records (the log of continuations; ./resume.ts decides whether a run may continue):
 * a run continued after a kill says so in its own folder, so a reference
 * result can be read knowing which folds were interrupted, when, and after which epoch.
 *
 * Each fold (or train/test run) folder gets `resumes.json`, a list of ResumeEvent. Only the
 * process training that folder writes it, so folds running in parallel never share a file.
 */
import * as os from "os";
import * as path from "path";
import { writeJsonAtomic } from "../core/files";
import type { TrainingCallback } from "./callbacks";
import { RESUMES_FILE, ResumeEvent, readResumes } from "../records/runs";

/** Appends one resume record (atomically: a kill while writing leaves the old list). */
export function recordResume(dir: string, event: ResumeEvent): void {
  writeJsonAtomic(path.join(dir, RESUMES_FILE), [...readResumes(dir), event]);
}

/** Options of `resumeRecorder`: saying so where the user is looking. */
export interface ResumeAnnounce {
  /** The run in words, e.g. "run results/cnn-gender/<id>" or "fold 2 (fold-02) of results/...". */
  label: string;
  /** Say so even when the loop starts at epoch 1 (a run continued before its first checkpoint). */
  continued?: boolean;
  /** Where the line goes (default stderr, beside the progress lines). */
  write?: (line: string) => void;
}

/** The line that says which run continues and from which epoch. */
export function resumeLine(label: string, startEpoch: number, epochs: number): string {
  return startEpoch > 1
    ? `continuing ${label} from epoch ${startEpoch} of ${epochs} (epochs 1..${startEpoch - 1} restored from its checkpoint)`
    : `continuing ${label} from epoch 1 of ${epochs}: no epoch of it had been checkpointed`;
}

/**
 * A training callback that records a resume when the loop starts after epoch 1 (it found a
 * checkpoint), and with `announce` prints which run continues and from which epoch.
 */
export function resumeRecorder(dir: string, announce?: ResumeAnnounce): TrainingCallback {
  return {
    onTrainBegin(info) {
      if (announce && (info.startEpoch > 1 || announce.continued)) (announce.write ?? ((l) => process.stderr.write(l + "\n")))(resumeLine(announce.label, info.startEpoch, info.epochs));
      if (info.startEpoch <= 1) return;
      recordResume(dir, { at: new Date().toISOString(), ...(info.fold !== undefined ? { fold: info.fold } : {}), afterEpoch: info.startEpoch - 1, epochs: info.epochs, host: os.hostname(), pid: process.pid });
    },
  };
}
