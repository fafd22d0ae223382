/**
 * Listener page: connects to the control socket at load (so now-playing and
 * the connection show at once), starts audio on "Join" (the gesture browsers
 * require), keeps it in sync every SYNC_TICK_MS and reports to the server.
 */
import { ClockOffset } from "./clock.js";
import { NATIVE_SYNC_OPTIONS, SyncController, delayAt } from "./sync.js";
import { ControlClient, wsUrl } from "./control.js";
import { ClockProbe } from "./probe.js";
import { ENGINE_CHOICES, LiveMedia, enginePreference, loadHls, playRejection, storeEnginePreference } from "./media.js";
import { Volume } from "./volume.js";
import { initialOutputDelay, parseOutputDelay, storeOutputDelay, suggestedOutputDelay } from "./speaker.js";
import { coverUrl } from "./api.js";
import { deviceName, formatMs } from "./format.js";
import { $, h } from "./dom.js";
import { here, pageName, showRoomName } from "./room.js";

/** Sync controller period (ms). */
const SYNC_TICK_MS = 100;
/** The sync readout changes at most this often (ms): readable, and each change costs a repaint. */
const SYNC_DISPLAY_MS = 500;
/** Playback delay D (ms) assumed until the server announces it. */
const DEFAULT_DELAY_MS = 1000;
/** Playing this long (ms) without a known position means this browser cannot be synced. */
const NO_POSITION_MS = 10_000;
/** Where the landing error of a seek, learned on this device, is kept between sessions. */
const SEEK_BIAS_KEY = "bardcast.seekBias";
const STRUGGLING_MESSAGE = "This device can't keep up — playing, may be out of step";
const UNSYNCED_MESSAGE = "This browser cannot be kept in sync with the table: you hear the music, "
  + "but not necessarily at the same moment as the others. A current Chrome, Firefox or Safari can.";

const ui = {
  connection: $("#connection"),
  banner: $("#banner"),
  notice: $("#notice"),
  cover: /** @type {HTMLImageElement} */ ($("#cover")),
  coverPlaceholder: $("#cover-placeholder"),
  title: $("#title"),
  artist: $("#artist"),
  playStatus: $("#play-status"),
  ambience: $("#ambience"),
  join: /** @type {HTMLButtonElement} */ ($("#join")),
  volume: /** @type {HTMLInputElement} */ ($("#volume")),
  outputDelay: /** @type {HTMLInputElement} */ ($("#output-delay")),
  outputHint: $("#output-hint"),
  tickHint: $("#tick-hint"),
  engine: /** @type {HTMLSelectElement} */ ($("#engine")),
  sync: $("#sync"),
};
const audio = /** @type {HTMLAudioElement} */ ($("#audio"));

/** Local monotonic clock (ms, epoch-based): unaffected by system clock steps. */
const now = () => performance.timeOrigin + performance.now();
const device = deviceName(navigator.userAgent, navigator.maxTouchPoints);
const clock = new ClockOffset();
/** Replaced once the engine is known (the browser's own HLS gets NATIVE_SYNC_OPTIONS). */
let sync = new SyncController({ seekBias: storedSeekBias() });
let savedSeekBias = sync.seekBias;
const volume = new Volume(audio);
/** The room's name, once known (a room's page only; see showRoomName). */
let roomName = null;
showRoomName($(".brand")).then((name) => { roomName = name; });

/** This device's speaker delay (ms, see speaker.js): the page plays that much ahead of the room. */
let outputDelayMs = initialOutputDelay(location.search).ms;
/** What the browser reports as its output latency (ms, AudioContext.outputLatency), null if it does not. */
let outputLatencyMs = null;
const engineChoice = enginePreference(location.search);
let media = null;
/** Latest session state from the server, or null. */
let session = null;
let joined = false;
let lastTrackId = null;
/** Local ms since when the audio has played without a known position, or null. */
let positionUnknownSince = null;
/**
 * The most the newest buffered audio lagged the server's clock since the last report (ms),
 * from every tick: what D has to cover, sawtooth peaks included. Null until measured.
 */
let lateSinceReport = null;
/** The audio stalled for want of data (not this page's own seek) since the last report. */
let starvedSinceReport = false;
/**
 * What the banner says, by source; it shows the first that is set. Playback trouble
 * clears once the audio plays; connection trouble once the socket is back.
 */
const trouble = { connection: null, playback: null, server: null };

