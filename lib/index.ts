/**
 * utkface-ts: age and gender estimation from UTKFace faces with tfjs.
 * The notebook API: `import * as ut from "../dist/lib";` gives what a notebook author needs,
 * listed by purpose (docs/notebooks.md describes each group). A notebook cell imports nothing
 * else from lib/; the library's inner parts (the training loop's parts, checkpoints, wasm
 * kernels, the facenet backbone) stay importable by path for scripts and tests, e.g.
 * `import { trainModel } from "../dist/lib/training/train"`.
 */

// Setup: backend, profile, paths.
export { tf, initBackend, setBackendQuiet, BACKEND_NAMES } from "./engine/backend";
export type { BackendInfo, BackendName } from "./engine/backend";
// Arithmetic of the oneDNN engine's convolutions and matrix products: "f32" (default) or "bf16".
export { setMath, MATH_ENV } from "./engine/onednn/engine";
export type { MathMode } from "./engine/onednn/engine";
export { profileSettings, modelProfileSettings, quickOverrides, PROFILE_ENV } from "./training/profile";
export type { ProfileSettings } from "./training/profile";
export type { ExperimentProfile, ModelTask } from "./core/kinds";
// The one atomic writer, for files a cell saves (a composed photo, an annotated figure).
export { writeFileAtomic } from "./core/files";
export { REPO_ROOT, RESULTS_DIR, FIGURES_DIR, SAMPLE_DATA_DIR, DATA_DIR_ENV, IMAGE_SIZE, AGE_GROUP_COUNT, AGE_GROUP_WIDTH, MAX_AGE, BATCH_SIZE, SEED, resolveDataDir } from "./core/paths";

// Data: faces, labels, splits.
export { loadFaces, parseFileName, isFaceRecord, decodeImageFile, normalizePixels, imagesTensor, countByGroupGender, channelsOf, IMAGE_EXTENSIONS } from "./data/dataset";
export type { FaceDataset, FaceRecord, LoadReport, LoadOptions, ColorMode, Normalization, GroupCount } from "./data/dataset";
export {
  REPORT_AGE_GROUPS,
  EIGHT_AGE_RANGES,
  AGE_DIVISIONS,
  ageDivision,
  ageGroupOf,
  decodeAgeGroup,
  groupMidAge,
  groupCount,
  filterByDivision,
  GENDER_LABELS,
  decodeGender,
  predictionCaption,
} from "./data/labels";
export type { AgeDivision, Gender } from "./data/labels";
export { permutation, mulberry32, trainTestSplit, kFold } from "./data/splits";
export { recordsFrame, recordsSummary } from "./analysis/tables";

// Models: the registry and the task each output follows.
export { MODELS, modelSpec, buildModel } from "./models/registry";
export type { ModelSpec, ModelOptions } from "./models/registry";
export { TASK_OUTPUTS, taskSpecs } from "./models/tasks";
export type { TaskSpec, OutputKind } from "./models/tasks";

// Train: one run, K-fold, reuse, evaluation of a saved run; progress and early stopping.
export { runExperiment, reuseOrRun, evaluateRun, loadModelFaces } from "./training/experiment";
export type { ExperimentConfig, Evaluation } from "./training/experiment";
export { runKFold, mergeKFold, foldSchedule } from "./training/kfold";
export type { KFoldConfig } from "./training/kfold";
export { progressCallback, earlyStopping, historyCallback } from "./training/callbacks";
export type { TrainingCallback } from "./training/callbacks";
export { loadRun, listRuns, latestRun, portablePath, RUN_FILES } from "./records/runs";
export type { RunConfig, RunMetrics, RunResult, LoadedRun, KFoldResult, PredictionRow, EpochRecord } from "./records/runs";

// Evaluate and predict.
export { computeMetrics, majorityBaseline, headlineFigures, accuracy, accuracyWithin, confusionMatrix, meanAbsoluteError, maeByBand, predictedVsReal } from "./analysis/metrics";
export { loadTrainedModel, predictFiles, listImageFiles, predictionsCsv, writePredictionsCsv } from "./inference/predict";
export type { TrainedModel, FilePrediction } from "./inference/predict";

// Figures: plotly specs, shown inline and exported as PNG/SVG.
export {
  groupGenderCountsFigure,
  ageHistogramFigure,
  sharesFigure,
  pixelHistogramFigure,
  trainingCurvesFigure,
  confusionMatrixFigure,
  predictedVsRealFigure,
  meanVarianceFigure,
  maeByBandFigure,
  foldAccuracyFigure,
  leakFigure,
  comparisonFigure,
  PUBLISHED_CLAIMS,
  RACE_LABELS,
} from "./analysis/figures";
export type { PlotlyFigure, NamedFigure } from "./analysis/figures";
export { runFigures, comparisonRow, asLoadedRun } from "./analysis/run-figures";
export type { AnyRun } from "./analysis/run-figures";
export { initNotebookPlotly, show, showFigures, showTable, showMarkdown, showFaces, showRunFigures, showMetrics, showPredictions, describeModel, figureHtml, plotlyInitHtml } from "./notebook/display";
export { exportFigures, exportRunFigures, RUN_FIGURES_SUBDIR } from "./notebook/export";

// Photos: find every face, cut it like the training crops, predict and draw (docs/photos.md).
export { detectFaces, detectorSharesEngine, trainingCrop, FRAMING } from "./inference/detect";
export type { Box, DetectedFace, DetectOptions, Framing } from "./inference/detect";
export { predictPhotos, photoPredictionsCsv, DETECT_MODES } from "./inference/photo";
export type { PhotoPrediction, PhotoFace, PhotoOptions, DetectMode } from "./inference/photo";
export { annotatePhoto, showAnnotatedPhoto, faceLabel } from "./inference/annotate";
export type { AnnotatedPhoto } from "./inference/annotate";
export { composePhoto } from "./inference/composite";
export type { Placement } from "./inference/composite";
export { compareDetectWithCrops, detectVsCropRows } from "./inference/compare";
export type { DetectVsCrop, DetectVsCropRow } from "./inference/compare";

// The best model (notebook 07, models/best/MODEL_CARD.md): backbones, feature cache, heads, the run,
// calibration, a models/best folder and what the notebook shows, as one namespace.
export * as best from "./best/best-model";

// Reference runs: the full-profile results committed under results/reference/ (docs/reference.md).
export { REFERENCE_DIR, referenceRun, referenceRuns, referenceFigures, referenceLabel, referenceComparisonRows, referenceTable, figuresOf, addReferenceRun } from "./analysis/reference";
export { showReference, showReferenceComparison, showReportProcedure, REFERENCE_HOWTO, CARRIED_HOWTO } from "./notebook/show-reference";
export { measureLeak, leakSentence } from "./analysis/leak";
export type { LeakReport, FoldLeak } from "./analysis/leak";
export type { ReferenceRun, ReferenceInfo, AddReferenceOptions, AddedReference } from "./analysis/reference";
export { readResumes } from "./records/runs";
