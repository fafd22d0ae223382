// Diagnostic (not a test): N listener pages (separate renderers, like sync.test.mjs)
// join one after another; each page records, every 50 ms from its Join, its true error
// (playing PDT − (Date.now() − D)), own estimate, state, rate and seek counters. Prints
// a compact timeline per page.
//
//   cd player && node e2e/lockin-trace.mjs [pages=5] [seconds=12]
import { api, command, errorOf, launch, openListener, readPlayhead, sleep, startServer } from "./lib.mjs";

const N = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 12);
const server = await startServer();
const browser = await launch();
try {
  let s = (await api(server.base, "GET", "/api/session")).body;
  if (s.stopped) s = await command(server.base, "play", { trackId: 1 });
  await command(server.base, "repeat", { mode: "all" });
  const D = s.playbackDelayMs;
  const init = `window.__readPlayhead = ${readPlayhead};
    document.addEventListener("click", () => {
      if (window.__trace) return;
      window.__trace = [];
      const t0 = Date.now();
      const tick = () => {
        const p = window.__readPlayhead();
        const b = window.bardcast;
        window.__trace.push({ t: Date.now() - t0, pdt: p.pdt, now: p.now, own: b.syncError, st: b.state, sk: b.syncStats.seeks, r: b.playbackRate, ready: b.offset !== null });
        if (Date.now() - t0 < ${SECONDS * 1000}) setTimeout(tick, 50);
      };
      tick();
    }, true);`;
  const pages = [];
  for (let i = 0; i < N; i++) pages.push((await openListener(browser, server.base, { initScript: init })).page);
  await sleep(SECONDS * 1000 + 500);
  for (const [i, page] of pages.entries()) {
    const trace = await page.evaluate(() => window.__trace);
    let line = `page ${i}:`;
    let prev = "";
    for (const x of trace) {
      const e = errorOf(x, D);
      const key = `${x.st} sk${x.sk} r${x.r.toFixed(3)}`;
      const cell = `${e === null ? "-" : e.toFixed(0)}`;
      if (key !== prev) { line += `\n   ${(x.t / 1000).toFixed(2)}s [${key}] `; prev = key; }
      line += `${cell} `;
    }
    console.log(line);
  }
} finally {
  await browser.close().catch(() => {});
  await server.stop();
}
