/**
 * Issue 11, finding 9: figure export (headless Chromium through playwright-core) makes no
 * request off the machine; nor do the notebooks' static pictures, drawn in the same browser. Two checks: every system call that opens a network connection or
 * sends a datagram from any Chromium process (traced with strace) goes to the loopback only,
 * and a page asking for an outside URL is refused by the export's request filter.
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { groupGenderCountsFigure } from "../lib/analysis/figures";
import { CHROMIUM_PATH_ENV, chromiumPath, exportFigures, launchChromium } from "../lib/notebook/export";
import { rendererStats } from "../lib/notebook/figure-renderer";
import { renderFigurePngsSync } from "../lib/notebook/static-figures";
import { skipUnlessCI } from "./helpers";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "export-offline-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const haveChromium = fs.existsSync(chromiumPath());
const haveStrace = spawnSync("strace", ["-V"]).status === 0;

/** The outside address of a syscall line (IPv4 or IPv6, not loopback), if it names one. */
function outsideAddress(line: string): string | undefined {
  const addr = line.match(/sin_addr=inet_addr\("([\d.]+)"\)/)?.[1] ?? line.match(/inet_pton\(AF_INET6, "([^"]+)"/)?.[1];
  if (!addr || addr.startsWith("127.") || addr === "::1" || addr === "0.0.0.0" || addr === "::" || addr === "::ffff:127.0.0.1") return undefined;
  return `${addr}:${line.match(/sin6?_port=htons\((\d+)\)/)?.[1] ?? "?"}`;
}

/**
 * Traffic off the machine in per-process strace logs (-ff -yy): a TCP connection to an outside
 * address, or a datagram sent to one. A UDP connect() alone sends nothing (Chromium uses one to
 * 2001:4860:4860::8888 to learn whether IPv6 is routed, then closes it), so it counts only if
 * data follows on that socket before it is closed.
 */
function outsideTraffic(logs: string[]): string[] {
  const out: string[] = [];
  for (const log of logs) {
    const udpPeer = new Map<string, string>();
    for (const line of log.split("\n")) {
      const call = line.match(/^(connect|sendto|sendmsg|sendmmsg|close)\((\d+)<([A-Za-z0-9]+)/);
      if (!call) continue;
      const [, name, fd, proto] = call;
      // A closed socket's number is reused by the next one: forget its peer.
      if (name === "close") {
        udpPeer.delete(fd);
        continue;
      }
      const where = outsideAddress(line);
      if (name === "connect") {
        if (proto.startsWith("UDP")) {
          if (where) udpPeer.set(fd, where);
          else udpPeer.delete(fd);
        } else if (where) out.push(`${proto} connection to ${where}`);
      } else if (where) out.push(`${proto} datagram to ${where}`);
      else if (udpPeer.has(fd)) out.push(`${proto} datagram to ${udpPeer.get(fd)}`);
    }
  }
  return out;
}

test("exporting figures opens no connection off the machine (strace on every Chromium process)", { skip: skipUnlessCI(!haveChromium ? "Chromium not installed" : !haveStrace ? "strace not installed (apt-get install strace)" : false) }, async () => {
  const logDir = path.join(tmp, "strace");
  fs.mkdirSync(logDir);
  const log = path.join(logDir, "net");
  const wrapper = path.join(tmp, "chromium-traced");
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec strace -ff -qq -yy -e trace=connect,sendto,sendmsg,sendmmsg,close -o ${JSON.stringify(log)} ${JSON.stringify(chromiumPath())} "$@"\n`, { mode: 0o755 });
  const before = process.env[CHROMIUM_PATH_ENV];
  process.env[CHROMIUM_PATH_ENV] = wrapper;
  try {
    const fig = groupGenderCountsFigure([{ group: "20 - 24", male: 3, female: 4 }], { split: "all", images: 7 });
    // A notebook's static picture, then the export: both in the process's one (traced) browser.
    const still = renderFigurePngsSync([fig]);
    assert.ok(still.pngs, `no static picture: ${still.reason}`);
    const launches = rendererStats()?.launches;
    const files = await exportFigures([{ name: "offline", figure: fig }], { dir: path.join(tmp, "fig") });
    assert.equal(files.length, 2);
    assert.equal(rendererStats()?.launches, launches, "the export drew in the browser of the static picture");
    // Background services start a few seconds in: give them the time they had in the issue.
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    if (before === undefined) delete process.env[CHROMIUM_PATH_ENV];
    else process.env[CHROMIUM_PATH_ENV] = before;
  }
  const logs = fs.readdirSync(logDir).map((f) => fs.readFileSync(path.join(logDir, f), "utf8"));
  assert.ok(logs.length > 1 && logs.some((t) => /^(connect|sendmsg)\(/m.test(t)), "strace followed the browser's processes and saw their (local) sockets");
  assert.deepEqual(outsideTraffic(logs), []);
});

test("the export's browser refuses every request to another machine and lets local ones through", { skip: skipUnlessCI(haveChromium ? false : "Chromium not installed") }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    const finished: string[] = [];
    page.on("requestfinished", (r) => finished.push(r.url()));
    const local = path.join(tmp, "page.html");
    fs.writeFileSync(local, `<!doctype html><img src="https://example.com/pixel.png"><script src="http://cdn.plot.ly/plotly.min.js"></script>`);
    await page.goto(`file://${local}`);
    await page.evaluate(() => fetch("https://fonts.googleapis.com/css?family=Roboto").catch(() => undefined));
    await page.waitForTimeout(300);
    assert.deepEqual(finished.filter((u) => !u.startsWith("file:")), [], "no outside request completed");
    assert.deepEqual([...browser.blocked].sort(), ["http://cdn.plot.ly/plotly.min.js", "https://example.com/pixel.png", "https://fonts.googleapis.com/css?family=Roboto"]);
    assert.ok(finished.some((u) => u.startsWith("file:")), "the local page itself loaded");
  } finally {
    await browser.close();
  }
});