const control = new ControlClient({
  url: wsUrl(location, here.socket),
  WebSocket,
  clock,
  now,
  hello: () => ({ role: "listener", device }),
  onState: showState,
  onMessage: (msg) => {
    if (msg.type === "error") showTrouble("server", msg.message ?? msg.code);
    if (msg.type === "bye" && msg.reason === "room deleted") {
      // Nothing to come back to: stop for good, and say why.
      control.stop();
      audio.pause();
      ui.join.hidden = true;
      showTrouble("server", "This room was closed. Ask your GM for the new link.");
    }
  },
  onStatus: (status) => {
    if (status === "open") probe.start();
    else probe.stop();
    showConnection(status);
  },
  report: () => ({
    syncError: sync.error === null ? null : Math.round(sync.error * 10) / 10,
    delayMs: Math.round(roomDelay(clock.ready ? clock.serverNow(now()) : null).delayMs * 10) / 10,
    lateMs: takeLateness(),
    starved: takeStarved(),
    buffer: media && joined ? Math.round(media.bufferAhead() * 100) / 100 : 0,
    state: playState(),
    struggling: sync.struggling,
    locked: sync.locked,
    outputDelayMs,
    device,
    engine: media?.engine ?? null,
    correction: correction(),
  }),
});

/** Clock samples timed by the network stack, which a busy main thread cannot bias (probe.js). */
const probe = new ClockProbe({
  url: new URL("/api/clock", location.href).href,
  clock,
  fetch: (url) => fetch(url, { cache: "no-store" }),
  observeResources: (onEntries) => {
    new PerformanceObserver((list) => onEntries(list.getEntries())).observe({ type: "resource" });
  },
  timeOrigin: () => performance.timeOrigin,
});

/** Checks the clock now, by both the socket's pings and the probes. */
function measureClock() {
  control.measure();
  probe.burst();
}

window.bardcast = {
  /** Smoothed sync error (ms, positive = ahead), null while unknown. */
  get syncError() { return sync.error; },
  /** Server clock minus local clock (ms), null before the first pong. */
  get offset() { return clock.offset; },
  /** "playing" | "paused" | "stalled" | "idle" */
  get state() { return playState(); },
  /** Control socket status. */
  get connection() { return control.status; },
  get rtt() { return clock.lastRtt(); },
  /** How far off the server clock estimate can be (ms). */
  get clockUncertainty() { return clock.uncertainty(); },
  get playbackRate() { return audio.playbackRate; },
  /** Sync controller counters: {rateChanges, seeks, acquireSeeks, stalls, unsettledSeeks, settledSeeks, struggles}. */
  get syncStats() { return { ...sync.stats }; },
  /** This device cannot keep up (keeps stalling, or its seeks do not settle): it plays on, maybe out of step. */
  get struggling() { return sync.struggling; },
  /** Audio buffered ahead of the play head (s), 0 before Join. */
  get bufferAhead() { return media && joined ? media.bufferAhead() : 0; },
  /** How the stream plays: "hls" | "native" | "unsynced" | "none" (null while loading). */
  get mode() { return media?.mode ?? null; },
  /** The engine as reported: "hlsjs-mse" | "hlsjs-mms" | "native" | "unsynced" | "none" (null while loading). */
  get engine() { return media?.engine ?? null; },
  /** The controller is done joining. */
  get locked() { return sync.locked; },
  /** How this page corrects a sync error: "rate", "seek" (rate changes do nothing here) or "none". */
  get correction() { return correction(); },
  /** The control socket's id for this page, null before `welcome`. */
  get clientId() { return control.clientId; },
  get device() { return device; },
  get outputDelayMs() { return outputDelayMs; },
  /** AudioContext.outputLatency (ms) where the browser reports it after Join, else null. */
  get outputLatencyMs() { return outputLatencyMs; },
  /** Starts playback, as the Join button does (call inside a user gesture). */
  join,
};

/** How this page corrects a sync error, as reported: "rate", "seek" (rate changes do nothing here) or "none". */
function correction() {
  if (!media?.syncable) return "none";
  return sync.rateWorks ? "rate" : "seek";
}

function storedSeekBias() {
  try {
    const value = Number(localStorage.getItem(SEEK_BIAS_KEY));
    return Number.isFinite(value) && Math.abs(value) <= 300 ? value : 0;
  } catch {
    return 0; // storage disabled
  }
}

