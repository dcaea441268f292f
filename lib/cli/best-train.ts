/** `npm run cli -- best train`: the ablation on validation, the final heads, the model folder. */
import { parseArgs } from "util";
import { BACKBONE_NAMES, BackboneName, backboneSpec } from "../models/features";
import { AblationStep, runBest } from "../training/best";
import { DEFAULT_HEAD_CONFIG, FeaturePart, HeadConfig } from "../training/heads";
import { intOption } from "./options";

export const help = `Usage: npm run cli -- best train [--dir D] [--out models/best] [--backbones facenet,faceres-caffe]

Tries each ablation step on the validation split (carved from the training faces), trains the
step with the lowest validation MAE on every training face, scores the held-out split once
(the same seeded 80/20 split as train) and writes the model folder: heads/ (tfjs), best.json,
metrics.json, ablation.json, predictions.json, MODEL_CARD.md. Features come from the cache
(npm run cli -- best features); missing ones are extracted first.
  --backbones a,b   backbones to use (of ${BACKBONE_NAMES.join(", ")}; default facenet,faceres-caffe
                    when both caches exist, else facenet)
  --epochs N        epochs of each ablation step (default ${DEFAULT_HEAD_CONFIG.epochs}; the final model
                    trains for the validation-best count)`;

/**
 * The ablation: each step changes one thing from the one before, on the backbones given. The
 * order matters only for reading; the lowest validation MAE among the heads steps wins.
 */
export function defaultAblation(backbones: readonly BackboneName[], epochs = DEFAULT_HEAD_CONFIG.epochs): AblationStep[] {
  const base = { ...DEFAULT_HEAD_CONFIG, epochs };
  const steps: AblationStep[] = [];
  const faceres = backbones.find((b) => b !== "facenet");
  const all: FeaturePart[] = backbones.map((b) => ({ backbone: b }));
  const cfg = (name: string, c: Partial<HeadConfig>): HeadConfig => ({ ...base, name, ...c });
  if (faceres) steps.push({ kind: "own", name: `${faceres} own`, backbone: faceres, description: `${faceres}'s own age (expected value of its 100 bins) and gender outputs, no training` });
  if (backbones.includes("facenet")) {
    steps.push({ kind: "heads", description: "face-api 128-d descriptor, linear heads, no mirrored copies", config: cfg("facenet linear", { features: [{ backbone: "facenet" }], hidden: 0, flipTrain: false, flipTest: false }) });
    steps.push({ kind: "heads", description: "MLP 256 instead of linear", config: cfg("facenet mlp", { features: [{ backbone: "facenet" }], flipTrain: false, flipTest: false }) });
    steps.push({ kind: "heads", description: "+ mirrored copies as training rows", config: cfg("facenet mlp +flip-train", { features: [{ backbone: "facenet" }], flipTest: false }) });
    steps.push({ kind: "heads", description: "+ test-time flip averaging", config: cfg("facenet mlp +flips", { features: [{ backbone: "facenet" }] }) });
    steps.push({ kind: "heads", description: "age loss DLDL + L1 of the expected age (DLDL-v2)", config: cfg("facenet dldl-l1", { features: [{ backbone: "facenet" }], ageLoss: "dldl-l1" }) });
    steps.push({ kind: "heads", description: "label spread sd 3 years instead of 2", config: cfg("facenet sigma3", { features: [{ backbone: "facenet" }], sigma: 3 }) });
    steps.push({ kind: "heads", description: "512 hidden units, dropout 0.5", config: cfg("facenet mlp512", { features: [{ backbone: "facenet" }], hidden: 512, dropout: 0.5 }) });
  }
  if (faceres) {
    steps.push({ kind: "heads", description: `${faceres} 1024-d pooled feature, MLP 256, flips`, config: cfg(`${faceres} pooled`, { features: [{ backbone: faceres, columns: "pooled" }] }) });
    steps.push({ kind: "heads", description: `+ ${faceres}'s own age/gender outputs as features`, config: cfg(`${faceres} all`, { features: [{ backbone: faceres }] }) });
    if (backbones.includes("facenet")) {
      steps.push({ kind: "heads", description: "fusion: face-api descriptor + faceres (all), MLP 256, flips", config: cfg("fused", { features: all }) });
      steps.push({ kind: "heads", description: "fusion, DLDL + L1", config: cfg("fused dldl-l1", { features: all, ageLoss: "dldl-l1" }) });
    }
  }
  return steps;
}

/** Runs the command. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: "string" }, out: { type: "string" }, backbones: { type: "string" }, epochs: { type: "string" } }, strict: true });
  const backbones = (values.backbones ?? "facenet").split(",").map((b) => backboneSpec(b.trim()).name);
  const epochs = intOption("epochs", values.epochs);
  await runBest({ dir: values.dir, outDir: values.out ?? "models/best", steps: defaultAblation(backbones, epochs) });
  return 0;
}
