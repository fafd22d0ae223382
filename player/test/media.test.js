import test from "node:test";
import assert from "node:assert/strict";
import { playbackMode, playRejection } from "../js/media.js";

test("playbackMode: hls.js first, native HLS with getStartDate() synced, without it unsynced", () => {
  assert.equal(playbackMode({ hlsSupported: true, nativeHls: true, startDate: false }), "hls", "Chromium: hls.js, not its 'maybe'");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: true, startDate: true }), "native", "old iOS Safari");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: true, startDate: false }), "unsynced", "Chromium without hls.js");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: false, startDate: false }), "none");
});

test("playRejection: only NotAllowedError is a block; AbortError says nothing", () => {
  assert.equal(playRejection({ name: "AbortError" }), null);
  const blocked = playRejection({ name: "NotAllowedError" });
  assert.equal(blocked.retry, true);
  assert.match(blocked.message, /blocked.*Tap Join again/);
  assert.equal(playRejection({ name: "NotSupportedError" }).retry, false);
  assert.doesNotMatch(playRejection({ name: "NotSupportedError" }).message, /blocked/);
  assert.doesNotMatch(playRejection({ name: "Whatever" }).message, /blocked/);
  assert.doesNotMatch(playRejection(undefined).message, /blocked/);
});