/** Keeps the learned landing error of seeks for the next session (it is this device's). */
function saveSeekBias() {
  if (!sync.locked || Math.abs(sync.seekBias - savedSeekBias) < 1) return;
  savedSeekBias = sync.seekBias;
  try {
    localStorage.setItem(SEEK_BIAS_KEY, String(Math.round(sync.seekBias)));
  } catch {
    // storage disabled: learned again next time
  }
}

/** What this listener is doing, as reported to the server. */
function playState() {
  if (!joined) return "idle";
  if (audio.paused) return "paused";
  if (audio.seeking || audio.readyState < HTMLMediaElement.HAVE_FUTURE_DATA) return "stalled";
  return "playing";
}

/** D once the room's latest step of it has ended (ms). */
function delayMs() {
  return session?.playbackDelayMs ?? DEFAULT_DELAY_MS;
}

/** How far behind the wall clock this page plays (ms) when the room's D is `roomDelayMs`: that less the speaker delay. */
function ownDelayMs(roomDelayMs = delayMs()) {
  return Math.max(0, roomDelayMs - outputDelayMs);
}

/** The room's D at server time `serverNow` (null: unknown), inside a step's ramp too, and how fast it moves (see `delayAt`). */
function roomDelay(serverNow) {
  return delayAt(delayMs(), session?.delay?.ramp, serverNow);
}

function join() {
  // Everything up to play() runs inside the click: iOS needs the gesture.
  if (!media.supported) {
    showTrouble("playback", "This browser cannot play the stream. Try a current Chrome, Firefox or Safari.");
    return;
  }
  if (!joined) {
    media.start(ownDelayMs() / 1000);
    offerOutputLatency();
  }
  if (!media.syncable) showNotice(UNSYNCED_MESSAGE);
  joined = true;
  audio.play().then(() => showTrouble("playback", null), (err) => {
    const said = playRejection(err);
    if (!said) return; // a load interrupted play(): the element plays once data is there
    showTrouble("playback", said.message);
    if (said.retry && audio.paused) {
      ui.join.hidden = false;
      ui.join.textContent = "Join the table";
    }
  });
  ui.join.hidden = true;
}

function tick() {
  const local = now();
  const state = playState();
  const playing = state === "playing" && session !== null;
  const pdt = playing ? media.playingPdt() : null;
  const serverNow = clock.ready ? clock.serverNow(local) : null;
  const delay = roomDelay(serverNow);
  const stallsBefore = sync.stats.stalls;
  const action = sync.update({
    now: local, playingPdt: pdt, serverNow, delayMs: ownDelayMs(delay.delayMs), delaySlope: delay.slope, uncertaintyMs: clock.uncertainty(),
    // A stall (waiting for data, or seeking) is not a sync error: the controller tells it from a pause.
    stalled: state === "stalled",
  });
  // A stall with next to nothing buffered: parts came later than D allowed, which the server
  // must hear of even when the report after it finds this page playing again.
  if (sync.stats.stalls > stallsBefore && media.bufferAhead() < 0.1) starvedSinceReport = true;
  if (pdt !== null && serverNow !== null) {
    // How old the newest buffered audio is: it runs out when that age reaches D (less the
    // speaker delay this page plays ahead by, so the room's D covers that too).
    const late = serverNow - pdt - media.bufferAhead() * 1000 + outputDelayMs;
    lateSinceReport = Math.max(lateSinceReport ?? -Infinity, late);
  }
  watchPosition(playing, pdt, local);
  saveSeekBias();
  if (action.verifyClock) measureClock();
  if (action.seekTo !== undefined && pdt !== null) media.seekBy((action.seekTo - pdt) / 1000);
  if (action.playbackRate !== undefined) setRate(action.playbackRate, local);
  showSync(action.error, action.struggling);
}

/** Sets the element's rate; one it throws at or reads back otherwise is refused, and the controller turns to seeks. */
function setRate(rate, local) {
  try {
    audio.playbackRate = rate;
    if (Math.abs(audio.playbackRate - rate) < 1e-3) return;
  } catch {
    // refused
  }
  sync.rateRefused(local);
  try {
    audio.playbackRate = sync.rate;
  } catch {
    // nothing more to do
  }
}

/** Whether the audio starved since the last report, and a fresh start. */
function takeStarved() {
  const starved = starvedSinceReport;
  starvedSinceReport = false;
  return starved;
}

