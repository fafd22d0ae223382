// End to end: a listener whose speaker sounds 200 ms late (Bluetooth) sets a speaker delay
// of 200 ms, here by `/?outputDelayMs=200`, and its page plays 200 ms ahead of a plain
// listener's (±5 ms), so its sound would leave that speaker in step with the table; its own
// sync readout stays near 0, and the GM's listeners panel shows the delay; the GM's
// calibration tick is announced on every listener page while it plays. Changing the
// delay on the page moves it there too, and a browser that reports its output latency has
// it offered.
//
//   cd player && node --test e2e/speaker.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api, command, errorOf, launch, openListener, probe, sleep, startServer, until } from "./lib.mjs";

const D_MS = 400;
const SPEAKER_MS = 200;
const TOLERANCE_MS = 5;

let server;
let browser;

before(async () => {
  // D fixed at 400 ms, so the target is known.
  server = await startServer({ env: { MAX_PLAYBACK_DELAY_MS: String(D_MS) } });
  browser = await launch();
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items;
  await command(server.base, "play", { trackId: tracks[0].id });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** How far ahead of the room (Date.now() − D) each page plays now (ms). */
const aheads = (pages) => Promise.all(pages.map((p) => probe(p).then((x) => errorOf(x, D_MS))));

/** Waits until page 0 plays the room's moment and page 1 plays `ms` ahead of it, each within TOLERANCE_MS, for 1 s. */
async function holds(pages, ms, what) {
  let since = null;
  await until(async () => {
    const [plain, speaker] = await aheads(pages);
    const ok = plain !== null && speaker !== null && Math.abs(plain) <= TOLERANCE_MS && Math.abs(speaker - ms) <= TOLERANCE_MS;
    since = ok ? (since ?? Date.now()) : null;
    return since !== null && Date.now() - since >= 1000;
  }, 30_000, what);
}

test("a listener with a 200 ms speaker delay plays 200 ms ahead of the others, and follows a change of it", { timeout: 90_000 }, async () => {
  const plain = await openListener(browser, server.base);
  const speaker = await openListener(browser, server.base, { path: `/?outputDelayMs=${SPEAKER_MS}` });
  const pages = [plain.page, speaker.page];
  assert.equal(await speaker.page.getByTestId("output-delay").inputValue(), String(SPEAKER_MS), "the page shows the delay it was given");
  await holds(pages, SPEAKER_MS, `the speaker listener ${SPEAKER_MS} ms ahead`);

  // Over 5 s, every reading: the plain listener at the room's moment, the other 200 ms ahead.
  const gaps = [];
  for (let i = 0; i < 20; i++) {
    const [a, b] = await aheads(pages);
    gaps.push(b - a);
    await sleep(250);
  }
  const worst = Math.max(...gaps.map((g) => Math.abs(g - SPEAKER_MS)));
  console.log(`# speaker listener ahead of the plain one by ${Math.min(...gaps).toFixed(1)}–${Math.max(...gaps).toFixed(1)} ms`);
  assert.ok(worst <= TOLERANCE_MS, `200 ± ${TOLERANCE_MS} ms ahead at every reading (worst off by ${worst.toFixed(1)} ms)`);
  const own = await speaker.page.evaluate(() => window.bardcast.syncError);
  assert.ok(Math.abs(own) <= TOLERANCE_MS, `its own readout counts the delay in its target (${own} ms)`);

  // The GM's listeners panel shows the speaker delay of that listener.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const gm = await context.newPage();
  await gm.goto(`${server.base}/gm`);
  await gm.getByTestId("key-input").fill(server.key);
  await gm.getByTestId("key-submit").click();
  await until(async () => (await gm.getByTestId("listener-speaker").allTextContents()).join() === ` · speaker ${SPEAKER_MS} ms`, 10_000,
    "the GM sees the one speaker delay");
  // The GM turns the calibration tick on: every listener page says what it is for; off again, it goes.
  const tick = gm.getByTestId("tick");
  await tick.click();
  await until(async () => (await tick.getAttribute("aria-pressed")) === "true", 10_000, "the tick is on");
  for (const page of pages) await page.getByTestId("tick-hint").waitFor({ state: "visible", timeout: 10_000 });
  await tick.click();
  for (const page of pages) await page.getByTestId("tick-hint").waitFor({ state: "hidden", timeout: 10_000 });
  await context.close();

  // The listener changes it on the page to 120 ms: it moves there, and the device remembers it.
  await speaker.page.getByTestId("output-delay").fill("120");
  await speaker.page.getByTestId("output-delay").press("Enter");
  await speaker.page.getByTestId("output-delay").blur();
  await holds(pages, 120, "the speaker listener 120 ms ahead after the change");
  assert.equal(await speaker.page.evaluate(() => localStorage.getItem("bardcast.outputDelayMs")), "120");

  // Where the browser reports its output latency (here said to be 180 ms), the page offers it.
  const reporting = await openListener(browser, server.base, {
    initScript: () => Object.defineProperty(AudioContext.prototype, "outputLatency", { get: () => 0.18, configurable: true }),
  });
  const hint = reporting.page.getByTestId("output-hint");
  await hint.waitFor({ state: "visible", timeout: 10_000 });
  assert.match(await hint.textContent(), /reports 180 ms/);
  await hint.getByRole("button", { name: "Use it" }).click();
  assert.equal(await reporting.page.getByTestId("output-delay").inputValue(), "180");
  await holds([plain.page, reporting.page], 180, "the reporting listener 180 ms ahead once its offer is taken");

  for (const l of [plain, speaker, reporting]) {
    assert.deepEqual(l.page.errors, [], "no page errors");
    await l.context.close();
  }
});
