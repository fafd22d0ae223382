/**
 * The live stream on ONE <audio> element for the whole session (iOS only
 * lets an element play after a gesture, so it is never replaced): hls.js
 * when `Hls.isSupported()` (checked first: Chromium also answers "maybe" to
 * native HLS, but then has no getStartDate() and cannot be synced), native
 * HLS with `getStartDate()` otherwise, or when the listener asks for it
 * (`?engine=native`, or the page's setting). A fatal hls.js error recreates the
 * hls.js instance with backoff; the sync controller then seeks back in place.
 * A browser with neither (or native HLS without getStartDate()) still plays the
 * stream natively, unsynced, and the page says so.
 *
 * hls.js is the default everywhere it runs, iPhone included (ManagedMediaSource, iOS 17.1+):
 * its position is exact from the first part, it takes the rate nudges without stutter, and
 * parts fetched ahead cut a round trip from every part. Safari's own HLS is the other choice:
 * its `getStartDate()` is known only after `loadeddata`, and rate changes stuttered there for
 * others (Jellyfin turned its sync correction off on iOS), so its controller watches whether a
 * rate change moves the error and falls back to seeks when not (`watchRate` in sync.js).
 */

import { here } from "./room.js";

/** The room's stream. */
const SRC = here.stream;
/** Where the listener's engine choice is kept on the device. */
const ENGINE_KEY = "bardcast.engine";
/** The engine choices: "auto" lets the page decide (hls.js where it runs). */
export const ENGINE_CHOICES = ["auto", "hlsjs", "native"];
/** Parts fetched ahead that are kept for hls.js. */
const MAX_PREFETCHED = 8;
/** How long hls.js's request for a part waits for the same part fetched ahead before asking the network itself (ms). */
const PREFETCH_WAIT_MS = 3000;

/**
 * How this browser can play the stream, from what it offers (pure):
 *  - "hls": hls.js (MSE or ManagedMediaSource), synced through `playingDate`;
 *  - "native": the browser's own HLS with `getStartDate()`, synced through it;
 *  - "unsynced": the browser's own HLS without `getStartDate()` (Chromium answers "maybe"
 *    to HLS but has no getStartDate): it plays, but its position cannot be known, so it
 *    cannot be kept in sync with the table;
 *  - "none": nothing that plays HLS.
 * @param {{hlsSupported: boolean, nativeHls: boolean, startDate: boolean}} can
 * @returns {"hls" | "native" | "unsynced" | "none"}
 */
export function playbackMode({ hlsSupported, nativeHls, startDate, prefer = "auto" }) {
  // The browser's own HLS when asked for, if it can be synced; otherwise the usual order.
  if (prefer === "native" && nativeHls && startDate) return "native";
  if (hlsSupported) return "hls";
  if (!nativeHls) return "none";
  return startDate ? "native" : "unsynced";
}

/**
 * The listener's engine choice (pure over its inputs): `?engine=` in the address for this visit
 * (kiosks, tests), else the one kept on the device, else "auto".
 * @param {string} search `location.search`
 * @param {Storage | undefined} storage
 * @returns {"auto" | "hlsjs" | "native"}
 */
export function enginePreference(search, storage = globalThis.localStorage) {
  const fromAddress = new URLSearchParams(search).get("engine");
  if (ENGINE_CHOICES.includes(fromAddress)) return fromAddress;
  let stored = null;
  try {
    stored = storage?.getItem(ENGINE_KEY) ?? null;
  } catch {
    // storage disabled
  }
  return ENGINE_CHOICES.includes(stored) ? stored : "auto";
}

/** Keeps the listener's engine choice on the device (it takes effect on the next load). */
export function storeEnginePreference(choice, storage = globalThis.localStorage) {
  try {
    if (choice === "auto") storage?.removeItem(ENGINE_KEY);
    else storage?.setItem(ENGINE_KEY, choice);
  } catch {
    // storage disabled: the choice lasts this visit
  }
}

/**
 * The position of the browser's own HLS playback: `getStartDate()` (the PDT at currentTime 0)
 * plus currentTime. Safari gives a start date only after `loadeddata` (NaN or a stale one
 * before), so nothing is read until then; a start date that moves is taken only once two
 * readings in a row agree on it (one odd reading is not a jump of the stream).
 */
export class NativePosition {
  constructor() {
    this.loaded = false;
    /** The start date in use (ms since epoch), null until known. */
    this.startMs = null;
    /** A different start date seen once, waiting for a second reading. */
    this.candidateMs = null;
    /** Start date changes taken. */
    this.jumps = 0;
  }

  /** A new load: nothing is known until its `loadeddata`. */
  reset() {
    this.loaded = false;
    this.startMs = null;
    this.candidateMs = null;
  }

