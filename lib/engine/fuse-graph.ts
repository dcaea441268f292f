/**
 * Fuses the convolution chains of a converted TensorFlow graph model into tfjs's fused
 * convolutions, before tfjs loads it. Keras graphs exported without TensorFlow's optimiser
 * (human's faceres is one) spell a MobileNet block as six nodes:
 *
 *   Conv2D | DepthwiseConv2dNative -> [Mul scale] -> Add shift -> Relu -> Minimum 6 -> Maximum 0
 *
 * (batch normalisation folded into a scale and a shift, ReLU6 as clip_by_value). Each of those
 * nodes is a separate pass over the activations on the wasm backend; as one `_FusedConv2D` /
 * `FusedDepthwiseConv2dNative` with BiasAdd and Relu6 they become one convolution whose bias and
 * clamp run as its post-ops (lib/engine/onednn). The scale is folded into the filter
 * (filter x scale per output channel), the mathematically equal rewrite TensorFlow's own
 * graph optimiser makes, so outputs agree to float rounding.
 *
 * Only chains whose every inner node has one consumer and is no output of the model are
 * rewritten; anything else is left as it is.
 */
import * as tf from "@tensorflow/tfjs";

/** One node of a TensorFlow GraphDef in its JSON form (what tfjs-converter writes). */
interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
  device?: string;
}

/** What `fuseConvChains` gives back. */
export interface FusedGraph {
  artifacts: tf.io.ModelArtifacts;
  /** Convolutions that now carry their bias (and activation) as post-ops. */
  fused: number;
  /** Nodes removed from the graph. */
  removed: number;
}

const CONVS: Record<string, string> = { Conv2D: "_FusedConv2D", DepthwiseConv2dNative: "FusedDepthwiseConv2dNative" };
const ADDS = new Set(["Add", "AddV2", "BiasAdd"]);

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

/** The node name an input reference points at ("name:1" and "^name" alike). */
function source(ref: string): string {
  return ref.replace(/^\^/, "").replace(/:\d+$/, "");
}

/** Names the model's signature lists as outputs (kept as they are). */
function outputNames(art: tf.io.ModelArtifacts): Set<string> {
  const sig = (art.signature ?? {}) as { outputs?: Record<string, { name?: string }> };
  const names = Object.entries(sig.outputs ?? {}).map(([key, o]) => source(o.name ?? key));
  return new Set(names);
}

/**
 * The model with every convolution chain described above fused. Throws when the artifacts
 * are no graph model (no node list or no weights); a model without such chains comes back
 * unchanged in its graph, its weights re-encoded as float32.
 */
