/**
 * Figure export to PNG and SVG with a real browser engine: the system's Chromium driven by
 * playwright-core (no browser download, no CDN: plotly.js is loaded from node_modules).
 * One browser and one page serve every figure of a call; Plotly.toImage renders each.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { NamedFigure, PlotlyFigure } from "../analysis/figures";
import { asLoadedRun, runFigures, type AnyRun } from "../analysis/run-figures";
import { plotlyBundlePath } from "./display";
import { FIGURES_DIR } from "../core/paths";
import { writeFileAtomic } from "../core/files";

/** Environment variable naming the Chromium executable (default /usr/bin/chromium, Debian's). */
export const CHROMIUM_PATH_ENV = "CHROMIUM_PATH";

/**
 * Flags for a headless, offline, throwaway Chromium (no GPU, no sync, no background traffic).
 * --disable-background-networking alone still let Chromium look up two outside hosts: the
 * resolver rule answers "not found" for every name but localhost, so nothing leaves the machine
 * even from services no flag names. The rule maps IP literals too: 127.0.0.1 is excluded by
 * name, or a local Jupyter server (the web UI test) could not be reached.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
  "--disable-domain-reliability",
  "--disable-client-side-phishing-detection",
  "--disable-default-apps",
  "--disable-breakpad",
  "--no-pings",
  "--dns-prefetch-disable",
  "--disable-features=OptimizationHints,MediaRouter,DialMediaRouteProvider,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
];

/** Whether a URL stays on this machine (inline data, files, the loopback). */
export function isLocalUrl(url: string): boolean {
  if (/^(data|blob|file|about|chrome|chrome-extension|devtools):/i.test(url)) return true;
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host === "::1" || /^127\./.test(host);
  } catch {
    return false;
  }
}

/** The Chromium to launch: $CHROMIUM_PATH, else /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env[CHROMIUM_PATH_ENV] || "/usr/bin/chromium";
}

/** A running headless Chromium with a fresh profile; `close()` removes the profile. */
export interface ChromiumSession {
  context: import("playwright-core").BrowserContext;
  /** URLs of the pages' requests to other machines, refused by the request filter. */
  blocked: string[];
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh --user-data-dir (a temp folder removed on close).
 * Throws a clear error naming the path when the executable is missing.
 */
export async function launchChromium(): Promise<ChromiumSession> {
  const exe = chromiumPath();
  if (!fs.existsSync(exe)) {
    throw new Error(`Chromium not found at ${exe}. Install it (Debian: apt-get install chromium) or set ${CHROMIUM_PATH_ENV} to its executable.`);
  }
  const { chromium } = await import("playwright-core");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "utkface-chromium-"));
  // launchPersistentContext is playwright's way to pass --user-data-dir (launch() refuses it).
  const context = await chromium.launchPersistentContext(profile, { executablePath: exe, headless: true, args: [...CHROMIUM_ARGS] });
  // Figures are drawn from the inline plotly bundle: a page asking for anything off the machine
  // (a CDN script, a web font, an image URL in a figure) is refused, never fetched.
  const blocked: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLocalUrl(url)) return route.continue();
    blocked.push(url);
    return route.abort("blockedbyclient");
  });
  return {
    context,
    blocked,
    async close() {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Options of `exportFigures`. */
export interface ExportOptions {
  /** Folder for the files (default results/figures/). */
  dir?: string;
  png?: boolean;
  svg?: boolean;
  /** PNG pixel ratio (default 2 for crisp figures in documents). */
  scale?: number;
  /** A browser to reuse; default: one is launched and closed by this call. */
  browser?: ChromiumSession;
}

/**
 * Writes each figure as `<dir>/<name>.png` and `.svg` (atomic writes) and returns the paths.
 * Uses the figure's own layout width and height (default 800x450).
 */
export async function exportFigures(figures: readonly NamedFigure[], options: ExportOptions = {}): Promise<string[]> {
  const dir = options.dir ?? FIGURES_DIR;
  const formats = [options.png !== false ? "png" : undefined, options.svg !== false ? "svg" : undefined].filter(Boolean) as ("png" | "svg")[];
  for (const f of figures) {
    if (!/^[A-Za-z0-9._-]+$/.test(f.name)) throw new Error(`Figure name "${f.name}" may use only letters, digits, '.', '_' and '-' (it becomes a file name).`);
  }
  const browser = options.browser ?? (await launchChromium());
  const written: string[] = [];
  try {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ path: plotlyBundlePath() });
    for (const f of figures) {
      for (const format of formats) {
        const url = await renderFigure(page, f.figure, format, options.scale ?? 2);
        if (!url) throw new Error(`Chromium returned no ${format} for figure "${f.name}"${errors.length ? `: ${errors.join("; ")}` : ""}.`);
        const file = path.join(dir, `${f.name}.${format}`);
        writeFileAtomic(file, decodeDataUrl(url));
        written.push(file);
      }
    }
    await page.close();
  } finally {
    if (!options.browser) await browser.close();
  }
  return written;
}

