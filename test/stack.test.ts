/**
 * Stacking (issue 19's second backbone): a folder's model and heads on faceres's frozen features,
 * combined by weights fitted on out-of-fold predictions of every training face. On the sample
 * faces with a frozen face-api model as the first member, so it takes a couple of minutes.
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
import { OUT_OF_FOLD_FILE, OutOfFoldFile, crossFitBest } from "../lib/best/cross-fit";
import { calibrateBest } from "../lib/best/calibrate";
import { rewriteModelCard } from "../lib/best/run";
import { BEST_MODEL_FILE, BestModelFile, predictBestFiles } from "../lib/best/model-folder";
import { STACK_FINE_TUNE, memberConfig, stackBest } from "../lib/best/stack";
import { stackFineTune } from "../lib/cli/best";
import { modelInputs } from "../lib/best/fine-tuning";
import { fitLogistic, fitStack, logit, stackRows } from "../lib/best/stack-weights";

setBackendQuiet(true);
let tmp: string;
before(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stack-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8")) as T;

test("fitLogistic recovers the weights that generated real labels' logits; fitStack refuses members of other faces", async () => {
  // The sample's genders, with two noisy scores whose log odds are known linear functions.
  const split = await loadBestSplit({ dir: SAMPLE_DATA_DIR });
  const y = split.records.map((r) => r.gender as number);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const x = y.map((g) => [g ? 1 + 2 * rand() : -1 - 2 * rand(), 4 * rand() - 2]);
  // Labels drawn from P(y=1) = sigmoid(0.5 + 2 x0 - 1 x1).
  const drawn = x.map(([a, b]) => (rand() < 1 / (1 + Math.exp(-(0.5 + 2 * a - b))) ? 1 : 0));
  const [w0, w1, w2] = fitLogistic(x, drawn);
  assert.ok(Math.abs(w0 - 0.5) < 0.5 && Math.abs(w1 - 2) < 0.6 && Math.abs(w2 + 1) < 0.4, `weights ${w0} ${w1} ${w2}`);
  const row = (file: string) => ({ file, age: 30, gender: 1, predAge: 30, q10: 25, q90: 35, pFemale: 0.6 });
  assert.throws(() => fitStack([[row("a")], [row("b")]], 3), /not of the same faces in the same order/);
  assert.throws(() => fitStack([[row("a")]], 3), /combines two members, got 1/);
});

test("best stack --fine-tune: the member fine-tunes faceres's last block on its maps; options without --fine-tune or with bad values are errors", () => {
  const ft = stackFineTune({ "fine-tune": true, "fine-tune-epochs": "3", "fine-tune-lr": "1e-4" }, STACK_FINE_TUNE);
  assert.deepEqual(ft, { ...STACK_FINE_TUNE, epochs: 3, learningRate: 1e-4 });
  assert.deepEqual(stackFineTune({ "fine-tune": true }, STACK_FINE_TUNE), STACK_FINE_TUNE);
  assert.equal(stackFineTune({}, STACK_FINE_TUNE), undefined);
  assert.throws(() => stackFineTune({ "fine-tune-epochs": "3" }, STACK_FINE_TUNE), /add --fine-tune/);
  assert.throws(() => stackFineTune({ "fine-tune": true, "fine-tune-lr": "fast" }, STACK_FINE_TUNE), /--fine-tune-lr must be a number > 0, got "fast"/);
  assert.throws(() => stackFineTune({ "fine-tune": true, "fine-tune-epochs": "0" }, STACK_FINE_TUNE), /--fine-tune-epochs must be an integer >= 1, got "0"/);
  const base = { ...DEFAULT_HEAD_CONFIG, fineTune: { epochs: 4, learningRate: 1e-3, batchSize: 32 } };
  const member = memberConfig(base, "faceres-caffe", ft);
  assert.deepEqual(member.features, [{ backbone: "faceres-caffe" }]);
  assert.equal(member.fineTune?.maps, "faceres-caffe-maps");
  assert.deepEqual(modelInputs(member), [{ backbone: "faceres-caffe-maps" }]);
  assert.equal(memberConfig(base, "faceres-caffe").fineTune, undefined, "the folder's own fine-tuning is not the member's");
  assert.throws(() => memberConfig(base, "faceres", ft), /needs --backbone faceres-caffe, got faceres/);
});

test("best stack: a second member on faceres, weights from out-of-fold rows, the predictor applies them, calibrate scores the stacked model", async () => {
  const outDir = path.join(tmp, "best");
  const cacheDir = path.join(tmp, "cache");
  const workDir = path.join(tmp, "crossfit");
  const config = { ...DEFAULT_HEAD_CONFIG, name: "mlp 256", epochs: 20 };
  await runBest({ dir: SAMPLE_DATA_DIR, outDir, cacheDir, steps: [{ kind: "heads", description: "MLP 256", config }], log: () => {}, speedFaces: 2 });
  const split = await loadBestSplit({ dir: SAMPLE_DATA_DIR });
  await assert.rejects(stackBest({ modelDir: outDir, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: () => {} }), /out-of-fold-predictions.json.*best cross-fit --from/);
  const base = await crossFitBest({ modelDir: outDir, folds: 3, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: () => {} });
  const unstacked = readJson<BestModelFile>(path.join(outDir, BEST_MODEL_FILE));

  const lines: string[] = [];
  const record = await stackBest({ modelDir: outDir, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: (l) => lines.push(l) });
  const file = readJson<BestModelFile>(path.join(outDir, BEST_MODEL_FILE));
  assert.equal(file.format, "utkface-best-v5");
  assert.equal(file.ensemble?.[0].heads, "heads-2");
  assert.deepEqual(file.ensemble?.[0].config.features, [{ backbone: "faceres-caffe" }]);
  assert.equal(file.ensemble?.[0].config.fineTune, undefined);
  assert.ok(fs.existsSync(path.join(outDir, "heads-2", "model.json")));
  assert.equal(file.calibration, undefined, "the first member's calibration does not fit the stack");
  assert.deepEqual(file.stack, { ageWeights: record.ageWeights, gender: record.gender, fittedOn: { split: "out-of-fold training", faces: split.train.length, folds: 3 } });
  assert.ok(Math.abs(record.ageWeights[0] + record.ageWeights[1] - 1) < 1e-9 && record.ageWeights.every((w) => w >= 0 && w <= 1));

  // The out-of-fold file keeps each member's rows; its predictions are their stack.
  const oof = readJson<OutOfFoldFile>(path.join(outDir, OUT_OF_FOLD_FILE));
  assert.deepEqual(oof.members?.[0].predictions, base.predictions);
  assert.equal(oof.members?.[1].predictions.length, split.train.length);
  assert.deepEqual(oof.predictions, stackRows(file.stack!, oof.members!.map((m) => m.predictions)));
  // Nested out of fold, the stack is no worse than its weaker member on age and on gender.
  const [a, b, both] = record.outOfFold;
  assert.ok(both.mae < Math.max(a.mae, b.mae), `stack ${both.mae}, members ${a.mae} ${b.mae}`);
  assert.ok(both.genderAccuracy >= Math.min(a.genderAccuracy, b.genderAccuracy), `stack ${both.genderAccuracy}, members ${a.genderAccuracy} ${b.genderAccuracy}`);
  assert.ok(lines.some((l) => /\[stack\] out of fold, \d+ training faces, stack \(nested/.test(l)), lines.join("\n"));

  // The predictor: the stack of what each member predicts alone.
  const alone = (name: string, member: { config: BestModelFile["config"]; standardizer: BestModelFile["standardizer"] }, heads: string) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(outDir, heads), path.join(dir, "heads"), { recursive: true });
    fs.writeFileSync(path.join(dir, BEST_MODEL_FILE), JSON.stringify({ ...unstacked, calibration: undefined, config: member.config, standardizer: member.standardizer, mirrored: file.mirrored }));
    return dir;
  };
  const faces = split.test.slice(0, 24).map((i) => split.files[i]);
  const first = await predictBestFiles(alone("first", file, "heads"), faces);
  const second = await predictBestFiles(alone("second", file.ensemble![0], "heads-2"), faces);
  const stacked = await predictBestFiles(outDir, faces);
  stacked.forEach((p, i) => {
    const age = record.ageWeights[0] * first[i].age! + record.ageWeights[1] * second[i].age!;
    const z = record.gender.intercept + record.gender.weights[0] * logit(first[i].pFemale!) + record.gender.weights[1] * logit(second[i].pFemale!);
    assert.ok(Math.abs(p.age! - age) < 1e-4, `${p.file}: age ${p.age} against ${age}`);
    assert.ok(Math.abs(logit(p.pFemale!) - z) < 1e-3, `${p.file}: logit ${logit(p.pFemale!)} against ${z} (first ${first[i].pFemale}, second ${second[i].pFemale})`);
  });

  // A stacked folder is cross-fitted by best stack, not best cross-fit.
  await assert.rejects(crossFitBest({ modelDir: outDir, folds: 3, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: () => {} }), /is stacked: its out-of-fold predictions are written by npm run cli -- best stack/);
  // Stacking again starts from the first member's rows and reads the second's folds back.
  lines.length = 0;
  const again = await stackBest({ modelDir: outDir, dir: SAMPLE_DATA_DIR, cacheDir, workDir, log: (l) => lines.push(l) });
  assert.equal(lines.filter((l) => /fold \d of 3: done before/.test(l)).length, 3, lines.join("\n"));
  assert.deepEqual(again.ageWeights, record.ageWeights);
  assert.deepEqual(readJson<OutOfFoldFile>(path.join(outDir, OUT_OF_FOLD_FILE)).members?.[0].predictions, base.predictions);

  // Calibrate on the stacked rows: the interval holds 80% of them, and the test figures are the stacked predictor's.
  const cal = await calibrateBest({ modelDir: outDir, from: outDir, dir: SAMPLE_DATA_DIR, outOfFold: true, log: () => {} });
  assert.ok(Math.abs(cal.validation.coverage.coverage - 0.8) < 0.03, `fitted coverage ${cal.validation.coverage.coverage}`);
  assert.equal(readJson<BestModelFile>(path.join(outDir, BEST_MODEL_FILE)).format, "utkface-best-v5");
  const metrics = readJson<{ test: { mae: number; genderAccuracy: number } }>(path.join(outDir, "metrics.json"));
  const preds = readJson<{ file: string; age: number; gender: number; predAge: number; pFemale: number; ageLow: number; ageHigh: number }[]>(path.join(outDir, "predictions.json"));
  assert.equal(preds.length, split.test.length);
  const mae = preds.reduce((s, p) => s + Math.abs(p.predAge - p.age), 0) / preds.length;
  assert.ok(Math.abs(metrics.test.mae - mae) < 0.01 && Math.abs(cal.test.mae - metrics.test.mae) < 1e-9, `metrics ${metrics.test.mae}, predictions ${mae}, calibrate ${cal.test.mae}`);
  const byFile = new Map(stacked.map((p) => [p.file, p]));
  for (const p of preds.filter((x) => byFile.has(path.join(SAMPLE_DATA_DIR, x.file)))) assert.ok(Math.abs(p.predAge - byFile.get(path.join(SAMPLE_DATA_DIR, p.file))!.age!) < 0.01, p.file);
  const card = rewriteModelCard(outDir);
  assert.match(card, /### Stacking with faceres \(issue 19, out of fold: training faces only\)/);
  assert.match(card, /\| stack \(nested: each fold by weights fitted on the others\) \| \d+\.\d\d \| \d+\.\d% \|/);
  assert.match(card, /best stack --from models\/best --backbone faceres-caffe/);
  assert.doesNotMatch(card, /best cross-fit --from models\/best --folds 3\nUTKFACE_DIR=\S+ npm run cli -- best calibrate/);
});
