/**
 * GM dashboard entry: GM key handling (localStorage, or ?key= in the URL,
 * which is then stripped from the address bar), the REST client, the control
 * socket (state, listeners, scan and cache progress), keyboard shortcuts,
 * and the shared Context the panels use.
 */
import { ApiError, createApi, extractKey } from "./api.js";
import { ClockOffset } from "./clock.js";
import { ControlClient, wsUrl } from "./control.js";
import { deviceName } from "./format.js";
import { $ } from "./dom.js";
import { here, showRoomName } from "./room.js";
import { createFolderTree } from "./gm/folders.js";
import { createTrackList } from "./gm/tracks.js";
import { createTransport } from "./gm/transport.js";
import { createQueue } from "./gm/queue.js";
import { createStatus } from "./gm/status.js";
import { createScenes } from "./gm/scenes.js";
import { createStage } from "./gm/stage.js";

/** Where this room's GM key is kept on the device: each room has its own (main keeps the one-room name). */
const KEY_STORAGE = here.slug && here.slug !== "main" ? `bardcast.gmKey.${here.slug}` : "bardcast.gmKey";
/** How long a toast stays up (ms). */
const TOAST_MS = 4000;

/**
 * What every panel gets.
 * @typedef {object} Context
 * @property {ReturnType<typeof createApi>} api
 * @property {object | null} state latest session state
 * @property {() => number} serverNow server time estimate (ms since epoch)
 * @property {<T>(fn: () => Promise<T>, success?: string) => Promise<T | undefined>} run
 *   runs an API call, shows failures (and `success` as a note); undefined on failure
 * @property {(name: string, body?: object) => Promise<object | undefined>} command a GM command; applies the returned state
 * @property {(type: string, fn: (detail: any) => void) => void} on
 * @property {(type: string, detail: any) => void} emit
 * @property {(message: string, kind?: "error" | "info") => void} toast
 */

const ui = {
  banner: $("#banner"),
  connection: $("#connection"),
  keyGate: $("#key-gate"),
  keyForm: $("#key-form"),
  keyInput: /** @type {HTMLInputElement} */ ($("#key-input")),
  keyMessage: $("#key-message"),
  keyChange: $("#key-change"),
  app: $("#app"),
  toast: $("#toast"),
  help: /** @type {HTMLDialogElement} */ ($("#help")),
};

const fromUrl = extractKey(location.href);
if (fromUrl.key) {
  localStorage.setItem(KEY_STORAGE, fromUrl.key);
  history.replaceState(history.state, "", fromUrl.cleanUrl);
}
const getKey = () => localStorage.getItem(KEY_STORAGE);

const now = () => performance.timeOrigin + performance.now();
const clock = new ClockOffset();
const bus = new EventTarget();
let toastTimer = null;

/** @type {Context} */
const ctx = {
  api: createApi({ key: getKey }),
  state: null,
  serverNow: () => (clock.ready ? clock.serverNow(now()) : Date.now()),
  async run(fn, success) {
    try {
      const result = await fn();
      if (success) ctx.toast(success, "info");
      return result;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 401 || err.status === 403) showKeyGate(err.status === 401 ? "The server wants a GM key." : "The server refused this GM key.");
      else if (err.status === 0) showBanner("Server unreachable — retrying by itself. Check that bardcast is running.");
      else ctx.toast(err.message);
      return undefined;
    }
  },
  async command(name, body) {
    const state = await ctx.run(() => ctx.api.command(name, body));
    if (state) setState(state);
    return state;
  },
  on: (type, fn) => bus.addEventListener(type, (e) => fn(/** @type {CustomEvent} */ (e).detail)),
  emit: (type, detail) => bus.dispatchEvent(new CustomEvent(type, { detail })),
  toast(message, kind = "error") {
    ui.toast.textContent = message;
    ui.toast.dataset.kind = kind;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { ui.toast.hidden = true; }, TOAST_MS);
  },
};

function setState(state) {
  ctx.state = state;
  ctx.emit("state", state);
}

/** @param {string | null} message */
function showBanner(message) {
  ui.banner.hidden = !message;
  ui.banner.textContent = message ?? "";
}

/** @param {string} [message] */
function showKeyGate(message) {
  control?.stop();
  ui.app.hidden = true;
  ui.keyGate.hidden = false;
  if (message) ui.keyMessage.textContent = message;
  ui.keyInput.value = "";
  ui.keyInput.focus();
}

