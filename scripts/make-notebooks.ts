/**
 * Writes notebooks/*.ipynb from the cell lists below, outputs cleared (the committed form).
 * Edit the cells here and run `npx tsx scripts/make-notebooks.ts`, or edit a notebook in
 * JupyterLab and clear its outputs before committing; both give the same file format.
 */
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../lib/core/paths";
import { profileSettings } from "../lib/training/profile";
import { kernelspecMetadata } from "./jupyter";

const QUICK = profileSettings("quick");
const FULL = profileSettings("full");

type Cell = { cell_type: "markdown" | "code"; source: string };
const md = (s: string): Cell => ({ cell_type: "markdown", source: s.trim() });
const code = (s: string): Cell => ({ cell_type: "code", source: s.trim() });

/**
 * What the quick run of a training notebook shows, in figures measured with `npm start` on the
 * shipped sample (issue 21; docs/notebooks.md has the table and the command). Rerun and update
 * them when the quick profile changes.
 */
const QUICK_SHOWS: Record<string, string> = {
  "02": "on 400 held-out faces the sigmoid age model gets 26.0% of age groups right (baseline 18.3%) with an MAE of 17.2 years (baseline 22.2), and the gender model 67.0% (baseline 48.5%).",
  "03": "on 400 held-out faces the ReLU age model has an MAE of 11.9 years (baseline 22.2) and gets 23.5% of age groups right (baseline 18.3%).",
  "04": "on 400 held-out faces VGG19, from scratch at 32x32 for 7 epochs, gets 25.5% of age groups right (baseline 18.3%) with an MAE of 16.0 years (baseline 22.2); set `VGG19_WEIGHTS` to start from ImageNet weights instead.",
  "05": "3 folds of 9, 8 and 7 epochs of the multi-output CNN, each scored on its own 666-667 validation faces: age groups 29.4%, 29.2%, 27.5% (baselines 18.1-18.6%), age MAE 14.9, 12.6, 14.2 years (baselines 22.0, 21.3, 21.4) and genders 75.1%, 75.1%, 76.6% (baselines 50.5%, 59.2%, 54.7%), no collapse.",
  "06": "on the same 400 held-out faces the multi-output CNN gets 26.3% of age groups right (baseline 18.3%), an MAE of 14.7 years (baseline 22.2) and 74.3% of genders (baseline 48.5%); the table below has every model.",
};

/** The line under the header of a training notebook: what its quick run shows, against what. */
function quickShows(notebook: string): string {
  return `**What the quick run shows** (\`npm start\` on the shipped ${QUICK.maxImages.toLocaleString("en-US")} faces, 2 cores; each figure beside the majority baseline, the training split's most common answer, on the same held-out faces): ${QUICK_SHOWS[notebook]} The full-profile reference shown after the figures is what the report's protocol gives.`;
}

/** The header: what the notebook reproduces and how long it takes; `shows` is the notebook whose quick results it states (02-06), false for those that train nothing in the quick profile. */
function header(title: string, reproduces: string, quick: string, full: string, shows: string | false): Cell {
  return md(`# ${title}

${reproduces}
${shows ? `\n${quickShows(shows)}\n` : ""}
| profile | what runs | time on 2 CPU cores |
|---|---|---|
| quick (default, \`EXPERIMENT_PROFILE=quick\`) | at most ${QUICK.maxImages} images, ${QUICK.size}x${QUICK.size} inputs, ${QUICK.epochs} epochs, batch ${QUICK.batchSize}, Adam ${QUICK.learningRate}: the models learn visibly | ${quick} |
| full (\`EXPERIMENT_PROFILE=full\`) | the report's protocol: all images, ${FULL.size}x${FULL.size}, ${FULL.epochs} epochs | ${full} |

Data: \`UTKFACE_DIR\` if set, else \`data/UTKFace\`, else the shipped sample \`data/sample\`.
Every cell can be rerun, and the whole notebook can be run again in the same kernel.`);
}

/**
 * The Figures section of a training notebook: show every figure of its runs, then export them
 * into each run's own folder (results/<experiment>/<run-id>/figures/), copied to results/figures/.
 */
