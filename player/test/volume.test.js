import test from "node:test";
import assert from "node:assert/strict";
import { storedVolume } from "../js/volume.js";

const storage = (value) => ({ getItem: () => value });

test("the remembered volume is read back, clamped, with 1 as the default", () => {
  assert.equal(storedVolume(storage("0.35")), 0.35);
  assert.equal(storedVolume(storage("7")), 1);
  assert.equal(storedVolume(storage("-1")), 0);
  assert.equal(storedVolume(storage(null)), 1);
  assert.equal(storedVolume(storage("loud")), 1);
  assert.equal(storedVolume(undefined), 1);
});
