/**
 * Rerunning a whole notebook in the same kernel works: notebook 01's cells run twice in one
 * tslab kernel (as a user rerunning everything would), with no error (no duplicate
 * declarations) and the same number of live tensors after each pass. Every committed notebook
 * has cleared outputs and the fixed outline.
 */
import { spawnSync } from "child_process";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { test } from "node:test";
import { REPO_ROOT } from "../lib/core/paths";
import { findJupyter, installKernelSpec, KERNEL_DISPLAY_NAME, KERNEL_HOME } from "../scripts/jupyter";
import { modelProfileSettings, profileSettings, quickOverrides } from "../lib/training/profile";
import { skipUnlessCI } from "./helpers";

const NOTEBOOKS = path.join(REPO_ROOT, "notebooks");
const jupyter = findJupyter() ?? (process.env.JUPYTER || "jupyter");
const haveNbconvert = findJupyter() !== undefined;
const haveDist = fs.existsSync(path.join(REPO_ROOT, "dist", "lib", "index.js"));

interface NbCell {
  cell_type: string;
  id?: string;
  source: string[] | string;
  outputs?: { name?: string; text?: string[] | string; output_type: string }[];
  execution_count?: number | null;
}

const committed = fs.readdirSync(NOTEBOOKS).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();

test("the numbered notebooks, committed with outputs cleared and the fixed outline", () => {
  for (const f of committed) {
    const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, f), "utf8")) as { cells: (NbCell & { metadata: { scrolled?: boolean } })[]; metadata: { kernelspec: { name: string; display_name: string } } };
    assert.equal(nb.metadata.kernelspec.name, "tslab", f);
    // The name the installed kernel spec shows; another one makes Jupyter mark the notebook changed on opening.
    assert.equal(nb.metadata.kernelspec.display_name, KERNEL_DISPLAY_NAME, f);
    for (const c of nb.cells.filter((c) => c.cell_type === "code")) {
      assert.equal(c.metadata.scrolled, false, `${f}: a code cell may fold its figures into a scroll box`);
      assert.deepEqual(c.outputs, [], `${f}: a code cell has outputs`);
      assert.equal(c.execution_count, null, `${f}: a code cell has an execution count`);
    }
    const headings = nb.cells.filter((c) => c.cell_type === "markdown").map((c) => [c.source].flat().join("").split("\n")[0]);
    assert.match(headings[0], /^# \d\d · /, `${f}: header cell`);
    const outline = headings.filter((h) => /^## /.test(h)).map((h) => h.replace(/^## (\w+).*/, "$1"));
    assert.deepEqual(outline, ["Setup", "Data", "Model", "Train", "Evaluate", "Figures"], f);
  }
});

