/**
 * One Chromium per process for every figure picture (lib/notebook/figure-renderer.ts): the
 * synchronous static PNGs of notebook figures and the async export share one browser, launched
 * once; its PNGs are the bytes the former per-call child process drew; a PNG already drawn at
 * the same size and scale is reused by the export; and a process that drew figures exits by
 * itself, leaving no Chromium behind (normal end, process.exit(), SIGTERM).
 */
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { after, test } from "node:test";
import { confusionMatrixFigure, groupGenderCountsFigure, type PlotlyFigure } from "../lib/analysis/figures";
import { REPO_ROOT } from "../lib/core/paths";
import { chromiumPath, exportFigures } from "../lib/notebook/export";
import { rendererStats, type RendererStats } from "../lib/notebook/figure-renderer";
import { renderFigurePngsInChild, renderFigurePngsSync } from "../lib/notebook/static-figures";
import { skipUnlessCI } from "./helpers";

const haveChromium = fs.existsSync(chromiumPath());
const skip = skipUnlessCI(haveChromium ? false : `no Chromium at ${chromiumPath()} (set CHROMIUM_PATH)`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "figure-renderer-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function figures(): PlotlyFigure[] {
  const counts = groupGenderCountsFigure([{ group: "0 - 4", male: 3, female: 4 }, { group: "5 - 9", male: 2, female: 1 }], { split: "all", images: 10 });
  const cm = confusionMatrixFigure({ labels: ["Male", "Female"], matrix: [[5, 1], [2, 4]] }, "Gender", { split: "test", images: 12 });
  cm.layout = { ...cm.layout, width: 500, height: 400 };
  return [counts, cm];
}

/** Whether a process runs (a zombie, dead and waiting to be reaped, does not). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Running processes whose command line names the profile (the browser and its helpers). */
function usingProfile(profile: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return fs.readFileSync(`/proc/${e}/cmdline`, "utf8").includes(profile);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(running);
}

/** Waits up to 10 s for the browser of `stats` and every process using its profile to end. */
async function leftovers(stats: RendererStats): Promise<number[]> {
  const left = () => [...new Set([...(stats.pid && running(stats.pid) ? [stats.pid] : []), ...(stats.profile ? usingProfile(stats.profile) : [])])];
  for (let i = 0; i < 40 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 250));
  return left();
}

test("several synchronous renders in one process launch Chromium once, and draw the PNGs the per-call child drew", { skip, timeout: 180000 }, async () => {
  const figs = figures();
  const first = renderFigurePngsSync([figs[0]]);
  assert.ok(first.pngs, `no picture: ${first.reason}`);
  const s0 = rendererStats()!;
  assert.ok(s0.pid && running(s0.pid), "the browser process is known and runs");
  const t = Date.now();
  const again = renderFigurePngsSync(figs);
  const third = renderFigurePngsSync([{ ...figs[1], layout: { ...figs[1].layout, title: { text: "another" } } }]);
  const ms = Date.now() - t;
  assert.ok(again.pngs && third.pngs, `no pictures: ${again.reason ?? third.reason}`);
  const s1 = rendererStats()!;
  assert.equal(s1.launches, s0.launches, "no second launch");
  assert.equal(s1.pid, s0.pid, "the same browser process");
  assert.ok(ms < 20000, `two calls with the browser up took ${ms} ms`);
  // The former way (a child process with its own Chromium) draws the same bytes.
  const child = renderFigurePngsInChild(figs);
  assert.ok(child.pngs, `no pictures from the child: ${child.reason}`);
  assert.deepEqual(again.pngs, child.pngs);
  const sharp = (await import("sharp")).default;
  const sizes = await Promise.all(again.pngs.map(async (b64) => sharp(Buffer.from(b64, "base64")).metadata()));
  assert.deepEqual(sizes.map((m) => [m.format, m.width, m.height]), [["png", 800, 450], ["png", 500, 400]]);
});

