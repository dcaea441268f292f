/**
 * The options every model factory takes, in a module of their own so a factory file (facenet)
 * and the registry that lists it can both name them without importing each other.
 */

/** Options common to every factory. */
export interface ModelOptions {
  /** Input side in pixels (the report: 70). */
  size?: number;
  /** Input channels: 1 for grayscale, 3 for RGB (VGG19 needs 3). */
  channels?: number;
  /** Number of age groups for age-group outputs (the report: 20; seed 000: 8). */
  ageGroups?: number;
  /** Dropout rate after the trunk and between dense layers (the report: 0.25). */
  dropout?: number;
  /** Seed for weight initialisers, so a run can be repeated. */
  seed?: number;
  /** vgg19-pretrained: a tfjs layers model.json converted from Keras VGG19 (layers block1_conv1 ...). */
  pretrainedWeights?: string;
  /** vgg19-pretrained: keep the loaded conv layers frozen (default true: train the head only). */
  freezePretrained?: boolean;
}
