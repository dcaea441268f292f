/**
 * The worker thread of ./figure-renderer.ts: owns one headless Chromium and one page with
 * plotly.js loaded, kept for the life of the process, and draws the figures every request
 * sends. Requests come on two ports: the synchronous one (`workerData.port`; the main thread
 * is blocked in Atomics.wait on `workerData.flag` until this thread sets it) and the parent
 * port (async requests, answered with a message). Both go into one queue: one page draws one
 * figure at a time.
 *
 * Nothing heavy is imported at the top (playwright and the exporter load on the first request),
 * so a failure to load them is an error reply, not a dead thread the main thread waits on.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import { isMainThread, parentPort, workerData, type MessagePort } from "worker_threads";
import type { RenderJob, RenderReply, RenderRequest } from "./figure-renderer";

type Page = import("playwright-core").Page;
type Session = import("./export").ChromiumSession;

interface Browser {
  session: Session;
  page: Page;
  exe: string;
  /** The Chromium browser process (Linux: found in /proc), killed by the main thread at exit. */
  pid?: number;
  /** Page errors since the current figure started. */
  errors: string[];
  dead: boolean;
}

let browser: Browser | undefined;
let launches = 0;
let renders = 0;
let cacheHits = 0;

/** PNG data URLs by figure, size and scale (a Map keeps insertion order: oldest first). */
const cache = new Map<string, string>();
let cacheChars = 0;
const CACHE_MAX_CHARS = 64 * 1024 * 1024;

/** Same figure, size, scale and Chromium: the same call on the same kind of page, so the same bytes. */
function cacheKey(exe: string, job: RenderJob, width: number, height: number): string {
  return crypto.createHash("sha256").update(JSON.stringify([exe, job.data, job.layout, width, height, job.scale])).digest("hex");
}

function remember(key: string, url: string): void {
  if (url.length > CACHE_MAX_CHARS / 4) return;
  cache.set(key, url);
  cacheChars += url.length;
  for (const [k, v] of cache) {
    if (cacheChars <= CACHE_MAX_CHARS) break;
    cache.delete(k);
    cacheChars -= v.length;
  }
}

/** The pid of the Chromium this process started with that profile (Linux /proc), if found. */
function browserPid(profile: string): number | undefined {
  try {
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid !== process.pid) continue;
        if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(`--user-data-dir=${profile}`)) return Number(entry);
      } catch {
        // The process ended while we looked.
      }
    }
  } catch {
    // No /proc: the pid stays unknown (Chromium still exits when its pipe closes).
  }
  return undefined;
}

async function openBrowser(exe: string): Promise<Browser> {
  if (browser && !browser.dead && browser.exe === exe) return browser;
  if (browser) {
    const old = browser;
    browser = undefined;
    await old.session.close();
  }
  const { launchChromium, sweepStaleProfiles } = require("./export") as typeof import("./export");
  const { plotlyBundlePath } = require("./display") as typeof import("./display");
  sweepStaleProfiles();
  const session = await launchChromium(exe);
  launches++;
  try {
    const page = await session.context.newPage();
    const b: Browser = { session, page, exe, pid: browserPid(session.profile), errors: [], dead: false };
    page.on("pageerror", (e) => b.errors.push(e.message));
    page.on("crash", () => (b.dead = true));
    page.on("close", () => (b.dead = true));
    session.context.on("close", () => (b.dead = true));
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ path: plotlyBundlePath() });
    browser = b;
    return b;
  } catch (e) {
    await session.close();
    throw e;
  }
}

async function handle(req: RenderRequest): Promise<RenderReply> {
  const results: RenderReply["results"] = [];
  try {
    const { renderFigure } = require("./export") as typeof import("./export");
    for (const job of req.jobs) {
      const width = typeof job.layout.width === "number" ? job.layout.width : 800;
      const height = typeof job.layout.height === "number" ? job.layout.height : 450;
      // Only PNGs are kept: Plotly's SVGs carry random clip-path ids, so no two are the same bytes.
      const key = job.format === "png" ? cacheKey(req.exe, job, width, height) : undefined;
      const hit = key && !req.noCache ? cache.get(key) : undefined;
      if (hit) {
        cacheHits++;
        results.push({ url: hit });
        continue;
      }
      const b = await openBrowser(req.exe);
      b.errors.length = 0;
      try {
        const url = await renderFigure(b.page, { data: job.data, layout: job.layout }, job.format, job.scale);
        renders++;
        if (!url) results.push({ error: b.errors.join("; ") || "no image" });
        else {
          if (key) remember(key, url);
          results.push({ url });
        }
      } catch (e) {
        if (b.page.isClosed()) b.dead = true;
        results.push({ error: [(e as Error).message.split("\n")[0], ...b.errors].join("; ") });
      }
    }
    return { id: req.id, results, stats: stats() };
  } catch (e) {
    return { id: req.id, error: (e as Error).message, stats: stats() };
  }
}

function stats(): RenderReply["stats"] {
  return { launches, renders, cacheHits, pid: browser?.pid, profile: browser?.session.profile };
}

if (!isMainThread && parentPort && workerData?.utkfaceFigureWorker) {
  const flag = workerData.flag as Int32Array;
  const syncPort = workerData.port as MessagePort;
  let queue: Promise<unknown> = Promise.resolve();
  /** The synchronous request being drawn: answered by the crash handler if this thread fails. */
  let pendingSync: number | undefined;
  const answerSync = (reply: RenderReply) => {
    syncPort.postMessage(reply);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
  process.on("uncaughtException", (e) => {
    if (pendingSync !== undefined) answerSync({ id: pendingSync, error: `renderer thread failed: ${e.message}`, stats: stats() });
    pendingSync = undefined;
  });
  syncPort.on("message", (req: RenderRequest) => {
    queue = queue.then(async () => {
      pendingSync = req.id;
      const reply = await handle(req);
      pendingSync = undefined;
      answerSync(reply);
    });
  });
  parentPort.on("message", (req: RenderRequest) => {
    queue = queue.then(async () => parentPort!.postMessage(await handle(req)));
  });
}
