// hls.js in headless Chromium plays the real live stream across a track
// change without a stall: one listener, track A, then track B at ~5 s; for
// 15 s audio.currentTime keeps advancing, no `waiting` event, no fatal hls.js
// error.
//
//   cd player && node --test e2e/playback.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { command, launch, openListener, sleep, startServer, until, waitInSync } from "./lib.mjs";

const WATCH_MS = 15_000;
const SAMPLE_EVERY_MS = 250;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** Counts media events on every element and hls.js errors on every instance, from before the page's scripts run. */
function instrument() {
  window.__e2e = { events: [], hlsErrors: [] };
  for (const type of ["waiting", "stalled", "playing", "pause", "error", "emptied"]) {
    document.addEventListener(type, (e) => {
      if (e.target instanceof HTMLMediaElement) window.__e2e.events.push({ type, at: Date.now(), t: e.target.currentTime });
    }, true);
  }
  let current;
  Object.defineProperty(window, "hls", {
    configurable: true,
    get: () => current,
    set(hls) {
      current = hls;
      hls.on("hlsError", (_event, data) => {
        window.__e2e.hlsErrors.push({ at: Date.now(), fatal: Boolean(data.fatal), type: data.type, details: data.details });
      });
    },
  });
}

test("plays across a track change without a stall or a fatal hls.js error", { timeout: 90_000 }, async (t) => {
  const A = await command(server.base, "play", { trackId: 1 });
  const { page, context } = await openListener(browser, server.base, { initScript: instrument });
  await until(() => page.evaluate(() => window.__e2e.events.some((e) => e.type === "playing")), 15_000, "first playing event");
  // Let the start-up seek(s) that put the page in sync finish: they may legitimately wait for data.
  await waitInSync([page], A.playbackDelayMs, 50, 15_000, 500);
  const startAt = await page.evaluate(() => Date.now());

  const samples = [];
  const t0 = Date.now();
  let switched = null;
  while (Date.now() - t0 < WATCH_MS) {
    if (switched === null && Date.now() - t0 >= 5000) {
      const B = await command(server.base, "play", { trackId: 2 });
      assert.equal(B.nowPlaying.trackId, 2);
      switched = { at: Date.now() - t0, effectiveAtMs: B.effectiveAtMs };
    }
    samples.push(await page.evaluate(() => {
      const a = document.querySelector("audio");
      return { now: Date.now(), t: a.currentTime, paused: a.paused, readyState: a.readyState };
    }));
    await sleep(SAMPLE_EVERY_MS);
  }
  const { events, hlsErrors } = await page.evaluate(() => window.__e2e);
  const after = events.filter((e) => e.at >= startAt);
  const advance = samples.at(-1).t - samples[0].t;
  const wall = (samples.at(-1).now - samples[0].now) / 1000;
  t.diagnostic(`track change at ${switched?.at} ms; currentTime advanced ${advance.toFixed(2)} s in ${wall.toFixed(2)} s; `
    + `media events after start: ${JSON.stringify(after.map((e) => e.type))}; hls.js errors: ${JSON.stringify(hlsErrors)}`);

  assert.ok(switched, "track B was played");
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i].t > samples[i - 1].t, `currentTime stuck at ${samples[i].t} (sample ${i})`);
    assert.equal(samples[i].paused, false);
  }
  assert.ok(Math.abs(advance - wall) < 0.5, `currentTime advanced ${advance} s in ${wall} s`);
  assert.deepEqual(after.filter((e) => e.type === "waiting"), [], "waiting events after start");
  assert.deepEqual(hlsErrors.filter((e) => e.fatal), [], "fatal hls.js errors");
  assert.deepEqual(page.errors, []);
  await context.close();
});