const folders = createFolderTree(ctx, $("#folders"));
const tracks = createTrackList(ctx, $("#tracks"), folders);
const transport = createTransport(ctx, $("#transport"));
createQueue(ctx, $("#queue"));
const scenes = createScenes(ctx, $("#scenes"));
const stage = createStage(ctx, $("#stage"), scenes);
ctx.on("add-layers", (ids) => stage.addLayers(ids));
ctx.on("add-pads", (ids) => stage.addPads(ids));
const status = createStatus(ctx, { listeners: $("#listeners"), library: $("#library") });
ctx.on("library-changed", () => {
  folders.load();
  tracks.load();
});

/** @type {ControlClient | null} */
let control = null;

const CONNECTION_LABELS = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", stopped: "Offline" };

function startSocket() {
  control = new ControlClient({
    url: wsUrl(location, here.socket),
    WebSocket,
    clock,
    now,
    hello: () => ({ role: "gm", key: getKey(), device: deviceName(navigator.userAgent, navigator.maxTouchPoints) }),
    onState: setState,
    onMessage(msg) {
      if (msg.type === "listeners") ctx.emit("listeners", msg.listeners ?? []);
      else if (msg.type === "scan") ctx.emit("scan", msg.status ?? {});
      else if (msg.type === "cache") ctx.emit("cache", msg.status ?? {});
      else if (msg.type === "bye" && msg.reason === "room deleted") {
        control.stop();
        showBanner("This room was deleted by the admin.");
      }
      else if (msg.type === "error") {
        if (msg.code === "unauthorized" || msg.code === "forbidden") showKeyGate("The server refused this GM key.");
        else ctx.toast(msg.message ?? msg.code);
      }
    },
    onStatus(s) {
      ui.connection.textContent = CONNECTION_LABELS[s] ?? s;
      ui.connection.dataset.state = s;
      if (s === "reconnecting") showBanner("Server unreachable — retrying by itself. Check that bardcast is running.");
      if (s === "open") {
        showBanner(null);
        refreshAll();
      }
    },
  });
  control.start();
}

window.addEventListener("online", () => control?.retryNow());

/** Reloads everything over REST (first open and after a reconnect). */
async function refreshAll() {
  const state = await ctx.run(() => ctx.api.session());
  if (state) setState(state);
  await Promise.all([folders.load(), tracks.load(), status.refresh(), scenes.load()]);
}

function openDashboard() {
  ui.keyGate.hidden = true;
  ui.app.hidden = false;
  startSocket();
  refreshAll();
}

ui.keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  openDashboard();
});
ui.keyChange.addEventListener("click", () => showKeyGate("Enter the GM key."));
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") control?.resync();
});

$("#help-open").addEventListener("click", () => ui.help.showModal());
$("#help-close").addEventListener("click", () => ui.help.close());

/** Fields where keys type text, so no shortcut applies; a focused checkbox or slider still lets pad and scene keys through. */
const TYPING = "textarea, select, [contenteditable='true'], input:not([type=checkbox]):not([type=radio]):not([type=range])";
/** Keys that act on a focused control (a button, a row, a slider) rather than on the room. */
const CONTROL_KEYS = new Set([" ", "Enter", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"]);

document.addEventListener("keydown", (e) => {
  const target = /** @type {HTMLElement} */ (e.target);
  if (e.ctrlKey || e.metaKey || e.altKey || ui.app.hidden || document.querySelector("dialog[open]")) return;
  if (target.closest(TYPING)) return;
  if (CONTROL_KEYS.has(e.key) && target.closest("button, a[href], input, [tabindex], [role]")) return;
  const scene = /^F([1-9]|1[0-2])$/.exec(e.key);
  const shifted = e.shiftKey && /^Digit[1-9]$/.test(e.code) ? Number(e.code.slice(5)) : 0;
  if (scene || shifted) {
    if (scenes.switchAt((scene ? Number(scene[1]) : shifted) - 1)) e.preventDefault();
    return;
  }
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (key === "d") {
    e.preventDefault();
    if (!e.repeat) stage.duckDown();
    return;
  }
  const actions = {
    " ": () => transport.togglePause(),
    n: () => ctx.command("next"),
    p: () => ctx.command("previous"),
    "/": () => tracks.focusSearch(),
    "?": () => ui.help.showModal(),
    ArrowLeft: () => transport.seekBy(-10),
    ArrowRight: () => transport.seekBy(10),
  };
  const action = actions[key];
  if (action) {
    e.preventDefault();
    action();
    return;
  }
  const pad = scenes.current()?.pads?.find((p) => p.key === key);
  if (pad && !e.repeat) {
    e.preventDefault();
    stage.firePad({ key });
  }
});
document.addEventListener("keyup", (e) => {
  if (e.key.toLowerCase() === "d") stage.duckUp();
});

showRoomName($(".brand"));
if (getKey()) openDashboard();
else showKeyGate();
