/**
 * The admin page (`/admin`, the server's key): every room with its listeners and what it
 * costs (playing, rendering), its links and GM key; create, rename, rotate a key, delete.
 * The key comes from `?key=` or the device (the same place the dashboard keeps main's key).
 */

import { ApiError, createApi, extractKey } from "./api.js";
import { $, h } from "./dom.js";

const KEY_STORAGE = "bardcast.gmKey";
/** How often the list is read again (ms). */
const REFRESH_MS = 3000;

const ui = {
  banner: $("#banner"),
  keyGate: $("#key-gate"),
  keyForm: $("#key-form"),
  keyInput: /** @type {HTMLInputElement} */ ($("#key-input")),
  keyMessage: $("#key-message"),
  app: $("#app"),
  rooms: $("#rooms"),
  capacity: $("#capacity"),
  create: /** @type {HTMLFormElement} */ ($("#create")),
  createName: /** @type {HTMLInputElement} */ ($("#create-name")),
  createSlug: /** @type {HTMLInputElement} */ ($("#create-slug")),
  toast: $("#toast"),
};

const fromUrl = extractKey(location.href);
if (fromUrl.key) {
  localStorage.setItem(KEY_STORAGE, fromUrl.key);
  history.replaceState(history.state, "", fromUrl.cleanUrl);
}
const getKey = () => localStorage.getItem(KEY_STORAGE);
const api = createApi({ key: getKey });
let timer = null;

function toast(message) {
  ui.toast.textContent = message;
  ui.toast.hidden = false;
  setTimeout(() => { ui.toast.hidden = true; }, 4000);
}

/** Runs an admin action; a refused key opens the key form, other errors are shown. */
async function run(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) showKeyGate("The server refused this key: rooms need the server's key.");
    else toast(err?.message ?? String(err));
    return undefined;
  }
}

function showKeyGate(message) {
  clearInterval(timer);
  ui.app.hidden = true;
  ui.keyGate.hidden = false;
  if (message) ui.keyMessage.textContent = message;
  ui.keyInput.focus();
}

ui.keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(KEY_STORAGE, ui.keyInput.value.trim());
  open();
});

ui.create.addEventListener("submit", async (e) => {
  e.preventDefault();
  const room = { name: ui.createName.value };
  if (ui.createSlug.value.trim()) room.slug = ui.createSlug.value.trim();
  const made = await run(() => api.createRoom(room));
  if (!made) return;
  ui.create.reset();
  toast(`Room “${made.name}” is at ${made.listenUrl}`);
  await refresh();
});

/** One room's row. */
function roomRow(room) {
  const origin = location.origin;
  const gmLink = `${origin}${room.gmUrl}?key=${encodeURIComponent(room.gmKey ?? "")}`;
  const status = [
    `${room.listeners} listening`,
    room.playing ? `playing ${room.nowPlaying ?? ""}`.trim() : "silent",
    room.layers ? `${room.layers} layers` : null,
    room.rendering ? "rendering" : "idle",
  ].filter(Boolean).join(" · ");
  const rename = h("button", { type: "button", onClick: async () => {
    const name = prompt(`New name for “${room.name}”`, room.name);
    if (name && (await run(() => api.renameRoom(room.slug, name)))) await refresh();
  } }, "Rename");
  const rotate = h("button", { type: "button", onClick: async () => {
    if (!confirm(`A new GM key for “${room.name}”? The old one stops working at once.`)) return;
    if (await run(() => api.rotateRoomKey(room.slug))) await refresh();
  } }, "New key");
  const remove = h("button", { type: "button", class: "danger", disabled: room.slug === "main", onClick: async () => {
    if (!confirm(`Delete “${room.name}”? Its ${room.listeners} listeners are told and its stream stops.`)) return;
    await run(() => api.deleteRoom(room.slug));
    await refresh();
  } }, "Delete");
  return h("li", { class: "room", "data-testid": "room", "data-slug": room.slug },
    h("div", {}, h("strong", {}, room.name), " ", h("code", {}, room.slug)),
    h("div", { class: "muted small", "data-testid": "room-status" }, status),
    h("div", { class: "small" },
      h("a", { href: room.listenUrl, target: "_blank" }, `Listen: ${origin}${room.listenUrl}`), " · ",
      h("a", { href: gmLink, target: "_blank", "data-testid": "gm-link" }, "GM dashboard"), " · ",
      h("span", {}, "GM key "), h("code", { "data-testid": "gm-key" }, room.gmKey ?? "")),
    h("div", { class: "row" }, rename, rotate, remove));
}

async function refresh() {
  const list = await run(() => api.rooms());
  if (!list) return;
  ui.capacity.textContent = `${list.rooms.length} of ${list.maxRooms} rooms`;
  ui.rooms.replaceChildren(...list.rooms.map(roomRow));
}

async function open() {
  ui.keyGate.hidden = true;
  ui.app.hidden = false;
  await refresh();
  clearInterval(timer);
  if (!ui.app.hidden) timer = setInterval(refresh, REFRESH_MS);
}

if (getKey()) open();
else showKeyGate();
