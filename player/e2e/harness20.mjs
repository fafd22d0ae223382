// Load harness (not a test): N listeners (default 20) on one real server for
// about a minute while the GM changes things over REST every few seconds.
// Prints
//  - lock-in: per listener, ms from its Join click to within 50 ms of
//    Date.now() − D (held 1 s), from the listener's own readings; median and max;
//  - the spread between listeners: per sample, max − min over listeners of
//    (playing PDT − (Date.now() − D)), i.e. how far apart they play;
//  - each listener's |error| against Date.now() − D (D as the room had it then: it adapts);
//  - GM command-to-ear: from sending a command to each listener's playing PDT
//    reaching the command's effectiveAt.
// HARNESS_DUMP=file.json also writes every sample with each listener's own view
// (its error estimate, rate and state) and the commands, for diagnosis.
// Targets: spread p95 ≤ 5 ms, command-to-ear p95 ≤ 1 s.
//
// Each listener is the real listener page (its own hls.js, <audio>, control
// socket, clock estimate and sync controller) in an iframe of one page: 20
// full browser pages need 20 renderer processes, which a 2-core machine
// cannot run in real time (load ~30, pages seconds behind). The iframes share
// one renderer. Each comes from its own host name (lN.bardcast.test, all
// resolved to 127.0.0.1 by Chromium), because a browser opens at most six
// HTTP/1.1 connections per host and each LL-HLS player parks one on a
// blocking playlist reload.
//
//   cd player && node e2e/harness20.mjs [listeners=20] [seconds=60]
import { cpus, loadavg } from "node:os";
import {
  api, command, delayTracker, errorOf, launch, lockIn, percentile, sleep, startSampling, startServer, stopSampling, takeSamples, until, waitInSync,
} from "./lib.mjs";

const LISTENERS = Number(process.argv[2] ?? 20);
const SECONDS = Number(process.argv[3] ?? 60);
const SAMPLE_EVERY_MS = 250;
/** Readings while joining, for the lock-in times (ms). */
const LOCK_SAMPLE_EVERY_MS = 50;
const LOCK_TOLERANCE_MS = 50;
const LOCK_HOLD_MS = 1000;
const COMMAND_EVERY_MS = 7000;
const SITE = "bardcast.test";

const fmt = (values) => (values.length
  ? `p50 ${percentile(values, 0.5).toFixed(1)} · p95 ${percentile(values, 0.95).toFixed(1)} · max ${Math.max(...values).toFixed(1)} ms (n=${values.length})`
  : "no data");

