/**
 * An inference copy of a layers model with its batch normalisation folded into the convolutions
 * before it: each Conv2D or DepthwiseConv2D (linear, no activation of its own) whose only
 * consumer is a BatchNormalization over channels, and optionally that one's only consumer a ReLU
 * or ReLU6, becomes one fused convolution (tf.fused.conv2d / depthwiseConv2d) with
 *
 *   filter' = filter x s,  bias' = (bias - mean) x s + beta,  s = gamma / sqrt(variance + epsilon)
 *
 * per output channel and the activation as its post-op: on the oneDNN engine one convolution
 * call in place of three passes over the activations. This is the fold inference runtimes make
 * (TensorFlow's graph optimiser, torch.jit.freeze, TensorRT); outputs agree to float rounding.
 * Training is unaffected: the copy shares every other layer with the original and is meant for
 * predict() only (its folded weights are a snapshot: fold again after training).
 */
import * as tf from "@tensorflow/tfjs";

type Activation = "linear" | "relu" | "relu6";

interface FusedConvArgs {
  name: string;
  depthwise: boolean;
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
  strides: [number, number];
  padding: "same" | "valid";
  dilation: [number, number];
  activation: Activation;
  outputShape: (inputShape: tf.Shape) => tf.Shape;
}

/** A convolution with its folded batch norm and activation, for inference. */
class FusedConv extends tf.layers.Layer {
  static className = "UtkfaceFusedConv";
  private readonly a: FusedConvArgs;
  constructor(a: FusedConvArgs) {
    super({ name: a.name, trainable: false });
    this.a = a;
  }
  computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return this.a.outputShape(inputShape as tf.Shape);
  }
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const { filter, bias, strides, padding, dilation, activation } = this.a;
    return this.a.depthwise
      ? tf.fused.depthwiseConv2d({ x, filter, strides, pad: padding, dilations: dilation, bias, activation })
      : tf.fused.conv2d({ x, filter, strides, pad: padding, dilations: dilation, bias, activation });
  }
  dispose(): tf.serialization.ConfigDict & { refCountAfterDispose: number; numDisposedVariables: number } {
    tf.dispose([this.a.filter, this.a.bias]);
    return super.dispose() as ReturnType<FusedConv["dispose"]>;
  }
}

type AnyLayer = tf.layers.Layer & { getConfig(): tf.serialization.ConfigDict };

function config(layer: tf.layers.Layer): Record<string, unknown> {
  return (layer as AnyLayer).getConfig() as Record<string, unknown>;
}

/** The activation a layer applies alone, or undefined when it is not a lone ReLU / ReLU6. */
function activationOf(layer: tf.layers.Layer): Activation | undefined {
  const name = layer.getClassName();
  const c = config(layer);
  if (name === "UtkfaceRelu6") return "relu6";
  if (name === "ReLU") return c.maxValue == null ? "relu" : c.maxValue === 6 ? "relu6" : undefined;
  if (name === "Activation") return c.activation === "relu" ? "relu" : c.activation === "relu6" ? "relu6" : undefined;
  return undefined;
}

/** The original output of a layer (its first node's: folding applies layers again, adding nodes). */
function firstOutput(layer: tf.layers.Layer): tf.SymbolicTensor {
  const out = layer.getOutputAt(0);
  return Array.isArray(out) ? out[0] : out;
}

/** The one layer of `model` reading `layer`'s original output, when there is exactly one. */
function soleConsumer(layer: tf.layers.Layer, model: tf.LayersModel): tf.layers.Layer | undefined {
  const out = firstOutput(layer);
  const readers = layer.outboundNodes.filter((n) => n.inputTensors.some((t) => t.id === out.id)).map((n) => n.outboundLayer as tf.layers.Layer);
  const inModel = readers.filter((l) => model.layers.includes(l));
  return inModel.length === 1 && !model.outputs.some((o) => o.id === out.id) ? inModel[0] : undefined;
}

/** The convolution -> batch norm (-> activation) chains of a model, by convolution. */
function chains(model: tf.LayersModel): Map<tf.layers.Layer, { bn: tf.layers.Layer; act?: tf.layers.Layer; activation: Activation }> {
  const found = new Map<tf.layers.Layer, { bn: tf.layers.Layer; act?: tf.layers.Layer; activation: Activation }>();
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    if (kind !== "Conv2D" && kind !== "DepthwiseConv2D") continue;
    const bn = soleConsumer(layer, model);
    if (!bn || bn.getClassName() !== "BatchNormalization") continue;
    const next = soleConsumer(bn, model);
    const activation = next && activationOf(next);
    found.set(layer, { bn, act: activation ? next : undefined, activation: activation ?? "linear" });
  }
  return found;
}

