// Paths harness (a bench, not a test; issue #13): N listeners (default 6) on one real
// server, each behind its own impaired path and clock (impair.mjs: a user-space
// delay/jitter proxy, ordered per direction, and Date/performance skewed and drifting as
// the page sees them), judged on the TRUE clock (the harness's and the server's).
// Listener i of N (f = i / (N − 1)) gets
//   one-way delay 100·f ms, jitter ±25·f ms (both directions, HTTP and control socket),
//   clock skew ±60·f s (alternating sign), drift 100·(1 − 2f) ppm,
// so with 6: 0/20/40/60/80/100 ms, ±0/5/10/15/20/25 ms, 0/+12/−24/+36/−48/+60 s,
// +100/+60/+20/−20/−60/−100 ppm.
// Each round starts a fresh server (D starts from its floor) and browser, joins every
// listener, and plays the demo library on repeat for T seconds; at T/2 the GM sends `next`.
// Per round it prints, over the time after the first 10 s (from the last Join):
//  - per listener: p95 |error| against true clock − D (D polled every second; each page
//    glides through a step of D with playbackRate, which counts here), lock-in, its clock
//    estimate against the truth and its own uncertainty;
//  - the spread between listeners (per sample, max − min of their errors): p95 and max;
//  - sync seeks (window.bardcast.syncStats) and stalls (`waiting` events; samples in the
//    "stalled" state);
//  - command to ear of the `next`: from sending it to each listener's playing PDT reaching
//    its effectiveAt, against D + 0.6 s;
//  - the room's D (GET /api/session): at start, at end, its range;
//  - the load average.
// And at the end, the median and the worst of the R rounds.
// Goal: spread p95 ≤ 5 ms, no seeks after the first 10 s, no stalls, command to ear p95 ≤ D + 0.6 s.
//
// By default the listeners are iframes of one page (one renderer, like harness20.mjs: a
// 2-core machine cannot run many renderers in real time); each iframe comes from its own
// proxy port, so from its own origin, and picks its clock by that port. --pages gives each
// listener its own page (renderer).
//
//   cd player && node e2e/harness-paths.mjs [--n 6] [--t 90] [--r 3] [--no-skew | --proxy-only] [--direct] [--pages]
//   --no-skew (alias --proxy-only): paths only, true clocks; --direct: no paths (clocks skewed unless --no-skew);
//   --max-delay 100 --max-jitter 25: the farthest path (ms); --player-dir DIR: serve the pages from DIR (say, a
//   `git archive` of a commit's player/ with vendor/ copied in) rather than this working tree.
//   --via nginx|varnish: the listeners (their paths) reach the server through that caching proxy, with
//   k8s/proxy's config; --load N: N simulated LL-HLS listeners (blocking reload, then the part) load the
//   same entry (the proxy, else the server), and the round prints how late their blocking answers came.
// HARNESS_DUMP=prefix writes each round's samples to prefix-<round>.json.
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
  WAITING_COUNTER, alignReadings, api, command, delayTracker, errorOf, f1, launch, loadAverages, lockIn, percentile, printRounds, sleep,
  startSampling, startServer, stopSampling, until,
} from "./lib.mjs";
import { clockSkewScript, clockView, startImpair } from "./impair.mjs";
import { startCachingProxy, startLoad } from "./caching-proxy.mjs";

const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "6" },
    t: { type: "string", default: "90" },
    r: { type: "string", default: "3" },
    "no-skew": { type: "boolean", default: false },
    "proxy-only": { type: "boolean", default: false },
    direct: { type: "boolean", default: false },
    pages: { type: "boolean", default: false },
    "max-delay": { type: "string", default: "100" },
    "max-jitter": { type: "string", default: "25" },
    "player-dir": { type: "string" },
    via: { type: "string" },
    load: { type: "string", default: "0" },
  },
});
const N = Number(args.n);
const SECONDS = Number(args.t);
const ROUNDS = Number(args.r);
const SKEW = !(args["no-skew"] || args["proxy-only"]);
const PATHS = !args.direct;
const MAX_DELAY_MS = Number(args["max-delay"]);
const MAX_JITTER_MS = Number(args["max-jitter"]);
const SAMPLE_EVERY_MS = 100;
/** Figures are for the time after this much from the last Join (ms). */
const WARMUP_MS = 10_000;
const LOCK_TOLERANCE_MS = 50;
const LOCK_HOLD_MS = 1000;
const EAR_MARGIN_MS = 600;
const SPREAD_GOAL_MS = 5;
const VIA = args.via ?? null;
const LOAD = Number(args.load);


