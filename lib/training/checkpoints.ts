/**
 * Training checkpoints: weights, Adam's state and the epoch, saved after every epoch so an
 * interrupted run resumes where it stopped (the state file is written last, atomically).
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic, writeJsonAtomic } from "../core/files";
import type { EpochRecord } from "../records/runs";

/** Writes tensors as a tfjs weights manifest (JSON) and one binary file. */
async function writeTensors(dir: string, base: string, named: { name: string; tensor: tf.Tensor }[]): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(named);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, `${base}.bin`), new Uint8Array(data as ArrayBuffer));
  writeJsonAtomic(path.join(dir, `${base}.json`), specs);
}

/** Reads tensors written by `writeTensors`, in their saved order. */
function readTensors(dir: string, base: string): tf.Tensor[] {
  const specs = JSON.parse(fs.readFileSync(path.join(dir, `${base}.json`), "utf8")) as tf.io.WeightsManifestEntry[];
  const buf = fs.readFileSync(path.join(dir, `${base}.bin`));
  const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  return specs.map((s) => map[s.name]);
}

interface CheckpointState {
  epoch: number;
  /** Folder of the newest complete checkpoint, relative to the checkpoint folder. */
  dir: string;
  history: EpochRecord[];
  savedAt: string;
}

const CHECKPOINT_STATE = "state.json";

/**
 * Saves weights, optimizer state (Adam's step and moments) and the epoch. The state file is
 * written last and atomically, so a kill at any moment leaves the previous complete checkpoint.
 */
export async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer, epoch: number, history: EpochRecord[]): Promise<void> {
  const sub = `epoch-${String(epoch).padStart(3, "0")}`;
  const target = path.join(dir, sub);
  fs.rmSync(target, { recursive: true, force: true });
  await writeTensors(target, "weights", model.weights.map((w, i) => ({ name: `w${i}_${w.name}`, tensor: w.read() })));
  const optWeights = await optimizer.getWeights();
  await writeTensors(target, "optimizer", optWeights.map((w, i) => ({ name: `o${i}_${w.name}`, tensor: w.tensor })));
  // Only the step counter is a fresh tensor; the moments are the optimizer's live variables.
  optWeights[0]?.tensor.dispose();
  const state: CheckpointState = { epoch, dir: sub, history, savedAt: new Date().toISOString() };
  writeJsonAtomic(path.join(dir, CHECKPOINT_STATE), state);
  for (const old of fs.readdirSync(dir)) {
    if (old.startsWith("epoch-") && old !== sub) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
  }
}

/** Restores a checkpoint into a freshly built model and optimizer; undefined when there is none. */
export async function loadCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer): Promise<{ epoch: number; history: EpochRecord[] } | undefined> {
  const stateFile = path.join(dir, CHECKPOINT_STATE);
  if (!fs.existsSync(stateFile)) return undefined;
  const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as CheckpointState;
  const sub = path.join(dir, state.dir);
  const weights = readTensors(sub, "weights");
  if (weights.length !== model.weights.length) {
    throw new Error(`Checkpoint ${sub} holds ${weights.length} weight tensors but the model has ${model.weights.length}: it was saved from a different model or size. Delete it or start a new run.`);
  }
  model.setWeights(weights);
  weights.forEach((t) => t.dispose());
  const opt = readTensors(sub, "optimizer");
  const specs = JSON.parse(fs.readFileSync(path.join(sub, "optimizer.json"), "utf8")) as tf.io.WeightsManifestEntry[];
  // Names were prefixed with their position to keep them unique; the optimizer only needs order.
  await optimizer.setWeights(opt.map((tensor, i) => ({ name: specs[i].name.replace(/^o\d+_/, ""), tensor })));
  // setWeights made variables sharing these tensors' data; our handles are no longer needed.
  opt.forEach((t) => t.dispose());
  return { epoch: state.epoch, history: state.history };
}

/** The best epoch's weights kept by `keepBest`: in memory, and on disk when checkpointing. */
export interface BestWeights {
  epoch: number;
  valLoss: number;
  weights: tf.Tensor[];
}

const BEST_DIR = "best";

/** Keeps the model's weights as the best so far (replacing `previous`), on disk under checkpointDir/best if given. */
export async function saveBestWeights(model: tf.LayersModel, epoch: number, valLoss: number, checkpointDir: string | undefined, previous: BestWeights | undefined): Promise<BestWeights> {
  previous?.weights.forEach((t) => t.dispose());
  const weights = model.weights.map((w) => tf.clone(w.read()));
  if (checkpointDir) {
    const dir = path.join(checkpointDir, BEST_DIR);
    await writeTensors(dir, "weights", weights.map((tensor, i) => ({ name: `w${i}`, tensor })));
    writeJsonAtomic(path.join(dir, "state.json"), { epoch, valLoss });
  }
  return { epoch, valLoss, weights };
}

/** The best weights saved in a checkpoint folder by an earlier call (a resumed run), if any. */
export function readBestWeights(checkpointDir: string | undefined): BestWeights | undefined {
  if (!checkpointDir) return undefined;
  const dir = path.join(checkpointDir, BEST_DIR);
  if (!fs.existsSync(path.join(dir, "state.json"))) return undefined;
  const { epoch, valLoss } = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as { epoch: number; valLoss: number };
  return { epoch, valLoss, weights: readTensors(dir, "weights") };
}

/** Puts the best weights back into the model and frees them. */
export function restoreBestWeights(model: tf.LayersModel, best: BestWeights): void {
  model.setWeights(best.weights);
  best.weights.forEach((t) => t.dispose());
}
