/**
 * Training callbacks: the one training loop (lib/training/train.ts) calls these named events, and
 * progress display, checkpoints, early stopping and history plug in here, so notebooks and
 * the CLI share the loop and differ only in the callbacks they pass.
 */
import type { EpochRecord } from "../records/runs";

/** What the loop tells callbacks when training starts. */
export interface TrainBeginInfo {
  /** Fold number in K-fold runs. */
  fold?: number;
  /** 1-based epoch the loop starts at (greater than 1 when resuming from a checkpoint). */
  startEpoch: number;
  epochs: number;
  batchesPerEpoch: number;
  trainImages: number;
  model: string;
}

/** The state after one batch. */
export interface BatchEndInfo {
  fold?: number;
  epoch: number;
  /** 1-based batch number within the epoch. */
  batch: number;
  batchesPerEpoch: number;
  /** Running mean of the epoch's loss so far. */
  loss: number;
  /** Running means of the epoch's training metrics so far. */
  metrics: Record<string, number>;
  imagesPerSecond: number;
  /** Seconds since the epoch began. */
  seconds: number;
}

/** What a callback may ask of the loop after an epoch. */
export interface EpochEndAction {
  /** Stop after this epoch (early stopping). */
  stop?: boolean;
}

/** A set of named event handlers; every one is optional and may be async. */
export interface TrainingCallback {
  onTrainBegin?(info: TrainBeginInfo): void | Promise<void>;
  onEpochBegin?(epoch: number, info: TrainBeginInfo): void | Promise<void>;
  onBatchEnd?(info: BatchEndInfo): void | Promise<void>;
  onEpochEnd?(record: EpochRecord, info: TrainBeginInfo): void | EpochEndAction | Promise<void | EpochEndAction>;
  onTrainEnd?(history: EpochRecord[], info: TrainBeginInfo): void | Promise<void>;
}

/** Formats seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function formatMetrics(metrics: Record<string, number> | undefined, prefix = ""): string {
  if (!metrics) return "";
  return Object.entries(metrics)
    .map(([k, v]) => `${prefix}${k} ${v.toFixed(3)}`)
    .join("  ");
}

/** One line describing an epoch: loss, metrics, validation, speed. */
export function epochLine(r: EpochRecord, epochs: number): string {
  const fold = r.fold !== undefined ? `fold ${r.fold + 1} ` : "";
  const val = r.valLoss !== undefined ? `  val_loss ${r.valLoss.toFixed(4)}  ${formatMetrics(r.valMetrics, "val_")}` : "";
  return `${fold}epoch ${r.epoch}/${epochs}  loss ${r.loss.toFixed(4)}  ${formatMetrics(r.metrics)}${val}  ${r.imagesPerSecond.toFixed(1)} img/s  ${formatDuration(r.seconds)}`.replace(/ +$/, "");
}

function bar(done: number, total: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round((done / Math.max(1, total)) * width)));
  return "[" + "=".repeat(filled) + (filled < width ? ">" : "") + " ".repeat(Math.max(0, width - filled - 1)) + "]";
}

/** Options of `progressCallback`. */
export interface ProgressOptions {
  /** "auto" (tslab display in a notebook, a bar on a terminal, lines otherwise), or force one. */
  mode?: "auto" | "notebook" | "terminal" | "lines" | "silent";
  /** Where terminal output goes (default process.stderr, so stdout stays machine-readable). */
  stream?: NodeJS.WriteStream;
}

interface TslabDisplay {
  html(s: string): void;
}