test("tests default to the smoke profile (recorded as quick); quick and full stay what they name", () => {
  const saved = process.env.EXPERIMENT_PROFILE;
  try {
    delete process.env.EXPERIMENT_PROFILE;
    assert.ok(process.env.NODE_TEST_CONTEXT, "the test runner sets NODE_TEST_CONTEXT");
    const smoke = profileSettings();
    assert.equal(smoke.profile, "quick");
    assert.equal(smoke.smoke, true);
    assert.deepEqual([smoke.size, smoke.epochs, smoke.maxImages, smoke.batchSize], [48, 3, 400, 25]);
    assert.deepEqual(quickOverrides("vgg19"), { size: 32, epochs: 1, maxImages: 150 });
    assert.equal(modelProfileSettings("cnn-gender").epochs, 3);
    assert.deepEqual(quickOverrides("cnn-age-sigmoid"), {}, "under smoke a model's quick trims give way to the smoke ones");
    assert.equal(modelProfileSettings("cnn-age-sigmoid").epochs, 3);
    const quick = profileSettings("quick");
    assert.deepEqual([quick.size, quick.epochs, quick.maxImages, quick.batchSize, quick.learningRate], [48, 8, 2000, 16, 3e-4]);
    assert.deepEqual([quick.folds, quick.firstEpochs, quick.minEpochs], [3, 9, 7], "the quick K-fold: 3 folds of 9, 8 and 7 epochs");
    const sigmoid = modelProfileSettings("cnn-age-sigmoid", "quick");
    assert.deepEqual([sigmoid.epochs, sigmoid.batchSize, sigmoid.learningRate], [18, 25, 1e-3], "the sigmoid age model's quick trims");
    assert.equal(modelProfileSettings("cnn-age-relu", "quick").epochs, 10);
    assert.deepEqual([modelProfileSettings("cnn-multi", "quick").epochs, modelProfileSettings("cnn-multi", "quick").firstEpochs], [6, 9], "the multi-output model's 6 epochs leave the K-fold schedule alone");
    const vgg = modelProfileSettings("vgg19", "quick");
    assert.deepEqual([vgg.size, vgg.epochs, vgg.maxImages, vgg.learningRate], [32, 7, 2000, 3e-4], "VGG19's quick trims (its Adam 3e-4 over its own 1e-4)");
    assert.equal(modelProfileSettings("vgg19", "full").learningRate, undefined, "in the full profile VGG19's own Adam 1e-4 wins over the profile's");
    assert.equal(profileSettings("full").learningRate, undefined, "the full profile keeps the report's Adam 1e-3 (the trainer's default)");
    assert.equal(profileSettings("quick").smoke, undefined, "a named quick is quick (the generator's headers)");
    assert.equal(profileSettings("full").size, 70);
    process.env.EXPERIMENT_PROFILE = "quick";
    assert.equal(profileSettings().smoke, undefined, "EXPERIMENT_PROFILE=quick is the quick profile");
    assert.equal(profileSettings("quick").smoke, undefined);
    process.env.EXPERIMENT_PROFILE = "smoke";
    assert.equal(profileSettings("quick").smoke, true, "a smoke session's stored quick runs stay smoke");
    assert.throws(() => profileSettings("fast"), /not a profile.*smoke/);
  } finally {
    if (saved === undefined) delete process.env.EXPERIMENT_PROFILE;
    else process.env.EXPERIMENT_PROFILE = saved;
  }
});

test(
  "notebook 01 run twice in one kernel: no error, no growth in live tensors",
  { skip: skipUnlessCI(!haveNbconvert ? `"${jupyter} nbconvert" does not run (install jupyter-nbconvert)` : !haveDist ? "dist/ not built (npm run build)" : false), timeout: 300000 },
  () => {
    const source = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, "01-data-exploration.ipynb"), "utf8")) as { cells: NbCell[] };
    const again = source.cells.filter((c) => c.cell_type === "code").map((c) => ({ ...c, id: `${c.id}-again` }));
    const doubled = { ...source, cells: [...source.cells, ...again] };
    // The copy sits in notebooks/ (hidden name) so its `../dist/lib` import resolves as in the original.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-rerun-"));
    const nb = path.join(NOTEBOOKS, `.rerun-test-${process.pid}.ipynb`);
    try {
      fs.writeFileSync(nb, JSON.stringify(doubled));
      installKernelSpec();
      const env = { ...process.env, JUPYTER_PATH: KERNEL_HOME, PYDEVD_DISABLE_FILE_VALIDATION: "1", EXPERIMENT_PROFILE: "smoke" };
      const r = spawnSync(jupyter, ["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=tslab", "--output-dir", dir, "--output", "executed", nb], { env, encoding: "utf8" });
      assert.equal(r.status, 0, `a cell failed:\n${r.stderr.slice(-3000)}`);
      const executed = JSON.parse(fs.readFileSync(path.join(dir, "executed.ipynb"), "utf8")) as { cells: NbCell[] };
      const counts = executed.cells
        .flatMap((c) => c.outputs ?? [])
        .map((o) => [o.text ?? ""].flat().join(""))
        .map((t) => /live tensors: (\d+)/.exec(t)?.[1])
        .filter((v): v is string => v !== undefined)
        .map(Number);
      assert.equal(counts.length, 2, "the memory cell ran twice");
      assert.equal(counts[1], counts[0], `live tensors grew from ${counts[0]} to ${counts[1]} on the second pass`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(nb, { force: true });
    }
  },
);
