/**
 * Folder tree panel: pick the folder whose tracks are listed, create, rename,
 * move (drag a folder onto another, or "Move to…"), delete, play, pre-segment;
 * tracks dragged from the list onto a folder are added to it.
 */
import { h, replaceKeepingFocus } from "../dom.js";
import { findFolder, flatten, folderPath, moveTargets, sortFolders } from "../tree.js";
import { askText, choose, confirmAction, openMenu } from "./popup.js";

/** Drag payload types. */
export const TRACKS_MIME = "application/x-bardcast-tracks";
const FOLDER_MIME = "application/x-bardcast-folder";

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 */
export function createFolderTree(ctx, panel) {
  /** @type {import("../tree.js").Folder[]} */
  let roots = [];
  /** Selected folder id; null = all tracks. */
  let current = null;
  const expanded = new Set(JSON.parse(localStorage.getItem("bardcast.expanded") ?? "[]"));
  const list = h("ul", { class: "tree tree-root", "data-testid": "folder-tree", "aria-label": "Folders" });
  panel.append(
    h("h2", {}, "Folders", h("span", { class: "spacer" }),
      h("button", { type: "button", "data-testid": "folder-new", onClick: () => create(null), text: "+ New" })),
    list,
  );

  async function load() {
    const result = await ctx.run(() => ctx.api.folders());
    if (result === undefined) return;
    roots = result.items ?? [];
    if (current !== null && !findFolder(roots, current)) select(null);
    render();
  }

  function select(id) {
    current = id;
    render();
    ctx.emit("folder", { id, path: id === null ? [] : folderPath(roots, id) });
  }

  function render() {
    const all = h("div", {
      class: `folder${current === null ? " current" : ""}`, "data-testid": "folder-all", "data-focus-key": "all", onClick: () => select(null),
    }, h("span", { class: "twist" }), h("button", { type: "button", class: "name", "aria-current": String(current === null), text: "All tracks" }));
    dropTarget(all, null);
    replaceKeepingFocus(list, [h("li", {}, all), ...renderLevel(roots, 0)]);
  }

  function renderLevel(folders, depth) {
    return sortFolders(folders).map((folder) => {
      const hasChildren = (folder.children ?? []).length > 0;
      const open = expanded.has(folder.id);
      const row = h("div", {
        class: `folder${current === folder.id ? " current" : ""}`, draggable: "true", style: `padding-left: ${6 + depth * 18}px`,
        "data-testid": "folder", "data-folder-id": folder.id, "data-focus-key": folder.id,
        onClick: () => select(folder.id),
        onDragstart: (e) => {
          e.dataTransfer.setData(FOLDER_MIME, String(folder.id));
          e.dataTransfer.effectAllowed = "move";
        },
      },
      hasChildren
        ? h("button", {
          type: "button", class: "twist", "aria-expanded": String(open), "aria-label": `Subfolders of ${folder.name}`,
          onClick: (e) => { e.stopPropagation(); toggle(folder.id); },
        }, open ? "▾" : "▸")
        : h("span", { class: "twist" }),
      h("button", {
        type: "button", class: "name", "aria-current": String(current === folder.id), "data-testid": "folder-name",
        "aria-label": `${folder.name}, ${folder.trackCount ?? 0} tracks`,
      }, folder.name),
      h("span", { class: "count", "aria-hidden": "true", text: String(folder.trackCount ?? 0) }),
      h("button", {
        type: "button", class: "menu-btn", "aria-label": `Actions for ${folder.name}`, "data-testid": "folder-menu",
        onClick: (e) => { e.stopPropagation(); menu(e.currentTarget, folder); },
      }, "⋯"));
      dropTarget(row, folder.id);
      return h("li", {}, row, open && hasChildren ? h("ul", { class: "tree" }, renderLevel(folder.children, depth + 1)) : null);
    });
  }

  function toggle(id) {
    if (expanded.has(id)) expanded.delete(id);
    else expanded.add(id);
    localStorage.setItem("bardcast.expanded", JSON.stringify([...expanded]));
    render();
  }

  /** Makes `row` accept dropped tracks (added to folder `id`) and folders (moved under it; null = root). */
  function dropTarget(row, id) {
    const accepts = (e) => e.dataTransfer.types.includes(FOLDER_MIME) || (id !== null && e.dataTransfer.types.includes(TRACKS_MIME));
    row.addEventListener("dragover", (e) => {
      if (!accepts(e)) return;
      e.preventDefault();
      row.classList.add("drop-target");
    });
    row.addEventListener("dragleave", () => row.classList.remove("drop-target"));
    row.addEventListener("drop", (e) => {
      row.classList.remove("drop-target");
      if (!accepts(e)) return;
      e.preventDefault();
      const folderId = e.dataTransfer.getData(FOLDER_MIME);
      if (folderId) move(Number(folderId), id);
      else addTracks(id, JSON.parse(e.dataTransfer.getData(TRACKS_MIME)));
    });
  }

  function menu(anchor, folder) {
    openMenu(anchor, [
      { label: "Play folder", testid: "folder-play", action: () => ctx.command("play", { folderId: folder.id }) },
      { label: "Play shuffled", testid: "folder-play-shuffled", action: () => ctx.command("play", { folderId: folder.id, shuffle: true }) },
      { label: "New subfolder…", testid: "folder-new-child", action: () => create(folder.id) },
      { label: "Rename…", testid: "folder-rename", action: () => rename(folder) },
      { label: "Move to…", testid: "folder-move", action: () => moveVia(folder) },
      { label: "Pre-segment for fast start", testid: "folder-prepare", action: () => ctx.run(() => ctx.api.cachePrepare(folder.id), `Preparing “${folder.name}”`) },
      { label: "Delete…", testid: "folder-delete", action: () => remove(folder) },
    ]);
  }

  async function create(parentId) {
    const name = await askText({ title: parentId === null ? "New folder" : "New subfolder", label: "Name", confirm: "Create" });
    if (!name) return;
    if ((await ctx.run(() => ctx.api.createFolder(name, parentId))) === undefined) return;
    if (parentId !== null) expanded.add(parentId);
    await load();
  }

  async function rename(folder) {
    const name = await askText({ title: "Rename folder", label: "Name", value: folder.name, confirm: "Rename" });
    if (name && name !== folder.name && (await ctx.run(() => ctx.api.updateFolder(folder.id, { name }))) !== undefined) await load();
  }

  async function moveVia(folder) {
    const targets = moveTargets(roots, folder.id).map(({ folder: f, depth }) => ({ label: f ? f.name : "(top level)", value: f ? f.id : null, depth }));
    const target = await choose({ title: `Move “${folder.name}” to…`, choices: targets });
    if (target !== undefined) await move(folder.id, target);
  }

  async function move(folderId, parentId) {
    if (folderId === parentId) return;
    const folder = findFolder(roots, folderId);
    if (!folder || folder.parentId === parentId) return;
    if ((await ctx.run(() => ctx.api.updateFolder(folderId, { parentId }))) !== undefined) {
      if (parentId !== null) expanded.add(parentId);
      await load();
    }
  }

  async function remove(folder) {
    const ok = await confirmAction({
      title: "Delete folder",
      message: `Delete “${folder.name}”? Its tracks stay in the library.`,
      confirm: "Delete",
    });
    if (ok && (await ctx.run(() => ctx.api.deleteFolder(folder.id), `Deleted “${folder.name}”`)) !== undefined) await load();
  }

  /**
   * Adds tracks to a folder and tells the GM.
   * @param {number} folderId
   * @param {number[]} trackIds
   */
  async function addTracks(folderId, trackIds) {
    const folder = findFolder(roots, folderId);
    const n = trackIds.length;
    const done = await ctx.run(() => ctx.api.addToFolder(folderId, trackIds), `Added ${n} track${n === 1 ? "" : "s"} to “${folder?.name ?? "folder"}”`);
    if (done !== undefined) {
      await load();
      ctx.emit("folder-changed", { id: folderId });
    }
  }

  /** Lets the GM pick a folder with the keyboard or a tap (the drag alternative). */
  async function pick(title) {
    const choices = flatten(roots).map(({ folder, depth }) => ({ label: folder.name, value: folder.id, depth }));
    if (!choices.length) {
      ctx.toast("Create a folder first", "info");
      return undefined;
    }
    return choose({ title, choices });
  }

  return { load, addTracks, pick, get current() { return current; } };
}