function runFiguresCells(runs: string): Cell[] {
  return [
    md("## Figures\nEach run's figures are saved in its own folder, `results/<experiment>/<run-id>/figures/`, and copied to `results/figures/`."),
    code(`
const figureRuns = ${runs};
ut.showFigures(figureRuns.flatMap((run) => ut.runFigures(run)));
const written = await ut.exportRunFigures(figureRuns);
console.log(written.inRuns.map((f) => ut.portablePath(f)).join("\\n"));
console.log(\`copied to \${ut.portablePath(ut.FIGURES_DIR)}/\`);
`),
  ];
}

/** The full-profile reference of the same analysis, beside the quick run (lib/notebook/show-reference.ts). */
function referenceCells(call: string): Cell[] {
  return [
    md("### Beside this run: the full-profile reference\nThe same analysis from the committed reference run of the report's protocol (`results/reference/`), titled as such; a line says so when none is committed yet."),
    code(call),
  ];
}

const SETUP = code(`
import * as ut from "../dist/lib";
ut.initNotebookPlotly();
const profile = ut.profileSettings();
const dataDir = ut.resolveDataDir();
const backend = await ut.initBackend();
ut.showTable([{ profile: profile.profile, size: profile.size, epochs: profile.epochs, maxImages: profile.maxImages ?? "all", data: ut.portablePath(dataDir), backend: backend.reason }], { title: "Configuration" });
`);

const MEMORY = code(`
// Live tensors now: rerunning the notebook in this kernel must not make this grow.
console.log(\`live tensors: \${ut.tf.memory().numTensors}\`);
`);

