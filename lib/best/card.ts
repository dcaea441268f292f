/**
 * MODEL_CARD.md of a best-model run, written from the run's own figures so the card and the
 * model can never disagree.
 */
import { BACKBONES, FineTuneMapsName } from "./backbones";
import { fineTuneMaps, modelInputs } from "./fine-tuning";
import type { AblationRow, BestRunRecord, InputAblationRow } from "./types";
import type { BestMetrics, HeadConfig } from "./head-training";
import type { StackRecord } from "./stack-weights";

/** The issue's targets and face-api.js's figures on faces like these (issue 12). */
export const BEST_TARGETS = { mae: 4.0, gender: 0.93, gender13: 0.97, group20: 0.48 };
/** Issue 19's targets (best model v2), on the held-out test split. */
export const V2_TARGETS = { mae: 3.4, gender: 0.925, gender13: 0.975, gender4to12: 0.9, group20: 0.55 };
/** face-api.js ageGenderNet (trained on UTKFace itself, so optimistic) on crop_part1-like faces. */
export const FACE_API_FIGURES = { mae: 4.27, gender: 0.921, bands: { "0-3": 0.73, "4-12": 0.92, "13-19": 0.94, "20-59": 0.99, "60+": 0.95 } as Record<string, number>, group20: 0.448 };

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`);
const num = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d));
const met = (ok: boolean) => (ok ? "met" : "**not met**");

/** One row of a targets table: what, the goal in words, this model's figure, whether it is met. */
type TargetRow = [string, string, string, boolean];

/** A "## title" section with a targets table. */
function targetsTable(title: string, rows: TargetRow[]): string[] {
  return [`## ${title}`, "", "| target | goal | this model | |", "|---|---|---|---|", ...rows.map(([what, goal, value, ok]) => `| ${what} | ${goal} | ${value} | ${met(ok)} |`)];
}

function band(m: BestMetrics, label: string) {
  return m.genderByBand.find((b) => b.band === label);
}

/** What fine-tuning on each cached trunk map trains (face-api's stages after it) and leaves frozen. */
const TUNED_STAGES: Record<FineTuneMapsName, { count: string; stages: string[]; weights: string; frozenTo: string; maps: string }> = {
  "faceres-caffe-maps": {
    count: "block",
    stages: ["conv_dw_13 + conv_pw_13: faceres's last depthwise-separable block at 7x7x1024, then its global mean and its own age and gender layers"],
    weights: "1.35M",
    frozenTo: "conv_pw_12",
    maps: "7x7x1024",
  },
  "facenet-maps": { count: "stage", stages: ["stage256: four residual blocks, 128 -> 256 channels, 8x8 -> 2x2"], weights: "4.4M", frozenTo: "stage128", maps: "8x8x128" },
  "facenet-maps64": {
    count: "two stages",
    stages: ["stage128: three residual blocks, 64 -> 128 channels, 17x17 -> 8x8", "stage256: four residual blocks, 128 -> 256 channels, 8x8 -> 2x2"],
    weights: "5.3M",
    frozenTo: "stage64",
    maps: "17x17x64",
  },
  "facenet-maps32": {
    count: "three stages",
    stages: ["stage64: four residual blocks, 32 -> 64 channels, 35x35 -> 17x17", "stage128: three residual blocks, 64 -> 128 channels, 17x17 -> 8x8", "stage256: four residual blocks, 128 -> 256 channels, 8x8 -> 2x2"],
    weights: "5.6M",
    frozenTo: "stage32",
    maps: "35x35x32",
  },
};

