/**
 * utkface-ts: age and gender estimation from UTKFace faces with tfjs.
 * One import gives a notebook everything: `import * as ut from "../dist/lib";`
 */
export * from "./core/paths";
export * from "./core/files";
export * from "./engine/backend";
export * from "./data/labels";
export * from "./data/splits";
export * from "./models/registry";
export * from "./models/tasks";
export * from "./analysis/figures";
export * from "./notebook/display";
export * from "./notebook/export";
export * from "./data/dataset";
export * from "./analysis/tables";
export * from "./training/profile";
export * from "./training/runs";
export * from "./training/experiment";
export * from "./training/kfold";
export * from "./analysis/metrics";
export * from "./training/callbacks";
export * from "./training/train";
export * from "./training/checkpoints";
export * from "./models/files";
export * from "./inference/predict";
export * from "./engine/wasm";
export * from "./models/facenet";
export * from "./models/transfer";
