// Screenshots of the listener page (after Join, playing) and the GM dashboard
// (after key entry) at phone (390x844) and desktop (1280x800) sizes, saved in
// a temp dir whose paths are printed; checks that the key content is visible
// and that the images are not blank.
//
//   cd player && node --test e2e/screens.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { command, launch, openListener, startServer, until, waitInSync } from "./lib.mjs";

const SIZES = [{ width: 390, height: 844 }, { width: 1280, height: 800 }];
const OUT = mkdtempSync(join(tmpdir(), "bardcast-screens-"));

let server;
let browser;
let playing;

before(async () => {
  server = await startServer();
  browser = await launch();
  playing = await command(server.base, "play", { trackId: 1 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** Visible with a non-empty box inside the viewport's width. */
async function assertShown(page, testid, what) {
  const el = page.getByTestId(testid).first();
  assert.ok(await el.isVisible(), `${what} is visible`);
  const box = await el.boundingBox();
  assert.ok(box && box.width > 0 && box.height > 0, `${what} has a box: ${JSON.stringify(box)}`);
  const vw = page.viewportSize().width;
  assert.ok(box.x >= -1 && box.x + box.width <= vw + 1, `${what} fits the ${vw} px width: ${JSON.stringify(box)}`);
}

/** Saves a screenshot, checks it is a real picture (size, several colours) and returns its path. */
async function shoot(page, name, t) {
  const png = await page.screenshot({ fullPage: false });
  const path = join(OUT, `${name}.png`);
  writeFileSync(path, png);
  t.diagnostic(`screenshot: ${path} (${png.length} bytes)`);
  console.log(`screenshot: ${path}`);
  assert.ok(png.length > 10_000, `${name}: only ${png.length} bytes`);
  // Decode in the page itself and count distinct colours on a grid.
  const colours = await page.evaluate(async (b64) => {
    const bitmap = await createImageBitmap(await (await fetch(`data:image/png;base64,${b64}`)).blob());
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext("2d");
    g.drawImage(bitmap, 0, 0);
    const { data } = g.getImageData(0, 0, bitmap.width, bitmap.height);
    const seen = new Set();
    for (let y = 0; y < bitmap.height; y += 4) {
      for (let x = 0; x < bitmap.width; x += 4) {
        const i = (y * bitmap.width + x) * 4;
        seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      }
    }
    return seen.size;
  }, png.toString("base64"));
  assert.ok(colours > 8, `${name}: ${colours} distinct colours`);
  // Nothing sticks out sideways (a horizontal scrollbar on a phone).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${name}: page is ${overflow} px wider than the viewport`);
  return path;
}

for (const size of SIZES) {
  const tag = `${size.width}x${size.height}`;

  test(`listener page after Join, playing, at ${tag}`, { timeout: 60_000 }, async (t) => {
    const { page, context } = await openListener(browser, server.base, { viewport: size });
    await until(() => page.evaluate(() => window.bardcast.state === "playing"), 15_000, "listener playing");
    await waitInSync([page], playing.playbackDelayMs, 50, 15_000, 1500); // the sync indicator shows the steady state
    await until(async () => (await page.getByTestId("now-title").textContent()) === playing.nowPlaying.title, 5000, "now-playing title");
    await until(async () => (await page.getByTestId("connection").textContent()) === "Connected", 5000, "connected badge");
    await assertShown(page, "now-title", "now-playing title");
    await assertShown(page, "now-artist", "artist line");
    await assertShown(page, "volume", "personal volume");
    await assertShown(page, "sync-indicator", "sync indicator");
    assert.equal(await page.getByTestId("join-button").isVisible(), false, "Join is gone once playing");
    await shoot(page, `listener-${tag}`, t);
    assert.deepEqual(page.errors, []);
    await context.close();
  });

  test(`GM dashboard after key entry at ${tag}`, { timeout: 60_000 }, async (t) => {
    const context = await browser.newContext({ viewport: size });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${server.base}/gm`);
    await page.getByTestId("key-input").fill(server.key);
    await page.getByTestId("key-submit").click();
    const rows = page.getByTestId("track-row");
    await until(async () => (await rows.count()) === 4, 10_000, "4 track rows");
    await until(async () => (await page.getByTestId("np-title").textContent()) === playing.nowPlaying.title, 5000, "dashboard title");
    await assertShown(page, "np-title", "now-playing title");
    for (const id of ["prev", "play-pause", "stop", "next", "seek"]) await assertShown(page, id, `transport ${id}`);
    // The track list: rows in view (the list may scroll below the fold on a phone).
    await rows.first().scrollIntoViewIfNeeded();
    await assertShown(page, "track-row", "first track row");
    await page.evaluate(() => window.scrollTo(0, 0));
    await assertShown(page, "folder-new", "new-folder button");
    await shoot(page, `gm-${tag}`, t);
    assert.deepEqual(errors, []);
    await context.close();
  });
}