test("the export draws in the same browser and reuses a static PNG of the same figure, size and scale", { skip, timeout: 180000 }, async () => {
  const [fig] = figures();
  const still = renderFigurePngsSync([fig]);
  assert.ok(still.pngs, `no picture: ${still.reason}`);
  const s0 = rendererStats()!;
  const files = await exportFigures([{ name: "same", figure: fig }], { dir: path.join(tmp, "s1"), scale: 1 });
  const s1 = rendererStats()!;
  assert.deepEqual(files.map((f) => path.basename(f)), ["same.png", "same.svg"]);
  assert.equal(s1.launches, s0.launches);
  assert.equal(s1.pid, s0.pid);
  assert.equal(s1.cacheHits, s0.cacheHits + 1, "the PNG came from the static picture");
  assert.equal(s1.renders, s0.renders + 1, "only the SVG was drawn");
  assert.ok(fs.readFileSync(path.join(tmp, "s1", "same.png")).equals(Buffer.from(still.pngs[0], "base64")));
  // At the export's default scale (2) the PNG is another picture: drawn, in the same browser.
  await exportFigures([{ name: "same", figure: fig }], { dir: path.join(tmp, "s2") });
  const s2 = rendererStats()!;
  assert.equal(s2.launches, s0.launches);
  assert.equal(s2.renders, s1.renders + 2);
  const sharp = (await import("sharp")).default;
  const m = await sharp(path.join(tmp, "s2", "same.png")).metadata();
  assert.deepEqual([m.width, m.height], [1600, 900]);
});

/** Runs a child that draws one figure then ends as `mode` says; returns its renderer stats. */
async function drawInChild(mode: "end" | "exit" | "sigterm"): Promise<{ stats: RendererStats; code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const script = path.join(tmp, `draw-${mode}.ts`);
  const lib = (p: string) => JSON.stringify(path.join(REPO_ROOT, "lib", p));
  fs.writeFileSync(
    script,
    `import { groupGenderCountsFigure } from ${lib("analysis/figures")};\n` +
      `import { renderFigurePngsSync } from ${lib("notebook/static-figures")};\n` +
      `import { rendererStats } from ${lib("notebook/figure-renderer")};\n` +
      `const r = renderFigurePngsSync([groupGenderCountsFigure([{ group: "0 - 4", male: 3, female: 4 }], { split: "all", images: 7 })]);\n` +
      `if (!r.pngs) throw new Error("no picture: " + r.reason);\n` +
      `console.log(JSON.stringify(rendererStats()));\n` +
      (mode === "exit" ? "process.exit(0);\n" : mode === "sigterm" ? "setTimeout(() => undefined, 120000);\n" : ""),
  );
  const t0 = Date.now();
  const child = spawn(process.execPath, [...process.execArgv, script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => {
    out += d;
    if (mode === "sigterm" && out.includes("\n")) child.kill("SIGTERM");
  });
  child.stderr.on("data", (d) => (err += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), 90000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
  clearTimeout(killer);
  const line = out.split("\n").find((l) => l.startsWith("{"));
  assert.ok(line, `the child printed no stats (exit ${code ?? signal}):\n${err}`);
  return { stats: JSON.parse(line) as RendererStats, code, signal, ms: Date.now() - t0 };
}

for (const mode of ["end", "exit", "sigterm"] as const) {
  test(`a process that drew a figure ${mode === "end" ? "and exits by itself" : mode === "exit" ? "and calls process.exit()" : "and is sent SIGTERM"} leaves no Chromium running`, { skip, timeout: 180000 }, async () => {
    const { stats, code, signal, ms } = await drawInChild(mode);
    if (mode === "sigterm") assert.equal(signal, "SIGTERM");
    else assert.equal(code, 0, `exit ${code ?? signal} after ${ms} ms (killed by the test's 90 s guard?)`);
    assert.equal(stats.launches, 1);
    assert.ok(stats.pid && stats.profile, "the child knew its browser");
    assert.deepEqual(await leftovers(stats), [], "Chromium processes left running");
    // The exit handler removes the profile; after a signal, the next launch's sweep does.
    if (mode !== "sigterm") assert.equal(fs.existsSync(stats.profile!), false, "profile folder removed");
  });
}

test("without Chromium a static picture is a reason, not an exception, and the next call draws again", { skip, timeout: 180000 }, () => {
  const saved = process.env.CHROMIUM_PATH;
  process.env.CHROMIUM_PATH = path.join(os.tmpdir(), "no-such-chromium");
  try {
    const r = renderFigurePngsSync(figures());
    assert.ok(!r.pngs, "no pictures");
    assert.match(r.reason ?? "", /no-such-chromium/);
  } finally {
    if (saved === undefined) delete process.env.CHROMIUM_PATH;
    else process.env.CHROMIUM_PATH = saved;
  }
  const ok = renderFigurePngsSync([{ ...figures()[0], layout: { ...figures()[0].layout, title: { text: "after" } } }]);
  assert.ok(ok.pngs, `no picture: ${ok.reason}`);
});