/** Path and clock of listener i. */
function profile(i) {
  const f = N > 1 ? i / (N - 1) : 0;
  return {
    delayMs: PATHS ? Math.round(MAX_DELAY_MS * f) : 0,
    jitterMs: PATHS ? Math.round(MAX_JITTER_MS * f) : 0,
    skewMs: SKEW ? Math.round(60_000 * f) * (i % 2 ? 1 : -1) : 0,
    driftPpm: SKEW ? Math.round(100 * (1 - 2 * f)) : 0,
  };
}

async function round(k) {
  const loadStart = loadavg()[0];
  const server = await startServer(args["player-dir"] ? { env: { PLAYER_DIR: args["player-dir"] } } : {});
  const profiles = Array.from({ length: N }, (_, i) => profile(i));
  const cachingProxy = VIA ? await startCachingProxy(VIA, server.base) : null;
  const entry = cachingProxy?.base ?? server.base;
  const proxies = await Promise.all(profiles.map((p, i) => startImpair({ target: entry, delayMs: p.delayMs, jitterMs: p.jitterMs, seed: 1000 * k + i + 1 })));
  let loadRun = null;
  const browser = await launch();
  const hardStop = setTimeout(() => {
    console.error("harness: hard time limit");
    server.proc.kill("SIGKILL");
    process.exit(2);
  }, (SECONDS + 180) * 1000);
  try {
    const folder = (await api(server.base, "POST", "/api/folders", { name: "Harness" })).body;
    const tracks = (await api(server.base, "GET", "/api/tracks")).body.items.map((t) => t.id);
    await api(server.base, "POST", `/api/folders/${folder.id}/tracks`, { trackIds: tracks });
    await command(server.base, "play", { folderId: folder.id });
    await command(server.base, "repeat", { mode: "all" });
    if (LOAD > 0) loadRun = startLoad(entry, LOAD);

    const t0 = Date.now();
    const byPort = Object.fromEntries(proxies.map((p, i) => [String(p.port), { skewMs: profiles[i].skewMs, driftPpm: profiles[i].driftPpm }]));
    const init = `${WAITING_COUNTER}\n${clockSkewScript({ t0, byPort })}`;
    /** @type {(import("playwright-core").Page | import("playwright-core").Frame)[]} */
    let frames;
    const errors = [];
    if (args.pages) {
      frames = [];
      for (const p of proxies) {
        const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
        await context.addInitScript(init);
        const page = await context.newPage();
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(`${p.base}/`);
        frames.push(page);
      }
    } else {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      await context.addInitScript(init);
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${server.base}/api/health`);
      await page.setContent(`<body style="margin:0;display:grid;grid-template-columns:repeat(5,280px);gap:0">${
        proxies.map((p) => `<iframe src="${p.base}/" allow="autoplay" style="width:280px;height:240px;border:0"></iframe>`).join("")}</body>`);
      frames = await until(() => {
        const found = proxies.map((p) => page.frames().find((fr) => fr.url().startsWith(p.base)));
        return found.every(Boolean) && found;
      }, 30_000, "listener frames");
    }
    const delays = delayTracker(server.base);
    const polled = delays.seen;
    await delays.poll();
    const D0 = polled[0].D;
    const dAt = (time) => delays.at(time);
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await delays.poll().catch(() => {});
        await sleep(1000);
      }
    })();

    const joinedAt = [];
    for (const frame of frames) {
      const join = frame.getByTestId("join-button");
      await join.waitFor({ state: "visible" });
      await frame.waitForFunction(() => !document.querySelector("[data-testid=join-button]").disabled);
      await startSampling(frame, SAMPLE_EVERY_MS);
      joinedAt.push(Date.now());
      await join.click();
    }
    const skewSeen = await Promise.all(frames.map((fr) => fr.evaluate(() => Date.now() - window.__realClock.dateNow())));
    const from = joinedAt.at(-1) + WARMUP_MS;
    const start = joinedAt[0];
    const end = start + SECONDS * 1000;

    await sleep(Math.max(0, from - Date.now()));
    const statsFrom = await Promise.all(frames.map((fr) => fr.evaluate(() => window.bardcast.syncStats)));
    // The GM's `next`, mid-run.
    await sleep(Math.max(0, start + (SECONDS * 1000) / 2 - Date.now()));
    const sentAt = Date.now();
    const next = await command(server.base, "next");
    await sleep(Math.max(0, end - Date.now()));
    const readings = await Promise.all(frames.map((fr) => stopSampling(fr)));
    const loadResult = loadRun ? await loadRun.stop() : null;
    loadRun = null;
    const statsEnd = await Promise.all(frames.map((fr) => fr.evaluate(() => window.bardcast.syncStats)));
    const views = await Promise.all(frames.map((fr) => clockView(fr)));
    const waiting = await Promise.all(frames.map((fr) => fr.evaluate(() => window.__waiting)));
    polling = false;
    await poller;
    const loadEnd = loadavg()[0];

    // Analysis, all on the true clock.
    const rows = alignReadings(readings, SAMPLE_EVERY_MS);
    const errAt = (r) => (r === null || r.pdt === null ? null : errorOf(r, dAt(r.now)));
    const measured = rows.filter((r) => r.t >= from);
    const errs = measured.map((r) => r.at.map(errAt));
    const full = errs.filter((e) => e.every((x) => x !== null));
    const spreads = full.map((e) => Math.max(...e) - Math.min(...e));
    // The same, away from steps of D (from 1 s before to 6 s after one: each page glides
    // through a step with playbackRate, and they do not all start at the same moment).
    const steps = polled.filter((x, i) => i > 0 && x.D !== polled[i - 1].D).map((x) => x.t);
    const steady = measured.map((r, i) => ({ r, e: errs[i] }))
      .filter(({ r, e }) => e.every((x) => x !== null) && !steps.some((s) => r.t >= s - 1000 && r.t <= s + 6000))
      .map(({ e }) => Math.max(...e) - Math.min(...e));
    const perP95 = frames.map((_, i) => percentile(errs.map((e) => (e[i] === null ? Infinity : Math.abs(e[i]))), 0.95));
    const perMedian = frames.map((_, i) => percentile(errs.map((e) => e[i]).filter((x) => x !== null), 0.5));
    const lockMs = frames.map((_, i) => lockIn(
      readings[i].map((r) => ({ now: r.now, pdt: r.pdt === null ? null : r.pdt + dAt(r.now) })), joinedAt[i], 0, LOCK_TOLERANCE_MS, LOCK_HOLD_MS,
    ));
    const seeks = frames.map((_, i) => statsEnd[i].seeks - statsFrom[i].seeks);
    const waits = waiting.map((w) => w.filter((x) => x >= from && x <= end).length);
    const stalledSamples = frames.map((_, i) => measured.filter((r) => r.at[i]?.state === "stalled").length);
    // Command to ear: the true time each listener's playing PDT passed effectiveAt E,
    // from the first reading at or past E (moved back by how far past E it was).
    const E = next.effectiveAtMs;
    const ears = readings.map((list) => {
      const idx = list.findIndex((r) => r.now > sentAt && r.pdt !== null && r.pdt >= E);
      if (idx < 1 || list[idx - 1].pdt === null || list[idx - 1].pdt > E) return Infinity;
      return list[idx].now - (list[idx].pdt - E) - sentAt;
    });
    const dNext = dAt(sentAt);
    const Ds = polled.map((x) => x.D);
    const result = {
      spreadP95: percentile(spreads, 0.95),
      spreadMax: spreads.length ? Math.max(...spreads) : NaN,
      steadyP95: percentile(steady, 0.95),
      worstP95: Math.max(...perP95),
      seeks: seeks.reduce((a, b) => a + b, 0),
      stalls: waits.reduce((a, b) => a + b, 0),
      stalledSamples: stalledSamples.reduce((a, b) => a + b, 0),
      earP95: percentile(ears, 0.95),
      earLimit: dNext + EAR_MARGIN_MS,
      earOver: percentile(ears, 0.95) - (dNext + EAR_MARGIN_MS),
      dStart: D0,
      dEnd: Ds.at(-1),
      dMin: Math.min(...Ds),
      dMax: Math.max(...Ds),
      loadStart,
      loadEnd,
      samples: measured.length,
      full: full.length,
    };

    console.log(`\nround ${k + 1}/${ROUNDS}: ${N} listeners (${args.pages ? "pages" : "iframes"}), ${SECONDS} s; figures after ${WARMUP_MS / 1000} s from the last Join`);
    for (let i = 0; i < N; i++) {
      const p = profiles[i];
      const v = views[i];
      console.log(`  L${i} path ${String(p.delayMs).padStart(3)}±${String(p.jitterMs).padStart(2)} ms, clock ${(p.skewMs / 1000).toFixed(0).padStart(3)} s `
        + `${String(p.driftPpm).padStart(4)} ppm (seen ${(skewSeen[i] / 1000).toFixed(1)} s) │ p95 |err| ${f1(perP95[i]).padStart(5)} ms, `
        + `median ${f1(perMedian[i]).padStart(5)} ms │ lock-in ${lockMs[i] === null ? "–" : `${Math.round(lockMs[i])} ms`} │ `
        + `clock est − truth ${v.estimateError?.toFixed(2)} ms (±${v.uncertainty?.toFixed(2)}, rtt ${v.rtt?.toFixed(0)}) │ `
        + `seeks ${seeks[i]} (all ${statsEnd[i].seeks}), rate changes ${statsEnd[i].rateChanges} │ waiting ${waits[i]} (all ${waiting[i].length}), `
        + `stalled samples ${stalledSamples[i]} │ ear ${f1(ears[i])} ms`);
    }
    console.log(`  spread between listeners: p50 ${f1(percentile(spreads, 0.5))} · p95 ${f1(result.spreadP95)} · max ${f1(result.spreadMax)} ms `
      + `(${full.length}/${measured.length} samples with all playing)   goal p95 ≤ ${SPREAD_GOAL_MS} ms`);
    console.log(`  spread away from steps of D (−1 s…+6 s): p95 ${f1(result.steadyP95)} · max ${f1(steady.length ? Math.max(...steady) : NaN)} ms `
      + `(${steady.length} samples)`);
    const waits_ = waiting.map((w, i) => w.filter((x) => x >= from).map((x) => `L${i}@${((x - start) / 1000).toFixed(1)}s`)).flat();
    if (waits_.length) console.log(`  waiting events after ${WARMUP_MS / 1000} s (the run ends at ${SECONDS} s): ${waits_.join(" ")}`);
    const trackChanges = polled.filter((x, i) => i > 0 && x.track !== polled[i - 1].track).map((x) => `${x.track}@${((x.t - start) / 1000).toFixed(0)}s`);
    console.log(`  track changes (session polled every second): ${trackChanges.join(" ") || "none"}`);
    console.log(`  seeks after ${WARMUP_MS / 1000} s: ${result.seeks}; waiting events: ${result.stalls}; stalled samples: ${result.stalledSamples}   goal 0, 0`);
    console.log(`  next: effectiveAt − sent ${E - sentAt} ms; command to ear p95 ${f1(result.earP95)} ms, max ${f1(Math.max(...ears))} ms; `
      + `D then ${dNext} ms → goal ≤ ${result.earLimit} ms`);
    const changes = polled.filter((x, i) => i === 0 || x.D !== polled[i - 1].D).map((x) => `${x.D}@${((x.t - start) / 1000).toFixed(0)}s`);
    console.log(`  D: start ${D0} ms, end ${result.dEnd} ms (range ${result.dMin}–${result.dMax}); steps ${changes.join(" ")}`);
    if (loadResult) {
      console.log(`  load: ${LOAD} simulated listeners ${VIA ? `via ${VIA}` : "direct"}: blocking answers came p50 ${f1(loadResult.p50)}, `
        + `p99 ${f1(loadResult.p99)} ms after their part's start (${loadResult.answers} answers, ${loadResult.errors} errors)`);
    }
    console.log(`  load average (1 min): ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end (${loadAverages()}) on ${cpus().length} CPUs`);
    if (errors.length) console.log(`  page errors: ${errors.slice(0, 3).join(" | ")}`);
    if (process.env.HARNESS_DUMP) {
      writeFileSync(`${process.env.HARNESS_DUMP}-${k + 1}.json`, JSON.stringify({ profiles, delayAt: polled, joinedAt, from, sentAt, E, readings, waiting }));
    }
    return result;
  } finally {
    clearTimeout(hardStop);
    await loadRun?.stop();
    await browser.close().catch(() => {});
    await Promise.all(proxies.map((p) => p.stop()));
    cachingProxy?.stop();
    await server.stop();
  }
}