/** The lateness measured since the last report (ms, rounded), and a fresh start. */
function takeLateness() {
  const late = lateSinceReport;
  lateSinceReport = null;
  return late === null ? null : Math.round(late);
}

/** Audio that plays on and on without a known position cannot be synced: say so, once. */
function watchPosition(playing, pdt, local) {
  if (!playing || pdt !== null) {
    positionUnknownSince = null;
    return;
  }
  positionUnknownSince ??= local;
  if (local - positionUnknownSince >= NO_POSITION_MS) showNotice(UNSYNCED_MESSAGE);
}

function showState(state) {
  const delayChanged = session?.playbackDelayMs !== state.playbackDelayMs;
  session = state;
  if (delayChanged && media) media.setDelay(ownDelayMs() / 1000);
  const np = state.nowPlaying;
  ui.title.textContent = np ? np.title || "Untitled" : "Nothing playing";
  ui.artist.textContent = np ? [np.artist, np.album].filter(Boolean).join(" — ") : "";
  ui.playStatus.textContent = state.error ? state.error : !np || state.stopped ? "Silence" : state.paused ? "Paused" : "";
  const layers = (state.layers ?? []).map((l) => l.title || "Untitled");
  ui.ambience.hidden = layers.length === 0;
  ui.ambience.textContent = layers.length ? `Ambience: ${layers.join(" · ")}` : "";
  ui.tickHint.hidden = !state.tick;
  const trackId = np?.trackId ?? null;
  if (trackId !== lastTrackId) {
    lastTrackId = trackId;
    const cover = np?.hasCover ? coverUrl(trackId) : null;
    ui.cover.hidden = !cover;
    ui.coverPlaceholder.hidden = Boolean(cover);
    if (cover) ui.cover.src = cover;
    else ui.cover.removeAttribute("src");
    updateMediaSession(np, cover);
  }
}

function updateMediaSession(np, cover) {
  if (!("mediaSession" in navigator) || typeof MediaMetadata === "undefined") return;
  navigator.mediaSession.metadata = np
    ? new MediaMetadata({
        title: np.title ?? "",
        artist: np.artist ?? "",
        album: [np.album, roomName].filter(Boolean).join(" · "),
        artwork: cover ? [{ src: new URL(cover, location.href).href }] : [],
      })
    : null;
}

// The lock screen's play and pause act on this device only: the room plays on, and a
// resumed page seeks back to the table's moment.
for (const [action, handler] of [["play", () => audio.play().catch(() => {})], ["pause", () => audio.pause()]]) {
  try {
    navigator.mediaSession?.setActionHandler(action, handler);
  } catch {
    // an action this browser does not offer
  }
}

const CONNECTION_LABELS = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", stopped: "Offline" };

function showConnection(status) {
  ui.connection.textContent = CONNECTION_LABELS[status] ?? status;
  ui.connection.dataset.state = status;
  if (status === "open") {
    showTrouble("connection", null);
    // Back after a loss: if the audio got stuck meanwhile, reload the stream.
    if (joined && playState() === "stalled") media.recover();
  } else if (status === "reconnecting") {
    showTrouble("connection", "Server unreachable — reconnecting by itself. The music resumes in sync when it is back.");
  }
}

let syncShownAt = -Infinity;

function showSync(error, struggling) {
  const t = now();
  if (t - syncShownAt < SYNC_DISPLAY_MS) return;
  syncShownAt = t;
  const known = joined && error !== null;
  const unsynced = joined && !ui.notice.hidden;
  // Honest about a device that cannot keep up: it plays on rather than seeking in a loop.
  const behind = joined && struggling;
  const text = behind ? STRUGGLING_MESSAGE : known ? formatMs(error) : unsynced ? "not synced" : joined ? "measuring…" : "–";
  const size = Math.abs(error ?? 0);
  const quality = behind ? "poor" : !known ? "unknown" : size < 10 ? "good" : size < 50 ? "fair" : "poor";
  if (ui.sync.textContent !== text) ui.sync.textContent = text;
  if (ui.sync.dataset.quality !== quality) ui.sync.dataset.quality = quality;
}

/**
 * Sets or clears (null) the trouble from one source and shows the banner.
 * @param {"connection" | "playback" | "server"} source
 * @param {string | null} message
 */
function showTrouble(source, message) {
  trouble[source] = message;
  const shown = trouble.connection ?? trouble.playback ?? trouble.server;
  ui.banner.hidden = !shown;
  ui.banner.textContent = shown ?? "";
}

