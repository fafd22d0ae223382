/**
 * This device's speaker delay: how late its output sounds after the page plays it (ms), as
 * with Bluetooth headphones or a wireless speaker (100–300 ms), which no page can measure.
 * The page plays that much ahead of the room, so its sound leaves the speaker with the
 * table's. Remembered on the device; `?outputDelayMs=` in the address sets it for this
 * visit (kiosks, tests) without remembering it.
 */

const STORAGE_KEY = "bardcast.outputDelayMs";
/** The largest speaker delay taken (ms): more is a mistake, not a speaker. */
export const MAX_OUTPUT_DELAY_MS = 1000;

/** A speaker delay from user input (ms): a whole number in 0..MAX_OUTPUT_DELAY_MS; null when not a number. */
export function parseOutputDelay(value) {
  if (value === null || value === undefined || String(value).trim() === "") return null;
  const ms = Number(value);
  if (!Number.isFinite(ms)) return null;
  return Math.round(Math.min(MAX_OUTPUT_DELAY_MS, Math.max(0, ms)));
}

/**
 * The speaker delay to start with (ms): the address's `outputDelayMs`, else the one
 * remembered on this device, else 0.
 * @param {string} search `location.search`
 * @param {Storage | undefined} storage
 */
export function initialOutputDelay(search, storage = globalThis.localStorage) {
  const fromAddress = parseOutputDelay(new URLSearchParams(search).get("outputDelayMs"));
  if (fromAddress !== null) return { ms: fromAddress, fromAddress: true };
  let stored = null;
  try {
    stored = parseOutputDelay(storage?.getItem(STORAGE_KEY));
  } catch {
    // storage refused (private mode): nothing remembered
  }
  return { ms: stored ?? 0, fromAddress: false };
}

/** Remembers the speaker delay on this device. */
export function storeOutputDelay(ms, storage = globalThis.localStorage) {
  try {
    storage?.setItem(STORAGE_KEY, String(ms));
  } catch {
    // private mode: applied, not remembered
  }
}

/**
 * A reported output latency below this (ms) is the device's own output buffer (10–40 ms on
 * desktops and phones; headless Chromium says 32), the same for most listeners: only a
 * wireless speaker's is worth offering.
 */
const SUGGEST_FROM_MS = 60;

/**
 * The speaker delay to offer from the browser's `AudioContext.outputLatency` (s), or null
 * when it reports nothing useful or the delay set is already about that.
 * @param {number | undefined} outputLatency seconds
 * @param {number} currentMs the speaker delay set now
 */
export function suggestedOutputDelay(outputLatency, currentMs) {
  const ms = parseOutputDelay(Number.isFinite(outputLatency) ? outputLatency * 1000 : null);
  if (ms === null || ms < SUGGEST_FROM_MS || Math.abs(ms - currentMs) < 10) return null;
  return ms;
}
