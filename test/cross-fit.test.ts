/**
 * Cross-fitting (issue 19's honest intervals): a model folder's recipe trained once per fold of
 * the training faces, each fold predicted by the model that left it out; the interval and the
 * gender temperature are then fitted on every training face instead of the validation faces.
 * On the sample faces with frozen face-api features and small heads, so it takes about a minute.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend, setBackendQuiet } from "../lib/engine/backend";
import { SAMPLE_DATA_DIR } from "../lib/core/paths";
import { runBest } from "../lib/best/run";
import { DEFAULT_HEAD_CONFIG } from "../lib/best/head-training";
import { loadBestSplit } from "../lib/best/faces";
import { OUT_OF_FOLD_FILE, OutOfFoldFile, crossFitBest, crossFitFolds } from "../lib/best/cross-fit";
import { calibrateBest } from "../lib/best/calibrate";
import { rewriteModelCard } from "../lib/best/run";
import { predictBestFiles } from "../lib/best/model-folder";

setBackendQuiet(true);
let tmp: string;
before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cross-fit-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the folds deal every training face into exactly one fold, sizes within one, never a test face", async () => {
  const split = await loadBestSplit({ dir: SAMPLE_DATA_DIR });
  const folds = crossFitFolds(split, 5);
  const flat = folds.flat();
  assert.equal(flat.length, split.train.length);
  assert.deepEqual([...flat].sort((a, b) => a - b), [...split.train].sort((a, b) => a - b));
  const sizes = folds.map((f) => f.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fold sizes ${sizes}`);
  const test = new Set(split.test);
  assert.ok(flat.every((i) => !test.has(i)));
  // The validation faces are spread over the folds, not one fold of their own.
  const validation = new Set(split.validation);
  assert.ok(folds.every((f) => f.some((i) => validation.has(i))));
  assert.deepEqual(crossFitFolds(split, 5), folds, "seeded: the same folds every time");
  assert.throws(() => crossFitFolds(split, 1), /whole number from 2 to 20, got 1/);
});

test("cross-fit predicts every training face out of fold, resumes at the missing fold, and calibrate --out-of-fold fits on them", async () => {
  const outDir = path.join(tmp, "best");
  const cacheDir = path.join(tmp, "cache");
  const config = { ...DEFAULT_HEAD_CONFIG, name: "mlp 256", epochs: 20 };
  await runBest({ dir: SAMPLE_DATA_DIR, outDir, cacheDir, steps: [{ kind: "heads", description: "MLP 256", config }], log: () => {}, speedFaces: 2 });
  const split = await loadBestSplit({ dir: SAMPLE_DATA_DIR });
  const workDir = path.join(tmp, "crossfit");
  const lines: string[] = [];
  const result = await crossFitBest({ modelDir: outDir, folds: 3, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: (l) => lines.push(l) });
  assert.equal(result.folds, 3);
  assert.equal(result.model, "mlp 256");
  assert.equal(result.foldMae.length, 3);
  assert.deepEqual(result.predictions.map((p) => p.file), split.train.map((i) => split.records[i].file));
  const third = split.train.length / 3;
  assert.ok(result.fitFaces.min >= Math.floor(split.train.length - Math.ceil(third)) && result.fitFaces.max <= split.train.length - Math.floor(third), JSON.stringify(result.fitFaces));
  for (const p of result.predictions) assert.ok(p.q10 <= p.q90 && p.predAge >= 0 && p.predAge <= 116, `${p.file}: ${p.q10} ${p.predAge} ${p.q90}`);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(outDir, OUT_OF_FOLD_FILE), "utf8")), JSON.parse(JSON.stringify(result)));

  // Out of fold means unseen: the final model (trained on every training face) predicts the
  // same faces better than the fold models that never saw them.
  const some = split.train.slice(0, 200);
  const final = await predictBestFiles(outDir, some.map((i) => split.files[i]));
  const oof = new Map(result.predictions.map((p) => [p.file, p]));
  const mae = (xs: { age: number; predAge: number }[]) => xs.reduce((s, r) => s + Math.abs(r.age - r.predAge), 0) / xs.length;
  const seen = mae(some.map((i, k) => ({ age: split.records[i].age, predAge: final[k].age! })));
  const unseen = mae(some.map((i) => oof.get(split.records[i].file)!));
  assert.ok(unseen > seen + 0.3, `out of fold ${unseen}, in sample ${seen}`);
  // The ablation's validation faces were predicted by a model fitted on the other training faces too: about as well.
  const validation = JSON.parse(fs.readFileSync(path.join(outDir, "validation-predictions.json"), "utf8")) as { predictions: { file: string; age: number; predAge: number }[] };
  const ablationMae = mae(validation.predictions);
  const valOof = mae(validation.predictions.map((p) => oof.get(p.file)!));
  assert.ok(Math.abs(valOof - ablationMae) < 0.35 * ablationMae, `validation faces: out of fold ${valOof}, ablation ${ablationMae}`);

  // Resume: a deleted fold is trained again, the others are read back as they were.
  const fold1 = fs.readFileSync(path.join(workDir, fs.readdirSync(workDir)[0], "fold-1.json"), "utf8");
  const key = fs.readdirSync(workDir)[0];
  fs.rmSync(path.join(workDir, key, "fold-2.json"));
  lines.length = 0;
  const again = await crossFitBest({ modelDir: outDir, folds: 3, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /fold 1 of 3: done before/.test(l)) && lines.some((l) => /fold 2 of 3: mlp 256 on \d+ training faces/.test(l)) && lines.some((l) => /fold 3 of 3: done before/.test(l)), lines.join("\n"));
  assert.equal(fs.readFileSync(path.join(workDir, key, "fold-1.json"), "utf8"), fold1);
  assert.equal(again.predictions.length, result.predictions.length);

  // Calibrate on them (after a calibration on the validation faces): fitted on every training
  // face, the earlier look at the test split kept, and the card says both.
  const first = await calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, log: () => {} });
  assert.equal(first.earlierLooks, undefined);
  const record = await calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, outOfFold: true, log: () => {} });
  assert.deepEqual(record.earlierLooks, [{ fittedOn: first.age.fittedOn, testCoverage: first.test.coverage.coverage, testMeanWidth: first.test.coverage.meanWidth }]);
  const again2 = await calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, outOfFold: true, log: () => {} });
  assert.equal(again2.earlierLooks?.length, 1, "the same calibration again is not another kind of look");
  assert.equal(record.age.fittedOn.faces, split.train.length);
  assert.equal(record.age.fittedOn.split, "out-of-fold training");
  assert.equal(record.source.folds, 3);
  assert.deepEqual(record.source.foldMae, result.foldMae);
  assert.equal(record.fitted?.faces, split.train.length);
  assert.ok(Math.abs(record.fitted!.mae - result.predictions.reduce((sum, p) => sum + Math.abs(p.predAge - p.age), 0) / result.predictions.length) < 1e-9);
  assert.ok(Math.abs(record.validation.coverage.coverage - 0.8) < 0.03, `fitted coverage ${record.validation.coverage.coverage}`);
  assert.equal(record.test.faces, split.test.length);
  const card = rewriteModelCard(outDir);
  assert.match(card, /fitted on out-of-fold predictions of all \d+ training faces: the recipe of mlp 256 trained 3 times/);
  assert.match(card, /best cross-fit --from .* --folds 3/);
  assert.match(card, /\| training, out of fold \(fitted on\), \d+ \|/);
  assert.match(card, /\(looked at twice, see below\)/);
  assert.match(card, /Out of fold the recipe itself is measured on \d+ faces instead of the test split's \d+: MAE \d+\.\d\d, gender \d+\.\d% \(0-3 /);
  assert.match(card, /Before this, the test split was scored once with the same model and a calibration fitted on the \d+ validation faces: \d+\.\d% inside/);

  // Out-of-fold predictions of another recipe (the folder was retrained since) are refused.
  const retrained = JSON.parse(fs.readFileSync(path.join(outDir, "best.json"), "utf8"));
  fs.writeFileSync(path.join(outDir, "best.json"), JSON.stringify({ ...retrained, config: { ...retrained.config, epochs: 21 } }));
  await assert.rejects(calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, outOfFold: true, log: () => {} }), /out-of-fold-predictions.json was cross-fitted with another recipe than .*best.json's \(it was retrained since\): rerun npm run cli -- best cross-fit/);
  fs.writeFileSync(path.join(outDir, "best.json"), JSON.stringify(retrained));

  // A file that holds a test face is refused, naming the file and the face.
  const bad: OutOfFoldFile = { ...result, predictions: [...result.predictions.slice(1), { ...result.predictions[0], file: split.records[split.test[0]].file }] };
  fs.writeFileSync(path.join(outDir, OUT_OF_FOLD_FILE), JSON.stringify(bad));
  await assert.rejects(calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, outOfFold: true, log: () => {} }), new RegExp(`out-of-fold-predictions.json holds ${result.predictions.length} faces, 1 of them outside the ${split.train.length} training faces .*first: ${split.records[split.test[0]].file.replace(/\./g, "\\.")}`));
});