console.log(`paths harness: ${N} listeners${args["player-dir"] ? ` (pages from ${args["player-dir"]})` : ""}${VIA ? ` via ${VIA}` : ""}${LOAD ? ` with ${LOAD} simulated` : ""}, ${SECONDS} s × ${ROUNDS} rounds; paths ${PATHS ? `0–${MAX_DELAY_MS} ms ±0–${MAX_JITTER_MS} ms` : "none"}, `
  + `clocks ${SKEW ? "skewed up to ±60 s, drift ±100 ppm" : "true"}; load average ${loadAverages()} on ${cpus().length} CPUs`);
const results = [];
for (let k = 0; k < ROUNDS; k++) results.push(await round(k));

printRounds(results, [
  ["spread p95", "spreadP95"],
  ["spread max", "spreadMax"],
  ["spread p95 away from steps of D", "steadyP95"],
  ["worst listener's p95 |error|", "worstP95"],
  ["seeks after 10 s", "seeks", ""],
  ["waiting events after 10 s", "stalls", ""],
  ["stalled samples after 10 s", "stalledSamples", ""],
  ["command to ear p95", "earP95"],
  ["  minus its goal (D + 600): ≤ 0", "earOver"],
  ["D at start", "dStart"],
  ["D at end", "dEnd"],
  ["D highest", "dMax"],
  ["load average at start", "loadStart", ""],
  ["load average at end", "loadEnd", ""],
]);
const ok = results.every((r) => r.spreadP95 <= SPREAD_GOAL_MS && r.seeks === 0 && r.stalls === 0 && r.earP95 <= r.earLimit);
console.log(`goal (spread p95 ≤ ${SPREAD_GOAL_MS} ms, no seeks, no stalls, ear ≤ D + 600 ms) ${ok ? "met" : "NOT met"} in every round`);
