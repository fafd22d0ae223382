// Load harness (not a test): N headless listener pages (default 20) on one
// real server for about a minute while the GM changes things over REST
// every few seconds. Prints
//  - the spread between listeners: per sample, max − min over pages of
//    (playing PDT − (Date.now() − D)), i.e. how far apart the pages play;
//  - each page's |error| against Date.now() − D;
//  - GM command-to-ear: from sending a command to each page's playing PDT
//    reaching the command's effectiveAt.
// Targets: spread p95 ≤ 5 ms, command-to-ear p95 ≤ 1 s.
//
//   cd player && node e2e/harness20.mjs [pages=20] [seconds=60]
import { cpus, loadavg } from "node:os";
import { api, command, errorOf, launch, openListener, percentile, probe, sleep, startServer, waitInSync } from "./lib.mjs";

const PAGES = Number(process.argv[2] ?? 20);
const SECONDS = Number(process.argv[3] ?? 60);
const SAMPLE_EVERY_MS = 250;
const COMMAND_EVERY_MS = 7000;

const fmt = (values) => (values.length
  ? `p50 ${percentile(values, 0.5).toFixed(1)} · p95 ${percentile(values, 0.95).toFixed(1)} · max ${Math.max(...values).toFixed(1)} ms (n=${values.length})`
  : "no data");

console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} CPUs`);
const server = await startServer();
const browser = await launch();
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
  const state = await command(server.base, "repeat", { mode: "all" });
  const D = state.playbackDelayMs;

  const t0 = Date.now();
  const listeners = [];
  // Join four at a time: one by one takes minutes on a loaded 2-core machine.
  for (let i = 0; i < PAGES; i += 4) {
    listeners.push(...await Promise.all(Array.from({ length: Math.min(4, PAGES - i) }, () => openListener(browser, server.base))));
  }
  const pages = listeners.map((l) => l.page);
  console.log(`${PAGES} listeners joined in ${Date.now() - t0} ms; D = ${D} ms`);
  try {
    const took = await waitInSync(pages, D, 50, 60_000, 1000);
    console.log(`all within 50 ms after ${took} ms more`);
  } catch (err) {
    console.log(`warning: ${err.message}; measuring anyway`);
  }

  const samples = [];
  const ears = [];
  let running = true;
  const sampler = (async () => {
    while (running) {
      const tick = Date.now();
      const errs = await Promise.all(pages.map((p) => probe(p).then((x) => errorOf(x, D)).catch(() => null)));
      samples.push({ t: tick, errs });
      await sleep(Math.max(0, SAMPLE_EVERY_MS - (Date.now() - tick)));
    }
  })();

  const commands = [
    ["next", {}], ["pause", {}], ["resume", {}], ["seek", { position: 3 }], ["previous", {}], ["next", {}], ["seek", { position: 10 }], ["next", {}],
  ];
  const start = Date.now();
  for (let k = 0; Date.now() - start < SECONDS * 1000 - COMMAND_EVERY_MS; k++) {
    await sleep(Math.max(0, start + (k + 1) * COMMAND_EVERY_MS - Date.now() - 2000));
    const [name, body] = commands[k % commands.length];
    const sentAt = Date.now();
    const s = await command(server.base, name, body);
    const reached = await Promise.all(pages.map((p) => p.evaluate(({ E, D, limit }) => new Promise((resolve) => {
      const begin = Date.now();
      const check = () => {
        const pdt = window.hls?.playingDate?.getTime() ?? -Infinity;
        if (Date.now() - D >= E && pdt >= E) resolve(Date.now());
        else if (Date.now() - begin > limit) resolve(null);
        else setTimeout(check, 5);
      };
      check();
    }), { E: s.effectiveAtMs, D, limit: 5000 }).catch(() => null)));
    const ms = reached.map((x) => (x === null ? Infinity : x - sentAt));
    ears.push(...ms);
    console.log(`${name.padEnd(8)} effectiveAt − sent ${String(s.effectiveAtMs - sentAt).padStart(4)} ms; to ear: min ${Math.min(...ms)} max ${Math.max(...ms)} ms`);
  }
  await sleep(Math.max(0, start + SECONDS * 1000 - Date.now()));
  running = false;
  await sampler;

  const full = samples.filter((s) => s.errs.every((e) => e !== null));
  const spreads = full.map((s) => Math.max(...s.errs) - Math.min(...s.errs));
  const perPageP95 = pages.map((_, i) => percentile(samples.map((s) => (s.errs[i] === null ? Infinity : Math.abs(s.errs[i]))), 0.95));
  const all = samples.flatMap((s) => s.errs.map((e) => (e === null ? Infinity : Math.abs(e))));
  const beyond = all.filter((e) => e > 50).length;
  console.log("");
  console.log(`samples: ${samples.length} × ${PAGES} pages over ${SECONDS} s (${full.length} with every page playing)`);
  console.log(`spread between listeners:        ${fmt(spreads)}   target p95 ≤ 5 ms`);
  console.log(`|error| vs Date.now() − D, all:  ${fmt(all.filter(Number.isFinite))}; beyond 50 ms: ${beyond}/${all.length}`);
  console.log(`per-page p95 |error|: worst ${Math.max(...perPageP95).toFixed(1)} ms, best ${Math.min(...perPageP95).toFixed(1)} ms`);
  console.log(`GM command to ear:               ${fmt(ears.filter(Number.isFinite))}   target p95 ≤ 1000 ms; missed: ${ears.filter((x) => !Number.isFinite(x)).length}`);
  const stats = await Promise.all(pages.map((p) => p.evaluate(() => window.bardcast.syncStats).catch(() => null)));
  const seeks = stats.map((x) => x?.seeks ?? "?");
  const bad = pages.map((_, i) => samples.filter((s) => s.errs[i] === null || Math.abs(s.errs[i]) > 50).length);
  console.log(`per page: samples beyond 50 ms [${bad.join(" ")}]; sync seeks [${seeks.join(" ")}]`);
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  const errors = pages.flatMap((p) => p.errors);
  if (errors.length) console.log(`page errors: ${errors.slice(0, 5).join(" | ")}`);
} finally {
  clearTimeout(hardStop);
  await browser.close().catch(() => {});
  await server.stop();
}