/** Folder inside a run folder (K-fold: the run's top folder) that holds the run's own figures. */
export const RUN_FIGURES_SUBDIR = "figures";

/** Options of `exportRunFigures`. */
export interface RunExportOptions extends Omit<ExportOptions, "dir"> {
  /** Folder that gathers a flat copy of every run's figures (default results/figures/); false: none. */
  gather?: string | false;
}

/** What `exportRunFigures` wrote: the files in the run folders, and their gathered copies. */
export interface RunFiguresExport {
  /** `<runDir>/figures/<experiment>-<figure>.png` and `.svg`, run by run. */
  inRuns: string[];
  /** The same files copied flat into the gather folder (empty when `gather` is false). */
  gathered: string[];
}

/**
 * Writes each run's figures (`runFigures(run)`) into its own run folder, `<runDir>/figures/`,
 * so a later run of the same experiment cannot overwrite them, then copies them flat into
 * results/figures/ where the docs and the notebooks' readers look for the latest figures.
 * One browser draws every run's figures.
 */
export async function exportRunFigures(runs: readonly AnyRun[], options: RunExportOptions = {}): Promise<RunFiguresExport> {
  const gather = options.gather === undefined ? FIGURES_DIR : options.gather;
  const browser = options.browser ?? (await launchChromium());
  const out: RunFiguresExport = { inRuns: [], gathered: [] };
  try {
    for (const anyRun of runs) {
      const run = asLoadedRun(anyRun);
      const written = await exportFigures(runFigures(run), { ...options, dir: path.join(run.runDir, RUN_FIGURES_SUBDIR), browser });
      out.inRuns.push(...written);
      if (gather === false) continue;
      for (const file of written) {
        const copy = path.join(gather, path.basename(file));
        writeFileAtomic(copy, fs.readFileSync(file));
        out.gathered.push(copy);
      }
    }
  } finally {
    if (!options.browser) await browser.close();
  }
  return out;
}

/** A data: URL of one figure drawn by the plotly.js already loaded in `page`. */
export async function renderFigure(page: import("playwright-core").Page, fig: PlotlyFigure, format: "png" | "svg", scale: number): Promise<string> {
  const width = typeof fig.layout.width === "number" ? fig.layout.width : 800;
  const height = typeof fig.layout.height === "number" ? fig.layout.height : 450;
  return page.evaluate(
    async ({ fig, format, width, height, scale }) => {
      const Plotly = (window as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly;
      return Plotly.toImage({ data: fig.data, layout: fig.layout }, { format, width, height, scale: format === "png" ? scale : 1 });
    },
    { fig, format, width, height, scale },
  );
}

/** Bytes of a data: URL (base64 or percent-encoded, as Plotly.toImage returns for PNG and SVG). */
export function decodeDataUrl(url: string): Buffer {
  const comma = url.indexOf(",");
  if (!url.startsWith("data:") || comma < 0) throw new Error(`Not a data URL: ${url.slice(0, 40)}...`);
  const meta = url.slice(5, comma);
  const body = url.slice(comma + 1);
  return meta.endsWith(";base64") ? Buffer.from(body, "base64") : Buffer.from(decodeURIComponent(body), "utf8");
}
