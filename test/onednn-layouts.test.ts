/**
 * The addon's parameter layouts agree on both sides: every enum of native/src/layouts.h lists,
 * in order, the names of its layout in lib/engine/onednn/layouts.ts (upper-cased, after the
 * enum's prefix), then its COUNT; and each writer puts a value at its name's position.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../lib/core/paths";
import { BATCH_NORM_GRAD_PARAMS, BATCH_NORM_PARAMS, CONV_PARAMS, MATMUL_PARAMS, POOL_PARAMS, paramWriter } from "../lib/engine/onednn/layouts";

const LAYOUTS: Record<string, { prefix: string; names: readonly string[] }> = {
  ConvParam: { prefix: "P_", names: CONV_PARAMS },
  MatMulParam: { prefix: "M_", names: MATMUL_PARAMS },
  PoolParam: { prefix: "Q_", names: POOL_PARAMS },
  BatchNormParam: { prefix: "B_", names: BATCH_NORM_PARAMS },
  BatchNormGradParam: { prefix: "G_", names: BATCH_NORM_GRAD_PARAMS },
};

test("native/src/layouts.h and lib/engine/onednn/layouts.ts list the same parameters in the same order", () => {
  const header = fs.readFileSync(path.join(REPO_ROOT, "native", "src", "layouts.h"), "utf8");
  const enums = new Map([...header.matchAll(/enum\s+(\w+)\s*\{([^}]*)\}/g)].map((m) => [m[1], m[2].split(",").map((s) => s.trim()).filter(Boolean)]));
  assert.deepEqual([...enums.keys()].sort(), Object.keys(LAYOUTS).sort(), "layouts.h and layouts.ts declare different layouts");
  for (const [name, { prefix, names }] of Object.entries(LAYOUTS)) {
    assert.deepEqual(enums.get(name), [...names.map((n) => prefix + n.toUpperCase()), `${prefix}COUNT`], `${name} differs`);
  }
});

test("a parameter writer puts each value at its name's position and reuses one array", () => {
  const write = paramWriter(BATCH_NORM_GRAD_PARAMS);
  const a = write({ rows: 7, c: 3, scale: 1 });
  assert.deepEqual([...a], [7, 3, 1]);
  assert.equal(write({ rows: 1, c: 2, scale: 0 }), a);
  assert.deepEqual([...a], [1, 2, 0]);
});