/** The model card as Markdown. */
export function bestModelCard(r: BestRunRecord): string {
  const t = r.test;
  const c = r.chosen;
  const s = r.data;
  const g13 = band(t, "13+")?.accuracy ?? NaN;
  const ft = c.fineTune;
  const mapsName = fineTuneMaps(c);
  const tuned = TUNED_STAGES[mapsName];
  const aug = ft?.augment;
  const ablationSeconds = r.ablation.reduce((sum, a) => sum + a.seconds, 0);
  const st = r.stack;
  const second = st ? r.members?.[1] : undefined;
  const extracted = [...new Set([...c.features.map((f) => f.backbone), ...(ft ? [mapsName] : []), ...(second ? second.features.map((f) => f.backbone) : [])])];
  const backbones = extracted.map((b) => BACKBONES[b]);
  const heads = [...new Set(c.features.map((f) => f.backbone))].join(",");
  const lines: string[] = [];
  lines.push(
    "# Model card: models/best",
    "",
    ...(ft
      ? [
          "Age (years) and gender from a face crop, for UTKFace-like aligned crops. face-api's face",
          "recognition network (a ResNet trained for identity) reads the face; its early stages keep",
          `their pretrained weights, its last ${tuned.count} and two heads were trained here together${aug ? " on augmented faces" : ""}: an age`,
          "distribution over 0..100 years (read out as its expected value) and P(female).",
          ...(st && second
            ? [
                second.fineTune
                  ? `A second network, human's faceres (its last block fine-tuned here with heads of the same kind: \`${second.name}\`), predicts the same face,`
                  : `A second network, human's faceres (frozen, with heads of the same kind trained on its features: \`${second.name}\`), predicts the same face,`,
                `and the two are stacked: age by weights ${st.ageWeights.join(" / ")} on their expected ages and percentiles, gender by a logistic regression on`,
                `their logits, all fitted on out-of-fold predictions of every training face (see "Stacking" below).`,
              ]
            : []),
          "",
          `Reproduce (about ${Math.round((ablationSeconds + (t.trainSeconds ?? 0)) / 60) + 5} minutes on ${r.engine ?? "2 CPU cores"}: about 5 minutes of feature`,
          `extraction, ${Math.round(ablationSeconds / 60)} of ablation, then ${Math.round((t.trainSeconds ?? 0) / 60)} of fine-tuning the chosen model on every training face${st ? "; then about an hour of cross-fitting and a few minutes of stacking" : ""}):`,
        ]
      : [
          "Age (years) and gender from a face crop, for UTKFace-like aligned crops. Frozen pretrained face",
          "networks compute features; two small heads trained here on those features give an age",
          "distribution over 0..100 years (read out as its expected value) and P(female).",
          "",
          "Reproduce (about 40-90 minutes on 2 shared CPU cores, almost all of it the one-off feature",
          "extraction; the heads train in minutes):",
        ]),
    "",
    "```bash",
    // Without options, best features extracts every trunk map the fine-tuning steps read.
    `UTKFACE_DIR=${s.dir} npm run cli -- best features${r.subset || ft ? "" : ` --backbones ${extracted.join(",")}`}`,
    `UTKFACE_DIR=${s.dir} npm run cli -- best prep --first-train 400   # optional: the preprocessing table`,
    `UTKFACE_DIR=${s.dir} npm run cli -- best train ${r.args ? r.args.join(" ") : `--out models/best${r.subset ? "" : ` --backbones ${heads}`}`}`,
    ...(st && second
      ? [
          `UTKFACE_DIR=${s.dir} npm run cli -- best features --backbones ${[...new Set([...second.features, ...modelInputs(second)].map((f) => f.backbone))].join(",")}`,
          `UTKFACE_DIR=${s.dir} npm run cli -- best cross-fit --from models/best --folds ${st.fittedOn.folds}`,
          `UTKFACE_DIR=${s.dir} npm run cli -- best stack --from models/best --backbone ${second.features[0].backbone}${second.fineTune ? ` --fine-tune --fine-tune-epochs ${second.fineTune.epochs} --fine-tune-lr ${second.fineTune.learningRate}` : ""}   # then calibrates and scores the test split`,
        ]
      : []),
    "npm run cli -- predict --model models/best data/sample",
    "```",
    "",
    "## Data and split",
    "",
    `- ${s.faces} usable faces of \`${s.dir}\` (UTKFace crop_part1; labels from file names).`,
    `- Held-out test split: the same seeded 80/20 split as \`npm run cli -- train\` (seed ${s.seed}, test fraction ${s.testFraction}): **${s.test} test faces**, touched once, after every choice.`,
    `- Every choice below was made on ${r.validationFaces} validation faces drawn from the training split (seed ${s.seed + 1}); ablation steps were fitted on the training faces named in the table's "fit faces" column.`,
    r.subset
      ? `- ${r.subset.backbones.join(", ")} is slow on this CPU (about 1 face/s with other jobs running), so it was extracted for the first ${r.subset.trainFaces} training faces of the seeded order plus every test face${r.subset.mirrored ? "" : ", without mirrored copies"}; steps that use it fit on those faces only. The final heads were trained on ${r.trainedOn} training faces.`
      : `- The final heads were retrained on all ${r.trainedOn} training faces.`,
    "",
    "## Model",
    "",
    ...backbones.map((b) => `- Backbone \`${b.name}\`: ${b.package}; ${b.dim} values per face. Preprocessing: ${b.preprocessing}. Licence: ${b.licence}.`),
    `- Features used${ft ? " by the heads before fine-tuning" : ""}: ${c.features.map((f) => `${f.backbone}${f.columns === "pooled" ? " (1024-d pooled only)" : ""}`).join(" + ")}, z-scored on the training faces.`,
    `- Heads: per output a dense ${c.hidden} ReLU layer, dropout ${c.dropout}; age: softmax over 101 one-year bins trained with ${c.ageLoss === "dldl" ? "DLDL (cross-entropy to a Gaussian label distribution" : "DLDL plus the L1 error of the expected age (DLDL-v2"}, sd ${c.sigma} years), expected-value readout; gender: sigmoid, binary cross-entropy.`,
    `- Training: Adam ${c.learningRate}, batch ${c.batchSize}, ${c.epochs} epochs (${ft ? "the DLDL-v2 step's validation-best count" : "the validation-best count"}), mirrored copies ${c.flipTrain ? "as extra training rows" : "not used"}; prediction averages the plain and mirrored views: ${c.flipTest ? "yes" : "no"}.`,
    ...(ft
      ? [
          `- Fine-tuning: the heads' standardiser is folded into their first layer, so face-api's last ${tuned.count} (${tuned.stages.join("; ")}; then the 256 -> 128 descriptor layer; ${tuned.weights} weights, starting from the pretrained ones) and the heads form one network, trained together for ${ft.epochs} epochs, batch ${ft.batchSize}, Adam ${ft.learningRate} with a one-epoch linear warm-up and a cosine decay to 0, ${
            aug
              ? `on augmented training faces: every epoch shows each face once, afresh rotated by up to ${aug.rotation} degrees, zoomed by up to ${aug.scale * 100}%, shifted by up to ${aug.shift * 100}% of the side, mirrored at random, its brightness changed by up to ${aug.brightness * 100}% and its contrast by up to ${aug.contrast * 100}% (lib/best/augment.ts)`
              : "on the training faces and their mirror images"
          }${c.genderWeight && c.genderWeight !== 1 ? `, the gender loss weighted ${c.genderWeight}x` : ""}. The stages before it (stem to ${tuned.frozenTo}) stay frozen: ${
            aug ? `they run forward on every augmented batch; for validation, the test split and prediction their ${tuned.maps} output of the plain face and its mirror image is cached (\`${mapsName}\`)` : `their ${tuned.maps} output of every face is computed once and cached (\`${mapsName}\`)`
          }.`,
          ...(st && second
            ? [
                `- Stacked with \`${second.name}\` (heads-2/): the same heads settings (dense ${second.hidden} ReLU, dropout ${second.dropout}, ${second.epochs} epochs, ${second.ageLoss === "dldl" ? "DLDL" : "DLDL-v2"}, mirrored copies as extra rows, both views averaged) on ${second.features.map((f) => f.backbone).join(" + ")}'s frozen features (1024-d pooled, its own 100 age bins and gender score), z-scored, trained on every training face${
                  second.fineTune
                    ? `; then faceres's ${TUNED_STAGES[fineTuneMaps(second)].stages[0]} (${TUNED_STAGES[fineTuneMaps(second)].weights} weights) trained with those heads (their standardiser folded into their first layer) on the cached ${TUNED_STAGES[fineTuneMaps(second)].maps} maps after ${TUNED_STAGES[fineTuneMaps(second)].frozenTo} (\`${fineTuneMaps(second)}\`, both views): ${second.fineTune.epochs} epochs, batch ${second.fineTune.batchSize}, Adam ${second.fineTune.learningRate} cosine-decayed; stored as float16`
                    : ""
                }. The predictor runs both networks on the face and its mirror image, then combines them by best.json's \`stack\`: expected age, 10th and 90th percentiles averaged with weights ${st.ageWeights.join(" and ")}; logit P(female) = ${num(st.gender.intercept, 3)} + ${num(st.gender.weights[0], 3)} x the first's logit + ${num(st.gender.weights[1], 3)} x the second's. The calibration below applies to the stack.`,
              ]
            : r.members && r.members.length > 1
            ? [
                `- Ensemble: ${r.members.length} such networks, their age distributions and P(female) averaged: ${r.members.map((m) => `"${m.name}" (from ${TUNED_STAGES[fineTuneMaps(m)].frozenTo}'s output on${m.fineTune?.augment ? " augmented faces" : " cached maps"}, ${m.fineTune?.epochs} epochs)`).join(" and ")}; the line above describes the first, heads-2/ holds the second.`,
              ]
            : []),
          "- Stored: heads/ holds that whole network after the frozen stages (tfjs layers model, weights as float16: half the bytes, predictions within a small fraction of a year of the float32 ones); the frozen stages load from the npm package.",
        ]
      : []),
    "- Never used: face-api's ageGenderNet and human's `gear` (both trained on UTKFace).",
    "",
    "## Held-out test figures",
    "",
    `| | this model | majority baseline${r.testOwn ? ` | ${r.testOwn.model}` : ""} |`,
    `|---|---|---|${r.testOwn ? "---|" : ""}`,
    `| age MAE (years) | **${num(t.mae)}** | ${num(t.baseline?.mae)} |${r.testOwn ? ` ${num(r.testOwn.mae)} |` : ""}`,
    `| gender accuracy | **${pct(t.genderAccuracy)}** | ${pct(t.baseline?.genderAccuracy)} |${r.testOwn ? ` ${pct(r.testOwn.genderAccuracy)} |` : ""}`,
    `| 20-group exact | **${pct(t.ageAccuracy)}** | ${pct(t.baseline?.ageAccuracy)} |${r.testOwn ? ` ${pct(r.testOwn.ageAccuracy)} |` : ""}`,
    `| 20-group within one | **${pct(t.ageAccuracyWithin1)}** | ${pct(t.baseline?.ageAccuracyWithin1)} |${r.testOwn ? ` ${pct(r.testOwn.ageAccuracyWithin1)} |` : ""}`,
    "",
    "MAE by decade of the real age:",
    "",
    `| decade | ${(t.maeByBand ?? []).map((b) => b.band).join(" | ")} |`,
    `|---|${(t.maeByBand ?? []).map(() => "---").join("|")}|`,
    `| faces | ${(t.maeByBand ?? []).map((b) => b.images).join(" | ")} |`,
    `| MAE | ${(t.maeByBand ?? []).map((b) => num(b.mae ?? undefined)).join(" | ")} |`,
    "",
    "Gender accuracy by real age band:",
    "",
    `| band | ${t.genderByBand.map((b) => b.band).join(" | ")} |`,
    `|---|${t.genderByBand.map(() => "---").join("|")}|`,
    `| faces | ${t.genderByBand.map((b) => b.images).join(" | ")} |`,
    `| accuracy | ${t.genderByBand.map((b) => pct(b.accuracy)).join(" | ")} |`,
    `| face-api.js | ${t.genderByBand.map((b) => pct(FACE_API_FIGURES.bands[b.band])).join(" | ")} |`,
    "",
    `Speed: ${num(r.secondsPerImage, 3)} s per image through the whole predictor (decode, every backbone on the face and its mirror image, heads), ${r.engine ?? "tfjs wasm backend, 1 thread"}, batches of 32, on a shared 2-core machine; most of it is the backbones.`,
    "",
    ...calibrationSection(r),
    ...targetsTable("Targets of issue 19 (test split)", [
      ["age MAE", `<= ${V2_TARGETS.mae}`, num(t.mae), (t.mae ?? 99) <= V2_TARGETS.mae],
      ["gender accuracy", `>= ${pct(V2_TARGETS.gender)}`, pct(t.genderAccuracy), (t.genderAccuracy ?? 0) >= V2_TARGETS.gender],
      ["gender accuracy, ages 13+", `>= ${pct(V2_TARGETS.gender13)}`, pct(g13), g13 >= V2_TARGETS.gender13],
      ["gender accuracy, ages 4-12", `>= ${pct(V2_TARGETS.gender4to12)}`, pct(band(t, "4-12")?.accuracy), (band(t, "4-12")?.accuracy ?? 0) >= V2_TARGETS.gender4to12],
      ["20-group accuracy", `>= ${pct(V2_TARGETS.group20)}`, pct(t.ageAccuracy), (t.ageAccuracy ?? 0) >= V2_TARGETS.group20],
      ...(r.calibration ? [["real ages inside the 80% interval", "77.0-83.0%", pct(r.calibration.test.coverage.coverage), Math.abs(r.calibration.test.coverage.coverage - r.calibration.age.level) <= 0.03] as TargetRow] : []),
    ]),
    "",
    ...targetsTable("Targets of issue 12 (test split)", [
      ["age MAE", `<= ${BEST_TARGETS.mae}`, num(t.mae), (t.mae ?? 99) <= BEST_TARGETS.mae],
      ["gender accuracy", `>= ${pct(BEST_TARGETS.gender)}`, pct(t.genderAccuracy), (t.genderAccuracy ?? 0) >= BEST_TARGETS.gender],
      ["gender accuracy, ages 13+", `>= ${pct(BEST_TARGETS.gender13)}`, pct(g13), g13 >= BEST_TARGETS.gender13],
      ["20-group accuracy", `>= ${pct(BEST_TARGETS.group20)}`, pct(t.ageAccuracy), (t.ageAccuracy ?? 0) >= BEST_TARGETS.group20],
      ["beat face-api.js MAE", `< ${FACE_API_FIGURES.mae}`, num(t.mae), (t.mae ?? 99) < FACE_API_FIGURES.mae],
      ["beat face-api.js gender", `> ${pct(FACE_API_FIGURES.gender)}`, pct(t.genderAccuracy), (t.genderAccuracy ?? 0) > FACE_API_FIGURES.gender],
      ["beat face-api.js 20-group", `> ${pct(FACE_API_FIGURES.group20)}`, pct(t.ageAccuracy), (t.ageAccuracy ?? 0) > FACE_API_FIGURES.group20],
    ]),
    "",
    "face-api.js's figures come from its ageGenderNet, which was trained on UTKFace itself, so they are optimistic.",
    "",
    "## Ablation (validation split, never the test split)",
    "",
    `${r.validationFaces} validation faces for every step. MAE at the validation-best epoch (a fine-tuning step: after its last epoch, where its learning rate has decayed to 0); the other columns after the last epoch. The step with the lowest MAE became the model.`,
    "",
    "| step | what | fit faces | features | MAE | gender | gender 13+ | 20-group | best epoch | seconds |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...r.ablation.map((a) => `| ${a.name} | ${a.description} | ${a.faces} | ${a.dim || "–"} | ${num(a.mae)} | ${pct(a.genderAccuracy)} | ${pct(a.genderAccuracy13)} | ${pct(a.ageGroupAccuracy)} | ${a.bestEpoch || "–"} | ${a.seconds.toFixed(0)} |`),
    "",
    ...(st && second ? stackSection(r, st, second) : []),
    ...(r.fusionAblation
      ? [
          "### Fusion with faceres (a second run)",
          "",
          "faceres with the original repository's preprocessing (`faceres-caffe`, chosen below) ran at about 1 face/s on this shared machine then (its graph's convolution, batch-norm and ReLU6 nodes are now fused at load, lib/engine/fuse-graph.ts: 8,818 faces and their mirror images in under 3 minutes), so it was extracted for the first 1,000 training faces of the seeded order plus every test face, without mirrored copies (`npm run cli -- best features --recipe fusion`, 31 min), and `npm run cli -- best train --recipe fusion --out results/best-fusion` compared, on the validation faces among those 1,000 (a subset of the ones above), face-api's heads fitted on every training face with heads that read faceres, fitted on the subset's faces. Its ablation.json is copied here as ablation-fusion.json. Fusion did not beat face-api's descriptor on every face, so models/best builds on face-api's network alone (and fine-tunes it); with faceres on every training face fusion may help the frozen heads (the project's findings measured fusion plus flip averaging about 0.3 MAE better than face-api's descriptor alone).",
          "",
          "| step | what | fit faces | features | MAE | gender | gender 13+ | 20-group | best epoch | seconds |",
          "|---|---|---|---|---|---|---|---|---|---|",
          ...r.fusionAblation.map((a) => `| ${a.name} | ${a.description} | ${a.faces} | ${a.dim || "–"} | ${num(a.mae)} | ${pct(a.genderAccuracy)} | ${pct(a.genderAccuracy13)} | ${pct(a.ageGroupAccuracy)} | ${a.bestEpoch || "–"} | ${a.seconds.toFixed(0)} |`),
          "",
        ]
      : []),
    ...(r.genderAblation
      ? [
          "### Gender levers (issue 19, validation split only)",
          "",
          `Tried with \`best train --validation-only --fine-tune-epochs 0 --gender-smoothing E --gender-balance\` on the frozen DLDL-v2 heads of face-api's descriptor (a minute per step on this machine; a fine-tuned run takes about 25 minutes per step here), fitted on the same ${r.genderAblation[0]?.faces} faces and scored on the same ${r.validationFaces} validation faces as the ablation above; copied here as ablation-gender.json. Age is untouched (the gender head has its own branch). Label smoothing helps gender on the frozen heads, children most; balancing the genders within age bands does not.${(() => {
            const tuned = r.genderAblation!.filter((x) => x.name.startsWith("facenet fine-tune"));
            const [plain, smooth] = [tuned.find((x) => !x.name.includes("gender-")), tuned.find((x) => x.name.includes("gender-smooth"))];
            return plain && smooth
              ? ` On the fine-tuned model itself (\`best train --validation-only --deeper --gender-smoothing 0.2 --steps "${smooth.name}"\`, last rows) the gain is gone: gender ${pct(smooth.genderAccuracy)} against ${pct(plain.genderAccuracy)}, 13+ ${pct(smooth.genderAccuracy13)} against ${pct(plain.genderAccuracy13)}, within a few of the ${r.validationFaces} faces; so it is not kept and models/best is not retrained.`
              : " models/best is not retrained with it: the fine-tuned step with smoothing is still to be measured.";
          })()}`,
          "",
          "| step | what | MAE | gender | 0-3 | 4-12 | 13+ |",
          "|---|---|---|---|---|---|---|",
          ...r.genderAblation.map((a) => `| ${a.name} | ${a.description} | ${num(a.mae)} | ${pct(a.genderAccuracy)} | ${pct(a.genderByBand?.["0-3"])} | ${pct(a.genderByBand?.["4-12"])} | ${pct(a.genderAccuracy13)} |`),
          "",
        ]
      : []),
    ...(r.ensembleAblation ? ensembleSection(r, r.ensembleAblation) : []),
    ...(r.inputAblation
      ? [
          "## face-api's input: framing and size (training faces only)",
          "",
          `How the network should see a 200x200 crop: a centre square of a fraction of its side (above 1 the crop is mirrored outwards at its edges), resized bilinearly to the side fed to the network; frozen DLDL-v2 heads on the 128-d descriptor (no flips) fitted on the first ${r.inputAblation[0].fitFaces} fit faces and scored on the next ${r.inputAblation[0].scoredFaces} (never a validation or test face; \`UTKFACE_DIR=${s.dir} npx tsx scripts/facenet-input.ts --out models/best\`). ${(() => {
            const rows = r.inputAblation!;
            const lowest = rows.reduce((x, y) => (y.mae < x.mae ? y : x));
            const surest = rows.reduce((x, y) => (y.genderAccuracy > x.genderAccuracy ? y : x));
            const asIs = (x: InputAblationRow) => x.fraction === 1 && x.side === BACKBONES.facenet.size;
            return asIs(lowest) && asIs(surest)
              ? `The crop as it is, at the native ${BACKBONES.facenet.size} px, has the lowest MAE and the best gender accuracy (a gender difference under a point is within the noise of ${rows[0].scoredFaces} faces): tighter framing loses children's gender, looser framing loses age, larger inputs lose both (the frozen trunk's filters were trained at one face scale), so neither another framing nor a larger input is worth a fine-tuning run.`
              : `Lowest MAE: fraction ${lowest.fraction} at ${lowest.side} px; best gender: fraction ${surest.fraction} at ${surest.side} px.`;
          })()}`,
          "",
          "| fraction of the crop | side (px) | MAE | gender | 0-3 | 4-12 | 13+ | 20-group |",
          "|---|---|---|---|---|---|---|---|",
          ...r.inputAblation.map((x) => `| ${x.fraction} | ${x.side} | ${num(x.mae)} | ${pct(x.genderAccuracy)} | ${pct(x.genderByBand["0-3"])} | ${pct(x.genderByBand["4-12"])} | ${pct(x.genderByBand["13+"])} | ${pct(x.ageGroupAccuracy)} |`),
          "",
        ]
      : []),
    ...(r.preprocessing
      ? [
          "## faceres preprocessing (training faces only)",
          "",
          `Compared with \`npm run cli -- best prep\` on the first ${r.preprocessing[0]?.faces} training faces (never a test face): the network's own outputs on all of them, and heads (MLP 256 on the 1024-d pooled feature, flips) fitted on 3/4 and scored on the other 1/4.`,
          "",
          "| preprocessing | own MAE | own gender | heads MAE | heads gender |",
          "|---|---|---|---|---|",
          ...r.preprocessing.map((p) => `| ${p.backbone}: ${BACKBONES[p.backbone].preprocessing} | ${num(p.ownMae)} | ${pct(p.ownGenderAccuracy)} | ${num(p.headMae)} | ${pct(p.headGenderAccuracy)} |`),
          "",
        ]
      : []),
    "## Limits",
    "",
    ft
      ? `- Fine-tuned on ${r.trainedOn} faces of one dataset: only face-api's last ${tuned.count} and the heads learned, ${aug ? "on mildly augmented faces (small rotations, zooms and shifts, mirror images, brightness and contrast)" : "and only mirror images served as augmentation (the cached maps allow no crops or colour changes)"}. Gender stays the weak output, children's above all (see the band table).`
      : `- Frozen features: the backbones were trained for face identity and keep their weights; only the heads learn. That gives MAE ${num(t.mae)} and gender ${pct(t.genderAccuracy)} here; the issue's MAE <= 4.0 and 93% gender need more: fine-tuning of the backbones (at least their last blocks) on the training faces (\`best train\`'s fine-tuning step), and faceres features of every training face for fusion.`,
    "- Children: gender is hard to read for ages 0-3 and 4-12 for every network (see the band table); ages over 100 are predicted at most 100.",
    "- The heads read face crops like UTKFace's aligned crops (face centred, filling the frame). On other photos `npm run cli -- predict` finds each face first and cuts it framed like those crops (docs/photos.md); framing still matters: faces the detector misses or frames oddly are predicted worse.",
    "- Data: UTKFace crop_part1 only (8,818 faces, skewed to white and to ages 20-40 and 0-5); figures on other populations will differ. Labels in UTKFace file names are themselves noisy.",
    "",
    "## Licences",
    "",
    ft
      ? `- heads/ and best.json: trained here, MIT like this repository; heads/ includes face-api's last ${tuned.count}, fine-tuned from the weights of the package below (keep its licence and credits with it).`
      : "- Heads (heads/, best.json): trained here, MIT like this repository.",
    ...backbones.map((b) => `- ${b.package}: ${b.licence}.`),
    "- UTKFace: non-commercial research use only (its authors' terms); the heads were trained on it.",
    "",
  );
  return lines.join("\n");
}

