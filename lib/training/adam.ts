/**
 * The project's Adam: tfjs's AdamOptimizer with the same state, checkpoints and results, whose
 * per-variable update runs as one kernel (the oneDNN engine's UtkfaceAdam) where the backend
 * has it, instead of tfjs's 13 element-wise kernels per variable and step. Those 13 passes cost
 * a report CNN step on 64x64 faces about a quarter of its time at batch 16 (2.8 M weights,
 * each pass a new wasm tensor); the fused pass gives the same float32 values to the bit.
 * Without the kernel (tfjs-node, the cpu backend, wasm without the addon) it is tfjs's Adam.
 */
import * as tf from "@tensorflow/tfjs";
import { ADAM_KERNEL, type AdamKernelAttrs } from "../engine/onednn/kernels";

/** Whether the fused Adam update serves the active backend. */
export function fusedAdamActive(): boolean {
  return tf.getKernel(ADAM_KERNEL, tf.getBackend()) !== undefined;
}

type Gradients = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

/** tfjs's private Adam state, read and written as tfjs's own applyGradients does. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
}

/** Adam with a fused update; every other behaviour (state, getWeights/setWeights, config) is tfjs's. */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  applyGradients(variableGradients: Gradients): void {
    if (!fusedAdamActive()) {
      super.applyGradients(variableGradients);
      return;
    }
    const state = this as unknown as AdamState;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    // tfjs divides by sub(1, accBeta) in float32: the same rounding as Math.fround of the exact difference.
    const attrs: AdamKernelAttrs = {
      beta1: this.beta1,
      oneMinusBeta1: 1 - this.beta1,
      beta2: this.beta2,
      oneMinusBeta2: 1 - this.beta2,
      biasCorrection1: Math.fround(1 - state.accBeta1.dataSync()[0]),
      biasCorrection2: Math.fround(1 - state.accBeta2.dataSync()[0]),
      epsilon: this.epsilon,
      learningRate: this.learningRate,
    };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        if (state.accumulatedFirstMoment[i] == null) {
          state.accumulatedFirstMoment[i] = { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        }
        if (state.accumulatedSecondMoment[i] == null) {
          state.accumulatedSecondMoment[i] = { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        }
        const gradient = Array.isArray(variableGradients) ? variableGradients[i].tensor : (variableGradients as Record<string, tf.Tensor>)[name];
        if (gradient == null) return;
        const m = state.accumulatedFirstMoment[i].variable;
        const v = state.accumulatedSecondMoment[i].variable;
        if (value.dtype !== "float32" || gradient.dtype !== "float32") throw new Error(`Adam: variable ${name} is ${value.dtype} with a ${gradient.dtype} gradient; only float32 weights train.`);
        const inputs = { x: value, g: gradient, m, v } as unknown as tf.NamedTensorMap;
        const [x2, m2, v2] = tf.engine().runKernel(ADAM_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        value.assign(x2);
      });
      state.accBeta1.assign(tf.mul(state.accBeta1, this.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}
