/**
 * Server clock offset estimator (NTP-style), pure: no DOM, no timers.
 *
 * Every ping/pong exchange yields four timestamps, all in milliseconds:
 * t0 client send, t1 server receive, t2 server send (server clock, ms since
 * the Unix epoch) and t3 client receive (local clock). Then
 *   offset = ((t1 - t0) + (t2 - t3)) / 2   (server clock minus local clock)
 *   rtt    = (t3 - t0) - (t2 - t1)          (network round trip)
 * and the true offset lies within offset ± rtt / 2. Queueing delay only makes
 * a sample worse, so the estimate averages the few lowest-RTT recent samples.
 *
 * The local clock is whatever `now()` the caller uses for t0 and t3. The
 * browser passes `performance.timeOrigin + performance.now()`, which is
 * monotonic, so a step of the system clock does not move it; what remains
 * (suspend/resume, a server restart on another machine, a stepped server
 * clock) shows up as samples that disagree with the estimate beyond their
 * own error bound. Two such samples in a row that agree with each other are
 * a clock jump: the old samples are dropped and the caller should re-measure.
 */

/** @typedef {{offset: number, rtt: number, at: number}} Sample  offset/rtt in ms, at = local ms */

export class ClockOffset {
  /**
   * @param {object} [opts]
   * @param {number} [opts.maxSamples=32] recent samples kept (one ping a second: the last ~30 s)
   * @param {number} [opts.maxAgeMs=30000] samples older than this (local ms) are dropped;
   *   crystals drift up to ~50 ppm, so old samples go stale
   * @param {number} [opts.best=2] how many lowest-RTT samples are averaged (on a busy page most
   *   round trips wait on the main thread, and the estimate is off by up to half of that)
   * @param {number} [opts.minSamples=3] samples needed before `ready`
   * @param {number} [opts.jumpToleranceMs=50] disagreement beyond rtt/2 that counts as a jump
   */
  constructor({ maxSamples = 32, maxAgeMs = 30_000, best = 2, minSamples = 3, jumpToleranceMs = 50 } = {}) {
    this.maxSamples = maxSamples;
    this.maxAgeMs = maxAgeMs;
    this.best = best;
    this.minSamples = minSamples;
    this.jumpToleranceMs = jumpToleranceMs;
    /** @type {Sample[]} */
    this.samples = [];
    /** @type {Sample | null} a sample that disagreed with the estimate, waiting for confirmation */
    this.suspect = null;
    /** Last good offset (ms), kept across `reset()` so playback can go on while re-measuring. */
    this.lastOffset = null;
  }

  /**
   * Adds one exchange. Returns what happened: "ok", "jump" (the clock stepped:
   * samples were reset, re-measure now), "suspect" (held back pending
   * confirmation) or "invalid" (negative RTT or non-finite timestamps).
   * @param {number} t0 local ms at client send
   * @param {number} t1 server ms at server receive
   * @param {number} t2 server ms at server send
   * @param {number} t3 local ms at client receive
   * @returns {"ok" | "jump" | "suspect" | "invalid"}
   */
  addSample(t0, t1, t2, t3) {
    if (![t0, t1, t2, t3].every(Number.isFinite)) return "invalid";
    const rtt = (t3 - t0) - (t2 - t1);
    if (rtt < 0 || t2 < t1) return "invalid";
    const sample = { offset: ((t1 - t0) + (t2 - t3)) / 2, rtt, at: t3 };
    this.prune(t3);
    const estimate = this.estimate();
    if (estimate !== null && this.samples.length >= this.minSamples && this.disagrees(sample, estimate)) {
      const previous = this.suspect;
      if (previous && Math.abs(previous.offset - sample.offset) <= (previous.rtt + sample.rtt) / 2 + this.jumpToleranceMs) {
        this.samples = [previous, sample];
        this.suspect = null;
        this.lastOffset = this.estimate();
        return "jump";
      }
      this.suspect = sample;
      return "suspect";
    }
    this.suspect = null;
    this.samples.push(sample);
    if (this.samples.length > this.maxSamples) this.samples.shift();
    this.lastOffset = this.estimate();
    return "ok";
  }

  /** @private */
  disagrees(sample, estimate) {
    const bound = sample.rtt / 2 + this.bestRtt() / 2 + this.jumpToleranceMs;
    return Math.abs(sample.offset - estimate) > bound;
  }

  /** @private drops samples older than maxAgeMs relative to local ms `now` */
  prune(now) {
    this.samples = this.samples.filter((s) => now - s.at <= this.maxAgeMs && s.at <= now);
  }

  /** @private the `best` lowest-RTT samples */
  chosen() {
    return [...this.samples].sort((a, b) => a.rtt - b.rtt).slice(0, this.best);
  }

  /** @private mean offset (ms) of the chosen samples, or null */
  estimate() {
    const chosen = this.chosen();
    return chosen.length ? chosen.reduce((sum, s) => sum + s.offset, 0) / chosen.length : null;
  }

  /** How far off `offset` can be (ms): half the largest round trip among the samples it averages; 0 with none. */
  uncertainty() {
    return Math.max(0, ...this.chosen().map((s) => s.rtt / 2));
  }

  /** Lowest RTT (ms) among the kept samples, or 0 when there are none. */
  bestRtt() {
    return this.samples.length ? Math.min(...this.samples.map((s) => s.rtt)) : 0;
  }

  /** Most recent sample's RTT (ms), or null. */
  lastRtt() {
    return this.samples.length ? this.samples[this.samples.length - 1].rtt : null;
  }

  /** Server clock minus local clock (ms); the last good value while re-measuring; null before any sample. */
  get offset() {
    return this.estimate() ?? this.lastOffset;
  }

  /** True once enough fresh samples back the estimate. */
  get ready() {
    return this.samples.length >= this.minSamples;
  }

  /**
   * Estimated server time (ms since the Unix epoch) at local time `localNow` (ms), or null.
   * @param {number} localNow
   */
  serverNow(localNow) {
    const offset = this.offset;
    return offset === null ? null : localNow + offset;
  }

  /** Forgets the samples (reconnect, page made visible again); `offset` keeps the last value until new samples arrive. */
  reset() {
    this.samples = [];
    this.suspect = null;
  }
}
