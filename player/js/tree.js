/** Folder-tree helpers over the server's nested folders; pure, no DOM. */

/** @typedef {{id: number, name: string, parentId: number|null, sortOrder: number, trackCount: number, children: Folder[]}} Folder */

/**
 * Depth-first list of folders with their depth, children in sortOrder.
 * @param {Folder[]} roots
 * @returns {{folder: Folder, depth: number}[]}
 */
export function flatten(roots, depth = 0) {
  return sortFolders(roots).flatMap((folder) => [{ folder, depth }, ...flatten(folder.children ?? [], depth + 1)]);
}

/**
 * The folder with `id`, or null.
 * @param {Folder[]} roots
 * @param {number} id
 */
export function findFolder(roots, id) {
  for (const folder of roots) {
    if (folder.id === id) return folder;
    const found = findFolder(folder.children ?? [], id);
    if (found) return found;
  }
  return null;
}

/**
 * Names from the root down to folder `id` (empty if unknown).
 * @param {Folder[]} roots
 * @param {number} id
 * @returns {string[]}
 */
export function folderPath(roots, id) {
  for (const folder of roots) {
    if (folder.id === id) return [folder.name];
    const below = folderPath(folder.children ?? [], id);
    if (below.length) return [folder.name, ...below];
  }
  return [];
}

/**
 * Where folder `movingId` may go: every folder except itself and its
 * descendants (the server answers 409 for those). `null` stands for the root.
 * @param {Folder[]} roots
 * @param {number} movingId
 * @returns {{folder: Folder | null, depth: number}[]}
 */
export function moveTargets(roots, movingId) {
  const moving = findFolder(roots, movingId);
  const excluded = new Set(moving ? flatten([moving]).map((x) => x.folder.id) : []);
  return [{ folder: null, depth: 0 }, ...flatten(roots, 1).filter((x) => !excluded.has(x.folder.id))];
}

/**
 * Siblings in display order: sortOrder, then name.
 * @param {Folder[]} folders
 */
export function sortFolders(folders) {
  return [...folders].sort((a, b) => (a.sortOrder ?? 0) - (b.sortOrder ?? 0) || a.name.localeCompare(b.name));
}
