/**
 * Figure export to PNG and SVG with a real browser engine: the system's Chromium driven by
 * playwright-core (no browser download, no CDN: plotly.js is loaded from node_modules).
 * Plotly.toImage renders each figure in a page with plotly.js loaded. By default the process's
 * shared browser draws them (./figure-renderer.ts: one Chromium for the whole process, also
 * drawing the notebooks' static pictures); a caller may pass a browser of its own.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { NamedFigure, PlotlyFigure } from "../analysis/figures";
import { asLoadedRun, runFigures, type AnyRun } from "../analysis/run-figures";
import { plotlyBundlePath } from "./display";
import { FIGURES_DIR } from "../core/paths";
import { writeFileAtomic } from "../core/files";
import { CHROMIUM_PATH_ENV, chromiumPath, renderAsync, type RenderJob } from "./figure-renderer";

// Defined beside the shared renderer (which imports nothing of this module), re-exported here.
export { CHROMIUM_PATH_ENV, chromiumPath } from "./figure-renderer";

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

/** A running headless Chromium with a fresh profile; `close()` removes the profile. */
export interface ChromiumSession {
  context: import("playwright-core").BrowserContext;
  /** Its --user-data-dir (a temp folder, removed by `close()`). */
  profile: string;
  /** URLs of the pages' requests to other machines, refused by the request filter. */
  blocked: string[];
  close(): Promise<void>;
}

/** Prefix of the temp folders launchChromium uses as profiles. */
export const PROFILE_PREFIX = "utkface-chromium-";

/**
 * Removes profiles left in the temp folder by a process that ended without closing its
 * Chromium (killed by a signal, its browser then exiting on its own when the pipe closed): those
 * whose SingletonLock (Chromium's "host-pid" link) names a process of this host that no longer
 * runs, and lock-less ones that no running process names on its command line and that are more
 * than 10 minutes old (a launch in progress has not made its lock yet). A profile in use, by this
 * process or another, is left alone.
 */
export function sweepStaleProfiles(dir: string = os.tmpdir()): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(PROFILE_PREFIX));
  } catch {
    return;
  }
  let cmdlines: string | undefined;
  const named = (profile: string): boolean => {
    if (cmdlines === undefined) {
      try {
        cmdlines = fs
          .readdirSync("/proc")
          .filter((e) => /^\d+$/.test(e))
          .map((e) => {
            try {
              return fs.readFileSync(`/proc/${e}/cmdline`, "utf8");
            } catch {
              return "";
            }
          })
          .join("\n");
      } catch {
        return true; // No /proc: cannot tell, keep it.
      }
    }
    return cmdlines.includes(profile);
  };
  for (const name of names) {
    const profile = path.join(dir, name);
    try {
      let stale: boolean;
      try {
        const m = fs.readlinkSync(path.join(profile, "SingletonLock")).match(/^(.*)-(\d+)$/);
        stale = !!m && m[1] === os.hostname() && !pidAlive(Number(m[2]));
      } catch {
        stale = Date.now() - fs.statSync(profile).mtimeMs > 10 * 60 * 1000 && !named(profile);
      }
      if (stale) fs.rmSync(profile, { recursive: true, force: true });
    } catch {
      // Removed by someone else meanwhile, or not ours to remove.
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Launches headless Chromium with a fresh --user-data-dir (a temp folder removed on close).
 * Throws a clear error naming the path when the executable is missing. `exe` defaults to
 * `chromiumPath()`.
 */
export async function launchChromium(exe: string = chromiumPath()): Promise<ChromiumSession> {
  if (!fs.existsSync(exe)) {
    throw new Error(`Chromium not found at ${exe}. Install it (Debian: apt-get install chromium) or set ${CHROMIUM_PATH_ENV} to its executable.`);
  }
  const { chromium } = await import("playwright-core");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), PROFILE_PREFIX));
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
    profile,
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
  /**
   * A browser to use; default: this process's shared one (./figure-renderer.ts, the browser
   * the notebooks' static pictures are drawn in), else, when that cannot start, one launched
   * and closed by this call.
   */
  browser?: ChromiumSession;
}