export async function fuseConvChains(art: tf.io.ModelArtifacts): Promise<FusedGraph> {
  const topology = art.modelTopology as { node?: GraphNode[] } | undefined;
  if (!topology || !Array.isArray(topology.node) || !art.weightSpecs || !art.weightData) {
    throw new Error("fuseConvChains needs a tfjs graph model's artifacts (a GraphDef node list, weightSpecs and weightData).");
  }
  const nodes = topology.node;
  const weights: tf.NamedTensorMap = tf.io.decodeWeights(art.weightData, art.weightSpecs);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumers = new Map<string, GraphNode[]>();
  for (const n of nodes) for (const ref of n.input ?? []) {
    const s = source(ref);
    consumers.set(s, [...(consumers.get(s) ?? []), n]);
  }
  const outputs = outputNames(art);

  /** The one consumer of `n`, when `n` may disappear into a fused node. */
  const next = (n: GraphNode): GraphNode | undefined => {
    const c = consumers.get(n.name) ?? [];
    return c.length === 1 && !outputs.has(n.name) ? c[0] : undefined;
  };
  /** The constant operand of a two-input node whose other operand is `from`. */
  const constOperand = (n: GraphNode, from: GraphNode): tf.Tensor | undefined => {
    const ins = (n.input ?? []).map(source);
    if (ins.length !== 2) return undefined;
    const other = ins[0] === from.name ? ins[1] : ins[1] === from.name ? ins[0] : undefined;
    return other !== undefined && byName.get(other)?.op === "Const" ? weights[other] : undefined;
  };
  const scalarIs = (t: tf.Tensor | undefined, v: number) => t !== undefined && t.size === 1 && t.dataSync()[0] === v;

  const replace = new Map<string, GraphNode>();
  const drop = new Set<string>();
  const newConsts: GraphNode[] = [];
  let fused = 0;
  for (const conv of nodes) {
    const fusedOp = CONVS[conv.op];
    const [xRef, filterRef] = conv.input ?? [];
    if (!fusedOp || xRef === undefined || filterRef === undefined) continue;
    const filter = byName.get(source(filterRef))?.op === "Const" ? weights[source(filterRef)] : undefined;
    if (!filter || filter.rank !== 4) continue;
    const [, , ci, co] = filter.shape as [number, number, number, number];
    const channels = conv.op === "Conv2D" ? co : ci * co;
    const chain: GraphNode[] = [conv];
    let last = conv;
    let node = next(conv);
    let scale: tf.Tensor | undefined;
    if (node?.op === "Mul") {
      const s = constOperand(node, last);
      if (s?.size === channels) { scale = s; chain.push(node); last = node; node = next(node); }
    }
    const bias = node && ADDS.has(node.op) ? constOperand(node, last) : undefined;
    if (!node || !bias || bias.size !== channels) continue;
    chain.push(node);
    last = node;
    let activation: string | undefined;
    node = next(node);
    if (node?.op === "Relu6") {
      activation = "Relu6"; chain.push(node); last = node;
    } else if (node?.op === "Relu") {
      activation = "Relu"; chain.push(node); last = node;
      const min = next(node);
      if (min?.op === "Minimum" && scalarIs(constOperand(min, node), 6)) {
        activation = "Relu6"; chain.push(min); last = min;
        const max = next(min);
        // max(relu6(x), 0) is relu6(x): the clamp's lower end, written twice.
        if (max?.op === "Maximum" && scalarIs(constOperand(max, min), 0)) { chain.push(max); last = max; }
      }
    }

    const filterName = scale ? `${conv.name}/fused_filter` : source(filterRef);
    if (scale) {
      const flat = filter.reshape([-1, channels]);
      weights[filterName] = tf.mul(flat, scale.reshape([1, channels])).reshape(filter.shape);
      flat.dispose();
      newConsts.push(constNode(filterName, filter.shape));
    }
    const biasName = `${conv.name}/fused_bias`;
    weights[biasName] = bias.reshape([channels]);
    newConsts.push(constNode(biasName, [channels]));
    const ops = activation ? ["BiasAdd", activation] : ["BiasAdd"];
    replace.set(last.name, {
      name: last.name,
      op: fusedOp,
      input: [xRef, filterName, biasName],
      device: conv.device,
      attr: { ...conv.attr, fused_ops: { list: { s: ops.map(b64) } }, num_args: { i: "1" }, epsilon: { f: 0 } },
    });
    for (const n of chain) if (n !== last) drop.add(n.name);
    fused++;
  }

  let kept = nodes.filter((n) => !drop.has(n.name)).map((n) => replace.get(n.name) ?? n);
  kept = [...kept, ...newConsts];
  // Constants nothing reads any more (the unfolded filters, scales, shifts, 6 and 0).
  const used = new Set(kept.flatMap((n) => (n.input ?? []).map(source)));
  for (const o of outputs) used.add(o);
  const removedConsts = kept.filter((n) => n.op === "Const" && !used.has(n.name));
  kept = kept.filter((n) => !(n.op === "Const" && !used.has(n.name)));
  const live: tf.NamedTensorMap = {};
  for (const n of kept) if (n.op === "Const" && weights[n.name]) live[n.name] = weights[n.name];
  const encoded = await tf.io.encodeWeights(live);
  tf.dispose(Object.values(weights));
  return {
    artifacts: { ...art, modelTopology: { ...topology, node: kept }, weightSpecs: encoded.specs, weightData: encoded.data },
    fused,
    removed: drop.size + removedConsts.length,
  };
}

function constNode(name: string, shape: readonly number[]): GraphNode {
  return {
    name,
    op: "Const",
    attr: {
      value: { tensor: { dtype: "DT_FLOAT", tensorShape: { dim: shape.map((s) => ({ size: String(s) })) } } },
      dtype: { type: "DT_FLOAT" },
    },
  };
}
