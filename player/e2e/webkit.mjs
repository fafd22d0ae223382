// Harness (not a test yet; issue #16): the listener page in WebKit, through Debian's
// WebKitGTK MiniBrowser driven by its WebDriver (`webkit2gtk-driver`) under Xvfb, since
// Playwright's WebKit build cannot be installed here. A real server plays a demo track; the
// page joins by a real click and is read against the true clock (hls.js's playing PDT
// against Date.now() − D) for 30 s after 10 s of settling.
//
//   apt-get install -y webkit2gtk-driver xvfb
//   Xvfb :99 & DISPLAY=:99 WebKitWebDriver --port=4444 &
//   cd player && node e2e/webkit.mjs [--driver http://127.0.0.1:4444] [--t 30]
import { parseArgs } from "node:util";
import { api, command, percentile, sleep, startServer } from "./lib.mjs";

const { values: args } = parseArgs({
  options: { driver: { type: "string", default: "http://127.0.0.1:4444" }, t: { type: "string", default: "30" } },
});
const D_MS = 400;
const SETTLE_MS = 10_000;
const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/** One WebDriver call; its `value`. */
async function driver(method, path, body) {
  const res = await fetch(args.driver + path, {
    method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
  return json.value;
}

const server = await startServer({ env: { MAX_PLAYBACK_DELAY_MS: String(D_MS) } });
let session = null;
try {
  const tracks = (await api(server.base, "GET", "/api/tracks")).body.items;
  await command(server.base, "play", { trackId: tracks[0].id });
  session = (await driver("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } } },
  })).sessionId;
  const s = `/session/${session}`;
  const js = (script) => driver("POST", `${s}/execute/sync`, { script, args: [] });
  await driver("POST", `${s}/url`, { url: `${server.base}/` });
  await sleep(3000);
  const engine = await js("return {ua: navigator.userAgent, mse: typeof MediaSource, mms: typeof ManagedMediaSource, nativeHls: document.createElement('audio').canPlayType('application/vnd.apple.mpegurl')}");
  const join = await driver("POST", `${s}/element`, { using: "css selector", value: "[data-testid=join-button]" });
  await driver("POST", `${s}/element/${Object.values(join)[0]}/click`, {});
  const joinedAt = Date.now();
  const errors = [];
  let lockedAt = null;
  while (Date.now() - joinedAt < SETTLE_MS + Number(args.t) * 1000) {
    const r = await js("const d = window.hls && window.hls.playingDate; return d ? {pdt: d.getTime(), now: Date.now()} : null");
    const error = r ? r.pdt - (r.now - D_MS) : null;
    if (error !== null && Math.abs(error) <= 50) lockedAt ??= Date.now() - joinedAt;
    if (Date.now() - joinedAt > SETTLE_MS) errors.push(error === null ? Infinity : error);
    await sleep(250);
  }
  const stats = await js("return window.bardcast.syncStats");
  const state = await js("return window.bardcast.state");
  const abs = errors.map(Math.abs);
  console.log(`WebKit: ${engine.ua}`);
  console.log(`  MediaSource ${engine.mse}, ManagedMediaSource ${engine.mms}, native HLS "${engine.nativeHls}"; state ${state}`);
  console.log(`  first within 50 ms ${lockedAt} ms after Join; then error vs true clock − D (ms, ${errors.length} readings, ms-resolution PDT):`
    + ` p50 ${percentile(errors, 0.5).toFixed(1)} · p95 |e| ${percentile(abs, 0.95).toFixed(1)} · max |e| ${Math.max(...abs).toFixed(1)}`);
  console.log(`  controller: ${JSON.stringify(stats)}`);
} finally {
  if (session) await driver("DELETE", `/session/${session}`).catch(() => {});
  await server.stop();
}
