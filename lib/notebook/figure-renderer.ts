/**
 * One headless Chromium per process for every figure picture: a worker thread
 * (./figure-worker.ts) owns the browser and a page with plotly.js loaded, started on the first
 * request and kept until the process exits. Two ways in:
 *
 * - `renderSync` (the notebooks' static PNGs, ./static-figures.ts): posts the request on a
 *   MessageChannel port and blocks in Atomics.wait on a SharedArrayBuffer flag until the worker
 *   sets it, then takes the reply with receiveMessageOnPort (synckit's pattern), so `show()`
 *   stays synchronous.
 * - `renderAsync` (figure export, ./export.ts): a message to the worker, answered by one.
 *
 * The worker is unref'd: it never keeps the process alive (it is held only while an async
 * request is out). Chromium is launched with a debugging pipe and exits when the pipe closes,
 * that is when the process ends however it ends; at a normal exit (including process.exit())
 * an exit handler also kills it at once and removes its profile folder. PNGs of identical
 * figures at the same size and scale are drawn once (the worker keeps them), because both ways
 * in draw them with the same call on the same page.
 */
import * as fs from "fs";
import * as path from "path";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "worker_threads";

/** Environment variable naming the Chromium executable (default /usr/bin/chromium, Debian's). */
export const CHROMIUM_PATH_ENV = "CHROMIUM_PATH";

/** The Chromium to launch: $CHROMIUM_PATH, else /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env[CHROMIUM_PATH_ENV] || "/usr/bin/chromium";
}

/** One picture to draw: a figure (data and layout only), its format and PNG pixel ratio. */
export interface RenderJob {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
  format: "png" | "svg";
  scale: number;
}

export interface RenderRequest {
  id: number;
  /** The Chromium executable (a change relaunches the browser). */
  exe: string;
  jobs: RenderJob[];
  /** Draw even when the same PNG was drawn before (tests). */
  noCache?: boolean;
}

/** Counters of the worker's life, for tests and timings. */
export interface RendererStats {
  /** Chromium launches by this process's worker (a relaunch after a crash counts). */
  launches: number;
  /** Pictures drawn (not taken from the PNG cache). */
  renders: number;
  /** PNGs taken from the cache. */
  cacheHits: number;
  /** The browser process, where /proc shows it. */
  pid?: number;
  profile?: string;
}

export interface RenderReply {
  id: number;
  /** One per job: a data: URL, or why that picture failed. */
  results?: ({ url: string } | { error: string })[];
  /** Why the whole request failed (Chromium missing, did not start). */
  error?: string;
  stats: RendererStats;
}

/** The outcome of a request: `unavailable` when the worker itself could not serve it. */
export type RenderOutcome = { reply: RenderReply } | { unavailable: string };

/** Milliseconds a synchronous request may take, launch included (as the old child's timeout). */
export const SYNC_TIMEOUT_MS = 180_000;

interface Handle {
  worker: Worker;
  port: MessagePort;
  flag: Int32Array;
  pending: Map<number, (o: RenderOutcome) => void>;
  dead?: string;
}

let handle: Handle | undefined;
let nextId = 1;
let lastStats: RendererStats | undefined;
/** The browser to kill and the profile to remove at exit (the latest the worker reported). */
let exitState: { pid?: number; profile?: string } = {};
let exitHookInstalled = false;

function workerFile(): string {
  // Under tsx (tests) these files are TypeScript (see start()).
  return path.join(__dirname, `figure-worker${path.extname(__filename)}`);
}

