/**
 * Stage panel: the crossfade setting, Duck (click to toggle, hold to duck while
 * held), the ambience layers (gain slider on a perceptual taper, mute, remove;
 * drop tracks here to add them) and the pads of the scene playing (click or
 * press the pad's key; drop tracks here to add pads to the scene).
 */
import { h, replaceKeepingFocus } from "../dom.js";
import { TRACKS_MIME } from "./folders.js";
import { askText, openMenu } from "./popup.js";

/** A press on Duck longer than this (ms) ducks only while held. */
const HOLD_MS = 400;
/** A slider's position x (0..1) sets gain x³: about 60 dB over the travel, even to the ear. */
const TAPER = 3;
/** Slider moves are sent at most this often (ms). */
const GAIN_DEBOUNCE_MS = 120;
/** How long a pad flashes when it fires (ms). */
const FLASH_MS = 300;

/** Gain (0..1) for a slider position (0..1). */
export const gainOf = (position) => position ** TAPER;
/** Slider position (0..1) for a gain (0..1). */
export const positionOf = (gain) => gain ** (1 / TAPER);

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 * @param {{ current: () => any | null, savePads: (pads: object[]) => Promise<unknown> }} scenes
 *   the scene playing (with its pads and track titles), and a way to change its pads
 */
export function createStage(ctx, panel, scenes) {
  const crossfade = h("input", {
    type: "number", min: 0, max: 12, step: 0.5, value: 3, class: "narrow", "aria-label": "Crossfade, seconds", "data-testid": "crossfade",
  });
  const duck = h("button", { type: "button", "data-testid": "duck", "aria-pressed": "false", title: "Click to toggle, hold to duck while held (d)", text: "Duck" });
  const layers = h("ul", { class: "layers", "data-testid": "layers", "aria-label": "Ambience layers" });
  const pads = h("div", { class: "pads", "data-testid": "pads", role: "group", "aria-label": "Pads" });
  const padsNote = h("p", { class: "muted small", "data-testid": "pads-note" });
  panel.append(
    h("h2", {}, "Stage", h("span", { class: "spacer" }),
      h("label", { class: "inline" }, h("span", { class: "muted small", text: "Crossfade s" }), crossfade), duck),
    h("h3", { text: "Layers" }),
    layers,
    h("h3", { text: "Pads" }),
    pads,
    padsNote,
  );

  crossfade.addEventListener("change", () => {
    const seconds = Number(crossfade.value);
    if (Number.isFinite(seconds)) ctx.command("settings", { crossfadeSeconds: Math.min(12, Math.max(0, seconds)) });
  });

  // Duck: a short press toggles; a long one ducks until released.
  let pressedAt = 0;
  let wasDucked = false;
  const ducked = () => ctx.state?.duckDb != null;
  function duckDown() {
    if (pressedAt) return;
    pressedAt = performance.now();
    wasDucked = ducked();
    if (!wasDucked) ctx.command("duck", { on: true });
  }
  function duckUp() {
    if (!pressedAt) return;
    const held = performance.now() - pressedAt > HOLD_MS;
    pressedAt = 0;
    if (held ? !wasDucked : wasDucked) ctx.command("duck", { on: false });
  }
  duck.addEventListener("pointerdown", duckDown);
  duck.addEventListener("pointerup", duckUp);
  duck.addEventListener("pointerleave", duckUp);
  duck.addEventListener("keydown", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault();
    e.stopPropagation();
    if (!e.repeat) duckDown();
  });
  duck.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") duckUp();
  });

  // Dropping tracks from the library adds them.
  dropTarget(layers, (ids) => ids.forEach((trackId) => ctx.command("layer", { action: "add", trackId })));
  dropTarget(pads, (ids) => addPads(ids));

  /** Gains remembered for muted layers, by layer id. */
  const mutedGains = new Map();
  const sendGain = debounce((layerId, gain) => ctx.command("layer", { action: "gain", layerId, gain, fadeSeconds: 0.3 }));

  function renderLayers() {
    const list = ctx.state?.layers ?? [];
    if (!list.length) {
      layers.replaceChildren(h("li", { class: "empty", "data-testid": "layers-empty", text: "No layers. Drop tracks here, or select tracks and press “+ Layer”." }));
      return;
    }
    // Keep the rows (and a slider being dragged) when only the gains changed.
    const current = new Map([...layers.querySelectorAll("li[data-layer-id]")].map((li) => [li.dataset.layerId, li]));
    replaceKeepingFocus(layers, list.map((layer) => {
      const li = current.get(String(layer.id)) ?? layerRow(layer);
      const slider = /** @type {HTMLInputElement} */ (li.querySelector("input"));
      if (document.activeElement !== slider) slider.value = String(positionOf(layer.gain));
      const mute = li.querySelector("[data-testid=layer-mute]");
      mute?.setAttribute("aria-pressed", String(layer.gain === 0 && mutedGains.has(layer.id)));
      return li;
    }));
  }

  function layerRow(layer) {
    const name = layer.title || `Track ${layer.trackId}`;
    const slider = h("input", {
      type: "range", min: 0, max: 1, step: 0.01, value: positionOf(layer.gain), "aria-label": `Gain of ${name}`, "data-testid": "layer-gain",
    });
    slider.addEventListener("input", () => sendGain(layer.id, Math.round(gainOf(Number(slider.value)) * 1000) / 1000));
    const mute = h("button", {
      type: "button", "data-testid": "layer-mute", "aria-pressed": "false", "aria-label": `Mute ${name}`, text: "Mute",
      onClick: () => {
        const now = ctx.state?.layers?.find((l) => l.id === layer.id)?.gain ?? 0;
        if (mutedGains.has(layer.id) && now === 0) {
          ctx.command("layer", { action: "gain", layerId: layer.id, gain: mutedGains.get(layer.id), fadeSeconds: 0.3 });
          mutedGains.delete(layer.id);
        } else {
          mutedGains.set(layer.id, now || 1);
          ctx.command("layer", { action: "gain", layerId: layer.id, gain: 0, fadeSeconds: 0.3 });
        }
      },
    });
    const remove = h("button", {
      type: "button", "data-testid": "layer-remove", "aria-label": `Remove ${name}`, text: "✕",
      onClick: () => ctx.command("layer", { action: "remove", layerId: layer.id }),
    });
    return h("li", { "data-layer-id": layer.id, "data-focus-key": layer.id, "data-testid": "layer" }, h("span", { class: "t", text: name }), slider, mute, remove);
  }

  function renderPads() {
    const scene = scenes.current();
    const list = scene?.pads ?? [];
    padsNote.textContent = scene
      ? (list.length ? "" : "This scene has no pads. Drop tracks here, or select tracks and press “+ Pad”.")
      : "Pads belong to a scene: switch to one (or save the stage as one) to use them.";
    replaceKeepingFocus(pads, list.map((pad, index) => {
      const track = scene.tracks?.find((t) => t.id === pad.trackId);
      const folder = scene.folders?.find((f) => f.id === pad.folderId);
      const missing = Boolean(track?.missing || folder?.missing);
      const label = pad.label || track?.title || folder?.name || "Pad";
      const fire = h("button", {
        type: "button", class: "pad", "data-testid": "pad", "data-index": index, "data-key": pad.key ?? "", disabled: missing,
        title: `${label}${pad.key ? ` (key ${pad.key.toUpperCase()})` : ""}`,
        "aria-keyshortcuts": pad.key ?? undefined,
        onClick: () => firePad({ index }),
      },
      h("span", { class: "pad-label", text: label }),
      missing ? h("span", { class: "warn small", text: "missing" }) : null,
      pad.key ? h("kbd", { text: pad.key.toUpperCase() }) : null);
      const edit = h("button", {
        type: "button", class: "menu-btn pad-menu", "data-testid": "pad-menu", "aria-label": `Edit pad ${label}`, text: "⋯",
        onClick: (e) => padMenu(/** @type {HTMLElement} */ (e.currentTarget), scene.pads, index, label),
      });
      return h("div", { class: "pad-cell", "data-focus-key": index }, fire, edit);
    }));
  }

  /** The pad menu: label, key, level, order, removal; each saves the scene's pads. */
  function padMenu(anchor, list, index, label) {
    const save = (pads) => scenes.savePads(pads);
    const replaced = (patch) => list.map((p, i) => (i === index ? { ...p, ...patch } : p));
    const swapped = (other) => {
      const pads = [...list];
      [pads[index], pads[other]] = [pads[other], pads[index]];
      return pads;
    };
    openMenu(anchor, [
      {
        label: "Rename…", testid: "pad-rename", action: async () => {
          const name = await askText({ title: "Pad label", label: "Label", value: label, confirm: "Rename" });
          if (name) save(replaced({ label: name }));
        },
      },
      {
        label: "Key…", testid: "pad-key", action: async () => {
          const key = await askText({ title: `Key for ${label}`, label: "A digit or a letter (not D, N or P)", value: list[index].key ?? "", confirm: "Set" });
          if (key) save(replaced({ key: key.toLowerCase() }));
        },
      },
      {
        label: "Level…", testid: "pad-gain", action: async () => {
          const percent = await askText({ title: `Level of ${label}`, label: "Level, 0–100 %", value: String(Math.round((list[index].gain ?? 1) * 100)), confirm: "Set" });
          const gain = Number(percent) / 100;
          if (percent && Number.isFinite(gain)) save(replaced({ gain: Math.min(1, Math.max(0, gain)) }));
        },
      },
      ...(index > 0 ? [{ label: "Move earlier", testid: "pad-earlier", action: () => save(swapped(index - 1)) }] : []),
      ...(index < list.length - 1 ? [{ label: "Move later", testid: "pad-later", action: () => save(swapped(index + 1)) }] : []),
      { label: "Remove", testid: "pad-remove", action: () => save(list.filter((_, i) => i !== index)) },
    ]);
  }

  /**
   * Fires a pad of the scene playing and flashes its button.
   * @param {{index: number} | {key: string}} which
   */
  async function firePad(which) {
    const scene = scenes.current();
    if (!scene) return false;
    const index = "index" in which ? which.index : scene.pads.findIndex((p) => p.key === which.key.toLowerCase());
    if (index < 0) return false;
    const button = pads.querySelector(`[data-index="${index}"]`);
    button?.classList.add("fired");
    setTimeout(() => button?.classList.remove("fired"), FLASH_MS);
    await ctx.command("pad", { index });
    return true;
  }

  async function addPads(trackIds) {
    const scene = scenes.current();
    if (!scene) {
      ctx.toast("Pads belong to a scene: switch to one first.");
      return;
    }
    await scenes.savePads([...scene.pads, ...trackIds.map((trackId) => ({ trackId }))]);
  }

  function render() {
    if (document.activeElement !== crossfade) crossfade.value = String(ctx.state?.crossfadeSeconds ?? 3);
    duck.setAttribute("aria-pressed", String(ducked()));
    duck.textContent = ducked() ? `Ducked ${Math.round(ctx.state.duckDb)} dB` : "Duck";
    renderLayers();
  }

  ctx.on("state", render);
  ctx.on("scene-loaded", renderPads);
  render();
  renderPads();
  return {
    firePad,
    addPads,
    /** For the keyboard: D down and up. */
    duckDown,
    duckUp,
    addLayers: (trackIds) => trackIds.forEach((trackId) => ctx.command("layer", { action: "add", trackId })),
  };
}

/**
 * Makes `el` accept tracks dragged from the track list.
 * @param {HTMLElement} el
 * @param {(ids: number[]) => void} onTracks
 */
function dropTarget(el, onTracks) {
  el.addEventListener("dragover", (e) => {
    if (!e.dataTransfer?.types.includes(TRACKS_MIME)) return;
    e.preventDefault();
    el.classList.add("drop-target");
  });
  el.addEventListener("dragleave", () => el.classList.remove("drop-target"));
  el.addEventListener("drop", (e) => {
    el.classList.remove("drop-target");
    const data = e.dataTransfer?.getData(TRACKS_MIME);
    if (!data) return;
    e.preventDefault();
    onTracks(JSON.parse(data));
  });
}

/** Calls `fn` with the last arguments once calls stop for a moment. */
function debounce(fn) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), GAIN_DEBOUNCE_MS);
  };
}
