/**
 * The shape-parameter layouts of the addon's ops, by name: position i of an op's Int32Array
 * holds the i-th name. native/src/layouts.h declares the same layouts as enums (a name here,
 * upper-cased, is the enum's name after its prefix); test/onednn-layouts.test.ts fails when
 * the two disagree, so neither side can move a parameter alone.
 */

/** conv: op (0 forward training, 1 forward inference, 2 backward data, 3 backward weights), shapes, strides, dilations, padding, groups, bias, activation. */
export const CONV_PARAMS = ["op", "n", "h", "w", "c", "o", "kh", "kw", "oh", "ow", "sh", "sw", "dh", "dw", "pt", "pl", "pb", "pr", "g", "bias", "act"] as const;
/** matmul: batch of a and b, M K N, transposes, bias, activation. */
export const MATMUL_PARAMS = ["ba", "bb", "m", "k", "n", "ta", "tb", "bias", "act"] as const;
/** maxPool and maxPoolGrad: N H W C, output size, window, strides, padding. */
export const POOL_PARAMS = ["n", "h", "w", "c", "oh", "ow", "kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr"] as const;
/** batchNorm: N H W C, whether scale and shift are given. */
export const BATCH_NORM_PARAMS = ["n", "h", "w", "c", "scale", "shift"] as const;
/** batchNormGrad: rows and channels of x, whether scale is given. */
export const BATCH_NORM_GRAD_PARAMS = ["rows", "c", "scale"] as const;

/**
 * A writer of one op's parameters: it fills one reused Int32Array (the addon reads it
 * synchronously) from values given by name, in the layout's order.
 */
export function paramWriter<L extends readonly string[]>(layout: L): (values: Record<L[number], number>) => Int32Array {
  const array = new Int32Array(layout.length);
  return (values) => {
    for (let i = 0; i < layout.length; i++) array[i] = values[layout[i] as L[number]];
    return array;
  };
}
