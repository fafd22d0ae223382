import test from "node:test";
import assert from "node:assert/strict";
import { flatten, findFolder, folderPath, moveTargets } from "../js/tree.js";

const f = (id, name, sortOrder, children = []) => ({ id, name, parentId: null, sortOrder, trackCount: 0, children });
const roots = [
  f(2, "Combat", 1, [f(4, "Bosses", 0), f(5, "Skirmish", 1, [f(6, "Small", 0)])]),
  f(1, "Ambience", 0, [f(3, "Tavern", 0)]),
];

test("flatten is depth-first in sortOrder", () => {
  assert.deepEqual(flatten(roots).map((x) => `${x.depth}${x.folder.name}`), ["0Ambience", "1Tavern", "0Combat", "1Bosses", "1Skirmish", "2Small"]);
});

test("findFolder and folderPath", () => {
  assert.equal(findFolder(roots, 6).name, "Small");
  assert.equal(findFolder(roots, 99), null);
  assert.deepEqual(folderPath(roots, 6), ["Combat", "Skirmish", "Small"]);
  assert.deepEqual(folderPath(roots, 99), []);
});

test("moveTargets excludes the folder and its descendants", () => {
  const names = moveTargets(roots, 5).map((x) => x.folder?.name ?? "(root)");
  assert.deepEqual(names, ["(root)", "Ambience", "Tavern", "Combat", "Bosses"]);
});
