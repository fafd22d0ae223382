// Shared helpers for the end-to-end tests: a real bardcast server on
// 127.0.0.1:0 with its own temp data folder, Debian's Chromium through
// playwright-core, REST calls with the GM key, and listener sampling.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { delayAt } from "../js/sync.js";

export const PLAYER_DIR = resolve(fileURLToPath(new URL("..", import.meta.url)));
export const BIN = process.env.BARDCAST_BIN ?? resolve(PLAYER_DIR, "../target/debug/bardcast");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const GM_KEY = "e2e-gm-key";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts bardcast with DEMO=true (4 synthesized tracks of 35-50 s) in a temp dir.
 * @returns {Promise<{base: string, key: string, dir: string, stop: () => Promise<void>, proc: import("node:child_process").ChildProcess}>}
 */
export async function startServer({ env = {}, timeoutMs = 30_000 } = {}) {
  if (!existsSync(BIN)) throw new Error(`bardcast binary not found at ${BIN} (cargo build, or set BARDCAST_BIN)`);
  if (!existsSync(join(PLAYER_DIR, "vendor/hls.mjs"))) throw new Error("player/vendor/hls.mjs missing: run player/install.sh");
  const dir = mkdtempSync(join(tmpdir(), "bardcast-e2e-"));
  const proc = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: "0",
      MUSIC_DIR: join(dir, "music"),
      DATABASE_PATH: join(dir, "db.sqlite"),
      CACHE_DIR: join(dir, "cache"),
      PLAYER_DIR,
      GM_KEY,
      LOG_LEVEL: "warn",
      DEMO: "true",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const base = await new Promise((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`bardcast did not start in ${timeoutMs} ms\n${out}\n${stderr}`)), timeoutMs);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    proc.on("exit", (code) => { clearTimeout(timer); rej(new Error(`bardcast exited (${code})\n${stderr}`)); });
  });
  proc.stdout.resume();
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      await Promise.race([new Promise((r) => proc.once("exit", r)), sleep(5000)]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // The demo library is scanned at start: wait until the tracks are listed.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tracks = await fetch(`${base}/api/tracks`).then((r) => r.json()).catch(() => null);
    if (tracks?.items?.length >= 4) break;
    if (Date.now() > deadline) { await stop(); throw new Error("demo tracks never appeared"); }
    await sleep(200);
  }
  return { base, key: GM_KEY, dir, stop, proc };
}

/** REST call; GM key unless key === null. Resolves to {status, body}. */
export async function api(base, method, path, body, key = GM_KEY) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A GM command over REST; throws unless 2xx. Returns the new state. */
export async function command(base, name, body = {}) {
  const { status, body: state } = await api(base, "POST", `/api/session/${name}`, body);
  if (status >= 300) throw new Error(`POST /api/session/${name} → ${status} ${JSON.stringify(state)}`);
  return state;
}

/** Debian's Chromium, headless; `extraArgs` are appended to the flags every test uses. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required", ...extraArgs],
  });
}

/**
 * Opens the listener page (`path`, with its query) in a fresh context (with `initScript` run before the page's own) and clicks Join.
 * Page errors are collected in `page.errors`. With `sampleEveryMs` the page reads its own
 * playhead from before the click (see startSampling), for `lockIn`. `joinedAt` is Date.now()
 * right before the click.
 * @param {import("playwright-core").Browser} browser
 */
export async function openListener(browser, base, { viewport = { width: 390, height: 844 }, initScript, sampleEveryMs, path = "/" } = {}) {
  const context = await browser.newContext({ viewport });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(`${base}${path}`);
  const join = page.getByTestId("join-button");
  await join.waitFor({ state: "visible" });
  await page.waitForFunction(() => !document.querySelector("[data-testid=join-button]").disabled);
  if (sampleEveryMs) await startSampling(page, sampleEveryMs);
  const joinedAt = Date.now();
  await join.click();
  return { context, page, joinedAt };
}

