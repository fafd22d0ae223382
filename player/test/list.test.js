import test from "node:test";
import assert from "node:assert/strict";
import { clickSelect, emptySelection, moveItems } from "../js/list.js";

const ids = ["a", "b", "c", "d", "e"];
const sel = (s) => [...s.selected].sort().join("");

test("plain, ctrl and shift clicks", () => {
  let s = clickSelect(emptySelection(), ids, 1);
  assert.equal(sel(s), "b");
  s = clickSelect(s, ids, 3, { shift: true });
  assert.equal(sel(s), "bcd");
  s = clickSelect(s, ids, 0, { shift: true });
  assert.equal(sel(s), "ab", "shift range is re-anchored at the original anchor");
  s = clickSelect(s, ids, 4, { toggle: true });
  assert.equal(sel(s), "abe");
  s = clickSelect(s, ids, 0, { toggle: true });
  assert.equal(sel(s), "be");
  s = clickSelect(s, ids, 2, { shift: true, toggle: true });
  assert.equal(sel(s), "abce", "ctrl+shift adds the range from the last ctrl-click");
  s = clickSelect(s, ids, 2);
  assert.equal(sel(s), "c");
});

test("shift without an anchor acts like a plain click", () => {
  assert.equal(sel(clickSelect(emptySelection(), ids, 2, { shift: true })), "c");
});

test("moveItems moves one or many rows before an index", () => {
  assert.deepEqual(moveItems(ids, ["d"], 1), ["a", "d", "b", "c", "e"]);
  assert.deepEqual(moveItems(ids, ["a"], 5), ["b", "c", "d", "e", "a"]);
  assert.deepEqual(moveItems(ids, ["e", "b"], 0), ["b", "e", "a", "c", "d"], "keeps their relative order");
  assert.deepEqual(moveItems(ids, ["b", "c"], 4), ["a", "d", "b", "c", "e"]);
  assert.deepEqual(moveItems(ids, ["b"], 2), ids, "dropping right after itself changes nothing");
});
