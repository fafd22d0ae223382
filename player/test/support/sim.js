/** Test helpers: a seeded PRNG and simulated ping/pong exchanges. */

/** mulberry32: deterministic uniform [0, 1) numbers from a seed. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One ping/pong: client sends at local ms t0; server clock = local + offset.
 * @returns {[number, number, number, number]} t0, t1, t2, t3 (ms)
 */
export function exchange(t0, offset, upMs, downMs, processingMs) {
  const t1 = t0 + upMs + offset;
  const t2 = t1 + processingMs;
  const t3 = t2 - offset + downMs;
  return [t0, t1, t2, t3];
}

/**
 * A media element that plays a live stream: its PDT (ms since epoch) advances
 * at playbackRate x (1 + drift) per ms of real time, and like Chromium its
 * reported time is off by `glitchMs` for a while right after a rate change.
 */
export class FakeMedia {
  /** `ignoresRate`: like a player that accepts playbackRate but plays on at 1.0. */
  constructor({ pdt, driftPpm = 0, noiseMs = 1, glitchMs = 18, glitchForMs = 250, random = rng(7), ignoresRate = false }) {
    Object.assign(this, { pdt, drift: driftPpm * 1e-6, noiseMs, glitchMs, glitchForMs, random, ignoresRate });
    this.rate = 1;
    this.glitchUntil = -Infinity;
    this.seekingUntil = -Infinity;
    this.frozenUntil = -Infinity;
    this.stalledUntil = -Infinity;
  }
  /** Advances real time by dt ms, ending at real time `now` (needed only with `seek`). */
  advance(dt, now = Infinity) {
    // While playback restarts after a seek the playhead stands still.
    const moving = Math.min(dt, Math.max(0, now - this.frozenUntil));
    this.pdt += moving * this.rate * (1 + this.drift);
  }
  /**
   * A seek like Chromium's: `seeking` (no reading) for seekingMs, then the playhead
   * stands still until restartMs after the seek (playback restarting), then plays.
   */
  seek(pdt, now, { seekingMs = 40, restartMs = 70 } = {}) {
    this.pdt = pdt;
    this.seekingUntil = now + seekingMs;
    this.frozenUntil = now + restartMs;
  }
  /** Whether a seek is still in progress at real time `now` (the player reads nothing then). */
  seeking(now) {
    return now < this.seekingUntil;
  }
  /**
   * A stall from real time `now` (call it at a tick, after `advance`): the buffer ran dry, the
   * element waits for data (readyState < HAVE_FUTURE_DATA, the player reads nothing) and the
   * playhead stands still for `ms`, so it resumes that much further behind.
   */
  stall(now, ms) {
    this.stalledUntil = Math.max(this.stalledUntil, now + ms);
    this.frozenUntil = Math.max(this.frozenUntil, now + ms);
  }
  /** Whether the element waits for data at real time `now`. */
  stalled(now) {
    return now < this.stalledUntil;
  }
  /** Whether the player reads nothing at real time `now` because the element is not playing (seeking or stalled). */
  waiting(now) {
    return this.seeking(now) || this.stalled(now);
  }
  setRate(rate, now) {
    if (this.ignoresRate) return;
    this.rate = rate;
    this.glitchUntil = now + this.glitchForMs;
  }
  /** What the player would read (ms since epoch). */
  reported(now) {
    const glitch = now < this.glitchUntil ? this.glitchMs : 0;
    return this.pdt + glitch + (this.random() * 2 - 1) * this.noiseMs;
  }
}

/** p-th percentile (0..100) of numbers. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