/** The folded convolution of `conv` -> `bn` (-> `act`), or undefined when the pattern does not hold. */
function foldChain(conv: tf.layers.Layer, bn: tf.layers.Layer, activation: Activation): FusedConv | undefined {
  const c = config(conv);
  const b = config(bn);
  const depthwise = conv.getClassName() === "DepthwiseConv2D";
  const axis = b.axis as number;
  if ((c.activation ?? "linear") !== "linear" || (c.dataFormat ?? "channelsLast") !== "channelsLast" || (axis !== -1 && axis !== 3)) return undefined;
  const weights = conv.getWeights();
  const kernel = weights[0] as tf.Tensor4D;
  const convBias = c.useBias ? (weights[1] as tf.Tensor1D) : undefined;
  const [, , inC, outPer] = kernel.shape;
  const channels = depthwise ? inC * outPer : outPer;
  // BatchNormalization's weights, in tfjs-layers' order: gamma (if scale), beta (if center), moving mean, moving variance.
  const bw = bn.getWeights();
  let k = 0;
  const gamma = b.scale !== false ? bw[k++] : undefined;
  const beta = b.center !== false ? bw[k++] : undefined;
  const [mean, variance] = [bw[k++], bw[k++]];
  if (!mean || !variance || mean.size !== channels) return undefined;
  const [filter, bias] = tf.tidy((): tf.Tensor[] => {
    const s = tf.div(gamma ?? tf.onesLike(mean), tf.sqrt(tf.add(variance, b.epsilon as number)));
    const f = tf.mul(kernel.reshape([-1, channels]), s.reshape([1, channels])).reshape(kernel.shape);
    const shift = tf.sub(convBias ?? tf.zerosLike(mean), mean);
    return [f, tf.add(tf.mul(shift, s), beta ?? tf.zerosLike(mean))];
  }) as [tf.Tensor4D, tf.Tensor1D];
  const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v as number, v as number]);
  return new FusedConv({
    name: `${conv.name}_folded`,
    depthwise,
    filter,
    bias,
    strides: pair(c.strides),
    padding: c.padding as "same" | "valid",
    dilation: pair(c.dilationRate ?? 1),
    activation,
    outputShape: (s) => conv.computeOutputShape(s) as tf.Shape,
  });
}

/** What `foldBatchNorm` gives: the inference copy, and a dispose that frees what the fold made. */
export interface FoldedModel {
  model: tf.LayersModel;
  /** Convolutions folded (0: `model` is the original itself). */
  folded: number;
  /** Frees the folded filters and biases only: every other layer is the original's, still in use. */
  dispose(): void;
}

/**
 * The inference copy of `model` (see the file's comment). With nothing to fold, or a graph this
 * does not rebuild (a layer applied more than once), the original comes back unchanged.
 */
export function foldBatchNorm(model: tf.LayersModel): FoldedModel {
  const unchanged: FoldedModel = { model, folded: 0, dispose: () => {} };
  const mapped = new Map<number, tf.SymbolicTensor>();
  const skip = new Set<tf.layers.Layer>();
  const made: FusedConv[] = [];
  const inputs = model.inputs.map((t, i) => {
    const input = tf.input({ shape: t.shape.slice(1) as number[], dtype: t.dtype, name: `${model.name}_folded_input_${i}` });
    mapped.set(t.id, input);
    return input;
  });
  const giveUp = () => {
    made.forEach((l) => l.dispose());
    return unchanged;
  };
  const found = chains(model);
  // Nothing to fold: the model itself, untouched.
  if (found.size === 0) return unchanged;
  for (const layer of model.layers) {
    if (skip.has(layer) || layer.getClassName() === "InputLayer") continue;
    const ins = layer.inboundNodes[0].inputTensors.map((t) => mapped.get(t.id));
    if (ins.some((t) => !t)) return giveUp();
    const chain = found.get(layer);
    const fused = chain && foldChain(layer, chain.bn, chain.activation);
    if (chain && fused) {
      made.push(fused);
      mapped.set(firstOutput(chain.act ?? chain.bn).id, fused.apply(ins[0]!) as tf.SymbolicTensor);
      skip.add(chain.bn);
      if (chain.act) skip.add(chain.act);
      continue;
    }
    // The original outputs first: applying the layer again gives it a second node.
    const before = layer.getOutputAt(0);
    const orig = Array.isArray(before) ? before : [before];
    const out = layer.apply(ins.length === 1 ? ins[0]! : (ins as tf.SymbolicTensor[]));
    const outs = (Array.isArray(out) ? out : [out]) as tf.SymbolicTensor[];
    orig.forEach((o, i) => mapped.set(o.id, outs[i]));
  }
  if (made.length === 0) return unchanged;
  const outputs = model.outputs.map((o) => mapped.get(o.id)!);
  return { model: tf.model({ inputs, outputs, name: `${model.name}_folded` }), folded: made.length, dispose: () => made.forEach((l) => l.dispose()) };
}

const inferenceCopies = new WeakMap<tf.LayersModel, FoldedModel>();

/**
 * The model predict() should run for `model`: its batch-norm fold, made once per model and kept
 * while the model lives (disposing the model frees the fold too). Weights changed after the
 * first call (more training) are not seen: call `foldBatchNorm` afresh for that.
 */
export function inferenceModel(model: tf.LayersModel): tf.LayersModel {
  let copy = inferenceCopies.get(model);
  if (!copy) {
    copy = foldBatchNorm(model);
    inferenceCopies.set(model, copy);
    if (copy.folded > 0) {
      const dispose = model.dispose.bind(model);
      const made = copy;
      model.dispose = () => {
        made.dispose();
        inferenceCopies.delete(model);
        return dispose();
      };
    }
  }
  return copy.model;
}