/** How the stacked folder's two members were combined, and what each did out of fold (training faces only). */
function stackSection(r: BestRunRecord, st: StackRecord, second: HeadConfig): string[] {
  const faces = st.fittedOn.faces;
  const [a, b, both] = st.outOfFold;
  const bands = both.genderByBand.map((x) => x.band);
  return [
    `### Stacking with faceres (issue 19, out of fold: training faces only)`,
    "",
    `\`best stack\` trains \`${second.name}\` once per fold of the ${faces} training faces, on the same ${st.fittedOn.folds} folds as \`best cross-fit\` of the first model, so every training face has a prediction from each member that never saw it; the weights are fitted on those rows (age: the lowest MAE over a 0.01 grid; gender: logistic regression by its log loss). The stack's own row below is nested: each fold combined by weights fitted on the other folds only. The decision to stack was made on these rows; the test split was then scored once (the figures above).`,
    "",
    `| out of fold, ${faces} training faces | MAE | gender | ${bands.join(" | ")} |`,
    `|---|---|---|${bands.map(() => "---").join("|")}|`,
    ...[a, b, both].map((x) => `| ${x.model} | ${num(x.mae)} | ${pct(x.genderAccuracy)} | ${x.genderByBand.map((y) => pct(y.accuracy)).join(" | ")} |`),
    "",
    `Weights on all ${faces} faces: age ${st.ageWeights.join(" / ")}; gender logit = ${num(st.gender.intercept, 3)} + ${num(st.gender.weights[0], 3)} x first + ${num(st.gender.weights[1], 3)} x second. Cost: faceres runs on the face and its mirror image at 224x224, so prediction takes about ${r.secondsPerImage ? `${Math.round(r.secondsPerImage * 1000)} ms` : "twice the time"} a face here.`,
    "",
  ];
}

