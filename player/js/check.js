/**
 * The device check (`/check`), pure: no DOM, no timers. The page feeds it a tick every
 * 100 ms while the listener page plays, and the visibility changes; at the end it gives the
 * report the server keeps (`POST /api/reports`, see src/device_check.rs) and the GM sees.
 */

/** Sync error p95 (ms) within which a device is in step with the table. */
export const GOOD_P95_MS = 10;
/** Beyond this p95 (ms) a device is audibly out of step. */
export const FAIR_P95_MS = 50;
/** Hidden this long (ms) or more, whether the audio went on is worth saying. */
const HIDDEN_ENOUGH_MS = 2000;
/** Audio that advanced at least this share of the hidden time kept playing. */
const ADVANCED_SHARE = 0.5;

/** The checks' counters that come from the sync controller, at the start and end. */
const COUNTERS = ["stalls", "seeks", "rateChanges", "rateIgnored"];

export class CheckRecorder {
  /**
   * @param {object} start
   * @param {number} start.now local ms when the check starts
   * @param {Record<string, number>} start.stats the sync controller's counters now
   */
  constructor({ now, stats }) {
    this.startedAt = now;
    this.endedAt = now;
    this.firstStats = { ...stats };
    this.lastStats = { ...stats };
    /** |sync error| readings while locked (ms). */
    this.errors = [];
    this.played = false;
    this.hiddenMs = 0;
    /** @type {{at: number, mediaTime: number} | null} */
    this.hiddenFrom = null;
    /** @type {boolean | null} */
    this.advancedWhileHidden = null;
    this.struggled = false;
  }

  /**
   * One tick of the listener page.
   * @param {object} t
   * @param {number} t.now local ms
   * @param {string} t.state "playing" | "paused" | "stalled" | "idle"
   * @param {number | null} t.syncError smoothed sync error (ms), null while unknown
   * @param {boolean} t.locked the controller is done joining
   * @param {boolean} t.struggling the page cannot keep up
   * @param {Record<string, number>} t.stats the sync controller's counters
   */
  tick({ now, state, syncError, locked, struggling, stats }) {
    this.endedAt = now;
    this.lastStats = { ...stats };
    if (state === "playing") this.played = true;
    if (struggling) this.struggled = true;
    if (state === "playing" && locked && syncError !== null && Number.isFinite(syncError)) this.errors.push(Math.abs(syncError));
  }

  /**
   * The page was hidden (true) or shown again (false).
   * @param {boolean} hidden
   * @param {number} now local ms
   * @param {number} mediaTime the element's currentTime (s)
   */
  visibility(hidden, now, mediaTime) {
    if (hidden) {
      this.hiddenFrom ??= { at: now, mediaTime };
      return;
    }
    if (!this.hiddenFrom) return;
    const away = now - this.hiddenFrom.at;
    this.hiddenMs += away;
    if (away >= HIDDEN_ENOUGH_MS) {
      const advanced = (mediaTime - this.hiddenFrom.mediaTime) * 1000 >= ADVANCED_SHARE * away;
      this.advancedWhileHidden = (this.advancedWhileHidden ?? true) && advanced;
    }
    this.hiddenFrom = null;
  }

  /**
   * The report (see `CheckReport` in src/device_check.rs).
   * @param {object} about
   * @param {string} about.engine "hlsjs-mse" | "hlsjs-mms" | "native" | "unsynced" | "none"
   * @param {"rate" | "seek" | "none"} about.correction how the controller corrects now (the player's report)
   * @param {string} about.device
   * @param {string} about.userAgent
   * @param {string | null} about.clientId
   * @param {number | null} about.outputLatencyMs
   * @param {number} about.outputDelayMs
   * @param {number} [about.mediaTime] the element's currentTime (s), to close a hidden period still open
   */
  report({ engine, correction, device, userAgent, clientId, outputLatencyMs, outputDelayMs, mediaTime = 0 }) {
    if (this.hiddenFrom) this.visibility(false, this.endedAt, mediaTime);
    const count = (name) => Math.max(0, (this.lastStats[name] ?? 0) - (this.firstStats[name] ?? 0));
    const [stalls, seeks, rateChanges, rateIgnored] = COUNTERS.map(count);
    const syncable = correction !== "none";
    const rateWorks = correction !== "seek";
    const p50 = percentile(this.errors, 50);
    const p95 = percentile(this.errors, 95);
    const problems = [];
    if (!this.played) problems.push("Playback did not start.");
    else if (!syncable) problems.push("This browser plays the stream but gives no position: it cannot be kept in step.");
    else if (this.errors.length === 0) problems.push("No position could be read while playing.");
    if (p95 !== null && p95 > FAIR_P95_MS) problems.push(`Out of step: 95 % of readings within ${round(p95)} ms.`);
    if (stalls > 0) problems.push(`Ran out of audio ${stalls} time${stalls === 1 ? "" : "s"}: the network or the device is slow for the room's delay.`);
    if (this.struggled) problems.push("The device could not keep up at times.");
    if (syncable && !rateWorks) problems.push("Speed changes had no effect: it corrects by jumping instead.");
    if (this.advancedWhileHidden === false) problems.push("The audio stopped while the screen was locked or the page hidden.");
    let verdict;
    if (!this.played || (syncable && this.errors.length === 0)) verdict = "failed";
    else if (!syncable || p95 > FAIR_P95_MS || this.struggled) verdict = "poor";
    else if (p95 > GOOD_P95_MS || stalls > 0 || !rateWorks || this.advancedWhileHidden === false) verdict = "fair";
    else verdict = "good";
    return {
      clientId,
      device,
      userAgent,
      engine,
      verdict,
      started: this.played,
      seconds: round((this.endedAt - this.startedAt) / 1000),
      samples: this.errors.length,
      syncP50Ms: p50 === null ? null : round(p50),
      syncP95Ms: p95 === null ? null : round(p95),
      stalls,
      seeks,
      rateChanges,
      rateIgnored,
      correction,
      hiddenSeconds: round(Math.min(this.hiddenMs, this.endedAt - this.startedAt) / 1000),
      advancedWhileHidden: this.advancedWhileHidden,
      outputLatencyMs: outputLatencyMs === null ? null : round(outputLatencyMs),
      outputDelayMs,
      problems,
    };
  }
}

/** p-th percentile (0..100) of `values`, null when empty. */
function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Rounded to 0.1. */
function round(x) {
  return Math.round(x * 10) / 10;
}
