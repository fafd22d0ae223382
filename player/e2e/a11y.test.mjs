// End to end: axe-core (pinned in package.json) checks the listener page and the GM
// dashboard, with a scene playing (layers, pads) and the help open, at desktop, tablet and phone
// width. No serious or critical violation may remain. Then a keyboard user: Space and arrows
// on a focused control act on it (not on the room), rows, folders and scenes are reached and
// used by key, and focus survives the lists re-rendering on every state.
//
//   cd player && node --test e2e/a11y.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { api, command, launch, sleep, startServer, until } from "./lib.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items.map((t) => t.id);
  const scene = await api(server.base, "POST", "/api/scenes", {
    name: "Camp",
    music: { trackId: tracks[0] },
    layers: [{ trackId: tracks[1], gain: 0.3 }],
    pads: [{ trackId: tracks[2], label: "Owl" }, { trackId: tracks[3] }],
  });
  assert.equal(scene.status, 201, JSON.stringify(scene.body));
  await command(server.base, "scene", { sceneId: scene.body.id });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** Serious and critical axe violations on `page`, one line each. */
async function violations(page) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}

for (const viewport of [{ width: 1280, height: 900 }, { width: 820, height: 1180 }, { width: 390, height: 844 }]) {
  test(`no serious or critical axe violations on /, /gm and /admin at ${viewport.width} px`, { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ viewport });
    const listener = await context.newPage();
    await listener.goto(`${server.base}/`);
    await listener.getByTestId("join-button").waitFor({ state: "visible" });
    await until(async () => !(await listener.getByTestId("ambience").isHidden()), 10_000, "the listener shows the layer");
    assert.deepEqual(await violations(listener), [], "listener page");

    const gm = await context.newPage();
    await gm.goto(`${server.base}/gm`);
    await gm.getByTestId("key-input").fill(server.key);
    assert.deepEqual(await violations(gm), [], "GM key gate");
    await gm.getByTestId("key-submit").click();
    await until(async () => (await gm.getByTestId("pad").count()) === 2, 10_000, "two pads");
    await until(async () => (await gm.getByTestId("track-row").count()) >= 4, 10_000, "track rows");
    assert.deepEqual(await violations(gm), [], "dashboard");
    await gm.getByTestId("help-open").click();
    assert.deepEqual(await violations(gm), [], "dashboard with the help open");

    const admin = await context.newPage();
    await admin.goto(`${server.base}/admin?key=${encodeURIComponent(server.key)}`);
    await admin.getByTestId("room").first().waitFor();
    assert.deepEqual(await violations(admin), [], "admin page");
    await context.close();
  });
}

test("a keyboard user reaches and uses folders, rows and scenes, and keeps focus as state changes", { timeout: 60_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const gm = await context.newPage();
  await gm.goto(`${server.base}/gm`);
  await gm.getByTestId("key-input").fill(server.key);
  await gm.getByTestId("key-submit").click();
  await until(async () => (await gm.getByTestId("track-row").count()) >= 4, 10_000, "track rows");
  const session = async () => (await api(server.base, "GET", "/api/session")).body;
  const focused = () => gm.evaluate(() => {
    const el = document.activeElement;
    return { testid: el?.getAttribute("data-testid"), row: el?.closest("[data-focus-key]")?.getAttribute("data-focus-key") ?? null };
  });

  // Space on a focused row's checkbox ticks it; the room does not pause.
  const firstBox = gm.getByTestId("track-row").nth(0).getByTestId("track-select");
  await firstBox.focus();
  await gm.keyboard.press("Space");
  assert.equal(await gm.getByTestId("selection-count").textContent(), "1 selected");
  assert.equal((await session()).paused, false, "Space on a control is not pause");
  // Arrow down moves to the same control of the next row.
  const firstRow = (await focused()).row;
  await gm.keyboard.press("ArrowDown");
  const next = await focused();
  assert.equal(next.testid, "track-select");
  assert.notEqual(next.row, firstRow, "focus moved to the next row");
  // Tab reaches the row's play button; Enter plays that track.
  await gm.keyboard.press("Tab");
  assert.equal((await focused()).testid, "track-play");
  const trackId = Number(next.row);
  await gm.keyboard.press("Enter");
  await until(async () => (await session()).nowPlaying?.trackId === trackId, 5000, "the focused row's track plays");

  // Focus stays on a scene button through state changes (each re-renders the lists).
  await gm.getByTestId("scene").first().focus();
  await command(server.base, "volume", { volume: 0.8 });
  await command(server.base, "volume", { volume: 1 });
  await sleep(300);
  assert.equal((await focused()).testid, "scene", "the scene button kept focus");
  // And on a layer's slider: the arrow keys move the slider, not the track.
  const slider = gm.getByTestId("layer-gain").first();
  await slider.focus();
  const before = await slider.inputValue();
  const position = (await session()).nowPlaying?.position;
  await gm.keyboard.press("ArrowLeft");
  await until(async () => (await slider.inputValue()) !== before, 2000, "the slider moved");
  await sleep(500);
  assert.equal((await focused()).testid, "layer-gain", "the slider kept focus");
  assert.ok(Math.abs(((await session()).nowPlaying?.position ?? 0) - position) < 5, "ArrowLeft on the slider did not seek");

  // A folder is chosen with the keyboard: its name is a button.
  const created = await api(server.base, "POST", "/api/folders", { name: "Dungeon" });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await gm.reload();
  await gm.locator("[data-testid=folder]", { hasText: "Dungeon" }).getByTestId("folder-name").focus();
  await gm.keyboard.press("Enter");
  await until(async () => (await gm.getByTestId("tracks-title").textContent()) === "Dungeon", 5000, "the folder opened");
  await context.close();
});
