// End to end: a 1,200-track queue with the current track at position 900. The dashboard
// shows the same positions as GET /api/session, and its remove and move buttons act on
// the row the GM clicked, not on the row with the same place in the listed window.
//
//   cd player && node --test e2e/queue.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api, command, launch, startServer, until } from "./lib.mjs";

const LENGTH = 1200;
const CURRENT = 900;

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

/** The whole queue as the server lists it around the current track: position → track id. */
async function listed() {
  const state = (await api(server.base, "GET", "/api/session")).body;
  return { state, ids: new Map(state.queue.map((q, i) => [state.queueStart + i, q.trackId])) };
}

test("a 1,200-track queue: the dashboard and the API agree, and remove/move hit the clicked row", { timeout: 120_000 }, async () => {
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items.map((t) => t.id);
  // An order with no period (a linear congruential walk), so any wrong index shows.
  let x = 7;
  const queue = Array.from({ length: LENGTH }, () => tracks[(x = (x * 1103515245 + 12345) % 2147483648) % tracks.length]);
  await command(server.base, "queue", { action: "add", trackIds: queue });
  await command(server.base, "resume");
  for (let i = 0; i < CURRENT; i++) await command(server.base, "next");
  await command(server.base, "pause");

  const { state, ids } = await listed();
  assert.equal(state.queueIndex, CURRENT);
  assert.equal(state.queueLength, LENGTH);
  assert.equal(ids.get(CURRENT), queue[CURRENT]);

  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(`${server.base}/gm`);
  await page.getByTestId("key-input").fill(server.key);
  await page.getByTestId("key-submit").click();
  const rows = page.getByTestId("queue-item");
  await until(async () => (await rows.count()) === ids.size, 10_000, `${ids.size} queue rows`);

  // The numbers shown are positions + 1, and the current row is the API's queueIndex.
  const shown = await page.$$eval("[data-testid=queue-item]", (items) => items.map((li) => ({
    position: Number(li.querySelector("[data-testid=queue-position]").textContent) - 1,
    current: li.getAttribute("aria-current") === "true",
  })));
  assert.deepEqual(shown.map((r) => r.position), [...ids.keys()]);
  assert.deepEqual(shown.filter((r) => r.current).map((r) => r.position), [CURRENT]);

  // Remove the row shown as position 904 (index 903).
  const target = 903;
  const row = page.locator("[data-testid=queue-item]", { has: page.locator(`[data-testid=queue-position]:text-is("${target + 1}")`) });
  const removed = page.waitForResponse((r) => r.url().endsWith("/api/session/queue"));
  await row.getByTestId("queue-remove").click();
  assert.equal((await removed).status(), 200);
  const expected = queue.slice();
  expected.splice(target, 1);
  const afterRemove = await listed();
  assert.equal(afterRemove.state.queueLength, LENGTH - 1);
  for (const [position, id] of afterRemove.ids) assert.equal(id, expected[position], `position ${position} after removing ${target}`);

  // Move the row shown as position 1,000 up by one.
  const up = page.locator("[data-testid=queue-item]", { has: page.locator('[data-testid=queue-position]:text-is("1000")') });
  await until(async () => (await up.count()) === 1, 5000, "row 1000 re-rendered");
  const moved = page.waitForResponse((r) => r.url().endsWith("/api/session/queue"));
  await up.getByTestId("queue-up").click();
  assert.equal((await moved).status(), 200);
  const [item] = expected.splice(999, 1);
  expected.splice(998, 0, item);
  const afterMove = await listed();
  for (const [position, id] of afterMove.ids) assert.equal(id, expected[position], `position ${position} after the move`);
  assert.equal(afterMove.state.queueIndex, CURRENT, "the current track keeps its place");
  assert.deepEqual(page.errors, []);
});
