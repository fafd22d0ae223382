// The listener page tells the truth about playback, against the real server in Chromium:
//  - without hls.js (its module fails to load) Chromium's native HLS still plays the
//    stream but has no getStartDate(), so the page says plainly that it cannot be kept in
//    sync instead of "measuring…" forever;
//  - play() rejected with AbortError (a load interrupted it) is no autoplay block: no
//    message, and the audio plays;
//  - play() rejected with NotAllowedError says "blocked, tap Join again", offers Join, and
//    the message goes once the audio plays.
//
//   cd player && node --test e2e/messages.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { command, launch, openListener, startServer, until } from "./lib.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  await command(server.base, "play", { trackId: 1 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
});

/** The audio element's playhead and the page's messages. */
const look = (page) => page.evaluate(() => {
  const audio = document.querySelector("audio");
  const text = (id) => (document.getElementById(id).hidden ? null : document.getElementById(id).textContent);
  return {
    t: audio.currentTime, paused: audio.paused, banner: text("banner"), notice: text("notice"),
    sync: document.getElementById("sync").textContent, joinVisible: !document.getElementById("join").hidden,
  };
});

/** Waits until the audio element's currentTime has advanced by `seconds` while not paused. */
async function playsOn(page, seconds, timeoutMs) {
  const start = (await look(page)).t;
  await until(async () => {
    const now = await look(page);
    return !now.paused && now.t - start >= seconds;
  }, timeoutMs, `audio advancing ${seconds} s`);
}

test("without hls.js the page plays natively and says it cannot be kept in sync", { timeout: 60_000 }, async (t) => {
  const context = await browser.newContext();
  await context.route("**/vendor/hls.mjs", (route) => route.abort());
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => !document.querySelector("[data-testid=join-button]").disabled);
  assert.equal(await page.evaluate(() => window.hls), undefined, "hls.js did not load");
  await page.getByTestId("join-button").click();
  await playsOn(page, 2, 20_000);
  const seen = await look(page);
  t.diagnostic(JSON.stringify(seen));
  assert.equal(await page.evaluate(() => window.bardcast.mode), "unsynced");
  assert.match(seen.notice ?? "", /cannot be kept in sync/);
  assert.equal(seen.sync, "not synced");
  assert.equal(seen.banner, null, "no trouble: the audio plays");
  assert.deepEqual(errors, []);
  await context.close();
});

test("play() rejected with AbortError is not reported as blocked, and the audio plays", { timeout: 60_000 }, async () => {
  // The first play() really starts playback, but its promise rejects as if a load had
  // interrupted it (what hls.js attaching can do).
  const { page, context } = await openListener(browser, server.base, {
    initScript: () => {
      const play = HTMLMediaElement.prototype.play;
      let first = true;
      HTMLMediaElement.prototype.play = function () {
        const p = play.call(this);
        if (!first) return p;
        first = false;
        p.catch(() => {});
        return Promise.reject(new DOMException("The play() request was interrupted by a new load request.", "AbortError"));
      };
    },
  });
  await playsOn(page, 2, 20_000);
  const seen = await look(page);
  assert.equal(seen.banner, null, `banner: ${seen.banner}`);
  assert.equal(seen.joinVisible, false);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("play() rejected with NotAllowedError asks for another tap, and the message goes once the audio plays", { timeout: 60_000 }, async () => {
  // The first play() is refused as a browser without a gesture would; the second is allowed.
  const { page, context } = await openListener(browser, server.base, {
    initScript: () => {
      const play = HTMLMediaElement.prototype.play;
      let refuse = true;
      HTMLMediaElement.prototype.play = function () {
        if (!refuse) return play.call(this);
        refuse = false;
        return Promise.reject(new DOMException("play() failed because the user didn't interact with the document first.", "NotAllowedError"));
      };
    },
  });
  await until(async () => (await look(page)).banner !== null, 5000, "a message");
  const blocked = await look(page);
  assert.match(blocked.banner, /blocked.*Tap Join again/);
  assert.equal(blocked.joinVisible, true, "Join is offered again");
  assert.equal(blocked.paused, true);
  await page.getByTestId("join-button").click();
  await playsOn(page, 1, 20_000);
  const playing = await look(page);
  assert.equal(playing.banner, null, `banner after playing: ${playing.banner}`);
  assert.equal(playing.joinVisible, false);
  assert.deepEqual(page.errors, []);
  await context.close();
});