/** A lasting fact about this browser (it cannot be synced), apart from passing trouble. */
function showNotice(message) {
  if (ui.notice.textContent === message && !ui.notice.hidden) return;
  ui.notice.textContent = message;
  ui.notice.hidden = false;
}

ui.volume.value = String(volume.personal);
// Where the page cannot set the level (iOS), the hardware buttons do.
ui.volume.closest("label").hidden = !volume.adjustable;
ui.volume.addEventListener("input", () => volume.setPersonal(Number(ui.volume.value)));
ui.outputDelay.value = String(outputDelayMs);
ui.outputDelay.addEventListener("change", () => setOutputDelay(parseOutputDelay(ui.outputDelay.value) ?? outputDelayMs));

/** Sets, shows and remembers this device's speaker delay (ms); the controller moves there. */
function setOutputDelay(ms) {
  ui.outputDelay.value = String(ms);
  ui.outputHint.hidden = true;
  if (ms === outputDelayMs) return;
  outputDelayMs = ms;
  storeOutputDelay(ms);
  media?.setDelay(ownDelayMs() / 1000);
}

/**
 * Where the browser reports an output latency a wireless speaker would have
 * (AudioContext.outputLatency: Chrome, Bluetooth included on some phones), offers it as the
 * speaker delay. Called inside Join's click, as an AudioContext needs a gesture; the
 * context plays nothing and is closed.
 */
function offerOutputLatency() {
  const Context = window.AudioContext;
  if (!Context || !("outputLatency" in Context.prototype)) return;
  let context;
  try {
    context = new Context();
  } catch {
    return;
  }
  // The figure is known once the context runs.
  setTimeout(() => {
    if (Number.isFinite(context.outputLatency)) outputLatencyMs = Math.round(context.outputLatency * 1000);
    const ms = suggestedOutputDelay(context.outputLatency, outputDelayMs);
    context.close().catch(() => {});
    if (ms === null) return;
    ui.outputHint.replaceChildren(`This browser reports ${ms} ms. `,
      h("button", { type: "button", class: "link", text: "Use it", onClick: () => setOutputDelay(ms) }));
    ui.outputHint.hidden = false;
  }, 1000);
}
ui.join.addEventListener("click", join);
ui.cover.addEventListener("error", () => {
  ui.cover.hidden = true;
  ui.coverPlaceholder.hidden = false;
});
audio.addEventListener("pause", () => {
  // Paused from outside (lock screen, call, headphones unplugged): offer to resume.
  if (!joined) return;
  ui.join.hidden = false;
  ui.join.textContent = "Resume";
});
audio.addEventListener("play", () => { ui.join.hidden = true; });
audio.addEventListener("playing", () => {
  // The audio runs: whatever went wrong on the way (a blocked play(), a stream retry, a
  // server error message) is over. Connection trouble stays until the socket is back.
  showTrouble("playback", null);
  showTrouble("server", null);
});
/** Back from the background, a lock screen or the back-forward cache: re-measure the clock and re-sync now. */
function resume() {
  control.retryNow();
  control.resync();
  probe.burst();
}
window.addEventListener("online", resume);
window.addEventListener("pageshow", (e) => { if (e.persisted) resume(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") resume();
});

ui.join.disabled = true;
ui.join.textContent = "Loading…";
// The device check (`/check`) is this page with a timed run that watches it.
if (pageName(location.pathname) === "check") import("./check-page.js");
ui.engine.value = engineChoice;
ui.engine.addEventListener("change", () => {
  if (!ENGINE_CHOICES.includes(ui.engine.value)) return;
  storeEnginePreference(ui.engine.value);
  // The engine is chosen at load; an address that names one would override the new choice.
  const url = new URL(location.href);
  url.searchParams.delete("engine");
  location.replace(url.href);
});
media = new LiveMedia(audio, await loadHls(), (message) => showTrouble("playback", message), engineChoice);
if (media.mode === "native") sync = new SyncController({ seekBias: storedSeekBias(), ...NATIVE_SYNC_OPTIONS });
savedSeekBias = sync.seekBias;
ui.engine.title = `Playing with ${media.engine}`;
ui.join.disabled = false;
ui.join.textContent = "Join the table";
control.start();
setInterval(tick, SYNC_TICK_MS);
window.dispatchEvent(new Event("bardcast:ready"));
