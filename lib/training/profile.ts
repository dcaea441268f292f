/**
 * EXPERIMENT_PROFILE: one switch between a quick check and the report's protocol.
 *   quick (default): a capped number of images, small inputs and few epochs, so each command
 *                    finishes in about a minute on the shipped sample on 2 cores.
 *   full:            the report's protocol: every image, 70x70, 15 epochs, 10 folds, batch 25.
 * Explicit options (CLI flags, config fields) always win over the profile.
 */
import { BATCH_SIZE, IMAGE_SIZE, SEED } from "../core/paths";
import type { ExperimentProfile } from "../core/kinds";
import { modelSpec } from "../models/registry";

/** Environment variable selecting the profile. */
export const PROFILE_ENV = "EXPERIMENT_PROFILE";

/** The settings a profile decides. */
export interface ProfileSettings {
  profile: ExperimentProfile;
  /** Input side in pixels. */
  size: number;
  /** Cap on images used (undefined = all). */
  maxImages?: number;
  /** Epochs of a train/test run. */
  epochs: number;
  batchSize: number;
  /** K-fold: number of folds, epochs of the first fold and the floor of the schedule. */
  folds: number;
  firstEpochs: number;
  minEpochs: number;
  seed: number;
}

const PROFILES: Record<ExperimentProfile, ProfileSettings> = {
  // Sized so a report CNN trains in well under a minute on 2 cores (wasm or cpu backend).
  quick: { profile: "quick", size: 48, maxImages: 400, epochs: 3, batchSize: BATCH_SIZE, folds: 3, firstEpochs: 2, minEpochs: 1, seed: SEED },
  // The report: 70x70, batch 25, 15 epochs; K-fold 10 folds from 15 epochs down to 2 (see foldSchedule).
  full: { profile: "full", size: IMAGE_SIZE, epochs: 15, batchSize: BATCH_SIZE, folds: 10, firstEpochs: 15, minEpochs: 2, seed: SEED },
};

/** The settings of a profile: explicit name, else $EXPERIMENT_PROFILE, else quick. */
export function profileSettings(name?: string): ProfileSettings {
  const chosen = (name ?? process.env[PROFILE_ENV] ?? "quick").trim() || "quick";
  if (chosen !== "quick" && chosen !== "full") {
    throw new Error(`${PROFILE_ENV}="${chosen}" is not a profile. Use quick (default: about a minute on the sample) or full (the report's protocol).`);
  }
  return { ...PROFILES[chosen] };
}

/**
 * The settings of a profile for one model: the profile's, with the model's own trims of it
 * (ModelSpec.profiles: VGG19's quick run is smaller, facenet-transfer's input larger). Every
 * run (CLI, notebook, test) resolves its defaults here, so a profile means the same everywhere.
 */
export function modelProfileSettings(model: string, name?: string): ProfileSettings {
  const settings = profileSettings(name);
  return { ...settings, ...(modelSpec(model).profiles?.[settings.profile] ?? {}) };
}

/**
 * A model's trims of a profile (size, epochs, image cap), e.g. for a notebook that loads its
 * faces at the size the run will use; empty when the model keeps the profile's settings.
 */
export function quickOverrides(model: string, profile: ExperimentProfile = profileSettings().profile): { size?: number; epochs?: number; maxImages?: number } {
  return { ...(modelSpec(model).profiles?.[profile] ?? {}) };
}