console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} CPUs`);
const server = await startServer();
/** The room's D is polled until the end (or a failure). */
let polling = true;
const port = new URL(server.base).port;
const browser = await launch([`--host-resolver-rules=MAP *.${SITE} 127.0.0.1`]);
const hardStop = setTimeout(() => {
  console.error("harness: hard time limit");
  server.proc.kill("SIGKILL"); // process.exit skips the finally below
  process.exit(2);
}, (SECONDS + 420) * 1000);
try {
  // The whole demo library in a folder, played on repeat.
  const folder = (await api(server.base, "POST", "/api/folders", { name: "Harness" })).body;
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items.map((t) => t.id);
  await api(server.base, "POST", `/api/folders/${folder.id}/tracks`, { trackIds: tracks });
  await command(server.base, "play", { folderId: folder.id });
  await command(server.base, "repeat", { mode: "all" });
  // The room's D adapts to the listeners (busy pages raise it): every figure uses D at its time.
  const delays = delayTracker(server.base);
  const D = (await delays.poll()).D;
  const poller = (async () => {
    while (polling) {
      await sleep(1000);
      await delays.poll().catch(() => {});
    }
  })();
  const dAt = (time) => delays.at(time);

  // One page on the same site, holding a grid of listener iframes (all visible, so none is throttled).
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`http://harness.${SITE}:${port}/api/health`);
  const origins = Array.from({ length: LISTENERS }, (_, i) => `http://l${i + 1}.${SITE}:${port}`);
  await page.setContent(`<body style="margin:0;display:grid;grid-template-columns:repeat(5,280px);gap:0">${
    origins.map((o) => `<iframe src="${o}/" allow="autoplay" style="width:280px;height:240px;border:0"></iframe>`).join("")}</body>`);
  const t0 = Date.now();
  const frames = await until(() => {
    const found = origins.map((o) => page.frames().find((f) => f.url().startsWith(o)));
    return found.every(Boolean) && found;
  }, 30_000, "listener frames");
  const joinedAt = [];
  for (const frame of frames) {
    const join = frame.getByTestId("join-button");
    await join.waitFor({ state: "visible" });
    await frame.waitForFunction(() => !document.querySelector("[data-testid=join-button]").disabled);
    await startSampling(frame, LOCK_SAMPLE_EVERY_MS);
    joinedAt.push(Date.now());
    await join.click();
  }
  console.log(`${LISTENERS} listeners joined in ${Date.now() - t0} ms; D = ${D} ms`);
  // Joining ends with the sync controllers' acquisition (seeks, then rate nudges); the
  // figures below are for the session after it, while the GM changes things.
  try {
    const took = await waitInSync(frames, dAt, 50, 60_000, 1000);
    const settled = await waitInSync(frames, dAt, 5, 60_000, 2000);
    console.log(`all within 50 ms after ${took} ms more, within 5 ms ${settled} ms later`);
  } catch (err) {
    console.log(`warning: ${err.message}; measuring anyway`);
  }
  const joinReadings = await Promise.all(frames.map((f) => stopSampling(f).catch(() => [])));
  const lockMs = frames.map((_, i) => lockIn(
    joinReadings[i].map((r) => ({ now: r.now, pdt: r.pdt === null ? null : r.pdt + dAt(r.now) })), joinedAt[i], 0, LOCK_TOLERANCE_MS, LOCK_HOLD_MS,
  ));
  const locked = lockMs.filter((ms) => ms !== null);
  console.log(`lock-in, Join to within ${LOCK_TOLERANCE_MS} ms (held ${LOCK_HOLD_MS / 1000} s): `
    + `median ${percentile(locked, 0.5)?.toFixed(0)} ms, max ${locked.length ? Math.max(...locked).toFixed(0) : "–"} ms, `
    + `never: ${lockMs.length - locked.length}; per listener [${lockMs.map((ms) => (ms === null ? "–" : ms.toFixed(0))).join(" ")}] ms`);

  // Each listener reads its own playhead every SAMPLE_EVERY_MS (at the same wall-clock
  // instants); the readings are collected at the end, so measuring costs the shared
  // renderer next to nothing while the players run.
  await Promise.all(frames.map((f) => startSampling(f, SAMPLE_EVERY_MS)));
  const sent = [];
  const commands = [
    ["next", {}], ["pause", {}], ["resume", {}], ["seek", { position: 3 }], ["previous", {}], ["next", {}], ["seek", { position: 10 }], ["next", {}],
  ];
  const start = Date.now();
  for (let k = 0; Date.now() - start < SECONDS * 1000 - COMMAND_EVERY_MS; k++) {
    await sleep(Math.max(0, start + (k + 1) * COMMAND_EVERY_MS - Date.now() - 2000));
    const [name, body] = commands[k % commands.length];
    const sentAt = Date.now();
    const s = await command(server.base, name, body);
    sent.push({ name, sentAt, effectiveAt: s.effectiveAtMs });
  }
  await sleep(Math.max(0, start + SECONDS * 1000 - Date.now()));
  const readings = await Promise.all(frames.map((f) => takeSamples(f).catch(() => [])));
  const buckets = new Map();
  readings.forEach((list, i) => {
    for (const r of list) {
      const t = Math.round(r.now / SAMPLE_EVERY_MS) * SAMPLE_EVERY_MS;
      if (!buckets.has(t)) buckets.set(t, { t, errs: frames.map(() => null), views: frames.map(() => null) });
      const b = buckets.get(t);
      b.errs[i] = errorOf(r, dAt(r.now));
      b.views[i] = { own: r.own, rate: r.rate, state: r.state };
    }
  });
  const samples = [...buckets.values()].sort((a, b) => a.t - b.t).slice(1, -1); // the edges may miss listeners

  // A listener hears a command when its playing PDT reaches effectiveAt E: PDT(t) = t − D + error(t),
  // so at t = E + D − error, read from the sample nearest E + D (no polling in the pages, which
  // share one main thread with the players).
  const ears = [];
  for (const c of sent) {
    const at = c.effectiveAt + dAt(c.effectiveAt);
    const nearest = samples.reduce((a, b) => (Math.abs(b.t - at) < Math.abs(a.t - at) ? b : a));
    const ms = nearest.errs.map((e) => (e === null || Math.abs(nearest.t - at) > SAMPLE_EVERY_MS ? Infinity : at - e - c.sentAt));
    ears.push(...ms);
    console.log(`${c.name.padEnd(8)} effectiveAt − sent ${String(c.effectiveAt - c.sentAt).padStart(4)} ms; to ear: min ${Math.min(...ms).toFixed(0)} max ${Math.max(...ms).toFixed(0)} ms`);
  }
  const full = samples.filter((s) => s.errs.every((e) => e !== null));
  const spreads = full.map((s) => Math.max(...s.errs) - Math.min(...s.errs));
  const perListenerP95 = frames.map((_, i) => percentile(samples.map((s) => (s.errs[i] === null ? Infinity : Math.abs(s.errs[i]))), 0.95));
  const all = samples.flatMap((s) => s.errs.map((e) => (e === null ? Infinity : Math.abs(e))));
  const beyond = all.filter((e) => e > 50).length;
  console.log("");
  console.log(`samples: ${samples.length} × ${LISTENERS} listeners over ${SECONDS} s (${full.length} with every listener playing)`);
  console.log(`spread between listeners:        ${fmt(spreads)}   target p95 ≤ 5 ms`);
  console.log(`|error| vs Date.now() − D, all:  ${fmt(all.filter(Number.isFinite))}; beyond 50 ms: ${beyond}/${all.length}`);
  console.log(`per-listener p95 |error|: worst ${Math.max(...perListenerP95).toFixed(1)} ms, best ${Math.min(...perListenerP95).toFixed(1)} ms`);
  console.log(`GM command to ear:               ${fmt(ears.filter(Number.isFinite))}   target p95 ≤ 1000 ms; missed: ${ears.filter((x) => !Number.isFinite(x)).length}`);
  const stats = await Promise.all(frames.map((f) => f.evaluate(() => window.bardcast.syncStats).catch(() => null)));
  const bad = frames.map((_, i) => samples.filter((s) => s.errs[i] === null || Math.abs(s.errs[i]) > 50).length);
  const clocks = await Promise.all(frames.map((f) => f.evaluate(() => ({
    error: performance.timeOrigin + performance.now() + window.bardcast.offset - window.__readPlayhead().now,
    uncertainty: window.bardcast.clockUncertainty,
  })).catch(() => null)));
  console.log(`per listener, at the end: server clock estimate − wall clock [${clocks.map((c) => c?.error.toFixed(1)).join(" ")}] ms; `
    + `its uncertainty [${clocks.map((c) => c?.uncertainty.toFixed(1)).join(" ")}] ms`);
  const medians = frames.map((_, i) => percentile(samples.map((s) => s.errs[i]).filter((e) => e !== null), 0.5));
  console.log(`per listener: median error [${medians.map((m) => m.toFixed(1)).join(" ")}] ms`);
  console.log(`per listener: samples beyond 50 ms [${bad.join(" ")}]; sync seeks [${stats.map((x) => x?.seeks ?? "?").join(" ")}]; rate changes [${stats.map((x) => x?.rateChanges ?? "?").join(" ")}]`);
  if (process.env.HARNESS_DUMP) (await import("node:fs")).writeFileSync(process.env.HARNESS_DUMP, JSON.stringify({ samples, sent, delays: delays.seen }));
  polling = false;
  await poller;
  const Ds = delays.seen.map((x) => x.D);
  const steps = delays.seen.filter((x, i) => i === 0 || x.D !== delays.seen[i - 1].D).map((x) => `${x.D}@${((x.t - t0) / 1000).toFixed(0)}s`);
  console.log(`D: start ${D} ms, end ${Ds.at(-1)} ms, highest ${Math.max(...Ds)} ms; steps ${steps.join(" ")} (from the first listener frame)`);
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  if (errors.length) console.log(`page errors: ${errors.slice(0, 5).join(" | ")}`);
} finally {
  polling = false;
  clearTimeout(hardStop);
  await browser.close().catch(() => {});
  await server.stop();
}