/**
 * Lock-in of one listener from its own readings (startSampling, takeSamples): ms from
 * `joinedAt` (Date.now()) to the first reading after which its error against Date.now() − D
 * stays within `tolMs` for at least `holdMs` (until the last reading if that is sooner but
 * still ≥ holdMs after). null when that never happened.
 * @param {{now: number, pdt: number | null}[]} readings oldest first
 */
export function lockIn(readings, joinedAt, delayMs, tolMs, holdMs) {
  let since = null;
  for (const r of readings) {
    if (r.now < joinedAt) continue;
    const e = errorOf(r, delayMs);
    if (e === null || Math.abs(e) > tolMs) since = null;
    else {
      since ??= r.now;
      if (r.now - since >= holdMs) return since - joinedAt;
    }
  }
  return null;
}

/**
 * In the page: the wall clock and the PDT being played, read together, to a fraction of
 * a millisecond. Date.now() and hls.playingDate are whole milliseconds (truncated), which
 * alone would add up to ±1 ms of noise to every error, so both are read from continuous
 * clocks (performance.now(), media.currentTime) plus a constant per page: the largest
 * (truncated value − continuous value) seen so far, which after a few dozen reads is the
 * exact difference. A new hls.js instance, or a jump of that difference by more than a
 * millisecond (a seek across a discontinuity), starts it afresh. In a page whose clocks are
 * skewed (impair.mjs), `now` is still the true clock.
 * @returns {{now: number, pdt: number | null}} ms since the Unix epoch
 */
export function readPlayhead() {
  const cal = (window.__probe ??= { now: -Infinity, pdt: -Infinity, hls: null });
  // A page whose clocks are skewed (impair.mjs clockSkewScript) keeps the true ones here.
  const real = window.__realClock;
  const wall = real ? real.dateNow() : Date.now();
  const mono = real ? real.timeOrigin + real.perfNow() : performance.timeOrigin + performance.now();
  cal.now = Math.max(cal.now, wall - mono);
  const hls = window.hls;
  const date = hls?.playingDate?.getTime();
  if (date === undefined || !hls.media) return { now: mono + cal.now, pdt: null };
  const media = hls.media.currentTime * 1000;
  if (cal.hls !== hls || Math.abs(date - media - cal.pdt) > 1) Object.assign(cal, { hls, pdt: date - media });
  cal.pdt = Math.max(cal.pdt, date - media);
  return { now: mono + cal.now, pdt: media + cal.pdt };
}

/**
 * Reads the playhead of a page or frame now (see readPlayhead).
 * @param {import("playwright-core").Page | import("playwright-core").Frame} page
 */
export function probe(page) {
  return page.evaluate(readPlayhead);
}

/**
 * Makes a page or frame read its own playhead every `everyMs`, at multiples of `everyMs` of
 * the wall clock (so every page reads at about the same instants), and keep the readings
 * until `takeSamples`. Costs the browser nothing between collections.
 */
export async function startSampling(page, everyMs) {
  await page.evaluate(`window.__readPlayhead = ${readPlayhead}`);
  await page.evaluate((everyMs) => {
    window.__samples = [];
    window.__stopSampling = false;
    // The true wall clock, also in a page whose clocks are skewed (impair.mjs).
    const wall = window.__realClock?.dateNow ?? (() => Date.now());
    const tick = () => {
      if (window.__stopSampling) return;
      // With the listener page's own view, for diagnosis.
      const b = window.bardcast;
      const own = b ? { own: b.syncError, rate: b.playbackRate, state: b.state, buffer: b.bufferAhead, struggling: b.struggling } : {};
      window.__samples.push({ ...window.__readPlayhead(), ...own });
      setTimeout(tick, everyMs - (wall() % everyMs));
    };
    setTimeout(tick, everyMs - (wall() % everyMs));
  }, everyMs);
}

/** The readings kept since the last call, oldest first. */
export function takeSamples(page) {
  return page.evaluate(() => window.__samples.splice(0));
}

/** Stops startSampling's readings; returns the ones not taken yet. */
export function stopSampling(page) {
  return page.evaluate(() => {
    window.__stopSampling = true;
    return window.__samples.splice(0);
  });
}