/** A tslab display that overwrites one output area, or undefined outside a tslab kernel. */
function tslabDisplay(): TslabDisplay | undefined {
  try {
    // Lazy: tslab is only meaningful inside its kernel; a probe write fails ("Not ready") elsewhere.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const display = (require("tslab") as { newDisplay(): TslabDisplay }).newDisplay();
    display.html("<i>starting…</i>");
    return display;
  } catch {
    return undefined;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Least time between two redraws of the progress line in a notebook and in a terminal. */
const NOTEBOOK_REDRAW_MS = 1000;
const TERMINAL_REDRAW_MS = 250;

/**
 * Live progress: epoch, batch bar, loss, metrics, images/s and ETA. In a tslab notebook it
 * updates one HTML output in place (with a table of finished epochs); on a terminal it redraws
 * one line per epoch; elsewhere (CI logs, pipes) it prints one line per finished epoch.
 */
export function progressCallback(options: ProgressOptions = {}): TrainingCallback {
  const stream = options.stream ?? process.stderr;
  let mode = options.mode ?? "auto";
  let display: TslabDisplay | undefined;
  const lines: string[] = [];
  let lastDraw = 0;
  let epochsTotal = 0;
  let startEpoch = 1;
  let trainStart = 0;
  let secondsDone = 0;

  const eta = (info: BatchEndInfo): number => {
    const epochFraction = info.batch / info.batchesPerEpoch;
    const perEpoch = info.seconds / Math.max(epochFraction, 1e-9);
    const epochsLeft = epochsTotal - info.epoch + (1 - epochFraction);
    return perEpoch * epochsLeft;
  };

  const render = (current: string) => {
    if (mode === "notebook" && display) {
      const rows = lines.map((l) => `<div>${escapeHtml(l)}</div>`).join("");
      display.html(`<div style="font-family:monospace;white-space:pre">${rows}<div><b>${escapeHtml(current)}</b></div></div>`);
    } else if (mode === "terminal") {
      stream.write(`\r\x1b[2K${current}`);
    }
  };

  return {
    onTrainBegin(info) {
      if (mode === "auto" || mode === "notebook") {
        display = tslabDisplay();
        if (display) mode = "notebook";
        else if (mode === "auto") mode = stream.isTTY ? "terminal" : "lines";
        else mode = "lines";
      }
      epochsTotal = info.epochs;
      startEpoch = info.startEpoch;
      trainStart = Date.now();
      secondsDone = 0;
      const head = `${info.model}${info.fold !== undefined ? ` fold ${info.fold + 1}` : ""}: ${info.trainImages} training images, ${info.batchesPerEpoch} batches/epoch, epochs ${info.startEpoch}..${info.epochs}`;
      if (mode === "notebook") {
        lines.push(head);
        render("");
      } else if (mode !== "silent") stream.write(head + "\n");
    },
    onBatchEnd(info) {
      if (mode !== "notebook" && mode !== "terminal") return;
      const now = Date.now();
      // Redrawing on every batch floods a notebook's websocket, and a redraw still being sent when
      // the kernel publishes its status kills a tslab kernel ("Socket is busy writing"): once a
      // second in a notebook, 4 times a second in a terminal.
      if (now - lastDraw < (mode === "notebook" ? NOTEBOOK_REDRAW_MS : TERMINAL_REDRAW_MS) && info.batch < info.batchesPerEpoch) return;
      lastDraw = now;
      const fold = info.fold !== undefined ? `fold ${info.fold + 1} ` : "";
      const m = formatMetrics(info.metrics);
      render(
        `${fold}epoch ${info.epoch}/${epochsTotal} ${bar(info.batch, info.batchesPerEpoch)} ${info.batch}/${info.batchesPerEpoch}  loss ${info.loss.toFixed(4)}  ${m}  ${info.imagesPerSecond.toFixed(1)} img/s  ETA ${formatDuration(eta(info))}`,
      );
    },
    onEpochEnd(record) {
      secondsDone += record.seconds;
      const line = epochLine(record, epochsTotal);
      if (mode === "notebook") {
        lines.push(line);
        render("");
      } else if (mode === "terminal") stream.write(`\r\x1b[2K${line}\n`);
      else if (mode === "lines") stream.write(line + "\n");
    },
    onTrainEnd(history) {
      const total = (Date.now() - trainStart) / 1000;
      const msg = `trained ${history.length - Math.max(0, startEpoch - 1)} epoch(s) in ${formatDuration(total)}`;
      if (mode === "notebook") {
        lines.push(msg);
        render("");
      } else if (mode !== "silent") stream.write(msg + "\n");
    },
  };
}

/** Options of `earlyStopping`. */
export interface EarlyStoppingOptions {
  /** Epochs without improvement before stopping. */
  patience: number;
  /** Smallest decrease that counts as an improvement. */
  minDelta?: number;
  /** Which figure to watch: validation loss when there is one, else training loss. */
  monitor?: "valLoss" | "loss";
}

/** Stops training when the watched loss has not improved for `patience` epochs. */
export function earlyStopping(options: EarlyStoppingOptions): TrainingCallback {
  const { patience, minDelta = 0, monitor = "valLoss" } = options;
  let best = Infinity;
  let wait = 0;
  return {
    onTrainBegin() {
      best = Infinity;
      wait = 0;
    },
    onEpochEnd(r) {
      const value = monitor === "valLoss" ? r.valLoss ?? r.loss : r.loss;
      if (value < best - minDelta) {
        best = value;
        wait = 0;
        return {};
      }
      wait++;
      return { stop: wait >= patience };
    },
  };
}

/** Collects every epoch record (the loop's own history; also handy in notebooks). */
export function historyCallback(into: EpochRecord[] = []): TrainingCallback & { history: EpochRecord[] } {
  return {
    history: into,
    onEpochEnd(r) {
      into.push(r);
    },
  };
}