/**
 * Writes each figure as `<dir>/<name>.png` and `.svg` (atomic writes) and returns the paths.
 * Uses the figure's own layout width and height (default 800x450). A PNG already drawn in the
 * shared browser for the identical figure, size and scale (a static picture at scale 1, an
 * earlier export) is reused: it is the same call on the same page, so the same bytes.
 */
export async function exportFigures(figures: readonly NamedFigure[], options: ExportOptions = {}): Promise<string[]> {
  const dir = options.dir ?? FIGURES_DIR;
  const formats = [options.png !== false ? "png" : undefined, options.svg !== false ? "svg" : undefined].filter(Boolean) as ("png" | "svg")[];
  for (const f of figures) {
    if (!/^[A-Za-z0-9._-]+$/.test(f.name)) throw new Error(`Figure name "${f.name}" may use only letters, digits, '.', '_' and '-' (it becomes a file name).`);
  }
  const scale = options.scale ?? 2;
  const wanted = figures.flatMap((f) => formats.map((format) => ({ name: f.name, figure: f.figure, format })));
  let urls: { url?: string; error?: string }[] | undefined;
  if (!options.browser) {
    const jobs: RenderJob[] = wanted.map((w) => ({ data: w.figure.data, layout: w.figure.layout, format: w.format, scale }));
    const outcome = jobs.length ? await renderAsync(jobs, chromiumPath()) : { reply: { id: 0, results: [], stats: { launches: 0, renders: 0, cacheHits: 0 } } };
    if ("reply" in outcome) {
      if (outcome.reply.error) throw new Error(outcome.reply.error);
      urls = outcome.reply.results;
    }
    // Unavailable (the thread did not start or died): draw in a browser of this call's own.
  }
  if (!urls) urls = await renderInOwnBrowser(wanted, scale, options.browser);
  const written: string[] = [];
  wanted.forEach((w, i) => {
    const r = urls![i];
    if (!r?.url) throw new Error(`Chromium returned no ${w.format} for figure "${w.name}"${r?.error ? `: ${r.error}` : ""}.`);
    const file = path.join(dir, `${w.name}.${w.format}`);
    writeFileAtomic(file, decodeDataUrl(r.url));
    written.push(file);
  });
  return written;
}

/** Data URLs of the pictures, drawn in `browser` (or one launched and closed here) on a new page. */
async function renderInOwnBrowser(wanted: { figure: PlotlyFigure; format: "png" | "svg" }[], scale: number, given?: ChromiumSession): Promise<{ url?: string; error?: string }[]> {
  const browser = given ?? (await launchChromium());
  try {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ path: plotlyBundlePath() });
    const out: { url?: string; error?: string }[] = [];
    for (const w of wanted) {
      const url = await renderFigure(page, w.figure, w.format, scale);
      out.push(url ? { url } : { error: errors.join("; ") || undefined });
      if (!url) break;
    }
    await page.close();
    return out;
  } finally {
    if (!given) await browser.close();
  }
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
 * One browser draws every run's figures: `options.browser`, else the process's shared one.
 */
export async function exportRunFigures(runs: readonly AnyRun[], options: RunExportOptions = {}): Promise<RunFiguresExport> {
  const gather = options.gather === undefined ? FIGURES_DIR : options.gather;
  const out: RunFiguresExport = { inRuns: [], gathered: [] };
  for (const anyRun of runs) {
    const run = asLoadedRun(anyRun);
    const written = await exportFigures(runFigures(run), { ...options, dir: path.join(run.runDir, RUN_FIGURES_SUBDIR) });
    out.inRuns.push(...written);
    if (gather === false) continue;
    for (const file of written) {
      const copy = path.join(gather, path.basename(file));
      writeFileAtomic(copy, fs.readFileSync(file));
      out.gathered.push(copy);
    }
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