  /** The element fired `loadeddata`. */
  markLoaded() {
    this.loaded = true;
  }

  /**
   * PDT (ms since epoch) being played, or null while unknown.
   * @param {{getStartDate?: () => Date, currentTime: number}} element
   */
  read(element) {
    if (!this.loaded) return null;
    const start = element.getStartDate?.().getTime();
    if (!Number.isFinite(start) || start <= 0 || !Number.isFinite(element.currentTime)) return null;
    if (this.startMs === null || Math.abs(start - this.startMs) < 1) {
      this.startMs ??= start;
      this.candidateMs = null;
    } else if (this.candidateMs !== null && Math.abs(start - this.candidateMs) < 1) {
      this.startMs = start;
      this.candidateMs = null;
      this.jumps += 1;
    } else {
      this.candidateMs = start;
    }
    return this.startMs + element.currentTime * 1000;
  }
}

/**
 * What to tell the listener when `audio.play()` rejects (pure). Only NotAllowedError is the
 * browser blocking playback for want of a gesture: tapping Join again fixes it. AbortError
 * means a load interrupted that play() (hls.js attaching, a recovery): the element plays
 * by itself once data is there, so it is no trouble at all.
 * @param {{name?: string} | null | undefined} err
 * @returns {{message: string, retry: boolean} | null} null when there is nothing to say
 */
export function playRejection(err) {
  switch (err?.name) {
    case "AbortError":
      return null;
    case "NotAllowedError":
      return { message: "Playback was blocked by the browser. Tap Join again.", retry: true };
    case "NotSupportedError":
      return { message: "This browser cannot play the stream. Try a current Chrome, Firefox or Safari.", retry: false };
    default:
      return { message: `Playback failed (${err?.name ?? "unknown error"}). Tap Join to try again.`, retry: true };
  }
}

/**
 * The URL of the part after `partUrl` on the grid (`…/part/P.m4s` → `…/part/(P+1).m4s`), or
 * null for anything else (pure).
 * @param {string} partUrl
 * @returns {string | null}
 */
export function nextPartUrl(partUrl) {
  const m = /^(.*\/part\/)(\d+)(\.m4s(?:\?.*)?)$/.exec(partUrl);
  return m ? `${m[1]}${BigInt(m[2]) + 1n}${m[3]}` : null;
}

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
   * @param {"auto" | "hlsjs" | "native"} [prefer="auto"] the listener's engine choice
   */
  constructor(audio, Hls, onTrouble, prefer = "auto") {
    this.audio = audio;
    /** "hls" | "native" | "unsynced" | "none": see playbackMode. */
    this.mode = playbackMode({
      hlsSupported: Boolean(Hls?.isSupported()),
      nativeHls: audio.canPlayType("application/vnd.apple.mpegurl") !== "",
      startDate: typeof audio.getStartDate === "function",
      prefer,
    });
    this.Hls = this.mode === "hls" ? Hls : null;
    this.native = this.mode === "native" || this.mode === "unsynced";
    this.nativePosition = new NativePosition();
    /**
     * The engine as reported (see device_check.rs): hls.js prefers ManagedMediaSource where
     * the browser has it (iPhone, Safari 17.1+).
     */
    this.engine = this.mode === "hls"
      ? (globalThis.ManagedMediaSource ? "hlsjs-mms" : "hlsjs-mse")
      : this.mode;
    this.onTrouble = onTrouble;
    this.hls = null;
    this.delaySeconds = 1;
    this.failures = 0;
    this.retry = null;
    /** @type {Map<string, Promise<ArrayBuffer | null>>} the parts fetched ahead (the last few), by URL */
    this.prefetched = new Map();
    // Resample for the ±3 % nudges (pitch moves by at most half a semitone, for
    // seconds). Chromium's pitch-preserving time-stretcher shifts the reported
    // position by ~20 ms whenever the rate changes, so the controller chases its
    // own corrections: 20-listener harness spread p95 25–35 ms against 4 ms.
    audio.preservesPitch = false;
    audio.addEventListener("playing", () => { this.failures = 0; });
    if (this.engine === "hlsjs-mms") {
      // AirPlay (see keepAirPlay): the receiver fetches the stream itself and plays it on its
      // own timing, not in step with the table; the page stops loading meanwhile.
      audio.addEventListener("webkitcurrentplaybacktargetiswirelesschanged", () => {
        if (/** @type {any} */ (audio).webkitCurrentPlaybackTargetIsWireless) this.hls?.stopLoad();
        else this.hls?.startLoad(-1);
      });
    }
    if (this.native) {
      audio.addEventListener("error", () => this.recover());
      audio.addEventListener("loadstart", () => this.nativePosition.reset());
      audio.addEventListener("loadeddata", () => this.nativePosition.markLoaded());
    }
  }

  /** Whether this browser can play the stream at all. */
  get supported() {
    return this.mode !== "none";
  }

  /** Whether the position being played can be known, so kept in sync with the table. */
  get syncable() {
    return this.mode === "hls" || this.mode === "native";
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
    return this.nativePosition.read(this.audio);
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

  /**
   * Asks for the part after `partUrl` now, the way EXT-X-PRELOAD-HINT means it (hls.js does
   * not act on the hint): the server holds that request until the part is published. The
   * bytes wait here until hls.js's own request for the part, once its blocking playlist
   * reload has listed it, is answered from them (see `createHls`): a part then arrives one
   * trip after its publication instead of two, which is what D has to cover on a slow path,
   * and on a busy device it skips a request's round through the browser's queues.
   * @private
   */
  prefetchAfter(partUrl) {
    const next = nextPartUrl(new URL(partUrl, location.href).href);
    if (next === null || this.prefetched.has(next)) return;
    this.prefetched.set(next, fetch(next).then((r) => (r.ok ? r.arrayBuffer() : null)).catch(() => null));
    for (const url of this.prefetched.keys()) {
      if (this.prefetched.size <= MAX_PREFETCHED) break;
      this.prefetched.delete(url);
    }
  }

  /**
   * The bytes of `url` fetched ahead (a promise: they may still be on the way), or null; each
   * is handed out once.
   * @param {string} url
   * @returns {Promise<ArrayBuffer | null> | null}
   */
  takePrefetched(url) {
    const bytes = this.prefetched.get(url) ?? null;
    this.prefetched.delete(url);
    return bytes;
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
      fLoader: prefetchingLoader(Hls.DefaultConfig.loader, this),
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) this.recover();
    });
    hls.on(Hls.Events.FRAG_LOADED, (_event, data) => {
      if (data.part) this.prefetchAfter(data.part.url);
    });
    hls.loadSource(SRC);
    hls.attachMedia(this.audio);
    if (this.engine === "hlsjs-mms") keepAirPlay(this.audio, hls, Hls);
    this.hls = hls;
    window.hls = hls;
  }
}

