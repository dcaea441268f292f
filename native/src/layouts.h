// The shape-parameter layouts of the addon's ops: position i of an op's Int32Array holds the
// named value. lib/engine/onednn/layouts.ts writes the same arrays from the same names in the
// same order; test/onednn-layouts.test.ts reads this file and fails when the two disagree.
#pragma once

// conv: op (0 forward training, 1 forward inference, 2 backward data, 3 backward weights),
// N H W C O kH kW oH oW sH sW dH dW padTop padLeft padBottom padRight groups hasBias act.
enum ConvParam { P_OP, P_N, P_H, P_W, P_C, P_O, P_KH, P_KW, P_OH, P_OW, P_SH, P_SW, P_DH, P_DW, P_PT, P_PL, P_PB, P_PR, P_G, P_BIAS, P_ACT, P_COUNT };

// matmul: batchA batchB M K N transposeA transposeB hasBias act.
enum MatMulParam { M_BA, M_BB, M_M, M_K, M_N, M_TA, M_TB, M_BIAS, M_ACT, M_COUNT };

// maxPool, maxPoolGrad: N H W C oH oW kH kW sH sW padTop padLeft padBottom padRight.
enum PoolParam { Q_N, Q_H, Q_W, Q_C, Q_OH, Q_OW, Q_KH, Q_KW, Q_SH, Q_SW, Q_PT, Q_PL, Q_PB, Q_PR, Q_COUNT };

// batchNorm: N H W C hasScale hasShift.
enum BatchNormParam { B_N, B_H, B_W, B_C, B_SCALE, B_SHIFT, B_COUNT };

// batchNormGrad: rows C hasScale (x seen as rows x C).
enum BatchNormGradParam { G_ROWS, G_C, G_SCALE, G_COUNT };