/** The ensemble tried on validation (a second, validation-only run; ablation-ensemble.json). */
function ensembleSection(r: BestRunRecord, rows: readonly AblationRow[]): string[] {
  const ensemble = rows.find((x) => x.name.startsWith("ensemble"));
  const members = rows.filter((x) => x !== ensemble);
  const best = members.length ? members.reduce((x, y) => (y.mae < x.mae ? y : x)) : undefined;
  const again = rows.map((x) => ({ x, first: r.ablation.find((y) => y.name === x.name) })).filter((p) => p.first);
  return [
    "### Ensemble (issue 19, validation split only)",
    "",
    `Tried with \`best train --validation-only --deeper --pixels --ensemble --steps "${rows.map((x) => x.name).join(",")}"\` (a second run of the two pixel steps, then their outputs averaged), on the same ${r.validationFaces} validation faces; copied here as ablation-ensemble.json.${
      ensemble && best
        ? ` The average beats its better member by ${num(best.mae - ensemble.mae)} years of MAE (${num(ensemble.mae)} against ${num(best.mae)}) and moves gender by ${num((ensemble.genderAccuracy - best.genderAccuracy) * 100, 1)} points, for twice the training and twice the prediction time.`
        : ""
    }${
      again.length
        ? ` Run to run, the same steps moved by ${again.map((p) => `${num(Math.abs(p.x.mae - p.first!.mae))} (${p.x.name})`).join(" and ")} between this run and the ablation above (training on 2 threads is not repeatable to the bit), so a gain of that size is noise: models/best stays a single network.`
        : ""
    }`,
    "",
    "| step | what | MAE | gender | gender 13+ | 20-group | seconds |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((a) => `| ${a.name} | ${a.description} | ${num(a.mae)} | ${pct(a.genderAccuracy)} | ${pct(a.genderAccuracy13)} | ${pct(a.ageGroupAccuracy)} | ${a.seconds.toFixed(0)} |`),
    "",
  ];
}

