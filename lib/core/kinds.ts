/**
 * The names every layer shares: what a model learns and which profile a run uses. They sit at
 * the bottom of the import graph so models, training and analysis can all name them without
 * importing each other (once a type cycle facenet -> models -> runs).
 */

/**
 * What a model predicts, which decides its loss, metrics and decoding: one or more output
 * kinds (lib/models/tasks.ts TASK_OUTPUTS).
 */
export type ModelTask = "age-groups" | "age-regression" | "gender" | "age-gender";

/** Switch between a one-minute check on the sample and the report's protocol (lib/training/profile.ts). */
export type ExperimentProfile = "quick" | "full";
