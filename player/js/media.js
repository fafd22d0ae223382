/**
 * The live stream on ONE <audio> element for the whole session (iOS only
 * lets an element play after a gesture, so it is never replaced): hls.js
 * when `Hls.isSupported()` (checked first: Chromium also answers "maybe" to
 * native HLS, but then has no getStartDate() and cannot be synced), native
 * HLS with `getStartDate()` otherwise. A fatal hls.js error recreates the
 * hls.js instance with backoff; the sync controller then seeks back in place.
 */

const SRC = "/hls/live.m3u8";

/**
 * Loads hls.js's ES module; resolves to the Hls class, or null when it cannot
 * be loaded (the page then falls back to native HLS if the browser has it).
 */
export async function loadHls() {
  try {
    return (await import("/vendor/hls.mjs")).default;
  } catch {
    return null;
  }
}

export class LiveMedia {
  /**
   * @param {HTMLAudioElement} audio
   * @param {any} Hls the hls.js class, or null
   * @param {(message: string | null) => void} onTrouble a problem for the page to show, null when gone
   */
  constructor(audio, Hls, onTrouble) {
    this.audio = audio;
    this.Hls = Hls && Hls.isSupported() ? Hls : null;
    this.native = !this.Hls && audio.canPlayType("application/vnd.apple.mpegurl") !== "";
    this.onTrouble = onTrouble;
    this.hls = null;
    this.delaySeconds = 1;
    this.failures = 0;
    this.retry = null;
    // Resample for the ±3 % nudges (pitch moves by at most half a semitone, for
    // seconds). Chromium's pitch-preserving time-stretcher shifts the reported
    // position by ~20 ms whenever the rate changes, so the controller chases its
    // own corrections: 20-listener harness spread p95 25–35 ms against 4 ms.
    audio.preservesPitch = false;
    audio.addEventListener("playing", () => { this.failures = 0; });
    if (this.native) audio.addEventListener("error", () => this.recover());
  }

  /** Whether this browser can play the stream at all. */
  get supported() {
    return Boolean(this.Hls) || this.native;
  }

  /**
   * Starts loading. Call from the Join click so play() follows in the same gesture.
   * @param {number} delaySeconds playback delay D (s), hls.js's live sync distance
   */
  start(delaySeconds) {
    this.delaySeconds = delaySeconds;
    if (this.Hls) this.createHls();
    else if (this.native) {
      this.audio.src = SRC;
      this.audio.load();
    }
  }

  /** Updates D (s) when the room changes it. */
  setDelay(delaySeconds) {
    this.delaySeconds = delaySeconds;
    if (this.hls) this.hls.config.liveSyncDuration = delaySeconds;
  }

  /** PDT (ms since epoch) of the audio being played now, or null when unknown. */
  playingPdt() {
    if (this.hls) {
      const date = this.hls.playingDate;
      return date ? date.getTime() : null;
    }
    const start = this.audio.getStartDate?.().getTime();
    return Number.isFinite(start) ? start + this.audio.currentTime * 1000 : null;
  }

  /** Seconds of media buffered ahead of the playhead. */
  bufferAhead() {
    const { buffered, currentTime } = this.audio;
    for (let i = 0; i < buffered.length; i++) {
      if (buffered.start(i) <= currentTime + 0.05 && currentTime <= buffered.end(i)) return buffered.end(i) - currentTime;
    }
    return 0;
  }

  /**
   * Moves the playhead by `seconds` (positive = forward).
   * @param {number} seconds
   */
  seekBy(seconds) {
    this.audio.currentTime = Math.max(0, this.audio.currentTime + seconds);
  }

  /** Reloads the stream (after a fatal error, or a connection that came back with the audio stuck). */
  recover() {
    if (this.retry !== null) return;
    const delay = Math.min(10_000, 1000 * 2 ** this.failures);
    this.failures += 1;
    this.onTrouble(`Stream interrupted — retrying in ${Math.round(delay / 1000)} s`);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.onTrouble(null);
      this.start(this.delaySeconds);
      this.audio.play().catch(() => {});
    }, delay);
  }

  /** @private */
  createHls() {
    this.hls?.destroy();
    const Hls = this.Hls;
    const hls = new Hls({
      lowLatencyMode: true,
      liveSyncDuration: this.delaySeconds,
      // hls.js's own latency catch-up would fight our playbackRate control.
      maxLiveSyncPlaybackRate: 1,
      // Keep the target distance fixed after stalls; the sync controller owns it.
      liveSyncOnStallIncrease: 0,
      // iOS 17.1+ has ManagedMediaSource only; 1.7.x defaults this to false.
      preferManagedMediaSource: true,
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) this.recover();
    });
    hls.loadSource(SRC);
    hls.attachMedia(this.audio);
    this.hls = hls;
    window.hls = hls;
  }
}