/**
 * The room's D as its session state says, polled: `poll()` records it (with its step's ramp
 * and the track playing), `at(time)` is D (ms) at a true time (ms since epoch), inside a
 * ramp too, from the latest state polled before that time.
 * @param {string} base the server's base URL
 */
export function delayTracker(base) {
  /** @type {{t: number, D: number, ramp: object | null, track: number | null}[]} */
  const seen = [];
  return {
    seen,
    async poll() {
      const s = (await api(base, "GET", "/api/session")).body;
      const x = { t: Date.now(), D: s.playbackDelayMs, ramp: s.delay?.ramp ?? null, track: s.nowPlaying?.trackId ?? null };
      seen.push(x);
      return x;
    },
    at(time) {
      const x = seen.findLast((y) => y.t <= time) ?? seen[0];
      return x ? delayAt(x.D, x.ramp, time).delayMs : NaN;
    },
  };
}

/** Error (ms) of one probe against the target Date.now() − D; null when not playing. */
export const errorOf = (p, delayMs) => (p.pdt === null ? null : p.pdt - (p.now - delayMs));

export function percentile(values, q) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** A figure with one decimal, or what it is when not a number. */
export const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));

/** The 1, 5 and 15 minute load averages, for the harnesses' reports. */
export const loadAverages = () => loadavg().map((x) => x.toFixed(2)).join(" ");

/**
 * A harness's summary of its rounds: for each row [name, key, unit = " ms"], the median and
 * the worst (highest) of `results[i][key]`, and every round's value.
 */
export function printRounds(results, rows) {
  console.log(`\n${results.length} round(s), median and worst:`);
  for (const [name, key, unit = " ms"] of rows) {
    const xs = results.map((r) => r[key]);
    console.log(`  ${name.padEnd(34)} median ${f1(percentile(xs, 0.5)).padStart(7)}${unit}   worst ${f1(Math.max(...xs)).padStart(7)}${unit}   [${xs.map(f1).join(", ")}]`);
  }
}

/** Waits until `fn()` is truthy (polling), or throws after timeoutMs. */
export async function until(fn, timeoutMs, what, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Waits until every page is within `tolMs` of Date.now() − D (held for `holdMs`). Returns the time it took. */
export async function waitInSync(pages, delayMs, tolMs, timeoutMs, holdMs = 1000) {
  const t0 = Date.now();
  const delayAtTime = typeof delayMs === "function" ? delayMs : () => delayMs;
  let since = null;
  await until(async () => {
    const errs = await Promise.all(pages.map((p) => probe(p).then((x) => errorOf(x, delayAtTime(x.now)))));
    const ok = errs.every((e) => e !== null && Math.abs(e) <= tolMs);
    if (!ok) since = null;
    else since ??= Date.now();
    return since !== null && Date.now() - since >= holdMs;
  }, timeoutMs, `pages within ${tolMs} ms`, 100);
  return Date.now() - t0;
}

/**
 * Lines up the readings of several pages (startSampling at `everyMs`, read at the same
 * wall-clock instants) by their time: one row per instant, with each page's reading or null.
 * The first and last rows, which may miss pages, are dropped.
 * @param {{now: number, pdt: number | null}[][]} readings per page, oldest first
 * @returns {{t: number, at: ({now: number, pdt: number | null} | null)[]}[]}
 */
export function alignReadings(readings, everyMs) {
  const rows = new Map();
  readings.forEach((list, i) => {
    for (const r of list) {
      const t = Math.round(r.now / everyMs) * everyMs;
      if (!rows.has(t)) rows.set(t, { t, at: readings.map(() => null) });
      rows.get(t).at[i] = r;
    }
  });
  return [...rows.values()].sort((a, b) => a.t - b.t).slice(1, -1);
}

/**
 * Init script: keeps the wall-clock times (the true clock in a skewed page) of the media
 * element's `waiting` events (playback stopped for want of data) in window.__waiting.
 */
export const WAITING_COUNTER = `window.__waiting = [];
document.addEventListener("waiting", () => window.__waiting.push(window.__realClock ? window.__realClock.dateNow() : Date.now()), true);`;
