// End to end: the device check (`/check`) in Chromium and in WebKit (WebKitGTK through its
// WebDriver, see webkit-driver.mjs) at the same time, against a real server playing a demo
// track. Each runs to a plain report, sends it, and the GM sees it: on that listener's row,
// in the recent checks, in `GET /api/reports` and in `/metrics`, counted by engine.
//
//   cd player && node --test e2e/check.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api, command, launch, openListener, startServer, until } from "./lib.mjs";
import { startWebKit } from "./webkit-driver.mjs";

const D_MS = 400;
const CHECK_SECONDS = 15;

let server;
let browser;
let webkit;

before(async () => {
  server = await startServer({ env: { MAX_PLAYBACK_DELAY_MS: String(D_MS) } });
  browser = await launch();
  webkit = await startWebKit();
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items;
  await command(server.base, "play", { trackId: tracks[0].id });
});

after(async () => {
  await webkit?.stop();
  await browser?.close().catch(() => {});
  await server?.stop();
});

test("the check runs to a report in Chromium and WebKit, and the GM sees both", { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const gm = await context.newPage();
  await gm.goto(`${server.base}/gm`);
  await gm.getByTestId("key-input").fill(server.key);
  await gm.getByTestId("key-submit").click();

  // Both devices start their check: Chromium by Playwright's click, WebKit by WebDriver's.
  const chromium = await openListener(browser, server.base, { path: `/check?seconds=${CHECK_SECONDS}` });
  await webkit.open(`${server.base}/check?seconds=${CHECK_SECONDS}`);
  await until(() => webkit.run("const b = document.querySelector('[data-testid=join-button]'); return b && !b.disabled && b.textContent.startsWith('Start the check')"),
    15_000, "WebKit's check page ready");
  await webkit.click("[data-testid=join-button]");
  assert.match(await chromium.page.getByTestId("check-status").textContent(), /Checking…|measuring/);

  // Each ends in a report, shown on the page and sent.
  await chromium.page.locator("[data-testid=check-status][data-done=true]").waitFor({ timeout: (CHECK_SECONDS + 20) * 1000 });
  await until(() => webkit.run("return document.querySelector('[data-testid=check-status]').dataset.done === 'true'"), 30_000, "WebKit's check done");
  const chromiumStatus = await chromium.page.getByTestId("check-status").textContent();
  assert.match(chromiumStatus, /The GM sees this result/);
  assert.match(await webkit.run("return document.querySelector('[data-testid=check-status]').textContent"), /The GM sees this result/);
  const shown = await chromium.page.getByTestId("check-verdict").getAttribute("data-verdict");

  const { status, body } = await api(server.base, "GET", "/api/reports");
  assert.equal(status, 200);
  assert.equal(body.items.length, 2, JSON.stringify(body.items));
  const byEngine = Object.fromEntries(body.items.map((c) => [c.engine, c]));
  const fromChromium = byEngine["hlsjs-mse"];
  const fromWebKit = byEngine["hlsjs-mms"];
  assert.ok(fromChromium && fromWebKit, `engines ${body.items.map((c) => c.engine)}: Chromium on MSE, WebKitGTK on ManagedMediaSource`);
  for (const [name, c] of [["Chromium", fromChromium], ["WebKit", fromWebKit]]) {
    console.log(`# ${name}: ${c.verdict}, ${c.samples} readings, p50 ${c.syncP50Ms} ms, p95 ${c.syncP95Ms} ms, ${c.stalls} stalls, `
      + `${c.seeks} seeks, ${c.rateChanges} rate changes, corrects by ${c.correction}; problems: ${JSON.stringify(c.problems)}`);
    assert.equal(c.started, true, `${name} played`);
    assert.ok(c.seconds >= CHECK_SECONDS - 0.5 && c.seconds <= CHECK_SECONDS + 2, `${name} ran ${c.seconds} s`);
    assert.ok(c.samples >= 40, `${name}: ${c.samples} readings`);
    assert.ok(c.syncP95Ms !== null && c.syncP95Ms <= 50, `${name}: p95 ${c.syncP95Ms} ms, within 50 ms on loopback`);
    assert.ok(["good", "fair"].includes(c.verdict), `${name}: ${c.verdict}`);
    assert.equal(c.correction, "rate");
    assert.match(c.clientId ?? "", /^c\d+$/, `${name} names its socket`);
  }
  assert.equal(fromChromium.verdict, shown, "the page showed what it sent");
  assert.match(fromWebKit.userAgent, /AppleWebKit/);
  assert.doesNotMatch(fromWebKit.userAgent, /Chrome/);

  // The GM's listeners panel: each check on its device's row, and in the recent checks.
  for (const c of [fromChromium, fromWebKit]) {
    await until(async () => (await gm.locator(`[data-testid=listener-row][data-client-id=${c.clientId}] [data-testid=listener-check]`).textContent()
      .catch(() => ""))?.includes(`check: ${c.verdict}`), 10_000, `the check on ${c.clientId}'s row`);
  }
  await until(async () => (await gm.getByTestId("device-check").count()) === 2, 10_000, "two recent checks in the panel");

  // /metrics counts them by engine and verdict.
  const metrics = await fetch(`${server.base}/metrics`).then((r) => r.text());
  assert.match(metrics, new RegExp(`bardcast_device_checks_total\\{engine="hlsjs-mse",verdict="${fromChromium.verdict}"\\} 1`));
  assert.match(metrics, new RegExp(`bardcast_device_checks_total\\{engine="hlsjs-mms",verdict="${fromWebKit.verdict}"\\} 1`));

  // The list is the GM's; a report with a bad field is refused, naming it.
  assert.equal((await api(server.base, "GET", "/api/reports", undefined, null)).status, 401);
  const bad = await api(server.base, "POST", "/api/reports", { ...fromChromium, id: undefined, receivedAt: undefined, syncP95Ms: -3 }, null);
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /^syncP95Ms/);
  assert.deepEqual(chromium.page.errors, []);
  await context.close();
  await chromium.context.close();
});
