/**
 * Train/test experiments: train one model on the train split, evaluate it on the held-out test
 * split (never on training images) and write results/<experiment>/<run-id>/ (lib/runs.ts).
 */
import type { TrainingCallback, ProgressOptions } from "./callbacks";
import type { ColorMode, FaceDataset } from "./data";
import type { ExperimentProfile, RunResult } from "./runs";

/** Options of `runExperiment`. Anything left out comes from the profile or the model's spec. */
export interface ExperimentConfig {
  /** Model name (lib/models.ts MODELS). */
  model: string;
  /** Folder under results/ (default: the model name). */
  experiment?: string;
  /** Preloaded faces (a notebook loads once); must match the size and colour the run uses. */
  data?: FaceDataset;
  /** UTKFace directory when `data` is not given (default resolveDataDir()). */
  dir?: string;
  size?: number;
  color?: ColorMode;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  /** Fraction held out for the test split (the report: 0.2). */
  testFraction?: number;
  /** Fraction of the training images held back to watch validation loss (default 0.1; 0 = none). */
  validationFraction?: number;
  /** Early stopping patience in epochs (default 0 = off). */
  patience?: number;
  /** Cap on images used (the quick profile caps; the full profile uses all). */
  maxImages?: number;
  dropout?: number;
  /** quick or full; default $EXPERIMENT_PROFILE or quick. */
  profile?: ExperimentProfile;
  /** Extra callbacks (e.g. a notebook's live figure). */
  callbacks?: TrainingCallback[];
  /** Progress display: false for none; default "auto". */
  progress?: false | ProgressOptions["mode"];
  /** Root of the run folders (default results/); tests pass a temporary folder. */
  resultsRoot?: string;
  /** vgg19-pretrained: the tfjs layers model.json converted from Keras VGG19. */
  pretrainedWeights?: string;
}

/** Trains, evaluates on the held-out test split and writes the run folder. */
export async function runExperiment(_config: ExperimentConfig): Promise<RunResult> {
  throw new Error("runExperiment: implementation in progress");
}
