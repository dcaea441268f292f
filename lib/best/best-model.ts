/**
 * The best model family (issue 12) in one folder: frozen pretrained face backbones
 * (backbones.ts) and their cached features (feature-cache.ts), the DLDL age and gender heads
 * (heads.ts) and their training on feature rows (head-training.ts), fine-tuning face-api's last
 * stage with the heads (fine-tuning.ts), the run with its ablation (run.ts, faces.ts, types.ts),
 * calibrated intervals (calibration.ts, calibrate.ts, cross-fit.ts), stacking with a second
 * backbone (stack.ts, stack-weights.ts), the model card (card.ts), a saved
 * models/best folder (model-folder.ts) and what notebook 07 shows (report.ts).
 *
 * This is the folder's entry, what notebooks get as `ut.best`. Modules of lib/ import the file
 * they need instead, so loading one piece (say, predicting with a models/best folder) does not
 * load the trainer and the notebook display.
 */

// Backbones and their cached features.
export { BACKBONES, BACKBONE_NAMES, backboneSpec, loadBackbone } from "./backbones";
export type { Backbone, BackboneName, BackboneSpec } from "./backbones";
export { extractFeatureSet, featureCacheFile } from "./feature-cache";
export type { FeatureSet, ExtractionProgress, FeatureCacheOptions } from "./feature-cache";

// The run: faces and split, the ablation, heads and fine-tuning.
export { loadBestSplit, featureRows } from "./faces";
export type { BestSplit, BestSplitOptions } from "./faces";
export { runBest, defaultAblation, comparePreprocessings, rewriteModelCard, BEST_RECIPE, DEFAULT_FINE_TUNE } from "./run";
export type { AblationStep, BestRunOptions } from "./run";
export type { AblationRow, BestRunRecord, FeatureSubset, PreprocessingRow } from "./types";
export { DEFAULT_HEAD_CONFIG, trainHeads, predictHeads } from "./head-training";
export type { HeadConfig, FineTuneConfig, BestMetrics, TrainedHeads, HeadOutputs } from "./head-training";
export { bestModelCard } from "./card";

// How sure it is: calibration of a trained folder.
export { calibrateBest } from "./calibrate";
export type { CalibrateOptions } from "./calibrate";
export { crossFitBest, crossFitFolds, OUT_OF_FOLD_FILE } from "./cross-fit";
export type { CrossFitOptions, OutOfFoldFile } from "./cross-fit";
export { stackBest, memberConfig, STACK_FINE_TUNE } from "./stack";
export type { StackOptions, BestStack, StackRecord } from "./stack";
export type { CalibrationRecord, BestCalibration, ReliabilityBin } from "./calibration";

// A models/best folder: load and predict.
export { isBestModelDir, loadBestModel, disposeBestModel, predictBestFiles, BEST_MODEL_FILE } from "./model-folder";
export type { BestModel, BestModelFile, BestFilePrediction } from "./model-folder";

// What notebook 07 shows.
export { loadBestReport, bestFigures, bestComparisonRows, calibrationRows, stackRows, showBestSamplePredictions, reliabilityFigure, intervalCoverageFigure, genderByBandFigure, REPORT_MODELS_HELD_OUT } from "./report";
export type { BestReport } from "./report";
