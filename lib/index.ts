/**
 * utkface-ts: age and gender estimation from UTKFace faces with tfjs.
 * One import gives a notebook everything: `import * as ut from "../dist/lib";`
 */
export * from "./paths";
export * from "./backend";
export * from "./labels";
export * from "./splits";
export * from "./models";
export * from "./figures";
export * from "./notebook";
export * from "./export";
export * from "./data";
export * from "./tables";
export * from "./profile";
export * from "./runs";
export * from "./experiment";
export * from "./kfold";
export * from "./metrics";
export * from "./callbacks";
export * from "./train";
export * from "./predict";
export * from "./kernels";
export * from "./facenet";
export * from "./transfer";
