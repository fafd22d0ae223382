import test from "node:test";
import assert from "node:assert/strict";
import { formatTime, positionAt, msUntilAudible, deviceName, formatMs, formatBytes } from "../js/format.js";

test("formatTime", () => {
  assert.equal(formatTime(0), "0:00");
  assert.equal(formatTime(59.9), "0:59");
  assert.equal(formatTime(61), "1:01");
  assert.equal(formatTime(3600 + 62), "1:01:02");
  assert.equal(formatTime(-3), "0:00");
  assert.equal(formatTime(NaN), "–:––");
  assert.equal(formatTime(null), "–:––");
});

const at = Date.parse("2026-11-25T01:02:03.000Z");
const base = {
  nowPlaying: { trackId: 1, title: "T", duration: 100, position: 10 },
  paused: false, stopped: false, playbackDelayMs: 1000, effectiveAt: "2026-11-25T01:02:03.000Z",
};

test("positionAt advances with server time minus the delay", () => {
  assert.equal(positionAt(base, at), 10, "not audible yet");
  assert.equal(positionAt(base, at + 1000), 10);
  assert.equal(positionAt(base, at + 3500), 12.5);
  assert.equal(positionAt(base, at + 500_000), 100, "clamped to the duration");
});

test("positionAt holds while paused or stopped, null without a track", () => {
  assert.equal(positionAt({ ...base, paused: true }, at + 50_000), 10);
  assert.equal(positionAt({ ...base, stopped: true }, at + 50_000), 10);
  assert.equal(positionAt({ ...base, nowPlaying: null }, at), null);
});

test("msUntilAudible counts down to effectiveAt + delay", () => {
  assert.equal(msUntilAudible(base, at - 250), 1250);
  assert.equal(msUntilAudible(base, at + 2000), 0);
  assert.equal(msUntilAudible({}, at), 0);
});

test("deviceName", () => {
  const cases = [
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", 5, "Chrome on Android"],
    ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", 5, "Safari on iPhone"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 5, "Safari on iPad"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 0, "Safari on macOS"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 0, "Firefox on Windows"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0", 0, "Edge on Windows"],
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0 Safari/537.36", 0, "Chrome on Linux"],
  ];
  for (const [ua, touch, want] of cases) assert.equal(deviceName(ua, touch), want);
});

test("formatMs and formatBytes", () => {
  assert.equal(formatMs(3.21), "+3.2 ms");
  assert.equal(formatMs(-0.04), "0.0 ms");
  assert.equal(formatMs(-12), "-12.0 ms");
  assert.equal(formatMs(null), "–");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536 * 1024 * 1024), "1.5 GiB");
});
