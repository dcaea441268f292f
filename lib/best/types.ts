/**
 * The records of a best-model run (run.json, ablation.json, preprocessing.json), in their own
 * module so the run, its model card and the notebook report share them without import cycles.
 */
import type { BackboneName } from "./backbones";
import type { StackRecord } from "./stack-weights";
import type { BestMetrics, HeadConfig } from "./head-training";
import type { CalibrationRecord } from "./calibration";

/** One row of the ablation table (validation split). */
export interface AblationRow {
  name: string;
  /** Faces the heads were fitted on. */
  faces: number;
  /** What changed, in words. */
  description: string;
  dim: number;
  /** Epoch with the lowest validation MAE (the count the final model trains for). */
  bestEpoch: number;
  mae: number;
  genderAccuracy: number;
  genderAccuracy13: number;
  ageGroupAccuracy: number;
  seconds: number;
  /** Gender accuracy per real-age band on the validation faces, where recorded. */
  genderByBand?: Record<string, number>;
}

/** How a slow backbone is extracted for a subset of the faces (see `featureRows`). */
export interface FeatureSubset {
  /** First N training faces of the seeded order (plus every test face). */
  trainFaces: number;
  /** Backbones extracted on the subset only; the others come from their all-faces cache. */
  backbones: BackboneName[];
  /** Mirrored copies for the subset backbones (false halves the time). */
  mirrored: boolean;
}

/** What a best run produced, as saved in run.json (everything the model card is written from). */
export interface BestRunRecord {
  /** The arguments of the \`best train\` command that made it, when run from the CLI. */
  args?: string[];
  ablation: AblationRow[];
  chosen: HeadConfig;
  /** An ensemble's members (the first is `chosen`), their outputs averaged (or stacked, with `stack`); absent for one model. */
  members?: HeadConfig[];
  /** A stacked folder's weights and out-of-fold figures (`best stack`). */
  stack?: StackRecord;
  test: BestMetrics;
  /** Own outputs of faceres on the test split, when a faceres backbone was loaded (for comparison). */
  testOwn?: BestMetrics;
  secondsPerImage: number;
  /** The engine the speed was measured on, e.g. "wasm + oneDNN 2.6.3, 1 thread". */
  engine?: string;
  /** The data and split, in counts. */
  data: { dir: string; faces: number; test: number; seed: number; testFraction: number };
  /** Training faces the final heads were fitted on. */
  trainedOn: number;
  /** Gender levers tried on validation (issue 19; ablation-gender.json), when the folder holds them. */
  genderAblation?: AblationRow[];
  /** An ensemble tried on validation (issue 19; ablation-ensemble.json, a validation-only run), when the folder holds one. */
  ensembleAblation?: AblationRow[];
  /** Validation faces every ablation step was scored on. */
  validationFaces: number;
  subset?: FeatureSubset;
  /** The ablation of the fusion run (`best train --recipe fusion`), when the folder holds one (ablation-fusion.json). */
  fusionAblation?: AblationRow[];
  /** The age interval and gender calibration (`best calibrate`), when the folder holds calibration.json. */
  calibration?: CalibrationRecord;
  /** The faceres preprocessing comparison (`best prep`), when the model folder holds one. */
  preprocessing?: PreprocessingRow[];
  /** face-api's input framing and size compared (scripts/facenet-input.ts; input-ablation.json), when the folder holds one. */
  inputAblation?: InputAblationRow[];
}

/** The model folder's table of face-api input framings and sizes (scripts/facenet-input.ts --out). */
export const INPUT_ABLATION_FILE = "input-ablation.json";

/** One framing and input size of face-api's network, with frozen heads fitted and scored on fit faces only. */
export interface InputAblationRow {
  /** Side of the centre square taken, as a fraction of the crop's (above 1: mirrored outwards at the edges). */
  fraction: number;
  /** Side fed to the network (its native 150, or larger). */
  side: number;
  fitFaces: number;
  scoredFaces: number;
  mae: number;
  genderAccuracy: number;
  /** Gender accuracy per real-age band ("0-3", "4-12", ..., "13+"). */
  genderByBand: Record<string, number>;
  ageGroupAccuracy: number;
}

/** One row of the preprocessing comparison. */
export interface PreprocessingRow {
  backbone: BackboneName;
  faces: number;
  /** The backbone's own outputs on all compared faces. */
  ownMae: number;
  ownGenderAccuracy: number;
  /** Heads (MLP 256 on the pooled feature, flips) fitted on the first 3/4, scored on the last 1/4. */
  headMae: number;
  headGenderAccuracy: number;
}
