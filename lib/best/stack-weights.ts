/**
 * The arithmetic of stacking (lib/best/stack.ts): fitting the weights that combine two members'
 * out-of-fold predictions, and applying them to one face, which the predictor does too
 * (model-folder.ts imports this file alone, not the trainer).
 *
 * - age: the members' expected ages and 10th/90th percentiles averaged with weights summing to 1
 *   (quantile averaging), so the calibrated interval keeps its meaning;
 * - gender: logistic regression on the members' logits, logit P(female) = a + sum_i b_i logit(p_i).
 */
import { GENDER_THRESHOLD } from "../data/labels";
import type { ValidationPrediction } from "./calibration";
import { genderAccuracyByBand } from "./head-training";

/** How a stacked folder combines its members (best.json's `stack`). */
export interface BestStack {
  /** Weight of each member's expected age and percentiles (summing to 1), in member order. */
  ageWeights: number[];
  /** logit P(female) = intercept + sum_i weights[i] * logit(P_i(female)). */
  gender: { intercept: number; weights: number[] };
  /** The faces the weights were fitted on. */
  fittedOn: { split: "out-of-fold training"; faces: number; folds: number };
}

/** The stack's record in run.json: its weights and the figures that chose it, all out of fold. */
export interface StackRecord extends BestStack {
  /** Each member's and the stack's out-of-fold figures on every training face (the stack's nested: each fold by weights fitted on the others). */
  outOfFold: { model: string; mae: number; genderAccuracy: number; genderByBand: { band: string; images: number; accuracy: number }[] }[];
}

const clampP = (p: number) => Math.min(1 - 1e-6, Math.max(1e-6, p));
/** The log odds the gender stack reads, of P(female) clamped to [1e-6, 1 - 1e-6] (a float32 sigmoid can be exactly 0 or 1). */
export const logit = (p: number) => Math.log(clampP(p) / (1 - clampP(p)));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * Logistic regression by Newton's method (a tiny ridge, 1e-3 per weight, keeps it defined when
 * the classes separate): weights of [1, ...x] for the targets y in {0, 1}.
 */
export function fitLogistic(x: readonly number[][], y: readonly number[], ridge = 1e-3): number[] {
  const d = x[0].length + 1;
  let w = new Array<number>(d).fill(0);
  for (let iter = 0; iter < 50; iter++) {
    const g = new Array<number>(d).fill(0);
    const h = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    x.forEach((row, i) => {
      const v = [1, ...row];
      const p = sigmoid(v.reduce((s, a, j) => s + a * w[j], 0));
      for (let a = 0; a < d; a++) {
        g[a] += (p - y[i]) * v[a];
        for (let b = 0; b < d; b++) h[a][b] += p * (1 - p) * v[a] * v[b];
      }
    });
    for (let a = 1; a < d; a++) { g[a] += ridge * w[a]; h[a][a] += ridge; }
    const step = solve(h, g);
    w = w.map((v, i) => v - step[i]);
    if (Math.max(...step.map(Math.abs)) < 1e-10) break;
  }
  return w;
}

/** Solves a x = b by Gaussian elimination with partial pivoting (small dense systems). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(m[r][i]) > Math.abs(m[p][i])) p = r;
    [m[i], m[p]] = [m[p], m[i]];
    for (let r = 0; r < n; r++) {
      if (r === i) continue;
      const f = m[r][i] / m[i][i];
      for (let c = i; c <= n; c++) m[r][c] -= f * m[i][c];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

/** One face's summary from every member, in member order. */
type MemberRows = readonly (readonly ValidationPrediction[])[];

/**
 * Fits the stack on members' out-of-fold rows of the same faces (in the same order): the age
 * weights of two members by the lowest MAE over a 0.01 grid, the gender logistic regression by
 * its log loss.
 */
export function fitStack(members: MemberRows, folds: number): BestStack {
  if (members.length !== 2) throw new Error(`A stack combines two members, got ${members.length}.`);
  const [a, b] = members;
  if (a.length !== b.length || a.some((r, i) => r.file !== b[i].file)) throw new Error("The members' out-of-fold predictions are not of the same faces in the same order.");
  let best = { w: 1, mae: Infinity };
  for (let k = 0; k <= 100; k++) {
    const w = k / 100;
    const mae = a.reduce((s, r, i) => s + Math.abs(w * r.predAge + (1 - w) * b[i].predAge - r.age), 0) / a.length;
    if (mae < best.mae - 1e-12) best = { w, mae };
  }
  const [intercept, ...weights] = fitLogistic(a.map((r, i) => [logit(r.pFemale), logit(b[i].pFemale)]), a.map((r) => r.gender));
  return { ageWeights: [best.w, Number((1 - best.w).toFixed(2))], gender: { intercept, weights }, fittedOn: { split: "out-of-fold training", faces: a.length, folds } };
}

/** Age summary and P(female) of one face from its members' (what the predictor and the fit share). */
export function stackOne(stack: Pick<BestStack, "ageWeights" | "gender">, members: readonly { predAge: number; q10: number; q90: number; pFemale: number }[]): { predAge: number; q10: number; q90: number; pFemale: number } {
  const w = stack.ageWeights;
  const sum = (f: (m: (typeof members)[number]) => number) => members.reduce((s, m, i) => s + w[i] * f(m), 0);
  const z = stack.gender.intercept + members.reduce((s, m, i) => s + stack.gender.weights[i] * logit(m.pFemale), 0);
  return { predAge: sum((m) => m.predAge), q10: sum((m) => m.q10), q90: sum((m) => m.q90), pFemale: sigmoid(z) };
}

/** The stacked rows of faces every member predicted (in the first member's order). */
export function stackRows(stack: Pick<BestStack, "ageWeights" | "gender">, members: MemberRows): ValidationPrediction[] {
  const r4 = (v: number) => Number(v.toFixed(4));
  return members[0].map((r, i) => {
    const s = stackOne(stack, members.map((m) => m[i]));
    return { file: r.file, age: r.age, gender: r.gender, predAge: r4(s.predAge), q10: r4(s.q10), q90: r4(s.q90), pFemale: r4(s.pFemale) };
  });
}

/** MAE, gender accuracy and gender per age band of rows with real labels. */
export function rowFigures(model: string, rows: readonly ValidationPrediction[]): StackRecord["outOfFold"][number] {
  return {
    model,
    mae: rows.reduce((s, r) => s + Math.abs(r.predAge - r.age), 0) / rows.length,
    genderAccuracy: rows.filter((r) => (r.pFemale >= GENDER_THRESHOLD ? 1 : 0) === r.gender).length / rows.length,
    genderByBand: genderAccuracyByBand(rows.map((r) => ({ ...r, trueGroup: -1 }))),
  };
}

/** The stack's nested out-of-fold rows: each fold combined by weights fitted on the other folds' rows. */
export function nestedStackRows(members: MemberRows, foldOf: readonly number[], folds: number): ValidationPrediction[] {
  const out: ValidationPrediction[] = new Array(members[0].length);
  for (let k = 0; k < folds; k++) {
    const inFold = (i: number) => foldOf[i] === k;
    const fit = fitStack(members.map((m) => m.filter((_, i) => !inFold(i))), folds - 1);
    const held = members.map((m) => m.filter((_, i) => inFold(i)));
    const rows = stackRows(fit, held);
    let j = 0;
    members[0].forEach((_, i) => { if (inFold(i)) out[i] = rows[j++]; });
  }
  return out;
}

