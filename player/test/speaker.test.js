import test from "node:test";
import assert from "node:assert/strict";
import { initialOutputDelay, MAX_OUTPUT_DELAY_MS, parseOutputDelay, storeOutputDelay } from "../js/speaker.js";

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
