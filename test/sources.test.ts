/**
 * The sources keep their shape: lib/ has no import cycle (type-only imports included, since a
 * type cycle still ties two modules together), and every committed notebook is byte for byte
 * what scripts/make-notebooks.ts generates, so the generator stays the one source.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../lib/core/paths";
import { NOTEBOOKS, notebookJson } from "../scripts/make-notebooks";

const LIB = path.join(REPO_ROOT, "lib");

/** Every .ts file below a folder. */
function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

// Static imports and re-exports (`import ... from`, `export ... from`, `import "x"`) and
// dynamic `import("x")`; comments are stripped first so a path in prose is not an import.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\1/g;

/** Relative imports of a lib/ file, resolved to files. An unresolvable one fails the test. */
function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  for (const m of source.matchAll(SPECIFIER)) {
    const base = path.resolve(path.dirname(file), m[2]);
    const target = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
    assert.ok(target, `${path.relative(REPO_ROOT, file)} imports "${m[2]}", which resolves to no .ts file`);
    out.push(target);
  }
  return out;
}

/** The first import cycle found by a depth-first walk, as a list of files, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    if (state.get(f) === "done") return undefined;
    if (state.get(f) === "open") return [...stack.slice(stack.indexOf(f)), f];
    state.set(f, "open");
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      const c = visit(g);
      if (c) return c;
    }
    stack.pop();
    state.set(f, "done");
    return undefined;
  };
  for (const f of graph.keys()) {
    const c = visit(f);
    if (c) return c;
  }
  return undefined;
}

test("the cycle finder reports a planted cycle and passes a chain", () => {
  assert.deepEqual(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])), ["a", "b", "c", "a"]);
  assert.equal(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", []]])), undefined);
});

test("lib/ has no import cycle", () => {
  const files = tsFiles(LIB);
  assert.ok(files.length > 20, `expected the library's modules under ${LIB}`);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const cycle = findCycle(graph);
  assert.equal(cycle, undefined, `import cycle: ${cycle?.map((f) => path.relative(REPO_ROOT, f)).join(" -> ")}`);
});

test("every committed notebook equals scripts/make-notebooks.ts output", () => {
  const dir = path.join(REPO_ROOT, "notebooks");
  const committed = fs.readdirSync(dir).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
  assert.deepEqual(committed, Object.keys(NOTEBOOKS).map((n) => `${n}.ipynb`).sort(), "the generator and notebooks/ list different notebooks");
  for (const [name, cells] of Object.entries(NOTEBOOKS)) {
    const onDisk = fs.readFileSync(path.join(dir, `${name}.ipynb`), "utf8");
    assert.ok(onDisk === notebookJson(cells), `notebooks/${name}.ipynb differs from its generator: run npx tsx scripts/make-notebooks.ts and commit the result`);
  }
});

test("no two files of lib/ share a name outside cli/ and bench/ (a name says which file, without its folder)", () => {
  const lib = path.join(REPO_ROOT, "lib");
  const byName = new Map<string, string[]>();
  for (const file of tsFiles(lib)) {
    const rel = path.relative(lib, file).split(path.sep).join("/");
    if (rel.startsWith("cli/") || rel.startsWith("bench/")) continue;
    byName.set(path.basename(rel), [...(byName.get(path.basename(rel)) ?? []), rel]);
  }
  const twice = [...byName.values()].filter((files) => files.length > 1);
  assert.deepEqual(twice, [], `files sharing a name: ${twice.map((f) => f.join(" and ")).join("; ")}`);
});

test("a notebook cell imports the library only as ut (lib/index.ts), never a module of it by path", () => {
  for (const [name, cells] of Object.entries(NOTEBOOKS)) {
    for (const cell of cells.filter((c) => c.cell_type === "code")) {
      const byPath = [...cell.source.matchAll(/from\s+["'](\.\.\/dist\/lib\/[^"']+)["']/g)].map((m) => m[1]);
      assert.deepEqual(byPath, [], `${name} imports ${byPath.join(", ")}: export what the cell needs through lib/index.ts`);
    }
  }
});