/** The model card's section on the age interval and P(female) (issue 19), when calibrated. */
function calibrationSection(r: BestRunRecord): string[] {
  const k = r.calibration;
  if (!k) return [];
  const a = k.age;
  const t = k.test;
  const v = k.validation;
  const within = Math.abs(t.coverage.coverage - a.level) <= 0.03;
  const rel = (bins: typeof t.reliability) => bins.filter((b) => b.faces > 0);
  return [
    "## How sure it is: age interval and P(female) (issue 19)",
    "",
    `Each prediction carries an age interval: the ${a.lowQuantile * 100}th-${a.highQuantile * 100}th percentiles of the predicted age distribution, widened on each side of the point estimate (below by ${num(a.lowerScale, 3)}x, above by ${num(a.upperScale, 3)}x) so that ${pct(a.level)} of real ages fall inside, and P(female) after a temperature of ${num(k.gender.temperature, 3)} on its logit (which never changes the predicted gender). ${
      k.source.folds
        ? `Both were fitted on out-of-fold predictions of all ${a.fittedOn.faces} training faces: the recipe of ${k.source.model} trained ${k.source.folds} times, each time on the training faces of the other folds (${k.source.fitFaces} or more) and predicting the fold it left out (\`best cross-fit\`), so no face was predicted by a model that had seen it. They`
        : `Both were fitted on the ${a.fittedOn.faces} ${a.fittedOn.split} faces, predicted by ${k.source.model.replace(/ \((validation-only run|its ablation fit).*$/, "")} as the ablation trained it, on the other ${k.source.fitFaces} training faces only (so it never saw them), and`
    } are stored in best.json (\`calibration\`); the final model applies them. The raw percentiles held ${pct(a.rawCoverage)} of ${k.source.folds ? "those" : "the validation"} faces' real ages.`,
    "",
    "```bash",
    ...(k.source.folds
      ? [
          // A stacked folder's out-of-fold rows come from best stack (above), which calibrates too.
          ...(r.stack ? [] : [`UTKFACE_DIR=${r.data.dir} npm run cli -- best cross-fit --from ${k.source.run} --folds ${k.source.folds}`]),
          `UTKFACE_DIR=${r.data.dir} npm run cli -- best calibrate --from ${k.source.run} --out-of-fold --out models/best`,
        ]
      : [
          ...(k.source.run === "models/best" ? [] : [`UTKFACE_DIR=${r.data.dir} npm run cli -- best train --validation-only ${r.args?.filter((x) => x === "--deeper" || x === "--pixels" || x === "--ensemble").join(" ") ?? "--deeper"} --steps "${k.source.model}" --out ${k.source.run}`]),
          `UTKFACE_DIR=${r.data.dir} npm run cli -- best calibrate --from ${k.source.run} --out models/best`,
        ]),
    "```",
    "",
    k.source.folds
      ? `The out-of-fold predictions are kept in the model folder as out-of-fold-predictions.json (each fold's in data/.cache/crossfit while it runs, so an interrupted cross-fit resumes at the first missing fold), so \`best calibrate --from models/best --out-of-fold\` refits the same calibration without any training (it predicts the test split again).`
      : `${k.source.run === "models/best" ? "`best train` keeps the chosen step's validation predictions in the model folder" : "That run's validation predictions are kept here"} as validation-predictions.json, so \`best calibrate --from models/best\` refits the same calibration without any training (it predicts the test split again).`,
    "",
    `| faces | real age inside | below the interval | above it | mean width (years) |`,
    `|---|---|---|---|---|`,
    `| ${k.source.folds ? "training, out of fold" : "validation"} (fitted on), ${v.coverage.faces} | ${pct(v.coverage.coverage)} | ${pct(v.coverage.below)} | ${pct(v.coverage.above)} | ${num(v.coverage.meanWidth, 1)} |`,
    `| **test, ${t.faces}** (looked at ${k.earlierLooks?.length ? `${["", "once", "twice", "three times"][k.earlierLooks.length + 1] ?? `${k.earlierLooks.length + 1} times`}, see below` : "once"}) | **${pct(t.coverage.coverage)}** | ${pct(t.coverage.below)} | ${pct(t.coverage.above)} | ${num(t.coverage.meanWidth, 1)} |`,
    "",
    ...(k.fitted && k.source.folds
      ? [
          `Out of fold the recipe itself is measured on ${k.fitted.faces} faces instead of the test split's ${t.faces}: MAE ${num(k.fitted.mae)}, gender ${pct(k.fitted.genderAccuracy)} (${k.fitted.genderByBand.map((b) => `${b.band} ${pct(b.accuracy)}`).join(", ")}), each face predicted by a model fitted on the other ${k.source.folds - 1} folds of the training faces (the final model trained on all of them).${k.source.foldMae ? ` The fold models' MAE ran from ${num(Math.min(...k.source.foldMae))} to ${num(Math.max(...k.source.foldMae))} over their folds of about ${Math.round(k.fitted.faces / k.source.folds)} faces: how much a split of that size moves the figure.` : ""}`,
          "",
        ]
      : []),
    `Target: ${pct(a.level)} of test faces inside, within 3 points: ${met(within)}. The model's test MAE through the whole predictor (decode, backbones, float16 heads) when scored for this: ${num(t.mae)}.${(() => {
      const step = r.ablation.find((x) => x.name === k.source.model.replace(/ \((validation-only run|its ablation fit).*$/, ""));
      return !within && !k.source.folds && step && t.coverage.coverage < a.level
        ? ` The validation faces were easier for the chosen step than the test faces are for the final model (validation MAE ${num(step.mae)}, test ${num(t.mae)}), so scales that hold ${pct(a.level)} there hold less here; a larger calibration set (out-of-fold predictions of every training face) is the way to close it without looking at the test split.`
        : "";
    })()}${(k.earlierLooks ?? []).map((e) => ` Before this, the test split was scored once with the same model and a calibration fitted on the ${e.fittedOn.faces} ${e.fittedOn.split} faces: ${pct(e.testCoverage)} inside (mean width ${num(e.testMeanWidth, 1)} years)${k.source.folds ? "; that shortfall is why the calibration now comes from out-of-fold predictions of every training face (the remedy that card named), and the scales above were fitted without any test face" : ""}.`).join("")}`,
    "",
    "Interval coverage by decade of the real age (test split):",
    "",
    `| decade | ${t.byDecade.map((b) => b.band).join(" | ")} |`,
    `|---|${t.byDecade.map(() => "---").join("|")}|`,
    `| faces | ${t.byDecade.map((b) => b.faces).join(" | ")} |`,
    `| inside | ${t.byDecade.map((b) => pct(b.coverage)).join(" | ")} |`,
    `| mean width | ${t.byDecade.map((b) => num(b.meanWidth, 1)).join(" | ")} |`,
    "",
    (() => {
      const used = t.byDecade.filter((b) => b.faces > 0);
      const lo = used.reduce((x, y) => (y.coverage < x.coverage ? y : x));
      const hi = used.reduce((x, y) => (y.coverage > x.coverage ? y : x));
      return `The 80% holds over all faces, not per age: one pair of scales for every age leaves the interval loose where the model is sure and right (${hi.band}: ${pct(hi.coverage)} inside) and tight where its age errors are largest (${lo.band}: ${pct(lo.coverage)}). Scales per band of the predicted age (0-12, 13-29, 30-49, 50+) were tried on the validation predictions alone, fitted on half of them and scored on the other half: children's coverage came down towards 80%, but teens' fell further, the middle decades rose above 85%, and the mean width grew by a fifth; not adopted.`;
    })(),
    "",
    `Gender reliability (test split, ${t.faces} faces; ten equal bins of P(female)): expected calibration error ${pct(t.eceBefore)} raw, ${pct(t.eceAfter)} with the temperature (${k.source.folds ? "out-of-fold training faces" : "validation"}: ${pct(k.gender.eceBefore)} -> ${pct(k.gender.eceAfter)}). Figure: notebook 07's reliability diagram.`,
    "",
    "| P(female) bin | faces | mean P(female) | share female |",
    "|---|---|---|---|",
    ...rel(t.reliabilityCalibrated).map((b) => `| ${b.lo.toFixed(1)}-${b.hi.toFixed(1)} | ${b.faces} | ${num(b.meanPredicted, 3)} | ${num(b.observed, 3)} |`),
    "",
  ];
}