export const NOTEBOOKS: Record<string, Cell[]> = {
  "01-data-exploration": [
    header(
      "01 · Data exploration",
      "Reproduces the report's look at UTKFace: the load report, faces per age group and gender (the report's **Figure 7**), the age histogram, race and gender shares, sample faces with their labels, danfo.js summary tables, and pixel statistics after the 70x70 grayscale transform.",
      "about 15 s on the sample (first load decodes and caches; later runs read the cache)",
      "about 1 min for 8,819 faces on the first load, seconds afterwards",
      false,
    ),
    md("## Setup"),
    SETUP,
    md("## Data\nLoad every usable face at the report's input: 70x70 grayscale. Malformed file names are skipped and listed, not fatal."),
    code(`
const faces = await ut.loadFaces({ dir: dataDir, size: ut.IMAGE_SIZE, color: "gray" });
const report = faces.report;
ut.showTable([{ directory: report.dir, files: report.files, usable: report.usable, skipped: report.skipped.length, seconds: report.seconds, cacheUsed: report.cacheUsed }], { title: "Load report" });
if (report.skipped.length > 0) ut.showTable(report.skipped, { title: "Skipped files and why" });
`),
    code(`
ut.showTable(ut.recordsSummary(faces.records), { title: "danfo.js: age, gender (1 = female) and race summary" });
ut.showTable(report.countsByGroupGender, { title: "Faces per age group and gender (the report's Figure 7, as a table)" });
`),
    md("## Model\nNone: this notebook looks at the data only. The models come in 02–04."),
    md("## Train\nNothing to train here."),
    md("## Evaluate\nPixel statistics of the model input: the 70x70 grayscale faces scaled to [0, 1], exactly as `imagesTensor` feeds them to the CNN."),
    code(`
// At most 2,000 faces: the full data set's 43 million pixel values would take ~0.5 GB here.
const statsCount = Math.min(2000, faces.records.length);
const pixelStats = ut.tf.tidy(() => {
  const x = ut.imagesTensor(faces, Array.from({ length: statsCount }, (_, i) => i), "unit");
  const { mean, variance } = ut.tf.moments(x);
  return { shape: JSON.stringify(x.shape), min: x.min().dataSync()[0], max: x.max().dataSync()[0], mean: mean.dataSync()[0], std: Math.sqrt(variance.dataSync()[0]) };
});
const statsFaces = statsCount === faces.records.length ? \`all \${statsCount} faces\` : \`the first \${statsCount} of \${faces.records.length} faces\`;
ut.showTable([pixelStats], { title: \`Pixel statistics of \${statsFaces} after the transform\` });
const pixelValues = ut.normalizePixels(faces.pixels.subarray(0, statsCount * faces.size * faces.size * faces.channels), faces.channels, "unit");
`),
    md("## Figures"),
    code(`
const ctx = { split: "all", images: faces.records.length, dataset: ut.portablePath(dataDir), profile: profile.profile };
const dataFigures = [
  { name: "01-faces-per-group-gender", figure: ut.groupGenderCountsFigure(report.countsByGroupGender, ctx) },
  { name: "01-age-histogram", figure: ut.ageHistogramFigure(faces.records.map((r) => r.age), ctx) },
  { name: "01-gender-race-shares", figure: ut.sharesFigure(faces.records, ctx) },
  { name: "01-pixel-histogram", figure: ut.pixelHistogramFigure(pixelValues, { ...ctx, split: statsCount === faces.records.length ? "all" : undefined, images: statsCount, transform: "70x70 grayscale, scaled to [0,1]" }) },
];
ut.showFigures(dataFigures);
`),
    code(`
const sampleFaces = ut.permutation(faces.records.length, 42).slice(0, 15);
await ut.showFaces(faces, sampleFaces, { title: "Sample faces (70x70 grayscale) with their labels", columns: 5 });
`),
    code(`
const written = await ut.exportFigures(dataFigures);
console.log(written.map((f) => ut.portablePath(f)).join("\\n"));
`),
    md("There is no reference run for this notebook: its full-profile version is these same figures on all faces, `UTKFACE_DIR=path/to/UTKFace EXPERIMENT_PROFILE=full npm start` (about a minute for this notebook)."),
    MEMORY,
  ],

  "02-sigmoid-age-model": [
    header(
      "02 · Sigmoid age model and gender model",
      "Reproduces the report's 20-group age model (sigmoid outputs, one per five-year group) and its gender model: training curves, test accuracy, accuracy within ±1 group, predicted vs real age, confusion matrices, predicted and real mean and variance, and sample predictions with their faces (\"Predicted Gender: Female  Predicted Age: 60 - 64\"). Both are evaluated on the held-out test split only.",
      "about 1.5-2 min on the sample (two models), depending on the machine's load",
      "about 1–2 h on 8,819 faces",
      "02",
    ),
    md("## Setup"),
    SETUP,
    md("## Data\nLoaded once at the profile's size, grayscale; both models use the same faces and the same seeded train/test split."),
    code(`
const faces = await ut.loadFaces({ dir: dataDir, size: profile.size, color: "gray" });
console.log(\`\${faces.records.length} faces from \${ut.portablePath(faces.dir)} at \${faces.size}x\${faces.size}\`);
`),
    md("## Model"),
    code(`
ut.describeModel("cnn-age-sigmoid", { size: profile.size, channels: 1 });
const modelParameters = ut.describeModel("cnn-gender", { size: profile.size, channels: 1 });
`),
    md("## Train\nEach call trains on the train split, evaluates on the test split and writes `results/<experiment>/<run-id>/`."),
    code(`
const ageRun = await ut.runExperiment({ model: "cnn-age-sigmoid", experiment: "02-sigmoid-age", data: faces });
`),
    code(`
const genderRun = await ut.runExperiment({ model: "cnn-gender", experiment: "02-gender", data: faces });
`),
    md("## Evaluate"),
    code(`
ut.showMetrics(ageRun);
ut.showMetrics(genderRun);
ut.showTable([
  { output: "age (years)", ...ageRun.metrics.ageMeanVariance },
  { output: "gender (P(female) vs code)", ...genderRun.metrics.genderMeanVariance },
], { title: "Predicted and real mean and variance (test split)" });
await ut.showPredictions(faces, [ageRun, genderRun], { count: 10 });
`),
    ...runFiguresCells("[ageRun, genderRun]"),
    ...referenceCells(`const referenceFigures = ut.showReference(["cnn-age-sigmoid-kfold", "cnn-gender-kfold"]);`),
    MEMORY,
  ],

  "03-relu-age-model": [
    header(
      "03 · ReLU regression age model",
      "Reproduces the report's regression model: one ReLU output predicting age/100. The same analyses as 02 (training curves, test accuracy of the decoded age group, ±1 group, predicted vs real age, confusion matrix, mean and variance, sample predictions), plus the mean absolute error by age band.",
      "40-60 s on the sample",
      "about 1 h on 8,819 faces",
      "03",
    ),
    md("## Setup"),
    SETUP,
    md("## Data"),
    code(`
const faces = await ut.loadFaces({ dir: dataDir, size: profile.size, color: "gray" });
console.log(\`\${faces.records.length} faces from \${ut.portablePath(faces.dir)} at \${faces.size}x\${faces.size}\`);
`),
    md("## Model"),
    code(`const modelParameters = ut.describeModel("cnn-age-relu", { size: profile.size, channels: 1 });`),
    md("## Train"),
    code(`
const reluRun = await ut.runExperiment({ model: "cnn-age-relu", experiment: "03-relu-age", data: faces });
`),
    md("## Evaluate"),
    code(`
ut.showMetrics(reluRun);
ut.showTable(reluRun.metrics.maeByBand ?? [], { title: "Mean absolute error by real-age band (test split)" });
ut.showTable([{ output: "age (years)", ...reluRun.metrics.ageMeanVariance }], { title: "Predicted and real mean and variance (test split)" });
await ut.showPredictions(faces, [reluRun], { count: 10 });
`),
    ...runFiguresCells("[reluRun]"),
    ...referenceCells(`const referenceFigures = ut.showReference(["cnn-age-relu-kfold"]);`),
    MEMORY,
  ],

  "04-vgg19": [
    header(
      "04 · VGG19",
      "Reproduces the report's VGG19 experiment on 70x70 RGB faces with ImageNet normalisation, predicting the 20 age groups. It trains from scratch by default; set `VGG19_WEIGHTS` to a tfjs layers `model.json` converted from Keras VGG19 (layers named block1_conv1 ...) to start from pretrained weights.",
      "about 3 min on the sample (at 32x32 RGB, 7 epochs)",
      "several hours on 8,819 faces (at 70x70 VGG19 is ~40x the report CNN's work per image)",
      "04",
    ),
    md("## Setup"),
    SETUP,
    code(`
// Pretrained weights only when the user provides them; nothing is downloaded.
const vggWeights = process.env.VGG19_WEIGHTS || undefined;
const vggModel = vggWeights ? "vgg19-pretrained" : "vgg19";
console.log(vggWeights ? \`VGG19 from pretrained weights \${vggWeights}\` : "VGG19 from scratch (set VGG19_WEIGHTS for pretrained weights)");
`),
    md("## Data\nRGB this time: VGG19 takes three channels."),
    code(`
// At the size VGG19's run uses in this profile (its quick run is 32x32: at 70x70 it is ~40x the report CNN's work per image).
const faces = await ut.loadModelFaces("vgg19", { dir: dataDir });
console.log(\`\${faces.records.length} faces from \${ut.portablePath(faces.dir)} at \${faces.size}x\${faces.size} RGB\`);
`),
    md("## Model"),
    code(`const modelParameters = ut.describeModel("vgg19", { size: faces.size, channels: 3 });`),
    md("## Train"),
    code(`
const vggRun = await ut.runExperiment({ model: vggModel, experiment: "04-vgg19", data: faces, color: "rgb", pretrainedWeights: vggWeights });
`),
    md("## Evaluate"),
    code(`
ut.showMetrics(vggRun);
await ut.showPredictions(faces, [vggRun], { count: 10 });
`),
    ...runFiguresCells("[vggRun]"),
    ...referenceCells(`const referenceFigures = ut.showReference(["vgg19"]);`),
    MEMORY,
  ],

  "05-kfold": [
    header(
      "05 · K-fold protocol",
      "Reproduces the report's 10-fold protocol (seed 42, shuffled, batch 25, 15 epochs for the first fold and fewer for later ones) with the multi-output CNN, so every fold gives age and gender accuracy, on its training images and on its validation fold. The run is resumable: rerunning the training cell after an interruption continues from the last checkpoint, and finished folds are not redone.",
      "1-1.5 min on the sample (3 folds of 9, 8 and 7 epochs)",
      "several hours on 8,819 faces (10 folds)",
      "05",
    ),
    md("## Setup"),
    SETUP,
    md(`## Data

Folds can also run in parallel processes, one per fold, then be merged:

\`\`\`sh
npm run cli -- kfold --model cnn-multi --fold 0 --run results/05-kfold/<run-id> &
npm run cli -- kfold --model cnn-multi --fold 1 --run results/05-kfold/<run-id> &
wait; npm run cli -- kfold --merge results/05-kfold/<run-id>
\`\`\`

This notebook runs the folds one after another in its kernel.`),
    code(`
const faces = await ut.loadFaces({ dir: dataDir, size: profile.size, color: "gray" });
console.log(\`\${faces.records.length} faces, \${profile.folds} folds\`);
`),
    md("## Model"),
    code(`const modelParameters = ut.describeModel("cnn-multi", { size: profile.size, channels: 1 });`),
    md("## Train"),
    code(`
const kfoldRun = await ut.runKFold({ model: "cnn-multi", experiment: "05-kfold", data: faces });
`),
    md("## Evaluate"),
    code(`
ut.showMetrics(kfoldRun);
ut.showTable(kfoldRun.summary.folds.map((m, i) => ({ fold: i + 1, images: m.images, ageAccuracy: m.ageAccuracy, ageAccuracyWithin1: m.ageAccuracyWithin1, genderAccuracy: m.genderAccuracy, trainSeconds: m.trainSeconds })), { title: "Validation figures per fold" });
`),
    ...runFiguresCells("[kfoldRun]"),
    ...referenceCells(`const referenceFigures = ut.showReference(["cnn-age-sigmoid-kfold", "cnn-gender-kfold", "cnn-age-relu-kfold"], { only: ["fold-accuracy"] });`),
    md(`### The report's own procedure: weights carried from fold to fold
The report carried each fold's weights into the next, so from fold 2 on every validation face had already been trained on. The committed carried-weight runs (\`scripts/carried-runs.sh\`) repeat that procedure on the 80/20 split's training faces and keep its test faces out of every fold: per fold, the share of validation faces already trained on, the accuracy on them and on faces never seen, and the same fold's model on the held-out test faces.`),
    code(`const procedureFigures = ut.showReportProcedure(["cnn-age-sigmoid-kfold", "cnn-gender-kfold"]);
if (procedureFigures.length) console.log((await ut.exportFigures(procedureFigures)).map((f) => ut.portablePath(f)).join("\\n"));`),
    MEMORY,
  ],

  "06-comparison": [
    header(
      "06 · Every model side by side",
      "Reproduces the report's comparison and complexity table: every model on the same held-out test split (same faces, same seed), with age-group accuracy, ±1 group accuracy, MAE, gender accuracy, parameters and training time, next to the figures the report and sibling write-ups claim, labelled as their claims. Runs from 02–04 are reused when they match this data and profile; missing ones are trained here. In the quick profile VGG19 reads its faces at 32x32 (see 04), on the same split; the `images` column says how many test faces each row has.",
      "about 30 s after 02–04 (only cnn-multi trains), about 6 min alone",
      "hours (every model at the report's protocol) unless 02–04 ran first",
      "06",
    ),
    md("## Setup"),
    SETUP,
    md("## Data"),
    code(`
const grayFaces = await ut.loadFaces({ dir: dataDir, size: profile.size, color: "gray" });
// VGG19 trains at 32x32 in the quick profile (see 04): its faces at the size its run uses.
const rgbFaces = await ut.loadModelFaces("vgg19", { dir: dataDir });
`),
    md("## Model"),
    code(`
const contenders = [
  { model: "cnn-age-sigmoid", experiment: "02-sigmoid-age", faces: grayFaces },
  { model: "cnn-gender", experiment: "02-gender", faces: grayFaces },
  { model: "cnn-age-relu", experiment: "03-relu-age", faces: grayFaces },
  { model: "cnn-multi", experiment: "06-cnn-multi", faces: grayFaces },
  { model: "vgg19", experiment: "04-vgg19", faces: rgbFaces },
];
const parameters = Object.fromEntries(contenders.map((c) => [c.model, ut.describeModel(c.model, { size: c.faces.size, channels: c.faces.channels })]));
`),
    md("## Train\nA matching saved run (same model, profile, data, size, seed) is reused; otherwise the model trains now."),
    code(`
const compared = [];
for (const c of contenders) compared.push(await ut.reuseOrRun({ model: c.model, experiment: c.experiment, data: c.faces, color: c.faces.channels === 3 ? "rgb" : "gray" }));
`),
    md("## Evaluate"),
    code(`
const rows = compared.map((run) => ut.comparisonRow(run, parameters[run.config.model]));
ut.showTable(rows, { title: "Measured here: every model on the same held-out test split" });
ut.showTable(ut.PUBLISHED_CLAIMS.length ? ut.PUBLISHED_CLAIMS : [{ note: "no published figure recorded yet (lib/analysis/figures.ts PUBLISHED_CLAIMS)" }], { title: "Claimed by the report and sibling write-ups (their numbers, not measured here)" });
`),
    md("## Figures"),
    code(`
const ctx = { split: "test", images: rows[0].images, profile: profile.profile };
const comparisonFigures = [{ name: "06-models-compared", figure: ut.comparisonFigure(rows, ut.PUBLISHED_CLAIMS, ctx) }];
ut.showFigures(comparisonFigures);
const written = await ut.exportFigures(comparisonFigures);
console.log(written.map((f) => ut.portablePath(f)).join("\\n"));
`),
    ...referenceCells(`const referenceFigures = ut.showReferenceComparison();`),
    MEMORY,
  ],
  "07-best-model": [
    header(
      "07 · The best model: a pretrained face network, fine-tuned (issue 12)",
      "Goes beyond the report: pretrained face networks installed from npm (face-api's recognition ResNet, human's faceres) compute features of each face and of its mirror image, cached on disk; small heads trained on those features predict age as a distribution over years (DLDL, expected-value readout) and gender, and the last steps fine-tune face-api's last stages together with the heads, on cached maps of its frozen early stages and on augmented faces (rotated, zoomed, shifted, mirrored, brightness and contrast changed). Shows the ablation chosen on a validation split, the held-out figures of the shipped `models/best` (MAE per decade, gender per age band, 20-group accuracy), the comparison with the report's models on the same 1,764 held-out faces, and predictions on held-out sample faces with their photos. The quick profile uses the shipped model (nothing trains); the full profile retrains it into results/07-best/.",
      "about 20 s: reads models/best and predicts a few sample faces",
      "the one-off feature extraction of 8,818 faces (about 30 min per backbone on a quiet 2-core machine, far longer on a busy one), then minutes for the ablation and the final heads",
      false,
    ),
    md("## Setup"),
    SETUP,
    code(`
import * as path from "path";
`),
    md("## Data\nThe faces shown below come from the data folder; only faces in the model's held-out test split are predicted, so nothing shown was trained on. In the full profile the model is retrained on the folder's faces with the same seeded 80/20 split as `train`."),
    code(`
const faces = await ut.loadFaces({ dir: dataDir, size: 100, color: "rgb" });
console.log(\`\${faces.records.length} faces from \${ut.portablePath(faces.dir)}\`);
`),
    md("## Model\nThe shipped `models/best` (quick profile) or a fresh run (full profile). The frozen part of each backbone loads from its npm package; the folder holds what was trained here (the heads, and for a fine-tuned model face-api's last stages with them) and best.json."),
    code(`
const modelDir = profile.profile === "full" ? path.join(ut.RESULTS_DIR, "07-best") : path.join(ut.REPO_ROOT, "models", "best");
`),
    md("## Train\nQuick profile: nothing trains (the shipped model). Full profile: the ablation on the validation split (its last steps fine-tune), then the chosen step on every training face, then one look at the test split, then the chosen recipe trained once more per fold of the training faces (5 folds, each predicting the fold it left out), then heads on human's faceres features trained on the same folds and stacked with it (weights fitted on the out-of-fold predictions of every training face), then the age interval and the gender temperature fitted on the stack's out-of-fold predictions (`npm run cli -- best train --deeper --pixels`, `best cross-fit` and `best stack` do the same; about 2 hours on 2 cores)."),
    code(`
// The full profile rebuilds models/best (features come from the cache: npm run cli -- best features).
if (profile.profile === "full") {
  await ut.best.runBest({ dir: dataDir, outDir: modelDir, steps: ut.best.defaultAblation(["facenet"], undefined, { deeper: true, pixels: true }) });
  await ut.best.crossFitBest({ dir: dataDir, modelDir, folds: 5 });
  await ut.best.stackBest({ dir: dataDir, modelDir, backbone: "faceres-caffe" });
  await ut.best.calibrateBest({ dir: dataDir, modelDir, from: modelDir, outOfFold: true });
}
const report = ut.best.loadBestReport(modelDir);
ut.showTable(report.model.backbones, { title: "Backbones (frozen) and their licences" });
ut.showTable([{ ...report.model.config, features: report.model.config.features.map((f) => f.backbone + (f.columns === "pooled" ? " (pooled)" : "")).join(" + ") }], { title: "Chosen heads" });
`),
    md("## Evaluate\nThe ablation is on the validation split (carved from the training faces); the rest is the held-out test split, looked at once."),
    code(`
ut.showTable(report.ablation, { title: "Ablation (validation split)", digits: 3 });
if (report.fusionAblation) ut.showTable(report.fusionAblation, { title: "Fusion with faceres on the first 1,000 training faces (validation faces among them)", digits: 3 });
if (report.preprocessing) ut.showTable(report.preprocessing, { title: "faceres preprocessings on training faces only", digits: 3 });
if (report.stack) ut.showTable(ut.best.stackRows(report.stack), { title: \`Stacking with faceres: each member and the stack out of fold (\${report.stack.fittedOn.faces} training faces, \${report.stack.fittedOn.folds} folds; age weights \${report.stack.ageWeights.join(" / ")})\`, digits: 3 });
if (report.inputAblation) ut.showTable(report.inputAblation.map(({ genderByBand, ...r }) => ({ ...r, "gender 0-3": genderByBand["0-3"], "gender 4-12": genderByBand["4-12"], "gender 13+": genderByBand["13+"] })), { title: "face-api's input framing and size, frozen heads on fit faces only", digits: 3 });
ut.showTable(ut.best.bestComparisonRows(report), { title: \`Held-out test split (\${report.test.images} faces): this model, the report's models, face-api.js\` });
ut.showTable(report.test.maeByBand ?? [], { title: "MAE by decade (test split)" });
ut.showTable(report.test.genderByBand, { title: "Gender accuracy by age band (test split)", digits: 3 });
const samplePredictions = await ut.best.showBestSamplePredictions(faces, report, { count: 10 });
`),
    md("### How sure it is\nEach prediction carries an 80% age interval (the 10th-90th percentiles of the predicted age distribution, widened so that 80% of real ages fall inside on faces the model never trained on: the out-of-fold predictions of every training face, each fold predicted by the recipe fitted on the other folds) and P(female), temperature-calibrated on the same faces (`npm run cli -- best cross-fit`, then `best stack`, which calibrates the stack with `best calibrate --out-of-fold`). The test split is scored once with each calibration (the card lists earlier looks): the share of real ages inside the interval, and the reliability diagram of P(female) (figures below)."),
    code(`
if (report.calibration) {
  ut.showTable(ut.best.calibrationRows(report.calibration), { title: \`80% age interval and gender calibration: fitted on \${report.calibration.age.fittedOn.faces} \${report.calibration.age.fittedOn.split} faces, scored on \${report.calibration.test.faces} test faces\` });
  ut.showTable(report.calibration.test.byDecade.map((b) => ({ decade: b.band, faces: b.faces, inside: b.coverage, "mean width (years)": b.meanWidth })), { title: "Age interval coverage by decade (test split)", digits: 3 });
  ut.showTable(report.calibration.test.reliabilityCalibrated.filter((b) => b.faces > 0).map((b) => ({ "P(female) bin": \`\${b.lo.toFixed(1)}-\${b.hi.toFixed(1)}\`, faces: b.faces, "mean P(female)": b.meanPredicted, "share female": b.observed })), { title: "Gender reliability (test split, calibrated P(female))", digits: 3 });
} else console.log("This model folder has no calibration.json: npm run cli -- best calibrate (see models/best/MODEL_CARD.md).");
`),
    md("## Figures"),
    code(`
const bestFigures = ut.best.bestFigures(report);
ut.showFigures(bestFigures);
const written = await ut.exportFigures(bestFigures);
console.log(written.map((f) => ut.portablePath(f)).join("\\n"));
`),
    MEMORY,
  ],

  "08-photos": [
    header(
      "08 · Faces in photos",
      "Goes past the report: \`predict\` on real photos. Every face is found first (face-api's SSD MobileNet v1), cut framed like UTKFace's training crops and levelled by the eyes, then predicted. Shows a group photo built from held-out faces, annotated, and how much the detect-then-cut path loses or gains against feeding the held-out crops directly. See docs/photos.md.",
      "about 20 s on the sample after 06 (reuses its multi-output run), about 2 min alone",
      "about 20 min (trains the multi-output CNN on 8,819 faces unless a run exists; the comparison on 300 held-out faces)",
      false,
    ),
    md("## Setup"),
    SETUP,
    md("## Data\nThe model's held-out test faces (never trained on) are pasted onto a larger background at different places and sizes, one turned 15°: a group photo whose answers are known. A second photo has no face."),
    code(`
import * as path from "path";
const faces = await ut.loadFaces({ dir: dataDir, size: profile.size, color: "gray" });
`),
    md("## Model\nThe detector ships with its weights in the npm package @vladmandic/face-api (MIT) and runs on this project's tfjs backend. The age and gender model is the report-style multi-output CNN."),
    code(`
console.log(\`face-api computes in this project's tfjs engine: \${await ut.detectorSharesEngine()}\`);
const modelParameters = ut.describeModel("cnn-multi", { size: profile.size, channels: 1 });
`),
    md("## Train\nA matching saved run of notebook 06 is reused; otherwise the model trains now."),
    code(`
const run = await ut.reuseOrRun({ model: "cnn-multi", experiment: "06-cnn-multi", data: faces, color: "gray" });
const held = run.predictions.map((r) => path.join(faces.dir, r.file));
const placements = [
  { file: held[0], x: 40, y: 70, side: 180 },
  { file: held[1], x: 320, y: 40, side: 240 },
  { file: held[2], x: 640, y: 260, side: 130, angle: 15 },
  { file: held[3], x: 820, y: 60, side: 150 },
];
const photoDir = path.join(ut.RESULTS_DIR, "08-photos");
const groupPhoto = path.join(photoDir, "group.jpg");
const emptyPhoto = path.join(photoDir, "no-face.jpg");
ut.writeFileAtomic(groupPhoto, await ut.composePhoto(placements, { width: 1000, height: 480 }));
ut.writeFileAtomic(emptyPhoto, await ut.composePhoto([], { width: 640, height: 400, background: "dark" }));
`),
    md("## Evaluate\nThe group photo annotated: each face's box (the detector's) and the predicted gender and age group. The faces' true labels are in their file names; a pasted face without a box is one the detector missed (small, blurred and turned faces are the hardest)."),
    code(`
const annotated = await ut.annotatePhoto(run.runDir, groupPhoto);
ut.showAnnotatedPhoto(annotated);
ut.showTable(annotated.prediction.faces.map((f) => ({ face: f.index + 1, score: f.score, x: Math.round(f.box.x), y: Math.round(f.box.y), width: Math.round(f.box.width), age: f.age, ageGroup: f.ageGroup, gender: f.gender, pFemale: f.pFemale, angle: f.angle })), { title: "Per face, as predict's CSV has it" });
ut.showTable(placements.map((p) => ({ pasted: path.basename(p.file), x: p.x, y: p.y, side: p.side, angle: p.angle ?? 0 })), { title: "Where the faces were pasted (file names hold the true age and gender)" });
const empty = await ut.annotatePhoto(run.runDir, emptyPhoto);
console.log(\`no-face photo: \${empty.prediction.faces.length} face(s) found\`);
`),
    md("Detect, then cut, against the crops fed directly, on the same held-out faces (the first faces of the run's test split)."),
    code(`
const comparison = await ut.compareDetectWithCrops(run.runDir, { maxImages: profile.profile === "full" ? 300 : 40 });
ut.showTable(ut.detectVsCropRows(comparison), { title: \`Held-out test faces: \${comparison.faces}, no face found on \${comparison.notFound}\` });
`),
    md("## Figures\nThe annotated group photo is saved next to the other figures."),
    code(`
const figureFile = path.join(ut.FIGURES_DIR, "08-group-photo-annotated.png");
ut.writeFileAtomic(figureFile, annotated.png);
console.log(ut.portablePath(figureFile));
`),
    MEMORY,
  ],
};

/** The notebook JSON (nbformat 4.5), outputs cleared, execution counts reset. */
export function notebookJson(cells: Cell[]): string {
  const nb = {
    cells: cells.map((c, i) => ({
      cell_type: c.cell_type,
      id: `cell-${String(i).padStart(2, "0")}`,
      // A cell's figures show at full height: classic Notebook otherwise folds long outputs into a scroll box.
      metadata: c.cell_type === "code" ? { scrolled: false } : {},
      source: c.source.split(/(?<=\n)/),
      ...(c.cell_type === "code" ? { execution_count: null, outputs: [] } : {}),
    })),
    metadata: {
      kernelspec: kernelspecMetadata(),
      language_info: { name: "typescript", file_extension: ".ts", mimetype: "text/typescript", version: "5.0" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  return JSON.stringify(nb, null, 1) + "\n";
}

if (require.main === module) {
  const dir = path.join(REPO_ROOT, "notebooks");
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, cells] of Object.entries(NOTEBOOKS)) {
    fs.writeFileSync(path.join(dir, `${name}.ipynb`), notebookJson(cells));
    console.log(`notebooks/${name}.ipynb (${cells.length} cells)`);
  }
}
