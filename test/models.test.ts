import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { EIGHT_AGE_RANGES, groupCount } from "../lib/data/labels";
import { MODELS, buildModel, specLosses } from "../lib/models/registry";
import { saveModel } from "../lib/models/model-files";
import { lossesFor } from "../lib/training/train";
import { loadFaces } from "../lib/data/dataset";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { prepareExperiment } from "../lib/training/experiment";

setBackendQuiet(true);
const SIZE = 32;

test("every model builds with the output shape its task needs", async () => {
  await initBackend();
  const expected: Record<string, number[][]> = {
    "cnn-age-sigmoid": [[2, 20]],
    "cnn-age-relu": [[2, 1]],
    "cnn-gender": [[2, 1]],
    "cnn-multi": [[2, 20], [2, 1]],
    vgg19: [[2, 20]],
    "cnn-seed000": [[2, groupCount(EIGHT_AGE_RANGES)]],
    "facenet-transfer": [[2, 20], [2, 1]],
  };
  for (const [name, spec] of Object.entries(MODELS)) {
    if (spec.needsPretrained) continue;
    const channels = spec.color === "rgb" ? 3 : 1;
    // Models that cannot take SIZE (the face-api backbone needs >= 103) use their own quick size.
    const size = spec.profiles?.quick?.size ?? SIZE;
    const model = buildModel(name, { size, channels });
    const out = tf.tidy(() => {
      const y = model.predict(tf.zeros([2, size, size, channels]));
      return (Array.isArray(y) ? y : [y]).map((t) => t.shape);
    });
    assert.deepEqual(out, expected[name], name);
    // The losses a run records before building anything are the ones its built heads train with.
    assert.deepEqual(specLosses(spec), lossesFor(spec.task, model), `${name}: declared heads differ from the built model`);
    model.dispose();
  }
});

test("an input too small for five poolings is a clear error", () => {
  assert.throws(() => buildModel("cnn-gender", { size: 16 }), /Input size 16 is too small.*>= 32/);
  assert.doesNotThrow(() => buildModel("cnn-gender", { size: 32 }).dispose?.());
});

test("an unknown model name lists the known ones", () => {
  assert.throws(() => buildModel("resnet"), /Unknown model "resnet". Known models: cnn-age-sigmoid/);
});

test("vgg19-pretrained loads conv weights by layer name and rejects wrong shapes", async () => {
  await initBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vgg-"));
  try {
    // Fake "Keras" weights: our own VGG19 at a small size, saved in the tfjs layers format.
    const source = buildModel("vgg19", { size: SIZE, seed: 7 });
    await saveModel(source, path.join(tmp, "good"));
    const loaded = buildModel("vgg19-pretrained", { size: SIZE, seed: 1, pretrainedWeights: path.join(tmp, "good", "model.json") });
    const a = source.getLayer("block3_conv2").getWeights()[0];
    const b = loaded.getLayer("block3_conv2").getWeights()[0];
    assert.equal(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], 0);
    assert.equal(loaded.getLayer("block1_conv1").trainable, false);
    assert.equal(loaded.getLayer("fc1").trainable, true);

    const gray = buildModel("vgg19", { size: SIZE, channels: 1 });
    await saveModel(gray, path.join(tmp, "gray"));
    assert.throws(
      () => buildModel("vgg19-pretrained", { size: SIZE, pretrainedWeights: path.join(tmp, "gray", "model.json") }),
      /layer "block1_conv1" weight 0 has shape \[3,3,1,64\], the model expects \[3,3,3,64\]/,
    );
    assert.throws(() => buildModel("vgg19-pretrained", { size: SIZE }), /needs pretrainedWeights/);
    assert.throws(() => buildModel("vgg19-pretrained", { size: SIZE, pretrainedWeights: path.join(tmp, "none.json") }), /do not exist/);
    [source, loaded, gray].forEach((m) => m.dispose());
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("a model's own default learning rate (VGG19 1e-4: it collapses at 1e-3) applies unless the run sets one", async () => {
  const data = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "rgb" });
  const vgg = await prepareExperiment({ model: "vgg19", data, size: 32, maxImages: 8 });
  assert.equal(vgg.hyper.learningRate, 1e-4);
  const chosen = await prepareExperiment({ model: "vgg19", data, size: 32, maxImages: 8, learningRate: 3e-4 });
  assert.equal(chosen.hyper.learningRate, 3e-4);
  const gray = await loadFaces({ dir: SAMPLE_DATA_DIR, size: 32, color: "gray" });
  const cnn = await prepareExperiment({ model: "cnn-gender", data: gray, size: 32, maxImages: 8 });
  assert.equal(cnn.hyper.learningRate, 1e-3);
});
