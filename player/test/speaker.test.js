import test from "node:test";
import assert from "node:assert/strict";
import { initialOutputDelay, MAX_OUTPUT_DELAY_MS, parseOutputDelay, storeOutputDelay, suggestedOutputDelay } from "../js/speaker.js";

/** A Map-backed Storage. */
const storage = (entries = {}) => {
  const map = new Map(Object.entries(entries));
  return { getItem: (k) => (map.has(k) ? map.get(k) : null), setItem: (k, v) => map.set(k, String(v)), map };
};

test("a speaker delay is a whole number of ms within 0..1000, and nonsense is not one", () => {
  assert.equal(parseOutputDelay("200"), 200);
  assert.equal(parseOutputDelay(" 150.6 "), 151);
  assert.equal(parseOutputDelay("-20"), 0);
  assert.equal(parseOutputDelay("5000"), MAX_OUTPUT_DELAY_MS);
  assert.equal(parseOutputDelay("loud"), null);
  assert.equal(parseOutputDelay(""), null);
  assert.equal(parseOutputDelay(null), null);
  assert.equal(parseOutputDelay("Infinity"), null);
});

test("the address sets the delay for this visit, else the device remembers it, else 0", () => {
  const remembered = storage({ "bardcast.outputDelayMs": "180" });
  assert.deepEqual(initialOutputDelay("?outputDelayMs=250", remembered), { ms: 250, fromAddress: true });
  assert.deepEqual(initialOutputDelay("", remembered), { ms: 180, fromAddress: false });
  assert.deepEqual(initialOutputDelay("?outputDelayMs=x", remembered), { ms: 180, fromAddress: false });
  assert.deepEqual(initialOutputDelay("", storage()), { ms: 0, fromAddress: false });
  const refusing = { getItem: () => { throw new Error("SecurityError"); } };
  assert.deepEqual(initialOutputDelay("", refusing), { ms: 0, fromAddress: false });
  const s = storage();
  storeOutputDelay(120, s);
  assert.deepEqual(initialOutputDelay("", s), { ms: 120, fromAddress: false });
});

test("the browser's output latency is offered only when it is a speaker's and not already set", () => {
  assert.equal(suggestedOutputDelay(0.182, 0), 182);
  assert.equal(suggestedOutputDelay(0.182, 180), null, "already about that");
  assert.equal(suggestedOutputDelay(0.008, 0), null, "the device's own buffer");
  assert.equal(suggestedOutputDelay(0.032, 0), null, "a desktop's output buffer (headless Chromium's)");
  assert.equal(suggestedOutputDelay(undefined, 0), null);
  assert.equal(suggestedOutputDelay(Number.NaN, 0), null);
  assert.equal(suggestedOutputDelay(4, 0), 1000, "clamped");
});
