/** Display helpers shared by the listener page and the dashboard; pure, no DOM. */

/**
 * Seconds as m:ss, or h:mm:ss from one hour; "–:––" for unknown values.
 * @param {number | null | undefined} seconds
 */
export function formatTime(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–:––";
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * Where listeners are in the current track (seconds), at server time
 * `serverNow` (ms since epoch). Listeners play the audio whose PDT is
 * serverNow - playbackDelayMs; `position` is the track position at PDT
 * `effectiveAt`, and it advances with time unless paused or stopped.
 * Before effectiveAt the old state is still playing; this returns `position`.
 * @param {object} state session state from the server
 * @param {number} serverNow ms since epoch
 * @returns {number | null} seconds, within [0, duration]; null when nothing plays
 */
export function positionAt(state, serverNow) {
  const np = state?.nowPlaying;
  if (!np) return null;
  const start = Date.parse(state.effectiveAt);
  let position = np.position ?? 0;
  if (!state.paused && !state.stopped && Number.isFinite(start)) {
    position += Math.max(0, serverNow - (state.playbackDelayMs ?? 0) - start) / 1000;
  }
  const duration = Number.isFinite(np.duration) && np.duration > 0 ? np.duration : Infinity;
  return Math.min(Math.max(0, position), duration);
}

/**
 * Milliseconds until listeners hear a state (its effectiveAt plus the
 * playback delay), at server time `serverNow`; 0 once audible.
 * @param {object} state
 * @param {number} serverNow ms since epoch
 */
export function msUntilAudible(state, serverNow) {
  const start = Date.parse(state?.effectiveAt);
  if (!Number.isFinite(start)) return 0;
  return Math.max(0, start + (state.playbackDelayMs ?? 0) - serverNow);
}

/**
 * A short device label such as "Chrome on Android" from a user-agent string.
 * iPadOS claims to be a Mac; pass navigator.maxTouchPoints to tell them apart.
 * @param {string} ua
 * @param {number} [maxTouchPoints=0]
 */
export function deviceName(ua, maxTouchPoints = 0) {
  const os =
    /iPhone|iPod/.test(ua) ? "iPhone"
    : /iPad/.test(ua) || (/Macintosh/.test(ua) && maxTouchPoints > 1) ? "iPad"
    : /Android/.test(ua) ? "Android"
    : /Windows/.test(ua) ? "Windows"
    : /CrOS/.test(ua) ? "ChromeOS"
    : /Macintosh|Mac OS X/.test(ua) ? "macOS"
    : /Linux/.test(ua) ? "Linux"
    : "unknown OS";
  const browser =
    /Edg(e|A|iOS)?\//.test(ua) ? "Edge"
    : /Firefox\/|FxiOS\//.test(ua) ? "Firefox"
    : /OPR\//.test(ua) ? "Opera"
    : /SamsungBrowser\//.test(ua) ? "Samsung Internet"
    : /Chrome\/|CriOS\/|Chromium\//.test(ua) ? "Chrome"
    : /Safari\//.test(ua) ? "Safari"
    : "Browser";
  return `${browser} on ${os}`;
}

/**
 * Signed milliseconds with one decimal, e.g. "+3.2 ms"; "–" when unknown.
 * @param {number | null | undefined} ms
 */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  const rounded = Math.round(ms * 10) / 10;
  return `${rounded > 0 ? "+" : ""}${rounded.toFixed(1)} ms`;
}

/**
 * Bytes in binary units, e.g. "1.5 GiB".
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
