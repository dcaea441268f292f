/**
 * A MobileNet-v1 (width 1.0) for the benchmark: the depthwise-separable backbone a fine-tuning
 * run would use, built from tfjs layers with fresh weights. bench/torch_mobilenet.py is the same
 * network in PyTorch, so the two sides time the same arithmetic.
 */
import * as tf from "@tensorflow/tfjs";

/** Input side of the benchmark's MobileNet (ImageNet's). */
export const MOBILENET_SIZE = 224;

/** (pointwise filters, depthwise stride) of MobileNet-v1's 13 depthwise-separable blocks. */
const BLOCKS: Array<[number, number]> = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

/**
 * ReLU6 as one op, tf.relu6, as PyTorch's nn.ReLU6 is one. tfjs-layers' ReLU layer with
 * maxValue 6 runs Relu and then ClipByValue, and its "relu6" activation Relu and then a
 * broadcast Minimum: two passes over every activation.
 */
class Relu6 extends tf.layers.Layer {
  static className = "UtkfaceRelu6";
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.relu6(Array.isArray(inputs) ? inputs[0] : inputs);
  }
}
tf.serialization.registerClass(Relu6);

function relu6(): tf.layers.Layer {
  return new Relu6({});
}

/**
 * MobileNet-v1: conv 3x3/2 (32), 13 x [depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6],
 * global average pooling, dense `classes` softmax. Seeded initialisers.
 */
export function buildMobileNetV1(options: { classes: number; size?: number; seed?: number }): tf.LayersModel {
  const size = options.size ?? MOBILENET_SIZE;
  let seed = options.seed ?? 1;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({ inputShape: [size, size, 3], filters: 32, kernelSize: 3, strides: 2, padding: "same", useBias: false, kernelInitializer: init() }),
    tf.layers.batchNormalization(),
    relu6(),
  ];
  for (const [filters, stride] of BLOCKS) {
    layers.push(
      tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: "same", useBias: false, depthwiseInitializer: init() }),
      tf.layers.batchNormalization(),
      relu6(),
      tf.layers.conv2d({ filters, kernelSize: 1, padding: "same", useBias: false, kernelInitializer: init() }),
      tf.layers.batchNormalization(),
      relu6(),
    );
  }
  layers.push(tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: options.classes, activation: "softmax", kernelInitializer: init() }));
  return tf.sequential({ layers });
}