function start(): Handle {
  if (handle && !handle.dead) return handle;
  const file = workerFile();
  if (!fs.existsSync(file)) throw new Error(`renderer thread file missing: ${file}`);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const options = { workerData: { utkfaceFigureWorker: true, flag, port: port2 }, transferList: [port2], execArgv: [] as string[] };
  // A worker does not get tsx's loader from execArgv (Node 20 runs its entry through a loader
  // without the hooks): it registers tsx's require hook itself, then loads the .ts entry.
  const worker =
    path.extname(file) === ".ts"
      ? new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(file)});`, { ...options, eval: true })
      : new Worker(file, options);
  const h: Handle = { worker, port: port1, flag, pending: new Map() };
  const fail = (why: string) => {
    if (h.dead) return;
    h.dead = why;
    for (const resolve of h.pending.values()) resolve({ unavailable: why });
    h.pending.clear();
    worker.unref();
    port1.close();
  };
  worker.on("error", (e) => fail(`renderer thread failed: ${e.message}`));
  worker.on("exit", (code) => fail(`renderer thread exited (${code})`));
  worker.on("message", (reply: RenderReply) => {
    noteStats(reply.stats);
    const resolve = h.pending.get(reply.id);
    if (!resolve) return;
    h.pending.delete(reply.id);
    if (h.pending.size === 0) worker.unref();
    resolve({ reply });
  });
  // Unref'd after the listeners are added (adding a 'message' listener refs the worker again):
  // the worker never keeps the process alive but while an async request is out.
  worker.unref();
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", cleanUpAtExit);
  }
  handle = h;
  return h;
}

function noteStats(stats: RendererStats): void {
  lastStats = stats;
  if (stats.profile) exitState = { pid: stats.pid, profile: stats.profile };
}

/** Exit handler: the browser would exit when its pipe closes anyway; this is at once, and tidy. */
function cleanUpAtExit(): void {
  const { pid, profile } = exitState;
  if (pid) {
    // Playwright starts Chromium as a process group leader: the group is the browser and its
    // helpers (GPU, network, storage, renderers), killed together before the profile is removed.
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
        break;
      } catch {
        // Not a group (or already gone): try the process alone.
      }
    }
  }
  if (profile) {
    try {
      fs.rmSync(profile, { recursive: true, force: true });
    } catch {
      // Best effort: a later launch sweeps it (sweepStaleProfiles).
    }
  }
}

function request(jobs: RenderJob[], exe: string, noCache?: boolean): RenderRequest {
  return { id: nextId++, exe, jobs, ...(noCache ? { noCache } : {}) };
}

/**
 * Draws the jobs in the shared browser and waits for them, blocking this thread (at most
 * `timeoutMs`). On a timeout the worker is stopped (the next call starts a fresh one).
 */
export function renderSync(jobs: RenderJob[], exe: string, options: { timeoutMs?: number; noCache?: boolean } = {}): RenderOutcome {
  let h: Handle;
  try {
    h = start();
  } catch (e) {
    return { unavailable: (e as Error).message };
  }
  const req = request(jobs, exe, options.noCache);
  Atomics.store(h.flag, 0, 0);
  h.port.postMessage(req);
  const timeoutMs = options.timeoutMs ?? SYNC_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const waited = Atomics.wait(h.flag, 0, 0, Math.max(0, deadline - Date.now()));
    const msg = receiveMessageOnPort(h.port);
    if (msg) {
      const reply = msg.message as RenderReply;
      noteStats(reply.stats);
      if (reply.id === req.id) return { reply };
      // A reply to an older request (none should be left): wait on for ours.
      Atomics.store(h.flag, 0, 0);
      continue;
    }
    if (waited === "timed-out" || Date.now() >= deadline) {
      stopWorker(`no answer in ${Math.round(timeoutMs / 1000)} s`);
      return { unavailable: `renderer gave no answer in ${Math.round(timeoutMs / 1000)} s` };
    }
    // Woken without a message (should not happen): wait again.
    Atomics.store(h.flag, 0, 0);
  }
}

/** Draws the jobs in the shared browser; resolves (never rejects) with the reply or why not. */
export function renderAsync(jobs: RenderJob[], exe: string): Promise<RenderOutcome> {
  let h: Handle;
  try {
    h = start();
  } catch (e) {
    return Promise.resolve({ unavailable: (e as Error).message });
  }
  const req = request(jobs, exe);
  return new Promise((resolve) => {
    h.pending.set(req.id, resolve);
    // Held while a request is out, so an awaited export is not cut short by the process exiting.
    h.worker.ref();
    h.worker.postMessage(req);
  });
}

/** Stops the worker (its Chromium exits with it); the next request starts a new one. */
export function stopWorker(why = "stopped"): void {
  const h = handle;
  if (!h) return;
  handle = undefined;
  if (!h.dead) {
    h.dead = why;
    for (const resolve of h.pending.values()) resolve({ unavailable: why });
    h.pending.clear();
    void h.worker.terminate();
  }
  cleanUpAtExit();
  exitState = {};
}

/** The worker's counters as of its last reply (undefined before the first). */
export function rendererStats(): RendererStats | undefined {
  return lastStats;
}