/**
 * hls.js's fragment loader, answering a request for a part this page fetched ahead
 * (`LiveMedia.prefetchAfter`) from those bytes, and anything else, or a fetch ahead that
 * failed or takes longer than PREFETCH_WAIT_MS, from the network as usual.
 * @param {any} Loader hls.js's default loader class
 * @param {LiveMedia} media
 */
export function prefetchingLoader(Loader, media) {
  return class PrefetchingLoader extends Loader {
    loadInternal() {
      const context = this.context;
      const ahead = context ? media.takePrefetched(context.url) : null;
      if (!ahead) {
        super.loadInternal();
        return;
      }
      this.waitingForPrefetch = true;
      const done = (data) => {
        if (!this.waitingForPrefetch) return; // aborted or destroyed meanwhile
        this.waitingForPrefetch = false;
        clearTimeout(this.prefetchTimer);
        if (!data) {
          super.loadInternal();
          return;
        }
        const stats = this.stats;
        stats.loading.first = stats.loading.end = performance.now();
        stats.loaded = stats.total = data.byteLength;
        this.callbacks.onSuccess({ url: context.url, data }, stats, context, null);
      };
      this.prefetchTimer = setTimeout(() => done(null), PREFETCH_WAIT_MS);
      ahead.then(done);
    }

    abortInternal() {
      this.waitingForPrefetch = false;
      clearTimeout(this.prefetchTimer);
      super.abortInternal();
    }
  };
}

/**
 * AirPlay with hls.js on ManagedMediaSource (WebKit's "MSE with AirPlay" pattern): a
 * ManagedMediaSource opens only once remote playback is disabled or an alternative source
 * AirPlay can play is present, and hls.js disables it. So the stream's playlist goes in as a
 * second <source> (after hls.js's blob one), remote playback is allowed again once the media
 * source is attached. While AirPlay plays, hls.js stops loading (see LiveMedia's constructor).
 * @param {HTMLMediaElement} audio
 * @param {any} hls
 * @param {any} Hls the hls.js class (for its events)
 */
export function keepAirPlay(audio, hls, Hls) {
  const alternative = document.createElement("source");
  alternative.type = "application/x-mpegURL";
  alternative.src = SRC;
  hls.on(Hls.Events.MEDIA_ATTACHED, () => {
    if (!alternative.isConnected) audio.append(alternative);
    audio.disableRemotePlayback = false;
  });
  hls.on(Hls.Events.MEDIA_DETACHING, () => alternative.remove());
}
