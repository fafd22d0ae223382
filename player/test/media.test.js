import test from "node:test";
import assert from "node:assert/strict";
import { nextPartUrl, playbackMode, playRejection } from "../js/media.js";

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

test("nextPartUrl: the next part on the grid, nothing for other URLs", () => {
  assert.equal(nextPartUrl("http://h:3000/hls/256k/part/3446054912.m4s"), "http://h:3000/hls/256k/part/3446054913.m4s");
  assert.equal(nextPartUrl("http://h/hls/256k/part/9.m4s?x=1"), "http://h/hls/256k/part/10.m4s?x=1");
  assert.equal(nextPartUrl("http://h/hls/256k/part/9007199254740993.m4s"), "http://h/hls/256k/part/9007199254740994.m4s", "beyond 2^53");
  assert.equal(nextPartUrl("http://h/hls/256k/seg/12.m4s"), null);
  assert.equal(nextPartUrl("http://h/hls/256k/init.mp4"), null);
});
