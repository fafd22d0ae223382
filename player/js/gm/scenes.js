/**
 * Scenes panel: the GM's moods in their order. One click (or F1–F12, Shift+1–9)
 * switches; the scene playing is marked. Save the stage as a new scene, update
 * one from the stage, rename, duplicate, reorder, delete; export every scene
 * to a file and import one.
 */
import { h, replaceKeepingFocus } from "../dom.js";
import { askText, confirmAction, openMenu } from "./popup.js";

/**
 * The scene a stage would make: its music, layers and crossfade, with `pads`.
 * @param {object} state a session state
 * @param {string} name
 * @param {object[]} pads
 */
export function sceneFromState(state, name, pads) {
  let music = null;
  if (state?.queueFolderId != null) music = { folderId: state.queueFolderId, shuffle: Boolean(state.shuffle), repeat: state.repeat ?? "off" };
  else if (state?.nowPlaying) music = { trackId: state.nowPlaying.trackId, repeat: state.repeat ?? "off" };
  return {
    name,
    music,
    layers: (state?.layers ?? []).map((l) => ({ trackId: l.trackId, gain: l.gain })),
    pads,
    crossfadeSeconds: state?.crossfadeSeconds ?? 3,
  };
}

/** What a scene's JSON may be sent back as (the server adds ids and lists). */
const specOf = ({ name, music, layers, pads, crossfadeSeconds }) =>
  ({ name, music: music ?? null, layers: layers ?? [], pads: pads ?? [], ...(crossfadeSeconds == null ? {} : { crossfadeSeconds }) });

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 */
export function createScenes(ctx, panel) {
  /** @type {any[]} */
  let scenes = [];
  const list = h("ol", { class: "scenes", "data-testid": "scenes" });
  const fileInput = h("input", { type: "file", accept: "application/json,.json", hidden: true, "aria-label": "Scenes file to import", "data-testid": "scenes-file" });
  const save = h("button", { type: "button", "data-testid": "scene-save-stage", text: "+ Save stage", title: "Save what plays now as a new scene", onClick: saveStage });
  const more = h("button", {
    type: "button", class: "menu-btn", "data-testid": "scenes-menu", "aria-label": "More scene actions", text: "⋯",
    onClick: (e) => openMenu(/** @type {HTMLElement} */ (e.currentTarget), [
      { label: "Export all scenes", testid: "scenes-export", action: exportAll },
      { label: "Import scenes…", testid: "scenes-import", action: () => fileInput.click() },
    ]),
  });
  panel.append(h("h2", {}, "Scenes", h("span", { class: "spacer" }), save, more), list, fileInput);
  fileInput.addEventListener("change", importFile);

  const playingId = () => ctx.state?.scene?.id ?? null;

  async function load() {
    const result = await ctx.run(() => ctx.api.scenes());
    if (result === undefined) return;
    scenes = result.items ?? [];
    render();
    ctx.emit("scene-loaded", current());
  }

  /** The scene playing, as saved (pads, titles), or null. */
  function current() {
    const id = playingId();
    return scenes.find((s) => s.id === id) ?? null;
  }

  function render() {
    if (!scenes.length) {
      list.replaceChildren(h("li", { class: "empty", "data-testid": "scenes-empty", text: "No scenes yet. Set up the stage (music, layers) and press “+ Save stage”." }));
      return;
    }
    replaceKeepingFocus(list, scenes.map((scene, i) => {
      const key = i < 12 ? `F${i + 1}` : null;
      const missing = [...(scene.tracks ?? []), ...(scene.folders ?? [])].filter((t) => t.missing).length;
      const active = scene.id === playingId();
      const button = h("button", {
        type: "button", class: "scene", "data-testid": "scene", "data-scene-id": scene.id, "aria-current": String(active),
        "aria-keyshortcuts": key ?? undefined,
        title: `Switch to ${scene.name}${key ? ` (${key})` : ""}`,
        onClick: () => switchTo(scene.id),
      },
      h("span", { class: "t", text: scene.name }),
      active ? h("span", { class: "visually-hidden", text: ", playing" }) : null,
      missing ? h("span", { class: "warn small", "data-testid": "scene-missing", text: `${missing} missing` }) : null,
      key ? h("kbd", { text: key }) : null);
      const menu = h("button", {
        type: "button", class: "menu-btn", "data-testid": "scene-menu", "aria-label": `Actions for ${scene.name}`, text: "⋯",
        onClick: (e) => openMenu(/** @type {HTMLElement} */ (e.currentTarget), [
          { label: "Update from the stage", testid: "scene-update", action: () => updateFromStage(scene) },
          { label: "Rename…", testid: "scene-rename", action: () => rename(scene) },
          { label: "Duplicate", testid: "scene-duplicate", action: () => duplicate(scene) },
          { label: "Move up", testid: "scene-up", action: () => move(i, i - 1) },
          { label: "Move down", testid: "scene-down", action: () => move(i, i + 1) },
          { label: "Delete…", testid: "scene-delete", action: () => remove(scene) },
        ]),
      });
      return h("li", { "data-testid": "scene-row", "data-focus-key": scene.id }, button, menu);
    }));
  }

  /** Switches to the scene at `index` in the list (the keyboard's F-keys). */
  function switchAt(index) {
    const scene = scenes[index];
    if (scene) switchTo(scene.id);
    return Boolean(scene);
  }

  async function switchTo(id) {
    const state = await ctx.command("scene", { sceneId: id });
    if (state?.scene?.skipped?.length) ctx.toast(`Skipped: ${state.scene.skipped.join("; ")}`);
  }

  async function saveStage() {
    const name = await askText({ title: "Save the stage as a scene", label: "Scene name", confirm: "Save" });
    if (!name) return;
    const scene = await ctx.run(() => ctx.api.sceneFromStage(name), `Saved “${name}”`);
    if (!scene) return;
    await load();
    // What plays is that scene now: marking it (a switch to the same music and layers
    // changes nothing audible) gives its pads to the stage at once.
    await switchTo(scene.id);
  }

  async function updateFromStage(scene) {
    const spec = sceneFromState(ctx.state, scene.name, scene.pads ?? []);
    if (await ctx.run(() => ctx.api.updateScene(scene.id, spec), `Updated “${scene.name}”`)) await load();
  }

  async function rename(scene) {
    const name = await askText({ title: "Rename scene", label: "Scene name", value: scene.name, confirm: "Rename" });
    if (!name) return;
    if (await ctx.run(() => ctx.api.updateScene(scene.id, { ...specOf(scene), name }))) await load();
  }

  async function duplicate(scene) {
    if (await ctx.run(() => ctx.api.createScene({ ...specOf(scene), name: `${scene.name} (copy)`.slice(0, 80) }))) await load();
  }

  async function move(from, to) {
    if (to < 0 || to >= scenes.length) return;
    const order = scenes.map((s) => s.id);
    const [id] = order.splice(from, 1);
    order.splice(to, 0, id);
    const result = await ctx.run(() => ctx.api.orderScenes(order));
    if (result) {
      scenes = result.items;
      render();
    }
  }

  async function remove(scene) {
    if (!(await confirmAction({ title: "Delete scene", message: `Delete “${scene.name}”? The music stays in the library.`, confirm: "Delete" }))) return;
    if ((await ctx.run(() => ctx.api.deleteScene(scene.id))) !== undefined) await load();
  }

  /**
   * Replaces the pads of the scene playing.
   * @param {object[]} pads
   */
  async function savePads(pads) {
    const scene = current();
    if (!scene) return;
    if (await ctx.run(() => ctx.api.updateScene(scene.id, { ...specOf(scene), pads }))) await load();
  }

  async function exportAll() {
    const file = await ctx.run(() => ctx.api.exportScenes());
    if (!file) return;
    const url = URL.createObjectURL(new Blob([JSON.stringify(file, null, 2)], { type: "application/json" }));
    const link = h("a", { href: url, download: "bardcast-scenes.json", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function importFile() {
    const file = fileInput.files?.[0];
    fileInput.value = "";
    if (!file) return;
    let parsed;
    try {
      parsed = JSON.parse(await file.text());
    } catch {
      ctx.toast(`${file.name} is not a scenes file (not JSON).`);
      return;
    }
    const result = await ctx.run(() => ctx.api.importScenes(parsed));
    if (result) {
      ctx.toast(`Imported ${result.items.length} scene(s).`, "info");
      await load();
    }
  }

  let lastPlaying = null;
  ctx.on("state", (state) => {
    const id = state?.scene?.id ?? null;
    if (id !== lastPlaying) {
      lastPlaying = id;
      render();
      ctx.emit("scene-loaded", current());
    }
  });
  return { load, current, switchAt, savePads };
}
